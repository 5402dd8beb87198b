"""The stability rule: is a probe's steady state stable, and what are its SLO metrics?

One probe run (one seed) is judged on its *measured window*: requests arriving after the warm-up up to the
last arrival. The warm-up is the longer of ``warmup_fraction`` of the arrival span and twice the mean E2E
latency (the time the batch needs to fill). A run whose window is shorter than 4 mean E2E latencies is too
short to show a steady state and counts as **unstable** (a short run that ends before the queue builds up
proves nothing). In the window:

- backlog B(t) = requests arrived by t minus requests finished by t, sampled at 200 evenly spaced times;
- growth = mean B over the window's last 10 % minus mean B over its middle (45-55 %);
- the probe is **unstable** when growth > 3 * sqrt(mean B + 1) + 2 % of the requests that arrived between
  those two stretches: the queue is still growing at the end, however short the run and whatever the
  percentiles say;
- the SLO metrics are the 99th percentiles (linear interpolation) of TTFT, TPOT and E2E of the window's
  requests; a request that never finished (rejected, or cut by a horizon) counts as infinitely slow.

Seeds are pooled: growths and thresholds add up, percentiles come from all seeds' window requests together,
and the spread of the per-seed p99 gives a confidence interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from blis.plan.spec import SLO

METRICS = ("ttft", "tpot", "e2e")
SAMPLES = 200
GROWTH_SIGMAS = 3.0
GROWTH_FRACTION = 0.02
# early stop after the first seed: clearly failing / clearly fine margins on the p99 limits
CLEAR_FAIL = 1.5
CLEAR_PASS = 0.7
WARMUP_E2E = 2.0  # warm-up lasts at least this many mean E2E latencies
WINDOW_E2E = 4.0  # the measured window must last at least this many mean E2E latencies

# two-sided 95 % Student t quantiles by degrees of freedom (1..30); larger df use 1.96
_T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
        2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


@dataclass
class SeedStats:
    """What one probe run (one seed) measured in its window. Times in ms, rates per second."""

    seed: int
    window_requests: int
    window_s: float
    growth: float
    growth_threshold: float  # -inf when the run was too short to judge
    backlog_mean: float
    mean_e2e_ms: float
    samples: dict[str, np.ndarray]  # metric -> window values (ms; inf = never finished)
    good: int  # window requests meeting every limit individually
    output_tokens_per_s: float
    responses_per_s: float
    latency_model: str = ""
    fidelity_basis: str = ""

    @property
    def unstable(self) -> bool:
        return self.growth > self.growth_threshold

    def p99(self, metric: str) -> float:
        return _p99(self.samples[metric])


def _p99(values: np.ndarray) -> float:
    if len(values) == 0:
        return math.inf
    return float(np.percentile(values, 99))


def fidelity_basis(summary: dict) -> str:
    """``summary["fidelity"]["basis"]`` when the latency model reports it; else a fallback naming the model."""
    fid = summary.get("fidelity")
    if isinstance(fid, dict) and fid.get("basis"):
        return str(fid["basis"])
    return f"{summary.get('latency_model', '?')} (no fidelity basis reported)"


def judge_seed(result, slo: SLO, warmup_fraction: float, seed: int) -> SeedStats:
    """Measure one run (a SimResult) on its post-warm-up window."""
    req = result.requests
    arrival = req["arrival_ms"].to_numpy(dtype=float)
    finish = req["finish_ms"].to_numpy(dtype=float)
    finished = req["finished"].to_numpy(dtype=bool)
    out_tokens = req["output_tokens"].to_numpy(dtype=float)
    t0, t1 = float(arrival.min()), float(arrival.max())
    e2e_all = req["e2e_ms"].to_numpy(dtype=float)[finished]
    mean_e2e = float(e2e_all.mean()) if len(e2e_all) else math.inf
    w0 = t0 + max(warmup_fraction * (t1 - t0), WARMUP_E2E * mean_e2e)
    too_short = (t1 - w0) < WINDOW_E2E * mean_e2e
    if too_short:  # still judge the second half, for the metrics
        w0 = t0 + 0.5 * (t1 - t0)
    length = max(t1 - w0, 1e-9)
    in_win = arrival >= w0
    arr_sorted = np.sort(arrival)
    fin_sorted = np.sort(np.where(finished, finish, np.inf))
    times = w0 + length * (np.arange(SAMPLES) + 0.5) / SAMPLES
    backlog = (np.searchsorted(arr_sorted, times, side="right")
               - np.searchsorted(fin_sorted, times, side="right")).astype(float)
    mid = backlog[int(0.45 * SAMPLES):int(0.55 * SAMPLES)]
    end = backlog[int(0.9 * SAMPLES):]
    growth = float(end.mean() - mid.mean())
    between = int(np.count_nonzero((arrival >= w0 + 0.5 * length) & (arrival <= w0 + 0.95 * length)))
    threshold = GROWTH_SIGMAS * math.sqrt(float(backlog.mean()) + 1.0) + GROWTH_FRACTION * between
    if too_short:
        threshold = -math.inf
    samples = {}
    good = np.ones(int(in_win.sum()), dtype=bool)
    limits = slo.limits()
    for metric in METRICS:
        values = req[f"{metric}_ms"].to_numpy(dtype=float)[in_win]
        done = finished[in_win]
        if metric == "tpot":  # single-token outputs have no TPOT
            keep = ~done | (out_tokens[in_win] > 1)
            values = np.where(done, values, np.inf)[keep]
            ok = np.ones(len(done), dtype=bool)
            if metric in limits:
                ok[keep] = values <= limits[metric]
        else:
            values = np.where(done, values, np.inf)
            ok = values <= limits[metric] if metric in limits else np.ones(len(done), dtype=bool)
        samples[metric] = values
        good &= ok
    win_s = length / 1000.0
    fin_win = finished & (finish >= w0) & (finish <= t1)
    summary = result.summary
    return SeedStats(
        seed=seed, window_requests=int(in_win.sum()), window_s=win_s, growth=growth, growth_threshold=threshold,
        backlog_mean=float(backlog.mean()), mean_e2e_ms=mean_e2e, samples=samples, good=int(good.sum()),
        output_tokens_per_s=float(out_tokens[fin_win].sum() / win_s),
        responses_per_s=float(fin_win.sum() / win_s),
        latency_model=str(summary.get("latency_model", "")), fidelity_basis=fidelity_basis(summary),
    )


@dataclass
class Verdict:
    """Pooled judgement of a probe over its seeds."""

    rate: float
    ok: bool
    stable: bool
    seeds: int
    p99: dict[str, float]
    p99_ci: dict[str, Optional[tuple[float, float]]]
    goodput: float
    output_tokens_per_s: float
    responses_per_s: float
    growth: float
    growth_threshold: float
    latency_model: str
    fidelity_basis: str
    early: bool = False
    extra: dict = field(default_factory=dict)


def _meets(p99: dict[str, float], goodput: float, slo: SLO, scale: float = 1.0) -> bool:
    if slo.goodput is not None:
        allowed_bad = 1.0 - slo.goodput
        return (1.0 - goodput) <= allowed_bad * scale
    return all(p99[m] <= limit * scale for m, limit in slo.limits().items())


def pool(stats: list[SeedStats], slo: SLO, rate: float) -> Verdict:
    """Verdict over all seeds run so far (growths and thresholds summed, samples pooled)."""
    growth = sum(s.growth for s in stats)
    threshold = sum(s.growth_threshold for s in stats)
    stable = growth <= threshold
    p99, ci = {}, {}
    for m in METRICS:
        p99[m] = _p99(np.concatenate([s.samples[m] for s in stats]))
        per_seed = [s.p99(m) for s in stats]
        ci[m] = _ci(per_seed)
    n = sum(s.window_requests for s in stats)
    goodput = sum(s.good for s in stats) / n if n else 0.0
    ok = stable and _meets(p99, goodput, slo)
    k = len(stats)
    return Verdict(rate=rate, ok=ok, stable=stable, seeds=k, p99=p99, p99_ci=ci, goodput=goodput,
                   output_tokens_per_s=sum(s.output_tokens_per_s for s in stats) / k,
                   responses_per_s=sum(s.responses_per_s for s in stats) / k,
                   growth=growth, growth_threshold=threshold, latency_model=stats[0].latency_model,
                   fidelity_basis=stats[0].fidelity_basis)


def clear_after_first(first: SeedStats, slo: SLO) -> Optional[bool]:
    """After the first seed: False when clearly failing (queue growing at 3x the threshold, or a p99 over
    1.5x its limit), True when clearly fine (no growth beyond half the threshold and every p99 under 0.7x
    its limit), None when more seeds are needed."""
    p99 = {m: first.p99(m) for m in METRICS}
    goodput = first.good / first.window_requests if first.window_requests else 0.0
    if first.growth > 3.0 * first.growth_threshold or not _meets(p99, goodput, slo, CLEAR_FAIL):
        return False
    if first.growth <= 0.5 * first.growth_threshold and _meets(p99, goodput, slo, CLEAR_PASS):
        return True
    return None


def _ci(values: list[float]) -> Optional[tuple[float, float]]:
    """95 % confidence interval of the mean of per-seed values (Student t, lower end clipped at 0); None for
    fewer than 2 seeds."""
    vals = np.asarray(values, dtype=float)
    if len(vals) < 2 or not np.all(np.isfinite(vals)):
        return None
    df = len(vals) - 1
    t = _T95[df - 1] if df <= len(_T95) else 1.96
    half = t * float(vals.std(ddof=1)) / math.sqrt(len(vals))
    mean = float(vals.mean())
    return (round(max(mean - half, 0.0), 3), round(mean + half, 3))  # latencies are >= 0
