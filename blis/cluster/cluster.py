"""`simulate_cluster(config)`: many instances on one SimPy environment behind a router.

Requests pass admission (decided in arrival order), then the router picks an instance at the request's
arrival time; the request enters that instance's WAITING queue after the instance's API-server delay.
With prefill/decode disaggregation a second router picks the decode instance when the prefill finishes
(`blis.cluster.disaggregation`). State-independent routing (round-robin) is decided up front, so such a
cluster runs as fast as its instances; state-dependent routing adds one event per arrival and, with a
snapshot interval, one refresh event per interval.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import simpy
from pydantic import ValidationError

from blis.cluster.admission import admission_mask, create_admission_policy
from blis.cluster.config import DEFAULT_SCORERS, ClusterConfig, PoolConfig
from blis.cluster.disaggregation import PrefillLog, kv_bytes_per_token, transfer_time_us
from blis.cluster.routing import Router, Signals, create_router
from blis.config import SimConfig
from blis.engine import BlockKeys, Instance, RequestLog
from blis.errors import BlisInputError, format_validation_error
from blis.metrics import stats
from blis.report import build_result, pool_rows
from blis.result import SimResult
from blis.run import (
    Deployment,
    InstanceGroup,
    ProgressFn,
    check_fits,
    enter_times,
    prepare_requests,
    requests_with_outputs,
    resolve_deployment,
    run_environment,
)
from blis.workload.request_table import RequestTable

RouteHook = Callable[[str, int, int], None]


@dataclass
class Cluster:
    """A built, not yet run, cluster (``simulate_cluster`` builds and runs one; tests may drive it)."""

    config: ClusterConfig
    env: simpy.Environment
    requests: RequestTable
    groups: list[InstanceGroup]  # one per pool, in pool order
    instances: list[Instance]
    stage1: list[Instance]  # where arrivals go: every instance, or the prefill instances
    decode: list[Instance]
    log: RequestLog
    decode_log: RequestLog | None
    admitted: np.ndarray
    router: Router
    decode_router: Router | None
    signals: list[Signals]
    transfer_start_us: np.ndarray
    transfer_us: np.ndarray
    kv_bytes_source: str = ""
    on_route: RouteHook | None = None  # called (stage, request, instance index) before each push
    feeder_done: bool = False
    next_tick_us: float = math.inf  # the next snapshot refresh (us; inf when none is due)
    # the feeder and the snapshot ticks keep every instance's `quiet_us` (the next time a router reads it)
    quiet: bool = False
    feeder: "_Feeder | None" = None

    def set_quiet(self) -> None:
        """Tell every instance when a router next reads or feeds it: the next arrival or snapshot tick (us)."""
        q = min(self.feeder.next_us() if self.feeder is not None else math.inf, self.next_tick_us)
        for inst in self.instances:
            inst.quiet_us = q

    @property
    def disaggregated(self) -> bool:
        return self.decode_log is not None

    def done_count(self) -> int:
        log = self.decode_log if self.decode_log is not None else self.log
        return int((log.finish_step >= 0).sum())


def _pool_config(pool: PoolConfig, base: SimConfig, i: int) -> SimConfig:
    try:
        return pool.sim_config(base)
    except ValidationError as exc:
        raise BlisInputError(format_validation_error(exc, where=f"pools[{i}] ({pool.name})")) from None


def _resolve_pools(config: ClusterConfig, requests: RequestTable | None) -> tuple[RequestTable, list[InstanceGroup]]:
    """One `InstanceGroup` per pool (no instances yet): each distinct pool configuration is resolved into a
    `Deployment` once; the requests are prepared once (``max_model_len`` is cluster-wide)."""
    base = config.base_sim_config()
    pools = config.resolved_pools()
    cfgs = [_pool_config(p, base, i) for i, p in enumerate(pools)]
    if requests is None:
        requests = base.workload.generate()
    groups: list[InstanceGroup | None] = [None] * len(pools)
    resolved: dict[str, tuple[Deployment, np.ndarray]] = {}
    # pools that hold whole requests first: they cut outputs at max_model_len (cluster-wide)
    for i in sorted(range(len(pools)), key=lambda i: pools[i].role == "prefill"):
        pool, cfg = pools[i], cfgs[i]
        key = cfg.model_dump_json()
        try:
            if pool.role == "prefill":  # a prefill instance holds the prompt and one output token
                outputs = np.ones(len(requests), dtype=np.int64)
                prepare_requests(cfg, requests_with_outputs(requests, outputs))
            else:
                requests = prepare_requests(cfg, requests)
                outputs = requests.output_tokens
            if key not in resolved:
                dep = resolve_deployment(cfg)
                resolved[key] = (dep, None)
            dep = resolved[key][0]
            check_fits(dep, requests.input_tokens, outputs)
            if resolved[key][1] is None:
                resolved[key] = (dep, enter_times(dep, requests))
        except ValueError as exc:  # BlisInputError and latency-model errors: say which pool
            if not config.pools:
                raise
            raise BlisInputError(f"pools[{i}] ({pool.name}): {exc}") from None
        groups[i] = InstanceGroup(pool.name, pool.role, dep, resolved[key][1])
    done = [g for g in groups if g is not None]
    a2 = {g.deployment.output_token_time_us for g in done}
    if len(a2) > 1:
        raise BlisInputError(f"pools: the latency models' output-token processing times differ ({sorted(a2)} us); "
                             "a cluster needs one value")
    return requests, done


def build_cluster(config: ClusterConfig, requests: RequestTable | None = None) -> Cluster:
    """Resolve every pool, create the instances, decide admission and set up routing (nothing runs yet)."""
    requests, groups = _resolve_pools(config, requests)
    n = len(requests)
    env = simpy.Environment()
    disagg = config.disaggregated
    transfer_start = np.full(n, np.nan)
    transfer_dur = np.full(n, np.nan)
    decode_log = RequestLog(n) if disagg else None
    handoff_box: list = []
    log: RequestLog = PrefillLog(n, lambda idx: handoff_box[0](idx)) if disagg else RequestLog(n)
    inputs = requests.input_tokens.tolist()
    outputs = requests.output_tokens.tolist()
    keys_by_size: dict[int, BlockKeys] = {}  # one per block size, from the full requests
    instances: list[Instance] = []
    stage1: list[Instance] = []
    decode: list[Instance] = []
    pools = config.resolved_pools()
    for pool, group in zip(pools, groups):
        bs = group.deployment.engine.block_size
        if bs not in keys_by_size:
            keys_by_size[bs] = BlockKeys(requests, bs)
        enter = group.enter_us.tolist()
        for _ in range(pool.count):
            inst = group.add_instance(env, len(instances), keys_by_size[bs],
                                      decode_log if group.role == "decode" else log, inputs, outputs, enter,
                                      config.horizon_us)
            (decode if group.role == "decode" else stage1).append(inst)
            instances.append(inst)

    admitted = admission_mask(create_admission_policy(config.admission, config), requests.arrival_us,
                              requests.input_tokens)
    if config.horizon_us is not None:  # requests arriving after the horizon are never seen, not rejected
        admitted = admitted | (requests.arrival_us >= config.horizon_us)
    log.rejected[~admitted] = True
    fresh = config.snapshot_refresh_ms == 0
    signals = [Signals(stage1, fresh)]
    router = create_router(config.routing, stage1, signals[0], config)
    decode_router = None
    if disagg:
        signals.append(Signals(decode, fresh))
        decode_router = create_router(config.routing, decode, signals[1], config)
    bytes_per_token, source = 0.0, ""
    if disagg:
        prefill = next(g.deployment for g in groups if g.role == "prefill")
        bytes_per_token, source = kv_bytes_per_token(prefill, config.pd_kv_bytes_per_token)
    cluster = Cluster(config, env, requests, groups, instances, stage1, decode, log, decode_log, admitted, router,
                      decode_router, signals, transfer_start, transfer_dur, source)
    if disagg:
        handoff_box.append(_handoff(cluster, bytes_per_token))
    return cluster


def _handoff(cluster: Cluster, bytes_per_token: float) -> Callable[[int], None]:
    """The function the prefill side calls when a request's prefill finishes (at the step's end)."""
    env = cluster.env
    cfg = cluster.config
    decode = cluster.decode
    router = cluster.decode_router
    assert router is not None
    inputs = cluster.requests.input_tokens.tolist()
    arrival = cluster.requests.arrival_us
    # the decode instance's API-server delay for each request (its pool's queueing model)
    delays = [None] * len(decode)
    for group in cluster.groups:
        if group.role == "decode":
            d = (group.enter_us - arrival).tolist()
            for inst in group.instances:
                delays[decode.index(inst)] = d
    bw, lat = cfg.pd_transfer_bandwidth, cfg.pd_transfer_latency_ms
    start, dur = cluster.transfer_start_us, cluster.transfer_us

    def handoff(idx: int) -> None:
        now = int(env.now)
        pos = router.choose(idx)
        inst = decode[pos]
        t = transfer_time_us(inputs[idx], bytes_per_token, bw, lat)
        start[idx] = now
        dur[idx] = t
        if cluster.on_route is not None:
            cluster.on_route("decode", idx, inst.index)
        inst.push(idx, enter_us=now + t + delays[pos][idx])

    return handoff


class _Feeder:
    """Routes each admitted request at its arrival time (state-dependent routing).

    Driven by timeout callbacks rather than a SimPy process (cheaper per arrival). When no event is due
    before the next arrival, nothing can change in between, so that request is routed at once (same state,
    fewer events); otherwise the instances catch up first."""

    def __init__(self, cluster: Cluster, order: list[int], times: list[int]) -> None:
        self.cluster = cluster
        self.order = order
        self.times = times
        self.pos = 0

    def start(self) -> None:
        self._route(None)

    def next_us(self) -> float:
        """When the next request is routed (its arrival, us; inf once all are): the next moment a router
        reads the instances."""
        return self.times[self.pos] if self.pos < len(self.order) else math.inf

    def _route(self, _event) -> None:
        cluster = self.cluster
        env = cluster.env
        peek = env.peek
        choose = cluster.router.choose
        stage1 = cluster.stage1
        hook = cluster.on_route
        order, times = self.order, self.times
        pos, n = self.pos, len(order)
        while pos < n:
            t = times[pos]
            now = env.now
            if t > now and peek() <= t:
                self.pos = pos
                env.timeout(t - now).callbacks.append(self._route)
                if cluster.quiet:
                    cluster.set_quiet()
                return
            idx = order[pos]
            inst = stage1[choose(idx)]
            if hook is not None:
                hook("arrival", idx, inst.index)
            inst.push(idx)
            pos += 1
        self.pos = pos
        cluster.feeder_done = True
        if cluster.quiet:
            cluster.set_quiet()
        for inst in stage1:
            inst.close()


def _assign_static(cluster: Cluster, order: np.ndarray) -> None:
    """Give each instance its requests up front (routing that ignores instance state)."""
    stage1 = cluster.stage1
    positions = np.asarray(cluster.router.assign(len(order)), dtype=np.int64) if hasattr(cluster.router, "assign") \
        else np.array([cluster.router.choose(int(i)) for i in order], dtype=np.int64)
    for pos, inst in enumerate(stage1):
        mine = order[positions == pos]
        enter = np.asarray(inst.enter_us)[mine] if len(mine) else np.zeros(0, dtype=np.int64)
        mine = mine[np.argsort(enter, kind="stable")]
        cluster.log.instance[mine] = inst.index
        inst.assign_all(mine.tolist())
    cluster.feeder_done = True


def _snapshots(cluster: Cluster, interval_us: int) -> None:
    """Refreshes what the routers see every ``interval_us`` until no routing decision is left (timeout
    callbacks, no process)."""
    env = cluster.env

    def tick(_event) -> None:
        now = int(env.now)
        for s in cluster.signals:
            s.refresh(now)
        if cluster.feeder_done and (not cluster.disaggregated or all(i.process.triggered for i in cluster.stage1)):
            cluster.next_tick_us = math.inf
        else:
            cluster.next_tick_us = now + interval_us
            env.timeout(interval_us).callbacks.append(tick)
        if cluster.quiet:
            cluster.set_quiet()

    tick(None)


def _close_decode(cluster: Cluster):
    yield cluster.env.all_of([i.process for i in cluster.stage1])
    for inst in cluster.decode:
        inst.close()


def run_cluster(cluster: Cluster, progress: ProgressFn | None = None) -> None:
    env = cluster.env
    cfg = cluster.config
    req = cluster.requests
    order = np.flatnonzero(cluster.admitted)  # arrival order (the table is sorted by arrival)
    dynamic = not cluster.router.static
    loop = None
    if cfg.workload.closed_loop:  # sends depend on completions (blis.workload.closed_loop)
        from blis.cluster.closed_loop import ClusterLoop

        loop = ClusterLoop(cluster)
        loop.start()
    elif dynamic:
        cluster.feeder = feeder = _Feeder(cluster, order.tolist(), req.arrival_us[order].tolist())
        # routers read the instances only at arrivals and snapshot ticks (P/D hand-overs come at other
        # instances' step ends): between those an instance may advance decode stretches
        cluster.quiet = not cluster.disaggregated
        feeder.start()
    else:
        _assign_static(cluster, order)
    if cluster.disaggregated:
        env.process(_close_decode(cluster))
    routers = [cluster.router] + ([cluster.decode_router] if cluster.decode_router is not None else [])
    if cfg.snapshot_refresh_ms > 0 and any(not r.static for r in routers):
        _snapshots(cluster, max(1, round(cfg.snapshot_refresh_ms * 1000)))
    # static routing without P/D: the instances never interact, so each runs on its own clock
    independent = loop is None and not dynamic and not cluster.disaggregated
    run_environment(env, cluster.done_count, len(req), cfg.horizon_us,
                    loop.span_hint_us() if loop else int(req.arrival_us[-1]), progress,
                    processes=[inst.process for inst in cluster.instances],
                    solo=cluster.instances if independent else None)
    if loop is not None:
        loop.finish(int(env.now))


def simulate_cluster(config: ClusterConfig, requests: RequestTable | None = None,
                     progress: ProgressFn | None = None, on_route: RouteHook | None = None) -> SimResult:
    """Simulate the cluster ``config`` (``requests`` replaces ``config.workload``).

    ``on_route(stage, request, instance)`` (optional) is called before each routing decision takes effect
    (stage "arrival", or "decode" for the P/D hand-over); state-independent routing decided up front is not
    reported. Returns a SimResult whose summary holds cluster metrics and whose ``instances`` holds one row
    per instance."""
    if not isinstance(config, ClusterConfig):
        raise TypeError("simulate_cluster needs a ClusterConfig (use blis.simulate for a SimConfig)")
    cluster = build_cluster(config, requests)
    cluster.on_route = on_route
    run_cluster(cluster, progress)
    return summarize(cluster)


# ------------------------------------------------------------------------------------------------ results
def summarize(cluster: Cluster) -> SimResult:
    """The cluster's result: `blis.report.build_result` with the routing, admission and P/D fields."""
    cfg = cluster.config
    req = cluster.requests
    log = cluster.log
    horizon = cfg.horizon_us
    arrived = req.arrival_us < horizon if horizon is not None else np.ones(len(req), dtype=bool)
    admitted = cluster.admitted & arrived
    routed = admitted & (log.instance >= 0)
    extra: dict = {
        "num_instances": len(cluster.instances),
        "routing": cfg.routing,
    }
    if cfg.routing == "weighted":
        pairs = cfg.routing_scorers or None
        extra["routing_scorers"] = (",".join(f"{n}:{w:g}" for n, w in pairs) if pairs else DEFAULT_SCORERS)
    extra.update({
        "snapshot_refresh_ms": cfg.snapshot_refresh_ms,
        "admission": cfg.admission,
        "arrived_requests": int(arrived.sum()),
        "admitted_requests": int(admitted.sum()),
        "admission_rejected_requests": int((~cluster.admitted).sum()),
        "routed_requests": int(routed.sum()),
        "disaggregated": cluster.disaggregated,
        "pools": pool_rows(cluster.groups),
    })
    extra_columns: dict = {"admission_rejected": ~cluster.admitted}
    if cluster.disaggregated:
        assert cluster.decode_log is not None
        transfer_ms = cluster.transfer_us / 1000.0
        extra.update({
            "prefill_instances": len(cluster.stage1),
            "decode_instances": len(cluster.decode),
            "pd_transfer_bandwidth_gb_s": cfg.pd_transfer_bandwidth,
            "pd_transfer_latency_ms": cfg.pd_transfer_latency_ms,
            "pd_kv_bytes_source": cluster.kv_bytes_source,
            "transfers": int((~np.isnan(transfer_ms)).sum()),
        })
        extra.update(stats("transfer", cluster.transfer_us[~np.isnan(cluster.transfer_us)]))
        extra_columns.update({
            "prefill_instance": log.instance.copy(),
            "decode_instance": cluster.decode_log.instance.copy(),
            "transfer_start_ms": cluster.transfer_start_us / 1000.0,
            "transfer_ms": transfer_ms,
        })
    res = build_result(req, cluster.groups, log, decode_log=cluster.decode_log, extra=extra,
                       extra_columns=extra_columns, instance_table=True)
    res.summary["instances"] = res.instance_rows
    return res
