"""Routing policies: which instance serves a request. Registries keyed by name (policies and scorers).

A router picks among its candidate instances (all instances, or one stage of a disaggregated cluster)
when a request arrives. It sees instance state through `Signals`: the waiting queue, running batch and KV
utilisation as of the last snapshot (refreshed every ``snapshot_refresh_ms``, as real routers scrape
metrics), plus the in-flight counts the router itself keeps (requests routed but not yet in the instance's
queue), which are always fresh. Prefix affinity probes the instances' prefix caches directly
(`Instance.prefix_hit_blocks`; real routers follow them through KV-cache events, near real time). Ties go to
the lowest instance index. Routers read instances only through `blis.engine`'s read-only surface.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import add, attrgetter
from typing import Protocol

from blis.engine import LoadProbe
from blis.errors import BlisInputError


class Signals:
    """Router-visible state of ``instances`` (lists indexed like ``instances``).

    waiting, running: requests in each instance's WAITING queue / running batch at the last refresh;
    kv_utilization: fraction of KV blocks in use at the last refresh. ``fresh``: refreshed before every
    routing decision (``snapshot_refresh_ms`` = 0)."""

    __slots__ = ("fresh", "instances", "kv_utilization", "probe", "refreshed_at_us", "running", "version",
                 "waiting")

    def __init__(self, instances: list, fresh: bool) -> None:
        self.instances = instances
        self.probe = LoadProbe(instances)
        self.fresh = fresh
        n = len(instances)
        self.waiting = [0] * n
        self.running = [0] * n
        self.kv_utilization = [0.0] * n
        self.refreshed_at_us = 0
        self.version = 0  # bumped by every refresh

    def refresh(self, now_us: int = 0) -> None:
        probe = self.probe  # new lists each refresh: readers look the attributes up per decision
        self.waiting = probe.waiting()
        self.running = probe.running()
        self.kv_utilization = probe.kv_utilization()
        self.refreshed_at_us = now_us
        self.version += 1


_in_flight = attrgetter("in_flight")


class Router(Protocol):
    """Chooses the position (in its candidate list) of the instance that serves request ``idx``."""

    name: str
    static: bool  # the choice never depends on instance state (decided up front, no routing events)

    def choose(self, idx: int) -> int: ...


# ------------------------------------------------------------------------------------------------ policies
class RoundRobin:
    name = "round-robin"
    static = True

    def __init__(self, candidates: list, signals: Signals, config=None) -> None:
        self.n = len(candidates)
        self.next = 0

    def choose(self, idx: int) -> int:
        i = self.next
        self.next = i + 1 if i + 1 < self.n else 0
        return i

    def assign(self, count: int) -> list[int]:
        """Positions for ``count`` requests in a row (static routing)."""
        start = self.next
        self.next = (start + count) % self.n
        return [(start + k) % self.n for k in range(count)]


class LeastLoaded:
    """Fewest requests waiting + running + in flight (routed, not yet in the instance's queue)."""

    name = "least-loaded"
    static = False

    def __init__(self, candidates: list, signals: Signals, config=None) -> None:
        self.instances = candidates
        self.signals = signals
        self._in_flight = attrgetter("in_flight")
        self._fresh_total = signals.probe.total if signals.fresh else None

    def loads(self) -> list[int]:
        """Load of every candidate as the router sees it now."""
        if self._fresh_total is not None:
            return self._fresh_total()
        sig = self.signals
        return list(map(add, map(add, sig.waiting, sig.running), map(self._in_flight, self.instances)))

    def choose(self, idx: int) -> int:
        loads = self.loads()
        return loads.index(min(loads))  # first minimum: lowest index wins ties


class Weighted:
    """Highest weighted sum of scorer values (each in [0, 1], higher is better)."""

    name = "weighted"
    static = False

    def __init__(self, candidates: list, signals: Signals, config=None) -> None:
        from blis.cluster.config import DEFAULT_SCORERS, parse_scorers

        pairs = getattr(config, "routing_scorers", None) or parse_scorers(DEFAULT_SCORERS)
        self.instances = candidates
        self.signals = signals
        self.scorer_names = [name for name, _ in pairs]
        used = [(name, float(w)) for name, w in pairs if w > 0]
        # scorers that read only the snapshot are summed once per refresh; queue depth is computed inline
        self._snapshot_scorers = [(_SCORERS[n], w) for n, w in used if n in _SNAPSHOT_ONLY]
        self._queue_weight = sum(w for n, w in used if n == "queue-depth" and _SCORERS[n] is queue_depth_score)
        self._request_scorers = [(_SCORERS[n], w) for n, w in used
                                 if n not in _SNAPSHOT_ONLY and _SCORERS[n] is not queue_depth_score]
        self._static: list[float] = [0.0] * len(candidates)
        self._static_version = -1

    def _snapshot_part(self) -> list[float]:
        sig = self.signals
        if self._static_version != sig.version:
            total = [0.0] * len(self.instances)
            for scorer, w in self._snapshot_scorers:
                values = scorer(-1, self.instances, sig)
                if values is not None:
                    total = [t + w * v for t, v in zip(total, values)]
            self._static = total
            self._static_version = sig.version
        return self._static

    def scores(self, idx: int) -> list[float]:
        """Weighted total of every candidate for request ``idx``."""
        sig = self.signals
        if sig.fresh:
            sig.refresh()
        total = self._snapshot_part()
        qw = self._queue_weight
        if qw:  # queue_depth_score, weighted, in one pass
            q = list(map(add, sig.waiting, map(_in_flight, self.instances)))
            lo, hi = min(q), max(q)
            if hi != lo:
                f = qw / (hi - lo)
                total = [t + (hi - x) * f for t, x in zip(total, q)]
        for scorer, w in self._request_scorers:
            values = scorer(idx, self.instances, sig)
            if values is None:  # no information: the same for every candidate
                continue
            total = [t + w * v for t, v in zip(total, values)]
        return total

    def choose(self, idx: int) -> int:
        total = self.scores(idx)
        return total.index(max(total))  # first maximum: lowest index wins ties


# ------------------------------------------------------------------------------------------------- scorers
Scorer = Callable[[int, list, Signals], "list[float] | None"]


def queue_depth_score(idx: int, instances: list, sig: Signals) -> list[float] | None:
    """Requests waiting (snapshot) + in flight (fresh), min-max normalised: 1 = shortest queue."""
    q = list(map(add, sig.waiting, map(_in_flight, instances)))
    lo, hi = min(q), max(q)
    if hi == lo:
        return None
    span = hi - lo
    return [(hi - x) / span for x in q]


def kv_utilization_score(idx: int, instances: list, sig: Signals) -> list[float] | None:
    """1 - fraction of KV blocks in use (snapshot)."""
    return [1.0 - u for u in sig.kv_utilization]


def prefix_affinity_score(idx: int, instances: list, sig: Signals) -> list[float] | None:
    """Fraction of the request's full prompt blocks each instance holds in its prefix cache."""
    hits = sig.probe.prefix_hit_blocks(idx)
    if not any(hits):  # no information: the same for every candidate
        return None
    out = []
    for c, h in zip(instances, hits):
        n = c.num_prompt_blocks(idx)
        out.append(h / n if n else 0.0)
    return out


_SCORERS: dict[str, Scorer] = {
    "queue-depth": queue_depth_score,
    "kv-utilization": kv_utilization_score,
    "prefix-affinity": prefix_affinity_score,
}

# scorers whose values depend only on the snapshot (not on the request or the in-flight counts)
_SNAPSHOT_ONLY = {"kv-utilization"}

_ROUTERS: dict[str, Callable[..., Router]] = {
    "round-robin": RoundRobin,
    "least-loaded": LeastLoaded,
    "weighted": Weighted,
}


def available_routers() -> list[str]:
    return sorted(_ROUTERS)


def available_scorers() -> list[str]:
    return sorted(_SCORERS)


def register_router(name: str, factory: Callable[..., Router]) -> None:
    """Make ``factory(candidates, signals, cluster_config) -> Router`` available as ``--routing name``."""
    _ROUTERS[name] = factory


def register_scorer(name: str, scorer: Scorer, snapshot_only: bool = False) -> None:
    """Make ``scorer(idx, instances, signals) -> list[float] in [0, 1] | None`` usable in weighted routing.
    ``snapshot_only``: its values depend only on the signals' snapshot (computed once per refresh)."""
    _SCORERS[name] = scorer
    if snapshot_only:
        _SNAPSHOT_ONLY.add(name)


def create_router(name: str, candidates: list, signals: Signals, config=None) -> Router:
    if name not in _ROUTERS:
        raise BlisInputError(f"routing: unknown policy {name!r}; available: {', '.join(available_routers())}")
    return _ROUTERS[name](candidates, signals, config)
