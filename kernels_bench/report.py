"""What a sweep tells its user: a progress display, one summary line per table, and the decode
bandwidth sidecar (the bench_data CSV has no column for it)."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kernels_bench import shapes
from kernels_bench.sweep import Point


def log(msg: str) -> None:
    """A line on stderr, flushed (device logs are read after the fact)."""
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


def table_summary(out_dir: Path, rel: str, outcome: Any, peak_bw: float) -> str:
    """One line per table: rows, what this run added, MFU and latency ranges (decode: bandwidth)."""
    import statistics

    from kernels_bench.writer import read_table

    rows = read_table(out_dir / rel)
    state = "complete" if outcome.complete else "incomplete"
    skipped = f", {len(outcome.skipped)} skipped ({outcome.skipped[0][1]})" if outcome.skipped else ""
    if not rows:
        return f"{rel}: no rows{skipped}; {state}"
    mfu = [float(r["mfu"]) for r in rows]
    lat = [float(r["latency_us"]) for r in rows]
    line = (f"{rel}: {len(rows)} rows (+{outcome.measured} this run{skipped}), MFU median "
            f"{statistics.median(mfu):.3g} max {max(mfu):.3g}, latency {min(lat):.4g}..{max(lat):.4g} us")
    if rel.startswith("attention_decode/"):
        bws = [b for _, b in decode_bandwidths(rel, rows)]
        line += (f", bandwidth median {statistics.median(bws) / 1e12:.2f} max {max(bws) / 1e12:.2f} TB/s "
                 f"({100 * max(bws) / peak_bw:.0f}% of peak)")
    return f"{line}; {state}"


def decode_bandwidths(rel: str, rows: Sequence[dict[str, str]]) -> list[tuple[dict[str, str], float]]:
    """Achieved bytes/s of decode rows (least bytes, `kernels_bench.flops.decode_attention_bytes`)."""
    from kernels_bench import flops as fl

    h, kvh, d = (int(x) for x in Path(rel).stem.split("-"))
    out = []
    for r in rows:
        nbytes = fl.decode_attention_bytes(int(r["batch_size"]), h, kvh, int(r["kv_len"]), d,
                                           shapes.DTYPE_BYTES[r["dtype"]], shapes.DTYPE_BYTES[r["kv_dtype"]])
        out.append((r, fl.achieved_bandwidth(nbytes, float(r["latency_us"]))))
    return out


DECODE_BANDWIDTH_FILE = "attention_decode_bandwidth.json"


def write_decode_bandwidth(out_dir: Path, peak_bw: float) -> None:
    """Sidecar with the achieved bandwidth of every decode row (the format's CSV has no column for it)."""
    from kernels_bench.writer import read_table, write_json_atomic

    folder = out_dir / "attention_decode"
    if not folder.is_dir():
        return
    tables = {}
    for path in sorted(folder.glob("*.csv")):
        rel = f"attention_decode/{path.name}"
        tables[path.stem] = [
            {"dtype": r["dtype"], "kv_dtype": r["kv_dtype"], "batch_size": int(r["batch_size"]),
             "kv_len": int(r["kv_len"]), "bandwidth_GBps": round(bw / 1e9, 1),
             "fraction_of_peak": round(bw / peak_bw, 4)}
            for r, bw in decode_bandwidths(rel, read_table(path))
        ]
    write_json_atomic(out_dir / DECODE_BANDWIDTH_FILE, {
        "about": "achieved bandwidth of attention_decode rows: least bytes (K and V cache read once, query "
                 "read and output written) over latency; derived from the CSV rows",
        "peak_memory_bandwidth_GBps": peak_bw / 1e9,
        "tables": tables,
    })


class Progress:
    """A rich progress bar on a terminal; elsewhere (logs), a line every 30 seconds."""

    def __init__(self, total: int):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.console = Console(stderr=True)
        self.total, self.done, self.last = total, 0, time.monotonic()
        self.bar = None
        if self.console.is_terminal:
            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TimeElapsedColumn(), console=self.console)
            self.task = self.bar.add_task("kernels", total=total)
            self.bar.start()

    def advance(self, point: Point, status: str) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.update(self.task, advance=1, description=point.table.relpath)
        elif time.monotonic() - self.last > 30:
            self.last = time.monotonic()
            log(f"{self.done}/{self.total} points; now {point.table.relpath} {point.label} ({status})")

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()
