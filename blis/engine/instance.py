"""A serving instance: one event per engine step (or decode-only stretch), on SimPy or on its own clock.

Requests reach the instance at their *enter* time (arrival plus the API server's queueing delay) and join
the scheduler's WAITING queue at the next ``schedule()`` (a step already running finishes first, as in
vLLM's busy loop). The instance then loops: schedule, ask the latency model for the step's duration,
sleep that long, apply the step's outcome.

What the rest of blis may read is the read-only surface: `load()`, `prefix_hit_blocks()`, `cache_stats()`,
the step log ``steps``, the counters ``num_routed``/``in_flight`` and ``num_kv_blocks``; what it may do is
feed requests (`assign_all`, `push`, `close`). The scheduler and its block pool stay inside the engine.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left
from dataclasses import dataclass
from itertools import accumulate
from operator import add, attrgetter
from typing import Callable, Literal, Optional

import simpy

from blis.config import EngineConfig
from blis.engine.block_keys import BlockKeys
from blis.engine.scheduler import Scheduler
from blis.engine.timeline import RequestLog, StepLog
from blis.latency.base import LatencyModel, StepBatch

Role = Literal["mixed", "prefill", "decode"]
_NEVER = float("inf")
ROLES = ("mixed", "prefill", "decode")


@dataclass(frozen=True, slots=True)
class InstanceLoad:
    """What an instance holds at one moment (requests; KV blocks)."""

    waiting: int  # in the scheduler's WAITING queue
    running: int  # in the running batch
    in_flight: int  # routed here, still in the API server (not yet WAITING)
    kv_blocks_used: int
    kv_blocks_total: int

    @property
    def kv_utilization(self) -> float:
        return self.kv_blocks_used / self.kv_blocks_total


@dataclass(frozen=True, slots=True)
class CacheStats:
    """Prefix-cache counters of one instance, in blocks: looked up (``queries``) and served (``hits``)."""

    hits: int
    queries: int

    @property
    def hit_rate(self) -> float:
        return self.hits / self.queries if self.queries else 0.0


class Instance:
    """One vLLM-V1 engine on the shared SimPy environment.

    ``role``: "mixed" serves whole requests; "prefill" (P/D) computes each prompt and one output token;
    "decode" (P/D) receives each request with the KV of all but its last prompt token already computed
    elsewhere. ``enter_us``: per request, when it would enter this instance's WAITING queue if routed at its
    arrival (arrival plus the API server's delay), microseconds.
    """

    def __init__(self, env: simpy.Environment, index: int, engine: EngineConfig, num_blocks: int,
                 model: LatencyModel, block_keys: BlockKeys, log: RequestLog, input_tokens: list,
                 output_tokens: list, enter_us: list, role: Role = "mixed",
                 on_finish: Optional[Callable[[int], None]] = None) -> None:
        """``on_finish(idx)`` (optional) is called when request ``idx`` is done here: at the end of the step
        that emitted its last token, or when the instance refuses it at entry (prompt >= max_model_len)."""
        if role not in ROLES:
            raise ValueError(f"role: {role!r} is not one of {', '.join(ROLES)}")
        self.env = env
        self.index = index
        self.role = role
        self.engine = engine
        self.model = model
        self.log = log
        self.steps = StepLog()
        self.scheduler = Scheduler(engine, num_blocks, block_keys, log, input_tokens, output_tokens,
                                   kv_preloaded=role == "decode", prefill_only=role == "prefill")
        self._pool = self.scheduler.pool
        self._keys = block_keys
        self.on_finish = on_finish
        self._input = input_tokens
        self._enter_us = enter_us
        self._max_len = engine.max_model_len
        self._pending: list[tuple[int, int]] = []  # heap of (enter_us, request index)
        self._bulk: list[int] = []  # requests given up front, in enter order
        self._bulk_pos = 0
        self._due = _NEVER  # the earliest enter time not yet admitted (us): no admission work before it
        self._wake: Optional[simpy.Event] = None
        self._closed = False  # no more requests will be pushed
        self.num_routed = 0
        self.in_flight = 0  # routed here but not yet entered (still in the API server)
        # decode-only stretches advance in one event (issue #17) once no more requests can be routed here;
        # ``horizon_us`` (the run's end, set by the run path) keeps a stretch from logging steps past it
        self.horizon_us: Optional[int] = None
        self._stretch_us = None  # prices a stretch's steps (`_stretch_pricer`, chosen on the first stretch)
        self._stretch_last = 0  # the last stretch's last step (us)
        self.wait_until: Optional[int] = None  # while idle and open: when the next routed request enters
        self._solo = None  # the step generator when the instance runs on its own clock (`advance`)
        self._solo_next: Optional[int] = None  # the duration it yielded last, not yet slept
        self.solo_done = False
        # True when every request routed here is pushed before the run or by this instance's own completion
        # hook (a closed loop of users on one instance): nothing can arrive during a step, so decode
        # stretches and `advance` apply as to a closed instance
        self.self_fed = False
        self.now_us = 0  # the simulated time at the instance's last event (us)
        # kept by a cluster whose router reads instances only at known times (arrivals, snapshot ticks): the
        # next such time (us; inf when none is left). An open instance advances decode stretches whose steps
        # all start before it (nothing can look at or feed it while its state differs from one event per
        # step); -inf, the default, means anyone may at any time: no stretch while open
        self.quiet_us: float = -_NEVER
        self._sched_us = int(model.scheduling_processing_time_us())
        self._preempt_us = int(model.preemption_processing_time_us())
        self.process = env.process(self._run())

    @property
    def on_finish(self) -> Optional[Callable[[int], None]]:
        """Completion hook: called with a request's index when it is done here (see ``__init__``)."""
        return self.scheduler.on_finish

    @on_finish.setter
    def on_finish(self, fn: Optional[Callable[[int], None]]) -> None:
        self.scheduler.on_finish = fn

    # ------------------------------------------------------------- feeding
    def assign_all(self, order: list[int]) -> None:
        """Give the instance every request up front (single instance), ``order`` sorted by enter time."""
        self._bulk = order
        self._bulk_pos = 0
        self._due = 0  # admit from the first step on
        self.num_routed += len(order)
        self.in_flight += len(order)
        self._closed = True

    def push(self, idx: int, enter_us: Optional[int] = None) -> None:
        """Route request ``idx`` here now (cluster router); it enters the WAITING queue at ``enter_us``
        (default: its precomputed enter time)."""
        t = self._enter_us[idx] if enter_us is None else enter_us
        heapq.heappush(self._pending, (t, idx))
        if t < self._due:
            self._due = t
        self.num_routed += 1
        self.in_flight += 1
        self.log.instance[idx] = self.index
        if self._wake is not None and not self._wake.triggered:
            self._wake.succeed()

    def close(self) -> None:
        """No more requests will be routed here."""
        self._closed = True
        if self._wake is not None and not self._wake.triggered:
            self._wake.succeed()

    def _admit_entered(self, now: int) -> None:
        """Move every request whose enter time is <= ``now`` into the scheduler's WAITING queue."""
        bulk = self._bulk
        pos = self._bulk_pos
        enter = self._enter_us
        n = len(bulk)
        while pos < n and enter[bulk[pos]] <= now:
            self._enter(bulk[pos])
            pos += 1
        self._bulk_pos = pos
        pending = self._pending
        while pending and pending[0][0] <= now:
            self._enter(heapq.heappop(pending)[1])
        nxt = self._next_enter()
        self._due = _NEVER if nxt is None else nxt

    def _enter(self, idx: int) -> None:
        self.in_flight -= 1
        if self._max_len is not None and self._input[idx] >= self._max_len:
            self.log.on_rejected(idx)  # vLLM refuses prompts of max_model_len tokens or more
            if self.on_finish is not None:
                self.on_finish(idx)
        else:
            self.scheduler.add_request(idx)

    def _next_enter(self) -> Optional[int]:
        t = None
        if self._bulk_pos < len(self._bulk):
            t = self._enter_us[self._bulk[self._bulk_pos]]
        if self._pending and (t is None or self._pending[0][0] < t):
            t = self._pending[0][0]
        return t

    # ---------------------------------------------------------------- loop
    def _run(self):
        """The SimPy process: sleeps each step of `_steps` on the shared environment, and waits for a push
        when the engine is idle and more requests may still be routed here."""
        env = self.env
        steps = self._steps(int(env.now))
        send = steps.send
        try:
            d = next(steps)
            while True:
                if d is None:
                    self._wake = wake = env.event()
                    nxt = self.wait_until
                    yield wake if nxt is None else env.any_of([env.timeout(nxt - int(env.now)), wake])
                    self._wake = None
                else:
                    yield env.timeout(d)
                d = send(int(env.now))
        except StopIteration:
            return

    def advance(self, until: float = float("inf")) -> bool:
        """Run this instance on its own clock, without SimPy, up to simulated time ``until`` (us): every step
        that ends before ``until`` is applied, as `env.run(until=...)` would. Only for an instance that
        nothing else interacts with while it runs: closed (`assign_all` or `close` first), no completion
        hook that feeds it. Returns whether work is left. The same steps, times and answers as the SimPy
        process; a static-routing cluster runs each of its instances this way, one after the other."""
        if self._solo is None:
            if not (self._closed or self.self_fed):
                raise RuntimeError(f"instance {self.index}: advance() needs a closed or self-fed instance")
            self.now_us = int(self.env.now)
            self._solo = self._steps(self.now_us)
            try:
                self._solo_next = next(self._solo)
            except StopIteration:
                self.solo_done = True
        if self.solo_done:
            return False
        now, d, send = self.now_us, self._solo_next, self._solo.send
        try:
            while now + d < until:  # (a closed instance never waits for a push: d is never None)
                now += d
                d = send(now)  # the loop keeps `now_us` itself
        except StopIteration:
            self.solo_done = True
        self._solo_next = d
        return not self.solo_done

    def _steps(self, now: int):
        """The engine loop, independent of any clock: admit what has entered, schedule a step (or a decode
        stretch), yield its duration (us) and receive the time after it, apply its outcome. When idle it
        yields the time until the next request enters, or None to wait for a push (until ``wait_until``,
        when that is not None)."""
        sched = self.scheduler
        model = self.model
        steps = self.steps
        pool = sched.pool
        sched_us = self._sched_us
        preempt_us = self._preempt_us
        fast = getattr(model, "step_time_fn", None)  # optional: step_time_us as one plain function
        step_time = fast() if fast is not None else model.step_time_us
        # With async scheduling (vLLM >= 0.14 default) step k+1 is scheduled when step k is launched, so a
        # request that entered while step k ran can first join step k+2: admission looks back one step.
        lookback = self.engine.async_scheduling
        running, waiting = sched.running, sched.waiting  # never replaced: read in place
        prev_start = -1
        last = 0  # the previous step's duration (us): a hint of how soon a stretch would be cut
        while True:
            t = prev_start if lookback and prev_start >= 0 and (running or waiting) else now
            if t >= self._due:  # someone has entered by t
                self._admit_entered(t)
            if not (running or waiting):
                nxt = self._next_enter()
                fed = self._closed or self.self_fed  # no push can come while this instance is idle
                if nxt is None and fed:
                    return
                if fed:
                    now = self.now_us = yield nxt - now
                else:
                    self.wait_until = nxt
                    now = self.now_us = yield None
                prev_start = -1
                continue
            if not waiting and not sched.prefilling:
                # the next moment the stretch must respect: a request entering, or (open instances) anyone
                # else looking at or feeding this one; a stretch cut within about two steps is not tried
                soon = self._due
                quiet = self.quiet_us
                if quiet < soon and not (self._closed or self.self_fed):
                    soon = quiet
                total = self._stretch(now, soon, lookback) if soon - now >= 2 * last else 0
                if total:
                    last = self._stretch_last
                    prev_start = now + total - last
                    now = self.now_us = yield total
                    sched.update_from_output()
                    continue
            batch = sched.schedule()
            if batch.num_prefill_tokens + batch.num_decode_tokens == 0:
                raise RuntimeError(f"instance {self.index}: a step scheduled no tokens (engine stuck)")
            duration = int(step_time(batch)) + sched_us + preempt_us * sched.step_preemptions
            if duration < 1:
                if duration < 0:
                    raise ValueError(f"latency model {model.name!r} returned a negative step time "
                                     f"({duration} us) for {batch}")
                duration = 1  # a step always takes some time; keeps simulated time moving
            steps.add(now, duration, batch.num_prefill_tokens, batch.num_decode_tokens,
                      batch.num_decode_tokens + len(batch.prefill_chunks), pool.num_blocks - pool.num_free,
                      sched.step_preemptions, len(sched.waiting))
            prev_start = now
            last = duration
            now = self.now_us = yield duration
            sched.update_from_output()

    # ------------------------------------------------------------ stretches
    def _stretch(self, now: int, soon: float, lookback: bool) -> int:
        """Schedule and log the decode-only stretch that starts now, when it has two steps or more: its steps
        until the batch changes (`Scheduler.decode_stretch_limit`), a request could join, or the horizon,
        and, on an instance others may still route to, only steps that start before ``quiet_us``; returns
        its total duration (us; 0 for no stretch), the last step's duration in ``_stretch_last``. ``soon``:
        the earlier of the next enter time and (open instances) ``quiet_us``; inf for none. The caller
        sleeps that long, then applies the last step (`update_from_output`). Skipping a stretch never changes
        an answer, so every bound here may be short."""
        due = self._due
        nxt = due if due != _NEVER else None
        quiet = None if self._closed or self.self_fed else self.quiet_us
        sched = self.scheduler
        n = sched.decode_stretch_limit()
        if n < 2:
            return 0
        D = sched.num_decoding
        S = sched.sum_decode_ctx
        sched_us = self._sched_us
        stretch_us = self._stretch_us
        if stretch_us is None:
            stretch_us = self._stretch_us = self._stretch_pricer(D, S)
        if soon != _NEVER:  # an upper bound on the steps before `soon` (steps only grow)
            n = min(n, int((soon - now) // max(stretch_us(D, S, 1)[0] + sched_us, 1)) + 2)
            if n < 2:
                return 0
        durations = stretch_us(D, S, n)
        if sched_us:
            durations = [d + sched_us for d in durations]
        if min(durations) < 1:
            return 0  # let the step loop apply its rule (or error) step by step
        horizon = self.horizon_us
        if soon != _NEVER or horizon is not None:
            # acc[i]: step i's start, acc[i + 1] its end; with async scheduling a request entering by step
            # i-1's start joins step i
            acc = list(accumulate(durations, initial=now))
            if nxt is not None:
                cut = bisect_left(acc, nxt, 0, n)  # first step whose start is >= nxt
                n = min(n, cut + 1 if lookback else cut)
            if horizon is not None:
                n = min(n, bisect_left(acc, horizon, 0, n))  # every step of the stretch starts before the horizon
            if quiet is not None and quiet != _NEVER:
                # every step starts before anyone else may look at or feed this instance: while the last one
                # runs, the blocks in use, the cache and the queues are what one event per step shows
                n = min(n, bisect_left(acc, quiet, 0, n))
            if n < 2:
                return 0
            del durations[n:]
        pool = self._pool
        blocks = sched.decode_stretch_blocks(n)
        used = pool.num_blocks - pool.num_free
        sched.start_decode_stretch(n, sum(blocks))
        kv_used = accumulate(blocks, initial=used)
        next(kv_used)  # the blocks in use after each step's allocation
        self.steps.add_run(now, durations, D, kv_used)
        self._stretch_last = durations[-1]
        return sum(durations)

    def _stretch_pricer(self, D: int, S: int) -> Callable[[int, int, int], list[int]]:
        """The latency model's ``decode_stretch_us`` fast path, or one `step_time_us` call per step where the
        model has none or declines."""
        fast = getattr(self.model, "decode_stretch_us", None)
        if fast is not None and fast(D, S, 1) is not None:
            return fast
        step_time = self.model.step_time_us

        def per_step(D: int, S: int, n: int) -> list[int]:
            return [int(step_time(StepBatch(0, D, S + i * D, [], D))) for i in range(n)]

        return per_step

    # ------------------------------------------------------ read-only surface
    def load(self) -> InstanceLoad:
        """A frozen snapshot of what the instance holds now."""
        s = self.scheduler
        pool = self._pool
        return InstanceLoad(len(s.waiting), len(s.running), self.in_flight, pool.num_blocks - pool.num_free,
                            pool.num_blocks)

    def prefix_hit_blocks(self, req: int) -> int:
        """Full prompt blocks of request ``req`` this instance's prefix cache holds now (a probe: it changes
        and counts nothing). 0 when prefix caching is off or the request shares with nobody."""
        keys = self._keys
        if not (self.scheduler.prefix_caching and keys.shareable[req]):
            return 0
        n = keys.num_prompt_blocks(req)
        if n == 0:
            return 0
        return self._pool.num_cached_hits(keys.prompt_keys(req), n)[0]

    def num_prompt_blocks(self, req: int) -> int:
        """Full KV blocks request ``req``'s prompt fills on this instance (its block size)."""
        return self._keys.num_prompt_blocks(req)

    def cache_stats(self) -> CacheStats:
        """Prefix-cache counters since the start of the run."""
        return CacheStats(self._pool.hits, self._pool.queries)

    @property
    def num_kv_blocks(self) -> int:
        """KV blocks the instance holds (the pool size)."""
        return self._pool.num_blocks

    @property
    def enter_us(self) -> list:
        """Per request, when it enters the WAITING queue if routed here at its arrival (us); read-only."""
        return self._enter_us

    @property
    def queue_depth(self) -> int:
        return len(self.scheduler.waiting)

    @property
    def num_running(self) -> int:
        return len(self.scheduler.running)

    @property
    def kv_utilization(self) -> float:
        pool = self._pool
        return (pool.num_blocks - pool.num_free) / pool.num_blocks


_in_flight = attrgetter("in_flight")


class LoadProbe:
    """Reads the load of many instances at once, for routers that ask before every decision (the same
    numbers as `Instance.load`, as lists indexed like ``instances``, without building snapshots)."""

    __slots__ = ("instances", "_waiting", "_running", "_pools", "_shareable", "_zeros")

    def __init__(self, instances: list[Instance]) -> None:
        self.instances = instances
        # the scheduler's queues and pools are never replaced, so they can be held and read in bulk
        self._waiting = [i.scheduler.waiting for i in instances]
        self._running = [i.scheduler.running for i in instances]
        self._pools = [i.scheduler.pool for i in instances]
        # whether a request can share blocks at all depends on the requests only (same for every block size)
        self._shareable = instances[0]._keys.shareable if instances else []
        self._zeros = [0] * len(instances)

    def waiting(self) -> list[int]:
        return list(map(len, self._waiting))

    def running(self) -> list[int]:
        return list(map(len, self._running))

    def in_flight(self) -> list[int]:
        return list(map(_in_flight, self.instances))

    def kv_utilization(self) -> list[float]:
        return [(p.num_blocks - p.num_free) / p.num_blocks for p in self._pools]

    def prefix_hit_blocks(self, req: int) -> list[int]:
        """`Instance.prefix_hit_blocks` of every instance (read-only list); all zeros at once for a request
        that shares nothing."""
        if not self._shareable[req]:
            return self._zeros
        return [i.prefix_hit_blocks(req) for i in self.instances]

    def total(self) -> list[int]:
        """waiting + running + in flight, per instance."""
        return list(map(add, map(add, map(len, self._waiting), map(len, self._running)),
                        map(_in_flight, self.instances)))
