"""The run path, for one instance and for a cluster alike.

1. resolve: a configuration becomes a `Deployment` (model spec, hardware, TP, KV blocks per instance and
   the latency model, resolved once and passed down);
2. prepare the requests (validate, cut outputs to ``max_model_len``, check every request can ever fit,
   enter times = arrival + the API server's delay);
3. build instances (`blis.engine.Instance`) on one SimPy environment and run it (`run_environment`);
4. report (`blis.report.build_result`).

`run_single` does all four for one instance; `blis.cluster` reuses 1, 2 and 4 around its routers.
Pure: no global state and no files; the same config and seed give the same result, byte for byte.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Optional

import numpy as np
import simpy

from blis.config import ServingConfig, SimConfig
from blis.engine import BlockKeys, Instance, RequestLog, Role
from blis.errors import BlisInputError
from blis.latency.base import LatencyModel, create_latency_model
from blis.report import build_result
from blis.result import SimResult
from blis.workload.request_table import RequestTable

if TYPE_CHECKING:  # pragma: no cover
    from blis.physics.hardware import HardwareSpec
    from blis.physics.model_spec import ModelSpec

ProgressFn = Callable[[float], None]


# ------------------------------------------------------------------------------------------------- resolve
@dataclass(frozen=True)
class Deployment:
    """One instance type, resolved once: what it runs (model spec), on what (hardware, TP), with how many
    KV blocks (per instance; each TP rank holds that many), priced by which latency model and why.

    ``model_spec``/``hardware_spec`` are None when blis does not know them (a blackbox run of a private
    model); `require_model_spec` then raises the lookup's own error.
    """

    config: SimConfig
    latency_model: LatencyModel
    latency_model_name: str
    latency_model_reason: str
    num_kv_blocks: int
    model_spec: Optional[ModelSpec] = None
    hardware_spec: Optional[HardwareSpec] = None
    physics_error: Optional[Exception] = field(default=None, repr=False, compare=False)

    @property
    def tp(self) -> int:
        return self.config.tp

    @property
    def engine(self):
        return self.config.engine

    @property
    def output_token_time_us(self) -> int:
        """The latency model's per-output-token processing time (us), as the client sees it."""
        return int(self.latency_model.output_token_processing_time_us())

    def require_model_spec(self) -> ModelSpec:
        if self.model_spec is None:
            raise self.physics_error or BlisInputError(f"model: {self.config.model!r} is unknown")
        return self.model_spec


def choose_latency_model(config: ServingConfig) -> tuple[str, str]:
    """The latency model to use and why (automatic selection lives in `blis.latency.selection`)."""
    if config.latency_model:
        return config.latency_model, "chosen by --latency-model"
    from blis.latency.calibration import latency_model_for  # a calibrate file names its model

    implied = latency_model_for(config)
    if implied is not None:
        return implied
    from blis.latency.selection import choose_latency_model as choose

    return choose(config)


def _resolve_physics(config: ServingConfig):
    """(model spec, hardware spec, first error): each None when it cannot be resolved; the error is raised
    only by what needs them (KV sizing, P/D transfer sizing)."""
    from blis.physics.hardware import get_hardware, load_hardware_file
    from blis.physics.model_registry import model_for_config

    spec = hw = error = None
    try:
        spec = model_for_config(config)  # with its quantization, KV dtype and expert parallelism
    except Exception as exc:  # noqa: BLE001 - kept and raised where the spec is needed
        error = exc
    try:
        extra = load_hardware_file(config.hardware_file) if config.hardware_file else None
        hw = get_hardware(config.hardware, extra)
    except Exception as exc:  # noqa: BLE001
        error = error or exc
    return spec, hw, error


def resolve_deployment(config: SimConfig) -> Deployment:
    """Choose and build the latency model, resolve the model and hardware, size the KV cache
    (``total_kv_blocks`` if given, else what vLLM would allocate for the model on the hardware)."""
    name, reason = choose_latency_model(config)
    model = create_latency_model(name, config)
    spec, hw, error = _resolve_physics(config)
    e = config.engine
    if e.total_kv_blocks is not None:
        blocks = e.total_kv_blocks
    else:
        if error is not None:
            raise error
        from blis.physics.kv_capacity import kv_blocks

        blocks = kv_blocks(spec, hw, config.tp, e.block_size, e.gpu_memory_utilization, e.max_num_batched_tokens,
                           e.max_num_seqs)
    return Deployment(config, model, name, reason, blocks, spec, hw, error)


