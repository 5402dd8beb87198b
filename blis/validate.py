"""Compare simulated with measured latencies of real runs: per-run metrics, their errors, the median
error over runs, and tolerance checks (the `blis validate` CI gate).

Definitions (the same on both sides):
- TTFT and E2E per request in ms, over the requests that completed (a failed request -- a client error,
  or a simulated E2E over the client timeout -- is left out);
- TPOT per request = (E2E - TTFT) / (output_len - 1) ms, for output_len > 1, output_len being the
  number of tokens the server generated;
- percentiles: numpy's linear interpolation;
- error = 100 x |simulated - measured| / measured.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from blis.errors import BlisInputError

METRICS = (
    "ttft_mean_ms",
    "ttft_p90_ms",
    "ttft_p99_ms",
    "e2e_mean_ms",
    "e2e_p90_ms",
    "e2e_p99_ms",
    "tpot_mean_ms",
)
# Reported in the Python API and the table, not in the JSON schema.
EXTRA_METRICS = ("ttft_p50_ms", "e2e_p50_ms", "completed")

# A run is overloaded when its clients saw failures or the TTFT of its last arrivals is far above that
# of its first: the queue grew without bound (see docs/validation.md).
OVERLOAD_TTFT_GROWTH = 10.0
OVERLOAD_TTFT_MIN_MS = 5000.0


def latency_metrics(ttft_ms: np.ndarray, e2e_ms: np.ndarray, output_tokens: np.ndarray) -> dict[str, float]:
    """The metrics over completed requests (NaN rows are skipped); NaN where there is no request."""
    ok = np.isfinite(ttft_ms) & np.isfinite(e2e_ms)
    t, e, n = ttft_ms[ok], e2e_ms[ok], output_tokens[ok]
    multi = n > 1
    tpot = (e[multi] - t[multi]) / (n[multi] - 1)

    def stat(x: np.ndarray, q: float | None) -> float:
        if len(x) == 0:
            return math.nan
        return float(np.mean(x)) if q is None else float(np.percentile(x, q))

    return {
        "ttft_mean_ms": stat(t, None),
        "ttft_p50_ms": stat(t, 50),
        "ttft_p90_ms": stat(t, 90),
        "ttft_p99_ms": stat(t, 99),
        "e2e_mean_ms": stat(e, None),
        "e2e_p50_ms": stat(e, 50),
        "e2e_p90_ms": stat(e, 90),
        "e2e_p99_ms": stat(e, 99),
        "tpot_mean_ms": stat(tpot, None),
        "completed": float(ok.sum()),
    }


def error_pct(measured: float, simulated: float) -> float:
    if not (math.isfinite(measured) and math.isfinite(simulated)) or measured == 0:
        return math.nan
    return 100.0 * abs(simulated - measured) / abs(measured)


@dataclass
class MetricComparison:
    measured: float
    simulated: float
    error_pct: float


@dataclass
class ExperimentReport:
    name: str
    model: str
    tp: int
    latency_model: str
    requests: int
    completed_measured: int
    completed_simulated: int
    metrics: dict[str, MetricComparison]
    overloaded: bool = False
    extra: dict[str, MetricComparison] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "model": self.model,
            "tp": self.tp,
            "latency_model": self.latency_model,
            "requests": self.requests,
            "completed_measured": self.completed_measured,
            "completed_simulated": self.completed_simulated,
            "metrics": {
                k: {"measured": _num(m.measured), "simulated": _num(m.simulated), "error_pct": _num(m.error_pct)}
                for k, m in self.metrics.items()
            },
        }


@dataclass
class ValidationReport:
    experiments: list[ExperimentReport]

    def _errors(self, k: str, which: bool | None) -> list[tuple[float, str]]:
        return [(e.metrics[k].error_pct, e.name) for e in self.experiments
                if (which is None or e.overloaded == which) and math.isfinite(e.metrics[k].error_pct)]

    def median_error_pct(self, which: bool | None = None) -> dict[str, float]:
        """Median over runs of each metric's error; ``which`` = True/False restricts to (non-)overloaded runs."""
        return {k: float(np.median([v for v, _ in self._errors(k, which)])) if self._errors(k, which) else math.nan
                for k in METRICS}

    def mean_error_pct(self, which: bool | None = None) -> dict[str, float]:
        return {k: float(np.mean([v for v, _ in self._errors(k, which)])) if self._errors(k, which) else math.nan
                for k in METRICS}

    def worst_error_pct(self, which: bool | None = None) -> dict[str, tuple[float, str]]:
        """Largest error over runs of each metric and the run it came from ((NaN, '') when none)."""
        return {k: max(self._errors(k, which), default=(math.nan, "")) for k in METRICS}

    def stat_error_pct(self, stat: str) -> dict[str, float]:
        if stat == "worst":
            return {k: v for k, (v, _) in self.worst_error_pct().items()}
        return self.mean_error_pct() if stat == "mean" else self.median_error_pct()

    def to_json(self) -> dict:
        worst = self.worst_error_pct()
        return {
            "experiments": [e.to_json() for e in self.experiments],
            "summary": {
                "median_error_pct": {k: _num(v) for k, v in self.median_error_pct().items()},
                "mean_error_pct": {k: _num(v) for k, v in self.mean_error_pct().items()},
                "worst_error_pct": {k: {"error_pct": _num(v), "run": n or None} for k, (v, n) in worst.items()},
            },
        }


