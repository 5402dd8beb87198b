"""Per-request times rebuilt from the step timeline, and summary statistics (vectorised numpy).

A request emits one token at the end of each step of its token segments; the client sees token j
(1-based) ``j * a2`` microseconds later (the latency model's output-token processing time). So:
TTFT = end(first step) + a2 - arrival; E2E = end(finish step) + O * a2 - arrival;
TPOT = (E2E - TTFT) / (O - 1); ITL = every gap between consecutive tokens, pooled over requests.
"""

from __future__ import annotations

import math

import numpy as np

PERCENTILES = (50, 90, 95, 99)
DENSE_RANGE = 50_000_000  # ITL: distinct step durations summed in a dense array up to this range (us)


def percentiles(values: np.ndarray, ps=PERCENTILES) -> list[float]:
    """Percentiles with linear interpolation (numpy's default); NaN for no data.

    The numbers ``np.percentile(values, ps)`` gives, by numpy's own arithmetic step for step (the indexes
    ``(n - 1) * p / 100``, the last value beyond the last index, its two-sided interpolation, NaN when the data
    has one), without np.percentile itself: numpy 2 imports numpy.ma inside it, ~7 ms of a small CLI run."""
    values = np.asarray(values)
    n = len(values)
    if n == 0:
        return [float("nan")] * len(ps)
    if values.dtype.kind in "fc" and np.isnan(values).any():
        return [float("nan")] * len(ps)
    at = [(n - 1) * (p / 100) for p in ps]  # virtual indexes into the sorted data
    lo = [math.floor(x) if x < n - 1 else -1 for x in at]  # the neighbours: -1 = the last value
    hi = [i + 1 if i >= 0 else -1 for i in lo]
    part = np.partition(values, sorted({i % n for i in lo + hi}))
    out = []
    for x, i, j in zip(at, lo, hi):
        a, b = part[i], part[j]
        t = x - i  # numpy's weight, from the neighbour's index (-1 included)
        d = b - a
        out.append(float(b - d * (1 - t) if t >= 0.5 else a + d * t))
    return out


def median(values: np.ndarray) -> float:
    """``np.median`` of a 1-D float array, by its arithmetic (the middle value, or the mean of the two middle
    ones; NaN when the data has one), without its numpy.ma import (see `percentiles`)."""
    values = np.asarray(values, dtype=np.float64)
    n = len(values)
    if n == 0:
        return float("nan")
    k = n // 2
    part = np.partition(values, [k - 1, k, n - 1] if n % 2 == 0 else [k, n - 1])
    if np.isnan(part[-1]):
        return float("nan")
    return float((part[k - 1] + part[k]) / 2.0 if n % 2 == 0 else part[k])


def weighted_percentiles(values: np.ndarray, counts: np.ndarray, ps=PERCENTILES) -> list[float]:
    """Percentiles with linear interpolation of the sample where ``values[i]`` occurs ``counts[i]`` times,
    without expanding it (the same numbers ``np.percentile(np.repeat(values, counts), ps)`` gives)."""
    keep = counts > 0
    values, counts = values[keep], counts[keep]
    n = int(counts.sum())
    if n == 0:
        return [float("nan")] * len(ps)
    order = np.argsort(values, kind="stable")
    values, counts = values[order], counts[order]
    cum = np.cumsum(counts)
    out = []
    for p in ps:
        pos = p / 100.0 * (n - 1)
        lo = int(np.floor(pos))
        hi = min(lo + 1, n - 1)
        v_lo = values[np.searchsorted(cum, lo, side="right")]
        v_hi = values[np.searchsorted(cum, hi, side="right")]
        out.append(float(v_lo + (v_hi - v_lo) * (pos - lo)))
    return out


def stats(prefix: str, values: np.ndarray, counts: np.ndarray | None = None) -> dict[str, float]:
    """``{prefix}_mean_ms`` and ``{prefix}_p50_ms`` ... from values in microseconds."""
    if counts is None:
        n = len(values)
        mean = float(values.mean()) if n else float("nan")
        pct = percentiles(values)
    else:
        n = int(counts.sum())
        mean = float((values * counts).sum() / n) if n else float("nan")
        pct = weighted_percentiles(values, counts)
    out = {f"{prefix}_mean_ms": mean / 1000.0}
    for p, v in zip(PERCENTILES, pct):
        out[f"{prefix}_p{p}_ms"] = v / 1000.0
    return out


