"""Is the simulated server overloaded (a queue that grows through the run)? The rule, precisely:

Requests are ordered by arrival; with N >= 8 requests, F is the first quarter and L the last quarter of them.
A request's *wait* is the time from its arrival to its first scheduling in a batch (seconds; a request never
scheduled by the end of the simulation waits until then). The run is **overloaded** when

    median wait of L >= 1 s   and   median wait of L >= 2 x median wait of F + 0.5 s

i.e. requests arriving late wait far longer than the early ones, which a server keeping up with its
arrivals does not do (its wait does not trend), however short the run. The rates reported with it:

- ``arrival_rate_rps`` = (N - 1) / (last arrival - first arrival);
- ``sustained_rate_rps`` = requests finished between the first and the last arrival / that span: what the
  server completed per second while requests kept coming (in an overloaded run, its throughput).

Fewer than 8 requests, or all arriving at once, are never called overloaded (nothing to trend).
"""

from __future__ import annotations

import numpy as np

from blis.metrics import median

MIN_REQUESTS = 8
MIN_LAST_WAIT_S = 1.0
GROWTH_FACTOR = 2.0
GROWTH_SLACK_S = 0.5


def detect(arrival_us: np.ndarray, scheduled_us: np.ndarray, finish_us: np.ndarray, end_us: float) -> dict:
    """``{overloaded, arrival_rate_rps, sustained_rate_rps}`` for one simulation (times in microseconds; NaN
    = never happened; ``end_us`` = when the simulation stopped)."""
    a = np.asarray(arrival_us, dtype=np.float64)
    n = len(a)
    span_s = (float(a.max()) - float(a.min())) / 1e6 if n else 0.0
    if n < 2 or span_s <= 0:
        return {"overloaded": False, "arrival_rate_rps": None, "sustained_rate_rps": None}
    order = np.argsort(a, kind="stable")
    s = np.asarray(scheduled_us, dtype=np.float64)[order]
    a_sorted = a[order]
    wait_s = (np.where(np.isnan(s), max(float(end_us), float(a.max())), s) - a_sorted) / 1e6
    f = np.asarray(finish_us, dtype=np.float64)
    done_in_span = int(np.sum((f >= a.min()) & (f <= a.max())))
    out = {
        "overloaded": False,
        "arrival_rate_rps": (n - 1) / span_s,
        "sustained_rate_rps": done_in_span / span_s,
    }
    if n >= MIN_REQUESTS:
        q = n // 4
        first, last = median(wait_s[:q]), median(wait_s[-q:])
        out["overloaded"] = bool(last >= MIN_LAST_WAIT_S and last >= GROWTH_FACTOR * first + GROWTH_SLACK_S)
    return out
