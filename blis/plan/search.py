"""The searches, written as generators: each yields a batch of `ProbeTask`s and is sent back their results
(in task order), so the same code runs serially, on a process pool or on Ray, with the same answers.

Per candidate (`candidate_search`):
1. capacity: all requests at once gives the completed requests/s at full batches, mu; a rate above 1.1 mu
   is taken as unstable without probing;
2. bracket: start at the neighbour's answer scaled by the capacity ratio (the next-smaller TP of the same
   chain), else at 0.6 mu; step by x1.15 (with a neighbour) or x2 until one rate passes and one fails;
   (a candidate failing even at capacity / 64 is infeasible: max rate 0);
3. bisection on the geometric mean until hi/lo <= 1 + rate_tolerance; the answer is the largest rate that
   passed (`max_rate_per_instance`);
4. with a target rate R: replicas n = ceil(R / answer), checked by simulating n units behind the router at R,
   then n - 1, ... while it passes, or n + 1, ... until it passes.
A probe runs its first seed alone, stops there when clearly failing or clearly fine, else runs the remaining
seeds together (`blis.plan.stability`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Generator, Optional

from blis.plan.probe import Load, ProbeTask
from blis.plan.spec import SLO, Candidate, SearchSettings
from blis.plan.stability import Verdict, clear_after_first, pool

Search = Generator[list, list, object]
CAPACITY_MARGIN = 1.1
FLOOR_FRACTION = 64.0  # a candidate meeting the SLOs only below capacity / 64 is reported infeasible (rate 0)
PROBE_E2E = 8.0  # probes last at least this many full-batch request latencies (warm-up 2 + window >= 4)


@dataclass
class Context:
    """What every search of one plan shares."""

    base: dict
    load: Load
    slo: SLO
    settings: SearchSettings
    target_rate: Optional[float]  # requests/s to serve (question 2), None for question 1
    fixed_load: bool = False  # question 2 at the workload's own load (trace, stages, closed loop)
    seconds: dict = field(default_factory=dict)  # candidate -> probe length from its capacity probe, s


@dataclass
class Outcome:
    """A candidate's answer."""

    candidate: Candidate
    capacity: Optional[float] = None
    max_rate: Optional[float] = None  # requests/s per unit; 0 when even the smallest load fails
    at_max: Optional[Verdict] = None
    replicas: Optional[int] = None
    at_target: Optional[Verdict] = None
    probes: int = 0
    trail: list = field(default_factory=list)  # (units, rate, ok, early) of every probe, in order


def probe(ctx: Context, out: Outcome, rate: Optional[float], units: int = 1) -> Search:
    """One probe (seed-staged); returns its Verdict."""
    seeds = ctx.load.seeds(ctx.settings)

    def task(seed: int) -> ProbeTask:
        return ProbeTask(out.candidate, ctx.base, ctx.load, ctx.slo, ctx.settings, rate, seed, units,
                         seconds=ctx.seconds.get(out.candidate, 0.0))

    first = (yield [task(seeds[0])])[0]
    stats = [first]
    clear = clear_after_first(first, ctx.slo) if len(seeds) > 1 else None
    if clear is None and len(seeds) > 1:
        stats += (yield [task(s) for s in seeds[1:]])
    verdict = pool(stats, ctx.slo, rate if rate is not None else float("nan"))
    if clear is not None:
        verdict.early = True
        verdict.ok = clear
    out.probes += 1
    out.trail.append((units, rate, verdict.ok, verdict.early))
    return verdict


