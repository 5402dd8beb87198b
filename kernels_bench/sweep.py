"""The measurement loop shared by every table: skip what is done, time the rest within a budget, refuse
impossible rows, append each row as soon as it is measured.

Nothing here imports torch: a point's kernel is run by a ``runner`` (a callable returning the median
latency in microseconds), which the kernel modules build on the GPU and tests replace with fakes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kernels_bench import flops as fl
from kernels_bench.writer import TableWriter, sort_table


class ImpossibleMeasurement(RuntimeError):
    """A row that cannot be physically right (MFU above 1, bandwidth above the memory's peak, latency
    not positive): the timing or the FLOP/byte count is wrong. Stops the run; the message names the shape."""


class PointSkipped(Exception):
    """Raised by a runner for a point it cannot run (out of memory, unsupported by the kernel)."""


@dataclass(frozen=True)
class TableSpec:
    """One output CSV: path relative to the GPU folder, header, and the columns that identify a row."""

    relpath: str
    columns: tuple[str, ...]
    key_columns: tuple[str, ...]


@dataclass(frozen=True)
class Point:
    """One measurement.

    key: values of the table's key columns. label: the shape in words, for messages.
    flops: FLOPs of one kernel call. nbytes: least bytes it must move (see `kernels_bench.flops`).
    precision: which peak the MFU is relative to ('bf16', 'fp8'). params: what the runner needs.
    """

    table: TableSpec
    key: Mapping[str, Any]
    label: str
    flops: float
    nbytes: float
    precision: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Peaks:
    """Denominators: dense peak FLOP/s per precision (what MFU is relative to) and memory bytes/s."""

    flops: Mapping[str, float]
    bandwidth_Bps: float


Runner = Callable[[Point], float]


class Budget:
    """Wall-clock budget of one invocation (seconds; None = unlimited). ``clock`` is injectable."""

    def __init__(self, max_seconds: float | None, clock: Callable[[], float] = time.monotonic):
        if max_seconds is not None and not max_seconds > 0:
            raise ValueError(f"--max-seconds must be > 0, got {max_seconds}")
        self.max_seconds = max_seconds
        self.clock = clock
        self.start = clock()

    def elapsed(self) -> float:
        return self.clock() - self.start

    def allows(self, next_estimate_s: float) -> bool:
        """True when a step expected to take ``next_estimate_s`` still fits."""
        return self.max_seconds is None or self.elapsed() + next_estimate_s <= self.max_seconds


def build_row(point: Point, latency_us: float, peaks: Peaks) -> dict[str, Any]:
    """The CSV row of a measured point: its key, latency_us and mfu. Raises ImpossibleMeasurement."""
    where = f"{point.table.relpath} {point.label}"
    if not (isinstance(latency_us, (int, float)) and math.isfinite(latency_us) and latency_us > 0):
        raise ImpossibleMeasurement(f"{where}: latency {latency_us!r} us is not a positive number")
    peak = peaks.flops.get(point.precision)
    if peak is None or not peak > 0:
        raise ValueError(f"no peak FLOP/s for precision {point.precision!r} (have {sorted(peaks.flops)})")
    mfu = fl.mfu(point.flops, latency_us, peak)
    if mfu > 1.0:
        raise ImpossibleMeasurement(
            f"{where}: {fl.achieved_flops(point.flops, latency_us) / 1e12:.1f} TFLOP/s in {latency_us:.3f} us "
            f"is above the {point.precision} peak {peak / 1e12:.1f} TFLOP/s (MFU {mfu:.3f} > 1): "
            "the timing or the FLOP count is wrong"
        )
    bw = fl.achieved_bandwidth(point.nbytes, latency_us)
    if bw > peaks.bandwidth_Bps:
        raise ImpossibleMeasurement(
            f"{where}: moving at least {point.nbytes / 1e6:.3f} MB in {latency_us:.3f} us is "
            f"{bw / 1e12:.2f} TB/s, above the memory's {peaks.bandwidth_Bps / 1e12:.2f} TB/s: "
            "the timing is wrong or the data came from cache"
        )
    row = dict(point.key)
    row["latency_us"] = float(latency_us)
    row["mfu"] = float(mfu)
    return row


@dataclass
class TableOutcome:
    """What one sweep did to one table."""

    spec: TableSpec
    total: int = 0
    already: int = 0
    measured: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (label, reason)

    @property
    def complete(self) -> bool:
        return self.already + self.measured + len(self.skipped) == self.total


@dataclass
class SweepResult:
    tables: dict[str, TableOutcome]
    stopped_by_budget: bool

    @property
    def complete(self) -> bool:
        return not self.stopped_by_budget and all(t.complete for t in self.tables.values())

    @property
    def remaining(self) -> int:
        return sum(t.total - t.already - t.measured - len(t.skipped) for t in self.tables.values())


def run_sweep(
    points: Sequence[Point],
    runner: Runner,
    out_dir: Path,
    peaks: Peaks,
    budget: Budget,
    on_point: Callable[[Point, str], None] | None = None,
) -> SweepResult:
    """Measure every point not yet in its table, in order, while the budget allows.

    A point is started only if the longest point seen so far in this run would still fit in the budget.
    ``on_point(point, status)`` is called after each point with status 'done' (already in the table),
    'measured' or 'skipped: <reason>'. Tables whose points are all handled are rewritten sorted.
    ImpossibleMeasurement propagates: the offending row is not written.
    """
    out_dir = Path(out_dir)
    writers: dict[str, TableWriter] = {}
    outcomes: dict[str, TableOutcome] = {}
    for p in points:
        rel = p.table.relpath
        if rel not in writers:
            writers[rel] = TableWriter(out_dir / rel, p.table.columns, p.table.key_columns)
            outcomes[rel] = TableOutcome(p.table)
        outcomes[rel].total += 1
    longest = 0.0
    stopped = False
    try:
        for p in points:
            rel = p.table.relpath
            writer, outcome = writers[rel], outcomes[rel]
            if writer.has(p.key):
                outcome.already += 1
                if on_point:
                    on_point(p, "done")
                continue
            if not budget.allows(longest):
                stopped = True
                break
            t0 = budget.clock()
            try:
                latency = runner(p)
            except PointSkipped as exc:
                outcome.skipped.append((p.label, str(exc)))
                if on_point:
                    on_point(p, f"skipped: {exc}")
                continue
            finally:
                longest = max(longest, budget.clock() - t0)
            writer.append(build_row(p, latency, peaks))
            outcome.measured += 1
            if on_point:
                on_point(p, "measured")
    finally:
        for w in writers.values():
            w.close()
    for rel, outcome in outcomes.items():
        if outcome.complete and (out_dir / rel).exists():
            sort_table(out_dir / rel, outcome.spec.key_columns)
    return SweepResult(outcomes, stopped)