def _num(x: float) -> float | None:
    """JSON has no NaN: missing values are null."""
    return float(x) if math.isfinite(x) else None


def is_overloaded(run) -> bool:
    """Failures at the client, or TTFT of the last tenth of completed arrivals > 10x the first tenth
    and above 5 s (the queue grew without bound)."""
    if run.failed.any():
        return True
    ok = ~run.failed
    ttft = run.ttft_ms[ok]
    if len(ttft) < 20:
        return False
    tenth = max(1, len(ttft) // 10)
    first, last = float(np.median(ttft[:tenth])), float(np.median(ttft[-tenth:]))
    return last > OVERLOAD_TTFT_MIN_MS and last > OVERLOAD_TTFT_GROWTH * first


def compare(replayed) -> ExperimentReport:
    """Turn a `ReplayResult` into a report over its scored requests."""
    run = replayed.run
    s = replayed.scored
    out = replayed.output_tokens[s]
    measured = latency_metrics(replayed.measured_ttft_ms[s], replayed.measured_e2e_ms[s], out)
    simulated = latency_metrics(replayed.sim_ttft_ms[s], replayed.sim_e2e_ms[s], out)
    comp = {k: MetricComparison(measured[k], simulated[k], error_pct(measured[k], simulated[k])) for k in METRICS}
    extra = {
        k: MetricComparison(measured[k], simulated[k], error_pct(measured[k], simulated[k])) for k in EXTRA_METRICS
    }
    return ExperimentReport(
        name=run.name,
        model=run.server.model,
        tp=run.server.tp,
        latency_model=replayed.latency_model,
        requests=int(s.sum()),
        completed_measured=int(measured["completed"]),
        completed_simulated=int(simulated["completed"]),
        metrics=comp,
        overloaded=is_overloaded(run),
        extra=extra,
    )


def validate_run(run, latency_model: str | None = None, **replay_kw) -> ExperimentReport:
    from blis.traces.replay import replay

    return compare(replay(run, latency_model, **replay_kw))


def validate(
    paths: Sequence[str | Path], latency_model: str | None = None, **replay_kw
) -> ValidationReport:
    """Replay every run found under ``paths`` (runs or folders of runs) and compare."""
    from blis.traces import find_runs, load_run

    runs = [load_run(p) for p in find_runs(list(paths))]
    return ValidationReport([validate_run(r, latency_model, **replay_kw) for r in runs])


STATS = ("median", "mean", "worst")


def parse_tolerances(text: str | None) -> dict[tuple[str, str], float]:
    """``"ttft_mean=15,e2e_mean:worst=10"`` -> ``{("ttft_mean_ms", "median"): 15.0, ("e2e_mean_ms", "worst"):
    10.0}`` (percent). A bound applies to the median over runs unless ``:mean`` or ``:worst`` follows the
    metric."""
    if not text:
        return {}
    out: dict[tuple[str, str], float] = {}
    allowed = ", ".join(m[:-3] for m in METRICS)
    for part in text.split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        key = key.strip()
        metric, _, stat = key.partition(":")
        stat = stat.strip() or "median"
        name = metric if metric.endswith("_ms") else f"{metric}_ms"
        if not sep or name not in METRICS:
            raise BlisInputError(f"--tolerance: {part.strip()!r}: expected METRIC[:STAT]=PERCENT with METRIC one "
                                 f"of {allowed} and STAT one of {', '.join(STATS)}")
        if stat not in STATS:
            raise BlisInputError(f"--tolerance: {key}: statistic {stat!r} is not one of {', '.join(STATS)}")
        try:
            pct = float(value)
        except ValueError:
            raise BlisInputError(f"--tolerance: {key}: {value.strip()!r} is not a number") from None
        if not (pct >= 0) or math.isinf(pct):
            raise BlisInputError(f"--tolerance: {key}: must be a finite percentage >= 0, got {value.strip()}")
        out[(name, stat)] = pct
    return out


def tolerance_violations(report: ValidationReport, tolerances: dict) -> list[str]:
    """Bounds exceeded (a missing value counts as exceeded). Keys are (metric, statistic) pairs, or a bare
    metric name for the median."""
    worst = report.worst_error_pct()
    bad = []
    for key, limit in tolerances.items():
        name, stat = key if isinstance(key, tuple) else (key, "median")
        value = report.stat_error_pct(stat).get(name, math.nan)
        if not math.isfinite(value) or value > limit:
            where = f" (run {worst[name][1]})" if stat == "worst" and worst[name][1] else ""
            bad.append(f"{name}: {stat} error {value:.2f}%{where} > tolerance {limit:g}%")
    return bad