def max_rate_search(ctx: Context, out: Outcome, hint_fraction: Optional[float]) -> Search:
    """Largest rate per unit that passes (bisection); sets out.max_rate and out.at_max. ``hint_fraction``:
    a neighbour's answer as a fraction of its capacity, where this search starts."""
    s = ctx.settings
    cap_task = ProbeTask(out.candidate, ctx.base, ctx.load, ctx.slo, s, None, s.seed, 1, capacity=True)
    mu, e2e_s = (yield [cap_task])[0]
    out.capacity = mu
    ctx.seconds[out.candidate] = PROBE_E2E * e2e_s
    ceiling = min(CAPACITY_MARGIN * mu, s.max_rate)
    step = 1.15 if hint_fraction else 2.0
    start = min((hint_fraction or 0.6) * mu, ceiling / 1.02)
    start = max(start, s.min_rate)
    verdicts: dict[float, Verdict] = {}

    def check(rate: float) -> Search:
        rate = _round_rate(rate)
        if rate not in verdicts:
            verdicts[rate] = yield from probe(ctx, out, rate)
        return verdicts[rate]

    v = yield from check(start)
    lo = hi = None
    if v.ok:
        lo = _round_rate(start)
        while True:
            nxt = lo * step
            if nxt >= ceiling:
                hi = ceiling
                break
            v = yield from check(nxt)
            if v.ok:
                lo = _round_rate(nxt)
            else:
                hi = _round_rate(nxt)
                break
    else:
        hi = _round_rate(start)
        while True:
            nxt = hi / step
            if nxt < max(s.min_rate, mu / FLOOR_FRACTION):
                out.max_rate = 0.0
                return
            v = yield from check(nxt)
            if v.ok:
                lo = _round_rate(nxt)
                break
            hi = _round_rate(nxt)
    while hi / lo > 1.0 + s.rate_tolerance:
        mid = _round_rate(math.sqrt(lo * hi))
        if mid <= lo or mid >= hi:
            break
        v = yield from check(mid)
        if v.ok:
            lo = mid
        else:
            hi = mid
    out.max_rate = lo
    out.at_max = verdicts[lo]


def replicas_search(ctx: Context, out: Outcome) -> Search:
    """Fewest units serving the target load (rate or the workload's own); sets out.replicas and out.at_target."""
    rate = ctx.target_rate
    per_unit = out.max_rate
    verdicts: dict[int, Verdict] = {}

    def check(n: int) -> Search:
        if n not in verdicts:
            verdicts[n] = yield from probe(ctx, out, None if ctx.fixed_load else rate, units=n)
        return verdicts[n]

    if per_unit == 0.0:
        return  # even the smallest load fails on one unit: more units will not fix the latency
    if not (per_unit and rate):  # no rate per unit known (closed loop): double, then bisect
        lo, hi = 0, 1
        while not (yield from check(hi)).ok:
            lo, hi = hi, 2 * hi
            if hi > 64:
                return
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if (yield from check(mid)).ok:
                hi = mid
            else:
                lo = mid
        out.replicas = hi
        out.at_target = verdicts[hi]
        return
    n = max(1, math.ceil(rate / per_unit))
    limit = 2 * n + 2
    v = yield from check(n)
    if v.ok:
        while n > 1:
            v = yield from check(n - 1)
            if not v.ok:
                break
            n -= 1
    else:
        while not v.ok:
            n += 1
            if n > limit:
                return
            v = yield from check(n)
    out.replicas = n
    out.at_target = verdicts[n]


def candidate_search(ctx: Context, cand: Candidate, hint_fraction: Optional[float]) -> Search:
    """One candidate's answer: its max rate per unit (when the load can be scaled), then, with a target load,
    its replicas."""
    out = Outcome(cand)
    if ctx.load.scalable or ctx.load.native_rate is not None:
        yield from max_rate_search(ctx, out, hint_fraction)
    if ctx.target_rate is not None or ctx.fixed_load:
        yield from replicas_search(ctx, out)
    return out


def chain_search(ctx: Context, chain: list[Candidate], done) -> Search:
    """Candidates differing only in TP (ascending): each starts from the previous one's answer as a fraction
    of its capacity. ``done(outcome)`` is called as each finishes; returns the outcomes in chain order."""
    outcomes = []
    hint = None
    for cand in chain:
        out = yield from candidate_search(ctx, cand, hint if ctx.settings.reuse_brackets else None)
        outcomes.append(out)
        done(out)
        hint = out.max_rate / out.capacity if out.max_rate and out.capacity else None
    return outcomes


def _round_rate(rate: float) -> float:
    """Rates on a 4-significant-digit grid, so that repeated rates hit the cache and answers print cleanly."""
    if rate <= 0:
        return rate
    digits = 3 - int(math.floor(math.log10(rate)))
    return round(rate, digits)
