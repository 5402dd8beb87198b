"""`simulate(config)`: build the instance, run the SimPy environment, summarise.

Pure: no global state and no files; the same config and seed give the same result, byte for byte.
The pieces (`prepare`, `collect`) are shared with the cluster simulator (`blis.cluster`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import simpy

from blis.config import SimConfig
from blis.engine.block_keys import BlockKeys
from blis.engine.instance import Instance
from blis.engine.timeline import RequestLog
from blis.errors import BlisInputError
from blis.latency.base import LatencyModel, create_latency_model
from blis.metrics import global_steps, itl_samples, stats
from blis.result import SimResult
from blis.workload.request_table import RequestTable

ProgressFn = Callable[[float], None]


@dataclass
class Prepared:
    """Everything a run needs besides the SimPy environment."""

    config: SimConfig
    requests: RequestTable
    model: LatencyModel
    latency_model_name: str
    latency_model_reason: str
    num_blocks: int
    enter_us: np.ndarray
    block_keys: BlockKeys


def choose_latency_model(config: SimConfig) -> tuple[str, str]:
    """The latency model to use and why (automatic selection lives in `blis.latency.selection`)."""
    if config.latency_model:
        return config.latency_model, "chosen by --latency-model"
    from blis.latency.calibration import latency_model_for  # a calibrate file names its model

    implied = latency_model_for(config)
    if implied is not None:
        return implied
    try:
        from blis.latency.selection import choose_latency_model as choose
    except ModuleNotFoundError:
        return "blackbox", "default"
    return choose(config)


def resolve_kv_blocks(config: SimConfig) -> int:
    """`total_kv_blocks` if given, else what vLLM would allocate for the model on the hardware."""
    if config.engine.total_kv_blocks is not None:
        return config.engine.total_kv_blocks
    from blis.physics.kv_capacity import kv_blocks_for_config

    return kv_blocks_for_config(config)


def prepare(config: SimConfig, requests: Optional[RequestTable] = None) -> Prepared:
    if requests is None:
        requests = config.workload.generate()
    requests.validate()
    engine = config.engine
    if engine.max_model_len is not None:
        cap = np.maximum(engine.max_model_len - requests.input_tokens, 1)
        if (requests.output_tokens > cap).any():
            requests = RequestTable(requests.arrival_us, requests.input_tokens,
                                    np.minimum(requests.output_tokens, cap), requests.prefix_group,
                                    requests.prefix_len, requests.prompt_id, requests.parent,
                                    requests.client, requests.client_names)
    name, reason = choose_latency_model(config)
    model = create_latency_model(name, config)
    num_blocks = resolve_kv_blocks(config)
    bs = engine.block_size
    need = -(-(requests.input_tokens + requests.output_tokens - 1) // bs)
    if engine.max_model_len is not None:
        need = np.where(requests.input_tokens >= engine.max_model_len, 0, need)  # rejected anyway
    worst = int(np.argmax(need))
    if need[worst] > num_blocks:
        raise BlisInputError(
            f"input_tokens: request {worst} needs {int(need[worst])} KV blocks "
            f"({int(requests.input_tokens[worst])} prompt + {int(requests.output_tokens[worst])} output tokens) "
            f"but the instance holds only {num_blocks} (total_kv_blocks); it could never run"
        )
    if hasattr(model, "queueing_times_us"):
        delay = np.asarray(model.queueing_times_us(requests.input_tokens), dtype=np.int64)
    else:
        delay = np.fromiter((model.queueing_time_us(int(n)) for n in requests.input_tokens), dtype=np.int64,
                            count=len(requests))
    if (delay < 0).any():
        raise ValueError(f"latency model {name!r} returned a negative queueing time")
    enter_us = requests.arrival_us + delay
    return Prepared(config, requests, model, name, reason, num_blocks, enter_us,
                    BlockKeys(requests, bs))


def run_environment(env: simpy.Environment, done: Callable[[], int], total: int, horizon: Optional[int],
                    last_arrival: int, progress: Optional[ProgressFn], processes: Optional[list] = None) -> None:
    """Run to the end (or ``horizon``); with ``progress``, in slices of simulated time, reporting the finished
    fraction between slices (nothing is added to the step loop). The run ends when every process in
    ``processes`` has ended, or, without them, when nothing but the last slice's end is scheduled."""
    if progress is None:
        env.run(until=horizon)
        return
    slice_us = max(1, (last_arrival or 1) // 50)

    def alive() -> bool:
        if processes is not None:
            return any(p.is_alive for p in processes)
        # SimPy keeps the event that ended the last slice queued at `now`
        return env.peek() > env.now or len(env._queue) > 1

    while True:
        target = env.now + slice_us
        if horizon is not None and target >= horizon:
            env.run(until=horizon)
            break
        env.run(until=target)
        progress(done() / max(total, 1))
        if not alive():
            break
    progress(done() / max(total, 1))


def simulate(config: SimConfig, requests: Optional[RequestTable] = None,
             progress: Optional[ProgressFn] = None) -> SimResult:
    """Simulate one serving instance under ``config`` (``requests`` replaces ``config.workload``)."""
    from blis.cluster.config import ClusterConfig  # lazy: blis.cluster builds on this module

    if isinstance(config, ClusterConfig):
        raise TypeError("use blis.simulate_cluster for a ClusterConfig")
    prep = prepare(config, requests)
    req = prep.requests
    env = simpy.Environment()
    log = RequestLog(len(req))
    inst = Instance(env, 0, config.engine, prep.num_blocks, prep.model, prep.block_keys, log,
                    req.input_tokens.tolist(), req.output_tokens.tolist(), prep.enter_us.tolist())
    order = np.argsort(prep.enter_us, kind="stable")
    log.instance[:] = 0
    inst.assign_all(order.tolist())
    run_environment(env, lambda: int((log.finish_step >= 0).sum()), len(req), config.horizon_us,
                    int(req.arrival_us[-1]), progress, processes=[inst.process])
    return collect(prep, [inst], log, extra={"num_instances": 1})


def collect(prep: Prepared, instances: list[Instance], log: RequestLog, extra: Optional[dict] = None,
            decode_log: Optional[RequestLog] = None, extra_columns: Optional[dict] = None) -> SimResult:
    """Per-request times and the summary, from the request log and every instance's step log.

    ``decode_log`` (prefill/decode disaggregation): what the decode instances recorded; the client's tokens
    (first token, finish, inter-token gaps) then come from it, while ``log`` holds the prefill side
    (scheduling, prefix-cache hits). ``extra_columns`` are appended to the per-request table."""
    req = prep.requests
    cfg = prep.config
    a2 = float(prep.model.output_token_processing_time_us())
    lengths = np.array([len(i.steps) for i in instances], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    starts = np.concatenate([i.steps.column("start_us") for i in instances]) if lengths.sum() else \
        np.zeros(0, dtype=np.int64)
    ends = np.concatenate([i.steps.end_us() for i in instances]) if lengths.sum() else np.zeros(0, dtype=np.int64)

    def time_at(local: np.ndarray, table: np.ndarray, where: RequestLog = log) -> np.ndarray:
        g = global_steps(where.instance, local, offsets)
        out = np.full(len(g), np.nan)
        ok = g >= 0
        out[ok] = table[g[ok]]
        return out

    tokens = log if decode_log is None else decode_log  # the log of the instance streaming the tokens
    arrival = req.arrival_us.astype(np.float64)
    out_tokens = req.output_tokens.astype(np.float64)
    scheduled = time_at(log.scheduled_step, starts)
    first = time_at(tokens.first_token_step, ends, tokens) + a2
    finish = time_at(tokens.finish_step, ends, tokens) + out_tokens * a2
    preemptions = log.preemptions if decode_log is None else log.preemptions + decode_log.preemptions
    finished = ~np.isnan(finish)
    ttft = first - arrival
    e2e = finish - arrival
    with np.errstate(invalid="ignore", divide="ignore"):
        tpot = np.where(out_tokens > 1, (e2e - ttft) / (out_tokens - 1), np.nan)

    seg_req, seg_start, seg_end = tokens.segments()
    itl_values, itl_counts = itl_samples(ends.astype(np.float64), tokens.instance[seg_req], seg_req, seg_start,
                                         seg_end, offsets, a2)
    summary: dict = {
        "model": cfg.model,
        "hardware": cfg.hardware,
        "tp": cfg.tp,
        "latency_model": prep.latency_model_name,
        "latency_model_reason": prep.latency_model_reason,
        "total_kv_blocks": prep.num_blocks,
        "total_requests": int(len(req)),
        "completed_requests": int(finished.sum()),
        "rejected_requests": int(log.rejected.sum()),
        "unfinished_requests": int(len(req) - finished.sum() - log.rejected.sum()),
        "preemption_count": int(preemptions.sum()),
    }
    if extra:
        summary.update(extra)
    summary.update(stats("ttft", ttft[finished]))
    summary.update(stats("e2e", e2e[finished]))
    tp_done = tpot[finished & (out_tokens > 1)]
    summary.update(stats("tpot", tp_done))
    summary.update(stats("itl", itl_values, itl_counts))
    end_time = float(np.nanmax(finish)) if finished.any() else float(ends.max() if len(ends) else 0.0)
    start_time = float(arrival.min()) if len(arrival) else 0.0
    duration_s = max(end_time - start_time, 1.0) / 1e6
    summary["sim_duration_s"] = (ends.max() if len(ends) else 0) / 1e6
    summary["tokens_per_sec"] = float(out_tokens[finished].sum() / duration_s)
    summary["input_tokens_per_sec"] = float(req.input_tokens[finished].sum() / duration_s)
    summary["responses_per_sec"] = float(finished.sum() / duration_s)
    durations = np.concatenate([i.steps.column("duration_us") for i in instances]).astype(np.float64) \
        if lengths.sum() else np.zeros(0)
    used = np.concatenate([i.steps.column("kv_blocks_used") for i in instances]).astype(np.float64) \
        if lengths.sum() else np.zeros(0)
    blocks = np.repeat([i.scheduler.pool.num_blocks for i in instances], lengths).astype(np.float64)
    util = used / blocks if len(blocks) else np.zeros(0)
    summary["kv_util_mean"] = float((util * durations).sum() / durations.sum()) if durations.sum() else 0.0
    summary["kv_util_max"] = float(util.max()) if len(util) else 0.0
    hits = sum(i.scheduler.pool.hits for i in instances)
    queries = sum(i.scheduler.pool.queries for i in instances)
    summary["prefix_cache_hit_rate"] = hits / queries if queries else 0.0
    summary["num_steps"] = int(lengths.sum())
    describe = prep.model.describe()
    if "lookup_coverage" in describe:
        summary["lookup_coverage"] = describe["lookup_coverage"]
    from blis.latency.fidelity import statement  # issue #10 hook: overload flag and fidelity statement
    from blis.overload import detect

    summary.update(detect(arrival, scheduled, finish, float(ends.max()) if len(ends) else 0.0))
    summary["fidelity"] = statement(cfg, prep.latency_model_name, describe, summary["overloaded"])
    summary = {k: _clean(v) for k, v in summary.items()}
    columns = {
        "request_id": np.arange(len(req)),
        "client": np.asarray(req.client_names, dtype=object)[req.client] if len(req) else np.zeros(0),
        "instance": log.instance.copy(),
        "arrival_ms": arrival / 1000.0,
        "scheduled_ms": scheduled / 1000.0,
        "first_token_ms": first / 1000.0,
        "finish_ms": finish / 1000.0,
        "input_tokens": req.input_tokens.copy(),
        "output_tokens": req.output_tokens.copy(),
        "cached_tokens": log.cached_tokens.copy(),
        "preemptions": preemptions.copy(),
        "ttft_ms": ttft / 1000.0,
        "e2e_ms": e2e / 1000.0,
        "tpot_ms": tpot / 1000.0,
        "finished": finished,
        "rejected": log.rejected.copy(),
    }
    if extra_columns:
        columns.update(extra_columns)
    step_columns = {"instance": np.repeat(np.arange(len(instances)), lengths)}
    for name in ("start_us", "duration_us", "prefill_tokens", "decode_tokens", "num_requests",
                 "kv_blocks_used", "preemptions", "num_waiting"):
        step_columns[name] = np.concatenate([i.steps.column(name) for i in instances]) if lengths.sum() else \
            np.zeros(0, dtype=np.int64)
    return SimResult(summary=summary, request_columns=columns, step_columns=step_columns,
                     model_description=describe)


def _clean(v):
    """JSON-friendly scalars: numpy to Python, NaN to None, floats rounded to 6 decimals."""
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        f = float(v)
        return None if f != f else round(f, 6)
    return v