# ------------------------------------------------------------------------------------------------- prepare
def prepare_requests(config: ServingConfig, requests: Optional[RequestTable] = None) -> RequestTable:
    """The run's requests (``requests``, else ``config.workload`` generated), validated, with outputs cut so
    that prompt + output fits ``max_model_len`` (prompts that do not fit at all are rejected later)."""
    if requests is None:
        requests = config.workload.generate()
    requests.validate()
    max_len = config.engine.max_model_len
    if max_len is not None:
        cap = np.maximum(max_len - requests.input_tokens, 1)
        if (requests.output_tokens > cap).any():
            requests = requests_with_outputs(requests, np.minimum(requests.output_tokens, cap))
    return requests


def requests_with_outputs(t: RequestTable, output_tokens: np.ndarray) -> RequestTable:
    return RequestTable(t.arrival_us, t.input_tokens, output_tokens, t.prefix_group, t.prefix_len, t.prompt_id,
                        t.parent, t.client, t.client_names)


def check_fits(dep: Deployment, input_tokens: np.ndarray, output_tokens: np.ndarray) -> None:
    """Refuse a run in which some request needs more KV blocks than an instance holds (vLLM would preempt
    it forever)."""
    engine = dep.engine
    need = -(-(input_tokens + output_tokens - 1) // engine.block_size)
    if engine.max_model_len is not None:
        need = np.where(input_tokens >= engine.max_model_len, 0, need)  # rejected anyway
    worst = int(np.argmax(need))
    if need[worst] > dep.num_kv_blocks:
        raise BlisInputError(
            f"input_tokens: request {worst} needs {int(need[worst])} KV blocks "
            f"({int(input_tokens[worst])} prompt + {int(output_tokens[worst])} output tokens) "
            f"but the instance holds only {dep.num_kv_blocks} (total_kv_blocks); it could never run"
        )


def enter_times(dep: Deployment, requests: RequestTable) -> np.ndarray:
    """Per request, arrival + the API server's queueing delay (us): when it would enter the WAITING queue."""
    model = dep.latency_model
    if hasattr(model, "queueing_times_us"):
        delay = np.asarray(model.queueing_times_us(requests.input_tokens), dtype=np.int64)
    else:
        delay = np.fromiter((model.queueing_time_us(int(n)) for n in requests.input_tokens), dtype=np.int64,
                            count=len(requests))
    if (delay < 0).any():
        raise ValueError(f"latency model {dep.latency_model_name!r} returned a negative queueing time")
    return requests.arrival_us + delay


# --------------------------------------------------------------------------------------------------- build
@dataclass
class InstanceGroup:
    """Identical instances of one deployment and role: a cluster's pool, or a single run's one instance.
    ``enter_us``: per request, arrival + this deployment's API-server delay (us)."""

    name: str
    role: Role
    deployment: Deployment
    enter_us: np.ndarray
    instances: list[Instance] = field(default_factory=list)

    def add_instance(self, env: simpy.Environment, index: int, block_keys: BlockKeys, log: RequestLog,
                     input_tokens: list, output_tokens: list, enter_us: list | None = None,
                     horizon_us: Optional[int] = None) -> Instance:
        dep = self.deployment
        inst = Instance(env, index, dep.engine, dep.num_kv_blocks, dep.latency_model, block_keys, log,
                        input_tokens, output_tokens, self.enter_us.tolist() if enter_us is None else enter_us,
                        role=self.role)
        inst.horizon_us = horizon_us
        self.instances.append(inst)
        return inst


# ----------------------------------------------------------------------------------------------------- run
def run_environment(env: simpy.Environment, done: Callable[[], int], total: int, horizon: Optional[int],
                    last_arrival: int, progress: Optional[ProgressFn], processes: Optional[list] = None,
                    solo: Optional[list[Instance]] = None) -> None:
    """Run to the end (or ``horizon``); with ``progress``, in slices of simulated time, reporting the finished
    fraction between slices (nothing is added to the step loop). The run ends when every process in
    ``processes`` has ended, or, without them, when nothing but the last slice's end is scheduled.

    ``solo``: instances that nothing else interacts with (closed, statically fed, no completion hook): each
    runs on its own clock (`Instance.advance`), one after the other, instead of on ``env``; the same steps
    and answers, without SimPy's cost per event."""
    if solo is not None:
        def run_to(until: float) -> bool:
            return any([inst.advance(until) for inst in solo])  # (a list: every instance advances)
    else:
        def run_to(until: float) -> bool:
            env.run(until=until)
            if processes is not None:
                return any(p.is_alive for p in processes)
            # SimPy keeps the event that ended the last slice queued at `now`
            return env.peek() > env.now or len(env._queue) > 1

    if progress is None:
        if solo is not None:
            run_to(horizon if horizon is not None else float("inf"))
        else:
            env.run(until=horizon)
        return
    slice_us = max(1, (last_arrival or 1) // 50)
    now = env.now
    while True:
        target = now + slice_us
        if horizon is not None and target >= horizon:
            run_to(horizon)
            break
        alive = run_to(target)
        now = target
        progress(done() / max(total, 1))
        if not alive:
            break
    progress(done() / max(total, 1))


@dataclass
class SingleInstance:
    """One instance built for ``config``, fed nothing yet: the prepared requests, its group (deployment and
    enter times), the environment, the request log and the instance."""

    requests: RequestTable
    group: InstanceGroup
    env: simpy.Environment
    log: RequestLog
    instance: Instance


def build_single(config: SimConfig, requests: Optional[RequestTable] = None) -> SingleInstance:
    """Resolve, prepare and build one serving instance (``requests`` replaces ``config.workload``)."""
    req = prepare_requests(config, requests)
    dep = resolve_deployment(config)
    check_fits(dep, req.input_tokens, req.output_tokens)
    group = InstanceGroup("default", "mixed", dep, enter_times(dep, req))
    env = simpy.Environment()
    log = RequestLog(len(req))
    enter = array("q", group.enter_us.astype(np.int64).tobytes())  # 8 bytes a request (a list holds ~36)
    inputs, outputs = req.input_tokens.tolist(), req.output_tokens.tolist()
    inst = group.add_instance(env, 0, BlockKeys(req, config.engine.block_size, inputs, outputs), log, inputs,
                              outputs, enter, config.horizon_us)
    log.instance[:] = 0
    return SingleInstance(req, group, env, log, inst)


def run_single(config: SimConfig, requests: Optional[RequestTable] = None,
               progress: Optional[ProgressFn] = None) -> SimResult:
    """Simulate one serving instance under ``config`` (``requests`` replaces ``config.workload``)."""
    built = build_single(config, requests)
    req, group, env, log, inst = built.requests, built.group, built.env, built.log, built.instance
    dep = group.deployment
    loop = None
    if config.workload.closed_loop:  # sends depend on completions (blis.workload.closed_loop)
        from blis.workload.closed_loop import LoopRun

        loop = LoopRun(env, req, group.enter_us, config.workload,
                       float(dep.latency_model.output_token_processing_time_us()), log.rejected.__getitem__,
                       clock=lambda: inst.now_us)
        inst.on_finish = loop.on_done
        inst.self_fed = True  # every send happens at the start or in the instance's own completion hook
        loop.start(inst.push, inst.close)
    else:
        inst.assign_all(array("q", np.argsort(group.enter_us, kind="stable").astype(np.int64).tobytes()))
    run_environment(env, lambda: int((log.finish_step >= 0).sum()), len(req), config.horizon_us,
                    loop.span_hint_us() if loop else int(req.arrival_us[-1]), progress, processes=[inst.process],
                    solo=[inst])
    if loop is not None:  # the real send times become the requests' arrival and enter times
        loop.finish(config.horizon_us if config.horizon_us is not None else inst.now_us)
        req, group.enter_us = loop.requests, loop.enter_us
    return build_result(req, [group], log, extra={"num_instances": 1})
