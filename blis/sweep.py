"""Sweeps as benchmark users run them: one simulation per concurrency (or rate) point, one row per point.

``sweep(config, concurrency=[1, 2, 4])`` or ``sweep(config, rate=[1, 5, 10])`` returns a ``SweepResult``: the
``SimResult`` of every point, a DataFrame with one row per point (``table``), the throughput-latency curve
(``curve()``) and, with the ``plot`` extra (matplotlib), a figure written on request (``plot(path)``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from blis.errors import BlisInputError

# summary keys copied into each row (times in ms, rates per second)
ROW_KEYS = ("completed_requests", "rejected_requests", "unfinished_requests", "responses_per_sec",
            "tokens_per_sec", "ttft_mean_ms", "ttft_p50_ms", "ttft_p99_ms", "tpot_mean_ms", "tpot_p50_ms",
            "tpot_p99_ms", "itl_mean_ms", "itl_p99_ms", "e2e_mean_ms", "e2e_p50_ms", "e2e_p99_ms", "kv_util_mean",
            "preemption_count")
LATENCY_METRICS = ("ttft", "tpot", "itl", "e2e")


@dataclass
class SweepResult:
    """Results of a sweep over ``parameter`` ('concurrency' or 'rate'), one entry per point, in order."""

    parameter: str
    values: list[float]
    results: list[Any] = field(default_factory=list)  # SimResult per point

    def rows(self) -> list[dict]:
        """One dict per point: the swept value, then the summary metrics of ``ROW_KEYS``."""
        out = []
        for value, res in zip(self.values, self.results):
            row: dict = {self.parameter: value}
            row.update({k: res.summary.get(k) for k in ROW_KEYS})
            out.append(row)
        return out

    @property
    def table(self):
        """The rows as a pandas DataFrame."""
        import pandas as pd

        return pd.DataFrame(self.rows())

    def curve(self, latency: str = "tpot", stat: str = "mean") -> list[tuple[float, float, float]]:
        """Throughput-latency curve: ``(swept value, output tokens/s, latency ms)`` per point.

        ``latency``: ttft, tpot, itl or e2e; ``stat``: mean, p50, p90, p95 or p99."""
        if latency not in LATENCY_METRICS:
            raise BlisInputError(f"latency: must be one of {', '.join(LATENCY_METRICS)} (got {latency!r})")
        if stat not in ("mean", "p50", "p90", "p95", "p99"):
            raise BlisInputError(f"stat: must be mean, p50, p90, p95 or p99 (got {stat!r})")
        key = f"{latency}_{stat}_ms"
        return [(v, r.summary.get("tokens_per_sec"), r.summary.get(key)) for v, r in zip(self.values, self.results)]

    def plot(self, path: str, latency: str = "tpot", stat: str = "mean") -> str:
        """Write the throughput-latency curve to ``path`` (png, svg or pdf; needs matplotlib, the plot extra)."""
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            raise BlisInputError("plot: needs matplotlib (pip install 'blis[plot]')") from None
        points = [p for p in self.curve(latency, stat) if p[1] is not None and p[2] is not None]
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot([p[1] for p in points], [p[2] for p in points], marker="o")
        for value, x, y in points:
            ax.annotate(f"{value:g}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
        ax.set_xlabel("output tokens/s")
        ax.set_ylabel(f"{latency.upper()} {stat} (ms)")
        ax.set_title(f"throughput vs latency, sweep over {self.parameter}")
        ax.grid(True, alpha=0.3)
        fig.tight_layout()
        fig.savefig(path)
        plt.close(fig)
        return path


def sweep(config, concurrency: Sequence[int] | None = None, rate: Sequence[float] | None = None,
          simulate_fn: Callable | None = None) -> SweepResult:
    """Simulate ``config`` once per point: its workload with ``concurrency`` (closed loop; a rate in the
    workload stays a cap) or ``rate`` (requests/s; a closed-loop workload keeps its users) replaced.

    ``simulate_fn(config)`` runs one point (default ``blis.simulate``, or ``blis.simulate_cluster`` for a
    ClusterConfig)."""
    if (concurrency is None) == (rate is None):
        raise BlisInputError("sweep: give either concurrency or rate values")
    values = list(concurrency if concurrency is not None else rate)  # type: ignore[arg-type]
    if not values:
        raise BlisInputError("sweep: no points")
    parameter = "concurrency" if concurrency is not None else "rate"
    if simulate_fn is None:
        from blis.cluster.config import ClusterConfig

        if isinstance(config, ClusterConfig):
            from blis.cluster import simulate_cluster as simulate_fn
        else:
            from blis.simulate import simulate as simulate_fn
    out = SweepResult(parameter, values)
    for v in values:
        wl = config.workload.with_overrides(**{parameter: v})
        out.results.append(simulate_fn(config.model_copy(update={"workload": wl})))
    return out


def parse_points(text: str, kind: type, name: str) -> list:
    """``"1,2,4"`` -> [1, 2, 4] (each > 0); a one-line error naming ``name`` otherwise."""
    try:
        values = [kind(x) for x in str(text).split(",") if x.strip()]
    except ValueError:
        raise BlisInputError(f"{name}: must be a number, or comma-separated numbers (got {text!r})") from None
    if any(v != v or v in (float("inf"), float("-inf")) for v in values):
        raise BlisInputError(f"{name}: must be a finite number (got {text!r})")
    if not values or any(not v > 0 for v in values):
        raise BlisInputError(f"{name}: every value must be > 0 (got {text!r})")
    if name == "rate" and any(v > 1e7 for v in values):
        raise BlisInputError(f"{name}: must be <= 1e+07 requests per second (got {text!r})")
    return values
