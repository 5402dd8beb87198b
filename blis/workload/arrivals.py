"""Arrival processes: inter-arrival gaps and load stages (plain numpy functions).

Times are float seconds from the start of the run inside this module; ``to_us`` turns them into the int64
microseconds of a ``RequestTable``.

Processes (registry ``ARRIVAL_PROCESSES``):
- ``constant``: fixed interval ``1/rate`` (whole microseconds), first request at t = 0 (reference simulator).
- ``poisson``: exponential gaps with mean ``1/rate`` (cv = 1), first request at t = 0.
- ``gamma`` / ``weibull``: renewal processes with mean gap ``1/rate`` and coefficient of variation ``cv``
  (cv > 1 bursty, cv < 1 smoother than Poisson), first request at t = 0.
- ``inference-perf-constant``: inference-perf's "constant" timer. A stage of ``rate`` x ``duration`` gets
  N = int(rate * duration) exponential gaps rescaled to sum to exactly ``duration``; request i arrives at
  the sum of the first i + 1 gaps, so the last one lands at the end of the stage.
- ``inference-perf-poisson``: inference-perf's "poisson" timer. One-second windows each draw
  k ~ Poisson(rate); an empty window is skipped, otherwise its k requests are placed like
  ``inference-perf-constant`` with N = k over 1 s. A stage takes int(rate * duration) requests.
"""

from __future__ import annotations

import math

import numpy as np

RENEWAL_PROCESSES = ("constant", "poisson", "gamma", "weibull")
ARRIVAL_PROCESSES = (*RENEWAL_PROCESSES, "inference-perf-constant", "inference-perf-poisson")
CV_PROCESSES = ("gamma", "weibull")


def to_us(seconds: np.ndarray) -> np.ndarray:
    """Float seconds -> int64 microseconds (rounded)."""
    return np.floor(np.asarray(seconds, dtype=np.float64) * 1e6 + 0.5).astype(np.int64)


def constant_interval_s(rate: float) -> float:
    """Interval of the ``constant`` process: 1/rate truncated to whole microseconds, in seconds."""
    return max(1, int(1e6 / rate + 1e-6)) / 1e6


def weibull_shape(cv: float) -> float:
    """Weibull shape k whose coefficient of variation is ``cv``: cv^2 = G(1+2/k)/G(1+1/k)^2 - 1."""

    def cv2(k: float) -> float:
        return math.exp(math.lgamma(1 + 2 / k) - 2 * math.lgamma(1 + 1 / k)) - 1

    lo, hi = 0.05, 1e5  # cv2 falls as k grows: cv ~ 3.6e5 at k = 0.05, ~1.3e-5 at k = 1e5
    target = cv * cv
    if not cv2(hi) <= target <= cv2(lo):
        raise ValueError(f"cv: {cv} is outside what a Weibull arrival process supports here")
    for _ in range(200):
        mid = math.sqrt(lo * hi)
        if cv2(mid) > target:
            lo = mid
        else:
            hi = mid
        if hi / lo < 1 + 1e-12:
            break
    return math.sqrt(lo * hi)


def renewal_gaps(process: str, rng: np.random.Generator, n: int, rate: float, cv: float) -> np.ndarray:
    """``n`` inter-arrival gaps (seconds) of a renewal process with mean 1/rate."""
    mean = 1.0 / rate
    if process == "constant":
        return np.full(n, constant_interval_s(rate))
    if process == "poisson":
        return rng.exponential(mean, n)
    if process == "gamma":
        shape = 1.0 / (cv * cv)
        return rng.gamma(shape, mean / shape, n)
    if process == "weibull":
        k = weibull_shape(cv)
        return rng.weibull(k, n) * (mean / math.gamma(1 + 1 / k))
    raise ValueError(f"arrival: unknown process {process!r}; known: {', '.join(ARRIVAL_PROCESSES)}")


def _normalized_exponential(rng: np.random.Generator, n: int, duration: float) -> np.ndarray:
    gaps = rng.exponential(1.0, n)
    t = np.cumsum(gaps)
    return t * (duration / t[-1])


def _zero_truncated_poisson(rng: np.random.Generator, m: int, rate: float) -> np.ndarray:
    """``m`` draws of k ~ Poisson(rate) conditioned on k >= 1."""
    if rate > 1.0:
        k = rng.poisson(rate, m)
        while (zero := k == 0).any():
            k[zero] = rng.poisson(rate, int(zero.sum()))
        return k
    kmax = 40  # P(k > 40 | rate <= 1) < 1e-48
    ks = np.arange(1, kmax + 1)
    log_pmf = -rate + ks * math.log(rate) - np.array([math.lgamma(k + 1) for k in ks])
    cdf = np.cumsum(np.exp(log_pmf)) / -math.expm1(-rate)
    return np.minimum(np.searchsorted(cdf, rng.random(m), side="right") + 1, kmax)


