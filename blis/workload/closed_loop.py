"""Closed-loop clients on the SimPy clock: requests are sent when users free up, not at precomputed times.

A closed-loop workload (``Workload.concurrency``, or a client's ``concurrency``) has N users per group. A user
sends a request, waits for the whole response, pauses ``think_time_ms`` and sends the next one. The group's
requests go out in table order: at the start user u takes request u (starting at u x ``ramp_s`` / N); after
that, when the engine is done with a request, its user takes the group's next request and sends it once the
response is read and the think time is over (as `vllm bench serve --max-concurrency` with its FIFO semaphore,
GuideLLM's concurrent and synchronous strategies, or genai-perf's concurrency mode). A request is never sent
before its scheduled time in the table: with a rate cap that is the arrival process's schedule (vLLM's
``--request-rate`` + ``--max-concurrency``), without one every request is ready at time 0.

Order, exactly: the next request goes to the user whose request the engine finished first (ties: the order
the engine reports them). A real client hands it to the user that has read its response first, which is
the same user unless two completions' client-side tails (output tokens x a2 + think time) cross; then blis
may swap which of the two next requests goes first, both still sent at the users' true free times. With
a2 = 0, or equal output lengths, the two orders are the same.

Cost: no SimPy process per user and no per-token work. On one instance a request's send time is known when
the engine finishes the previous one, so it is handed over at once (the instance keeps it until it enters):
no event at all. In front of a cluster each send is one timeout event, so the router sees the state at the
send time (the open-loop feeder also costs one event per arrival).

The engine tells the driver about completions through one hook, ``Instance(on_finish=...)``: it is called with
the request index when a request's last step ends, or when the instance refuses it (prompt too long). The
client sees the response ``output_tokens x a2`` later (the latency model's per-output-token processing time,
the same term the summary adds to finish times); a refused request returns at once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import simpy

from blis.errors import BlisInputError
from blis.workload.request_table import RequestTable

SendFn = Callable[[int, int], None]  # (request index, send time us) -> route it


@dataclass
class Group:
    """Requests sent by one set of users (one closed-loop client, or an open-loop one: ``users`` None)."""

    requests: list[int]  # request indices in send order
    users: int | None
    think_us: int = 0
    ramp_us: int = 0
    pos: int = 0  # next request to hand to a user


def groups_for(workload, requests: RequestTable) -> list[Group]:
    """The user groups of a closed-loop ``workload`` over ``requests`` (its ``generate()`` table)."""
    ramp_us = int(round(workload.ramp_s * 1e6))
    if not workload.clients:
        return [Group(list(range(len(requests))), workload.concurrency,
                      int(round(workload.think_time_ms * 1000)), ramp_us)]
    names = list(requests.client_names)
    if len(names) != len(workload.clients):
        raise BlisInputError(f"clients: the request table has {len(names)} clients, the workload "
                             f"{len(workload.clients)}; a closed-loop run needs the workload's own requests")
    out = []
    for c, client in enumerate(workload.clients):
        idx = np.flatnonzero(requests.client == c).tolist()
        out.append(Group(idx, client.concurrency, int(round(client.think_time_ms * 1000)), ramp_us))
    return out


class ClosedLoop:
    """Sends the requests of ``groups`` through ``send`` as users free up; ``on_done`` is the engine hook.

    ``schedule_us``: earliest send time of each request (the table's arrival times). ``response_us``: time from
    the end of a request's last step to the client having the whole response (output tokens x a2).
    ``rejected(idx)``: whether a request was refused (its user is free at once, without ``response_us``).
    ``on_all_sent`` runs once, when the last request has been handed to ``send``.

    ``immediate``: hand a request to ``send`` as soon as its send time is known (it may lie in the future:
    the instance keeps it until it enters); no event per request. Only for a destination that does not look
    at the engine's state when the request is sent (one instance). Otherwise each send is an event at its time
    (a router then sees the state at that moment).
    """

    def __init__(self, env: simpy.Environment, groups: Sequence[Group], schedule_us: Sequence[int],
                 response_us: Sequence[int], send: SendFn, rejected: Callable[[int], bool],
                 on_all_sent: Callable[[], None], immediate: bool = False,
                 clock: Callable[[], int] | None = None) -> None:
        self.env = env
        # the simulated time now (us): the environment's, or the clock of the one instance it feeds
        self.clock = clock if clock is not None else (lambda: env.now)
        self.groups = list(groups)
        self.schedule = list(schedule_us)
        self.response = list(response_us)
        self.send = send
        self.rejected = rejected
        self.on_all_sent = on_all_sent
        self.immediate = immediate
        self.offset = [0] * len(self.schedule)  # added to the send time given to ``send`` (e.g. API delay)
        self.sent_us = [-1] * len(self.schedule)
        group_of = np.zeros(len(self.schedule), dtype=np.int64)
        for g, group in enumerate(self.groups):
            group_of[group.requests] = g
        self._group_of = group_of.tolist()
        self._unsent = sum(len(g.requests) for g in self.groups)

    def start(self) -> None:
        """Give every user its first request (user u starts at u * ramp / N) and open-loop requests theirs."""
        if self._unsent == 0:
            self.on_all_sent()
            return
        sched = self.schedule
        for group in self.groups:
            reqs = group.requests
            if group.users is None:
                for idx in reqs:
                    self._assign(idx, sched[idx])
                group.pos = len(reqs)
                continue
            n = group.users
            first = min(n, len(reqs))
            for u in range(first):
                idx = reqs[u]
                self._assign(idx, max(u * group.ramp_us // n, sched[idx]))
            group.pos = first

    # ---------------------------------------------------------------------------------- engine hook
    def on_done(self, idx: int) -> None:
        """The engine is done with request ``idx`` (finished, or refused): its user takes the group's next
        request and sends it once the client has read the response and thought (or at its scheduled time)."""
        group = self.groups[self._group_of[idx]]
        reqs = group.requests
        pos = group.pos
        if group.users is None or pos >= len(reqs):
            return
        ready = self.clock() + group.think_us + (0 if self.rejected(idx) else self.response[idx])
        nxt = reqs[pos]
        group.pos = pos + 1
        at = self.schedule[nxt]
        if self.immediate:  # the hot path, inlined
            if ready > at:
                at = ready
            self.sent_us[nxt] = at
            self._unsent -= 1
            self.send(nxt, at + self.offset[nxt])
            if self._unsent == 0:
                self.on_all_sent()
        else:
            self._assign(nxt, max(ready, at))

    # ------------------------------------------------------------------------------------- inside
    def _assign(self, idx: int, at_us: int) -> None:
        if self.immediate:
            self._sent(idx, at_us)
        else:
            self.env.timeout(at_us - int(self.env.now), idx).callbacks.append(self._fire)

    def _fire(self, event) -> None:
        self._sent(event._value, int(self.env.now))

    def _sent(self, idx: int, at_us: int) -> None:
        self.sent_us[idx] = at_us
        self._unsent -= 1
        self.send(idx, at_us + self.offset[idx])
        if self._unsent == 0:
            self.on_all_sent()

    # ------------------------------------------------------------------------------------- after
    def finalize(self, requests: RequestTable, enter_us: np.ndarray, delay_us: np.ndarray,
                 end_us: int) -> None:
        """Write the real send times into ``requests.arrival_us`` and ``enter_us`` (in place); requests never
        sent (the run stopped first) get ``end_us``."""
        sent_us = np.asarray(self.sent_us, dtype=np.int64)
        sent = np.where(sent_us >= 0, sent_us, end_us)
        requests.arrival_us[:] = sent
        enter_us[:] = sent + delay_us


def response_times_us(output_tokens: np.ndarray, a2_us: float) -> list[int]:
    """Time (us) from a request's last step to the client holding every token: output_tokens x a2."""
    return [int(x) for x in np.asarray(output_tokens, dtype=np.float64) * float(a2_us)]


class LoopRun:
    """A closed-loop workload wired to one instance: ``route(idx, enter_us)`` places a sent request on it,
    ``close()`` tells the instance nothing more will come. Works on copies of ``requests`` and ``enter_us``
    (``finish`` writes the real send times into them: `requests`, `enter_us`), so a caller's table is never
    changed. ``a2_us``: the latency model's per-output-token processing time (us)."""

    def __init__(self, env: simpy.Environment, requests: RequestTable, enter_us: np.ndarray, workload,
                 a2_us: float, rejected: Callable[[int], bool], clock: Callable[[], int] | None = None) -> None:
        self.requests = requests.take(np.arange(len(requests)))
        self.enter_us = np.asarray(enter_us, dtype=np.int64).copy()
        req = self.requests
        self.delay_us = self.enter_us - req.arrival_us
        self._delay = self.delay_us.tolist()
        self.loop = ClosedLoop(env, groups_for(workload, req), req.arrival_us.tolist(),
                               response_times_us(req.output_tokens, a2_us), self._send, rejected, self._all_sent,
                               immediate=True, clock=clock)
        self.on_done = self.loop.on_done
        self.route: Callable[[int, int], None] | None = None
        self.close: Callable[[], None] | None = None
        self.all_sent = False

    def start(self, route: Callable[[int, int], None], close: Callable[[], None]) -> None:
        self.route, self.close = route, close
        self.loop.send = route  # called with the enter time: send time + the API server's delay
        self.loop.offset = self._delay
        self.loop.start()

    def _send(self, idx: int, at_us: int) -> None:  # replaced in start()
        raise RuntimeError("LoopRun.start() was not called")

    def _all_sent(self) -> None:
        self.all_sent = True
        assert self.close is not None
        self.close()

    def finish(self, end_us: int) -> None:
        """After the run: the real send times become the requests' arrival (and enter) times."""
        self.loop.finalize(self.requests, self.enter_us, self.delay_us, end_us)

    def span_hint_us(self) -> int:
        """A rough length of the run (for progress slices only): 1 s per request per user."""
        users = sum(g.users or 1 for g in self.loop.groups)
        return int(1e6 * max(1, len(self.requests)) / max(1, users))