def global_steps(instance: np.ndarray, local: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Index into the concatenated step arrays; -1 stays -1."""
    g = offsets[np.maximum(instance, 0)] + local
    return np.where((local >= 0) & (instance >= 0), g, -1)


def itl_samples(step_end: np.ndarray, seg_instance: np.ndarray, seg_req: np.ndarray, seg_start: np.ndarray,
                seg_end: np.ndarray, offsets: np.ndarray, a2_us: float) -> tuple[np.ndarray, np.ndarray]:
    """Inter-token gaps (us) with their multiplicities, from token segments (local step indices).

    Inside a segment a request emits in consecutive steps, so step k contributes the gap
    ``end[k] - end[k-1]`` once per segment spanning (k-1, k]; consecutive segments of one request (after a
    skip or a preemption) add one irregular gap each.
    """
    total = len(step_end)
    if len(seg_req) == 0 or total == 0:
        return np.zeros(0), np.zeros(0, dtype=np.int64)
    gs = offsets[seg_instance] + seg_start
    ge = offsets[seg_instance] + seg_end
    diff = np.zeros(total + 1, dtype=np.int64)
    np.add.at(diff, gs + 1, 1)
    np.add.at(diff, ge + 1, -1)
    weight = np.cumsum(diff)[:total]
    gaps = np.empty(total, dtype=np.float64)
    gaps[0] = 0.0
    gaps[1:] = np.diff(step_end)
    weight[0] = 0
    # irregular gaps between consecutive segments of the same request
    order = np.lexsort((gs, seg_req))
    r, s, e = seg_req[order], gs[order], ge[order]
    same = r[1:] == r[:-1]
    irregular = (step_end[s[1:][same]] - step_end[e[:-1][same]]).astype(np.float64)
    values = np.concatenate([gaps, irregular]) + a2_us
    counts = np.concatenate([weight, np.ones(len(irregular), dtype=np.int64)])
    return values, counts


def itl_samples_runs(ends: np.ndarray, durations: np.ndarray, record_first: np.ndarray, record_count: np.ndarray,
                     gs: np.ndarray, ge: np.ndarray, seg_req: np.ndarray,
                     a2_us: float) -> tuple[np.ndarray, np.ndarray]:
    """`itl_samples` read from run-length step records (issue #17), with equal gaps merged: the same sample.

    ``gs``/``ge``: global first and last step of each token segment. Step k contributes its gap once per
    segment with ``gs < k <= ge``. A record's first step has its own gap; its later steps (a decode-only
    stretch: back to back, no segment starts or ends inside) each contribute their duration, all with the
    weight of the record's second step, so they are summed per distinct duration instead of per step.
    """
    total = len(ends)
    if len(seg_req) == 0 or total == 0:
        return np.zeros(0), np.zeros(0, dtype=np.int64)
    gs_sorted = np.sort(gs)
    ge_sorted = np.sort(ge)

    def weight(k: np.ndarray) -> np.ndarray:  # segments with gs < k <= ge
        return np.searchsorted(gs_sorted, k) - np.searchsorted(ge_sorted, k)

    b = record_first
    gap_b = np.zeros(len(b), dtype=np.float64)
    later = b > 0
    gap_b[later] = (ends[b[later]] - ends[b[later] - 1]).astype(np.float64)
    w_b = weight(b)
    inner_values, inner_counts = _inner_gaps(durations, record_first, record_count, weight)
    # irregular gaps between consecutive segments of the same request
    order = np.lexsort((gs, seg_req))
    r, s, e = seg_req[order], gs[order], ge[order]
    same = r[1:] == r[:-1]
    irregular = (ends[s[1:][same]] - ends[e[:-1][same]]).astype(np.float64)
    values = np.concatenate([gap_b, inner_values, irregular]) + a2_us
    counts = np.concatenate([w_b, inner_counts, np.ones(len(irregular), dtype=np.int64)])
    return values, counts


def _inner_gaps(durations: np.ndarray, record_first: np.ndarray, record_count: np.ndarray, weight,
                chunk: int = 1 << 20) -> tuple[np.ndarray, np.ndarray]:
    """Distinct durations of the records' later steps with their summed weights, in chunks of steps (so the
    memory is bounded whatever the run's length). Counts are integer sums: exact in any order."""
    long = record_count > 1
    if not long.any():
        return np.zeros(0), np.zeros(0, dtype=np.int64)
    w_rec = np.where(long, weight(record_first + 1), 0)  # a later step's weight: the record's second step's
    lo, hi = int(durations.min()), int(durations.max())
    dense = hi - lo <= DENSE_RANGE
    summed = np.zeros(hi - lo + 1) if dense else None
    parts: list[tuple[np.ndarray, np.ndarray]] = []
    for a in range(0, len(durations), chunk):
        idx = np.arange(a, min(a + chunk, len(durations)))
        rec = np.searchsorted(record_first, idx, side="right") - 1
        inner = idx != record_first[rec]
        d = durations[a:a + len(idx)][inner].astype(np.int64) - lo
        w = w_rec[rec[inner]]
        if dense:
            summed += np.bincount(d, weights=w, minlength=len(summed))
        else:
            u, where = np.unique(d, return_inverse=True)
            parts.append((u, np.bincount(where, weights=w, minlength=len(u))))
    if not dense:
        u, where = np.unique(np.concatenate([p[0] for p in parts]), return_inverse=True)
        summed_u = np.bincount(where, weights=np.concatenate([p[1] for p in parts]), minlength=len(u))
        keep = summed_u > 0
        return (u[keep] + lo).astype(np.float64), summed_u[keep].astype(np.int64)
    present = np.flatnonzero(summed)
    return (present + lo).astype(np.float64), summed[present].astype(np.int64)