def _inference_perf_poisson(rng: np.random.Generator, n: int, rate: float) -> np.ndarray:
    """First ``n`` arrivals of inference-perf's Poisson timer (one-second windows), seconds from 0.

    Only non-empty windows are drawn: their request counts are zero-truncated Poisson and the number of
    windows from one to the next is geometric, which is the same process without touching empty windows.
    """
    if n == 0:
        return np.zeros(0)
    p_busy = -math.expm1(-rate)  # P(window not empty)
    windows, counts = [], []
    total, last = 0, -1
    while total < n:
        m = int(1.1 * (n - total) * p_busy / rate) + 16
        k = _zero_truncated_poisson(rng, m, rate)
        w = last + np.cumsum(rng.geometric(p_busy, m))
        windows.append(w)
        counts.append(k)
        total += int(k.sum())
        last = int(w[-1])
    k = np.concatenate(counts)
    keep = int(np.searchsorted(np.cumsum(k), n)) + 1  # windows up to the one holding the n-th arrival
    k, w = k[:keep], np.concatenate(windows)[:keep]
    owner = np.repeat(np.arange(keep), k)
    gaps = rng.exponential(1.0, len(owner))
    cum = np.cumsum(gaps)
    window_total = np.bincount(owner, weights=gaps, minlength=keep)
    before = np.concatenate([[0.0], np.cumsum(window_total)[:-1]])
    t = w[owner] + (cum - before[owner]) / window_total[owner]
    return t[:n]


def arrivals_count(process: str, rng: np.random.Generator, n: int, rate: float, cv: float) -> np.ndarray:
    """``n`` arrival times (seconds, sorted) at ``rate`` requests/s without stages."""
    if n <= 0:
        return np.zeros(0)
    if process in RENEWAL_PROCESSES:
        return np.concatenate([[0.0], np.cumsum(renewal_gaps(process, rng, n - 1, rate, cv))])
    if process == "inference-perf-constant":
        return _normalized_exponential(rng, n, n / rate)
    if process == "inference-perf-poisson":
        return _inference_perf_poisson(rng, n, rate)
    raise ValueError(f"arrival: unknown process {process!r}; known: {', '.join(ARRIVAL_PROCESSES)}")


def arrivals_window(
    process: str, rng: np.random.Generator, rate: float, duration: float, cv: float
) -> np.ndarray:
    """Arrival times (seconds from the stage start, sorted) of one stage: ``rate`` for ``duration`` s."""
    if process == "constant":
        # count from the exact rate, so truncating the interval to whole microseconds adds no request
        n = math.ceil(rate * duration - 1e-9)
        return np.arange(n) * constant_interval_s(rate)
    if process in RENEWAL_PROCESSES:
        expected = rate * duration
        chunk = int(expected + 6.0 * math.sqrt(expected) * max(cv, 1.0)) + 16
        t = np.zeros(1)
        while t[-1] < duration:
            t = np.concatenate([t, t[-1] + np.cumsum(renewal_gaps(process, rng, chunk, rate, cv))])
        return t[t < duration]
    n = int(rate * duration)
    if n == 0:
        return np.zeros(0)
    if process == "inference-perf-constant":
        return _normalized_exponential(rng, n, duration)
    if process == "inference-perf-poisson":
        return _inference_perf_poisson(rng, n, rate)
    raise ValueError(f"arrival: unknown process {process!r}; known: {', '.join(ARRIVAL_PROCESSES)}")


def staged_arrivals(
    process: str,
    rng: np.random.Generator,
    stages: list[tuple[float, float]],
    gap_s: float,
    cv: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Arrivals of consecutive stages ``[(rate req/s, duration s), ...]`` separated by ``gap_s`` seconds idle.

    A stage starts ``gap_s`` after the end of the previous one (its nominal end, or its last arrival if that
    came later). Returns (times in seconds, sorted; stage index of each request).
    """
    times, stage_of = [], []
    start = 0.0
    for k, (rate, duration) in enumerate(stages):
        t = start + arrivals_window(process, rng, rate, duration, cv)
        times.append(t)
        stage_of.append(np.full(len(t), k, dtype=np.int64))
        end = start + duration
        if len(t):
            end = max(end, float(t[-1]))
        start = end + gap_s
    if not times:
        return np.zeros(0), np.zeros(0, dtype=np.int64)
    return np.concatenate(times), np.concatenate(stage_of)
