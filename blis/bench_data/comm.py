"""Measured all-reduce latencies (bench_data ``comm/allreduce_bf16.csv``, or aiconfigurator's
``custom_allreduce_perf``): ``backend,num_gpus,message_bytes,latency_us``.

``backend`` is how the collective was launched: ``vllm_graph`` (inside a CUDA graph: vLLM captures steps of
up to `GRAPH_MAX_TOKENS` tokens) or ``vllm_eager`` (larger steps); a table with one backend serves both.
Latency is interpolated in (log bytes, log latency) per GPU count like the kernel tables
(``blis.bench_data.lookup.Curve``; above the grid it grows linearly with the bytes).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

from blis.bench_data.lookup import Curve
from blis.errors import BlisInputError

FILE = Path("comm") / "allreduce_bf16.csv"
COLUMNS = ("backend", "num_gpus", "message_bytes", "latency_us")
GRAPH_MAX_TOKENS = 512  # vLLM's largest CUDA-graph capture size by default


class AllReduceTable:
    """All-reduce latency (microseconds) by (backend, num_gpus), over message bytes."""

    def __init__(self, rows: list[tuple[str, int, int, float]]) -> None:
        by: dict[tuple[str, int], list[tuple[float, float]]] = {}
        for backend, g, nbytes, lat in rows:
            by.setdefault((backend, int(g)), []).append((float(nbytes), float(lat)))
        self.curves = {key: Curve(pts, 1.0) for key, pts in by.items()}

    def gpus(self) -> set[int]:
        return {g for _, g in self.curves}

    def curve_for(self, num_gpus: int, graph: bool) -> Curve | None:
        """The curve for ``num_gpus`` (graph or eager launch; the other when only one was measured)."""
        want = ("vllm_graph", "vllm_eager") if graph else ("vllm_eager", "vllm_graph")
        for backend in want:
            c = self.curves.get((backend, num_gpus))
            if c is not None:
                return c
        others = sorted(k for k in self.curves if k[1] == num_gpus)
        return self.curves[others[0]] if others else None


def read_allreduce(folder: Path) -> list[tuple[str, int, int, float]]:
    """Rows of ``folder/comm/allreduce_bf16.csv`` ([] when absent); bad rows are a BlisInputError."""
    path = Path(folder) / FILE
    if not path.is_file():
        return []
    rows = []
    with path.open(newline="") as f:
        reader = csv.reader(f)
        header = next(reader, [])
        if tuple(h.strip() for h in header) != COLUMNS:
            raise BlisInputError(f"{path}:1: header must be {','.join(COLUMNS)}")
        for line, vals in enumerate(reader, start=2):
            try:
                backend, g, nbytes, lat = vals[0].strip(), int(vals[1]), int(vals[2]), float(vals[3])
            except (ValueError, IndexError):
                raise BlisInputError(f"{path}:{line}: expected {','.join(COLUMNS)}") from None
            if g < 2 or nbytes < 1 or not (math.isfinite(lat) and lat > 0):
                raise BlisInputError(f"{path}:{line}: num_gpus >= 2, message_bytes >= 1, latency_us > 0 required")
            rows.append((backend, g, nbytes, lat))
    return rows


def write_allreduce(folder: Path, rows: list[tuple[str, int, int, float]]) -> None:
    path = Path(folder) / FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    body = "".join(f"{b},{g},{n},{lat:.6g}\n" for b, g, n, lat in sorted(rows))
    path.write_text(",".join(COLUMNS) + "\n" + body)
