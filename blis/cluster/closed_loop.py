"""Closed-loop clients in front of a cluster: each sent request passes admission and the router at its send
time, like an open-loop arrival routed by the cluster's feeder (``blis.cluster``)."""

from __future__ import annotations

import numpy as np

from blis.cluster.admission import create_admission_policy
from blis.workload.closed_loop import ClosedLoop, groups_for, response_times_us


class ClusterLoop:
    """Wires a ``ClosedLoop`` to a built cluster (``blis.cluster.build_cluster``; its pools are
    ``cluster.groups``), before it runs.

    Completions come from the instances' ``on_finish`` hook: every instance, or with P/D disaggregation the
    decode instances (a prefill instance reports only the requests it refuses)."""

    def __init__(self, cluster) -> None:
        self.cluster = cluster
        cfg = cluster.config
        cluster.requests = cluster.requests.take(np.arange(len(cluster.requests)))  # send times go here
        req = cluster.requests
        # admission is asked at send time, in send order (decided up front it would see no real times)
        cluster.admitted[:] = True
        cluster.log.rejected[:] = False
        self.policy = create_admission_policy(cfg.admission, cfg)
        self.inputs = req.input_tokens.tolist()
        # each first-stage instance's API-server delay per request (its pool's queueing model)
        self.delays: list[list[int]] = [[] for _ in cluster.stage1]
        for group in cluster.groups:
            if group.role == "decode":
                continue
            d = (np.asarray(group.enter_us, dtype=np.int64) - req.arrival_us).tolist()
            for inst in group.instances:
                self.delays[cluster.stage1.index(inst)] = d
        self.delay0 = np.asarray(self.delays[0], dtype=np.int64) if self.delays else np.zeros(len(req), np.int64)
        a2 = float(cluster.groups[0].deployment.latency_model.output_token_processing_time_us())
        log, dlog = cluster.log, cluster.decode_log

        def rejected(i: int) -> bool:
            return bool(log.rejected[i]) or (dlog is not None and bool(dlog.rejected[i]))

        self.loop = ClosedLoop(cluster.env, groups_for(cfg.workload, req), req.arrival_us.tolist(),
                               response_times_us(req.output_tokens, a2), self._send, rejected, self._close)
        done = self.loop.on_done
        if cluster.disaggregated:
            for inst in cluster.decode:
                inst.on_finish = done
            for inst in cluster.stage1:
                inst.on_finish = lambda i: done(i) if log.rejected[i] else None
        else:
            for inst in cluster.instances:
                inst.on_finish = done

    def start(self) -> None:
        self.loop.start()

    def _send(self, idx: int, now: int) -> None:
        c = self.cluster
        if not self.policy.admit(now, self.inputs[idx]):
            c.admitted[idx] = False
            c.log.rejected[idx] = True
            self.loop.on_done(idx)
            return
        pos = c.router.choose(idx)
        inst = c.stage1[pos]
        if c.on_route is not None:
            c.on_route("arrival", idx, inst.index)
        inst.push(idx, enter_us=now + self.delays[pos][idx])

    def _close(self) -> None:
        self.cluster.feeder_done = True
        for inst in self.cluster.stage1:
            inst.close()

    def finish(self, end_us: int) -> None:
        """After the run: the send times become the requests' arrival times (enter times of the first pool)."""
        c = self.cluster
        enter = np.asarray(c.groups[0].enter_us, dtype=np.int64).copy()
        self.loop.finalize(c.requests, enter, self.delay0, end_us)

    def span_hint_us(self) -> int:
        users = sum(g.users or 1 for g in self.loop.groups)
        return int(1e6 * max(1, len(self.cluster.requests)) / max(1, users))
