"""Closed-loop clients on the SimPy clock: requests are sent when users free up, not at precomputed times.

A closed-loop workload (``Workload.concurrency``, or a client's ``concurrency``) has N users per group. A user
sends a request, waits for the whole response, pauses ``think_time_ms`` and sends the next one; the group's
requests go out in table order, each to the first free user (as `vllm bench serve --max-concurrency` with its
FIFO semaphore, GuideLLM's concurrent/synchronous strategies, or genai-perf's concurrency mode). A request is
never sent before its scheduled time in the table: with a rate cap that is the arrival process's schedule
(vLLM's ``--request-rate`` + ``--max-concurrency``), without one every request is ready at time 0.

Cost: no SimPy process per user and no per-token work. Each request adds one timeout event (its user's
release, after the client has read the last token and thought); a rate cap adds one timeout per wait.

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
    pos: int = 0  # next request to send
    free: float = 0  # idle users (inf for an open-loop group)
    timer: bool = False  # a wake-up for the next scheduled time is pending


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
    ``on_all_sent`` runs once, when the last request has been sent.
    """

    def __init__(self, env: simpy.Environment, groups: Sequence[Group], schedule_us: Sequence[int],
                 response_us: Sequence[int], send: SendFn, rejected: Callable[[int], bool],
                 on_all_sent: Callable[[], None]) -> None:
        self.env = env
        self.groups = list(groups)
        self.schedule = list(schedule_us)
        self.response = list(response_us)
        self.send = send
        self.rejected = rejected
        self.on_all_sent = on_all_sent
        self.sent_us = np.full(len(self.schedule), -1, dtype=np.int64)
        self.group_of = np.zeros(len(self.schedule), dtype=np.int64)
        for g, group in enumerate(self.groups):
            self.group_of[group.requests] = g
        self._group_of = self.group_of.tolist()
        self._unsent = sum(len(g.requests) for g in self.groups)

    def start(self) -> None:
        """Make the first users available (all at once, or spread over the ramp) and send what is due."""
        if self._unsent == 0:
            self.on_all_sent()
            return
        for group in self.groups:
            if group.users is None:
                group.free = float("inf")
                continue
            n = group.users
            group.free = 1 if group.ramp_us else n
            if group.ramp_us:
                for u in range(1, n):
                    self._later(u * group.ramp_us // n, group)
        for group in self.groups:
            self._pump(group)

    # ---------------------------------------------------------------------------------- engine hook
    def on_done(self, idx: int) -> None:
        """The engine is done with request ``idx`` (finished, or refused): its user frees up after the client
        has read the response and thought."""
        group = self.groups[self._group_of[idx]]
        if group.users is None:
            return
        delay = group.think_us + (0 if self.rejected(idx) else self.response[idx])
        self._later(delay, group)  # always through the event queue: never re-enter the engine mid-step

    # ------------------------------------------------------------------------------------- inside
    def _later(self, delay_us: int, group: Group) -> None:
        def release(_event, group=group) -> None:
            group.free += 1
            self._pump(group)

        self.env.timeout(delay_us).callbacks.append(release)

    def _pump(self, group: Group) -> None:
        env = self.env
        now = int(env.now)
        reqs = group.requests
        n = len(reqs)
        while group.free > 0 and group.pos < n:
            idx = reqs[group.pos]
            t = self.schedule[idx]
            if t > now:
                if not group.timer:
                    group.timer = True
                    env.timeout(t - now).callbacks.append(lambda _e, group=group: self._wake(group))
                return
            group.pos += 1
            group.free -= 1
            self.sent_us[idx] = now
            self._unsent -= 1
            self.send(idx, now)
            if self._unsent == 0:
                self.on_all_sent()

    def _wake(self, group: Group) -> None:
        group.timer = False
        self._pump(group)

    # ------------------------------------------------------------------------------------- after
    def finalize(self, requests: RequestTable, enter_us: np.ndarray, delay_us: np.ndarray,
                 end_us: int) -> None:
        """Write the real send times into ``requests.arrival_us`` and ``enter_us`` (in place); requests never
        sent (the run stopped first) get ``end_us``."""
        sent = np.where(self.sent_us >= 0, self.sent_us, end_us)
        requests.arrival_us[:] = sent
        enter_us[:] = sent + delay_us


def response_times_us(output_tokens: np.ndarray, a2_us: float) -> list[int]:
    """Time (us) from a request's last step to the client holding every token: output_tokens x a2."""
    return [int(x) for x in np.asarray(output_tokens, dtype=np.float64) * float(a2_us)]


class LoopRun:
    """A closed-loop workload wired to a run: ``route(idx, enter_us)`` places a sent request on an instance,
    ``close()`` tells the instances nothing more will come. Copies ``prep.requests`` (the send times are
    written into the copy by ``finish``), so a caller's table is never changed."""

    def __init__(self, env: simpy.Environment, prep, rejected: Callable[[int], bool]) -> None:
        prep.requests = prep.requests.take(np.arange(len(prep.requests)))
        self.prep = prep
        req = prep.requests
        self.delay_us = np.asarray(prep.enter_us, dtype=np.int64) - req.arrival_us
        self._delay = self.delay_us.tolist()
        a2 = float(prep.model.output_token_processing_time_us())
        self.loop = ClosedLoop(env, groups_for(prep.config.workload, req), req.arrival_us.tolist(),
                               response_times_us(req.output_tokens, a2), self._send, rejected, self._all_sent)
        self.on_done = self.loop.on_done
        self.route: Callable[[int, int], None] | None = None
        self.close: Callable[[], None] | None = None
        self.all_sent = False

    def start(self, route: Callable[[int, int], None], close: Callable[[], None]) -> None:
        self.route, self.close = route, close
        self.loop.start()

    def _send(self, idx: int, now: int) -> None:
        assert self.route is not None
        self.route(idx, now + self._delay[idx])

    def _all_sent(self) -> None:
        self.all_sent = True
        assert self.close is not None
        self.close()

    def finish(self, end_us: int) -> None:
        """After the run: the real send times become the requests' arrival (and enter) times."""
        self.loop.finalize(self.prep.requests, self.prep.enter_us, self.delay_us, end_us)

    def span_hint_us(self) -> int:
        """A rough length of the run (for progress slices only): 1 s per request per user."""
        users = sum(g.users or 1 for g in self.loop.groups)
        return int(1e6 * max(1, len(self.prep.requests)) / max(1, users))
