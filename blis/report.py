"""The report path, for one instance and for a cluster alike: per-request times, the summary, the
per-request, per-step and per-instance tables (`build_result`).

Every number comes from the request logs and the instances' step logs (`blis.metrics` rebuilds per-token
times). The summary's keys and their order are part of the output contract (byte-identical JSON).
"""

from __future__ import annotations

import math
from functools import partial
from typing import TYPE_CHECKING, Optional

import numpy as np

from blis.engine import RequestLog
from blis.metrics import global_steps, itl_samples_runs, stats
from blis.result import SimResult
from blis.step_table import RunSteps, StepColumns, kv_utilization
from blis.workload.request_table import RequestTable

if TYPE_CHECKING:  # pragma: no cover
    from blis.run import InstanceGroup

STEP_COLUMNS = ("start_us", "duration_us", "prefill_tokens", "decode_tokens", "num_requests", "kv_blocks_used",
                "preemptions", "num_waiting")


def build_result(requests: RequestTable, groups: list[InstanceGroup], log: RequestLog,
                 decode_log: Optional[RequestLog] = None, extra: Optional[dict] = None,
                 extra_columns: Optional[dict] = None, instance_table: bool = False) -> SimResult:
    """Per-request times, the summary and the tables of a finished run.

    ``groups``: the run's instances by deployment (their indices are 0..n-1 in group order). ``log``: the
    request log the instances (or, with P/D, the prefill instances) wrote. ``decode_log`` (P/D): what the
    decode instances recorded; the client's tokens (first token, finish, inter-token gaps) then come from
    it, while ``log`` holds the prefill side (scheduling, prefix-cache hits). ``extra``: summary fields
    placed after the request counts; ``extra_columns``: appended to the per-request table.
    ``instance_table``: build the per-instance rows now (a cluster puts them in its summary); otherwise they
    are built when ``SimResult.instances`` is first read (nothing is held for them but a few numbers each).
    """
    instances = [inst for g in groups for inst in g.instances]
    req = requests
    first = groups[0].deployment
    cfg = first.config
    a2 = float(first.latency_model.output_token_processing_time_us())
    run_steps = RunSteps(instances)  # run-length step logs, never expanded here (issue #17)
    lengths, offsets = run_steps.lengths, run_steps.offsets
    kv_util = kv_utilization(instances, run_steps)  # before the step ends exist: one per-step array at a time
    ends = run_steps.ends
    durations_us = run_steps.durations

    def time_at(local: np.ndarray, table: np.ndarray, where: RequestLog = log) -> np.ndarray:
        g = global_steps(where.instance, local, offsets)
        out = np.full(len(g), np.nan)
        ok = g >= 0
        out[ok] = table[g[ok]]
        return out

    tokens = log if decode_log is None else decode_log  # the log of the instance streaming the tokens
    arrival = req.arrival_us.astype(np.float64)
    out_tokens = req.output_tokens.astype(np.float64)
    scheduled = time_at(log.scheduled_step, ends) - time_at(log.scheduled_step, durations_us)
    first_token = time_at(tokens.first_token_step, ends, tokens) + a2
    finish = time_at(tokens.finish_step, ends, tokens) + out_tokens * a2
    preemptions = log.preemptions if decode_log is None else log.preemptions + decode_log.preemptions
    finished = ~np.isnan(finish)
    ttft = first_token - arrival
    e2e = finish - arrival
    with np.errstate(invalid="ignore", divide="ignore"):
        tpot = np.where(out_tokens > 1, (e2e - ttft) / (out_tokens - 1), np.nan)

    seg_req, seg_start, seg_end = tokens.segments()
    seg_offset = offsets[tokens.instance[seg_req]] if len(seg_req) else np.zeros(0, dtype=np.int64)
    itl_values, itl_counts = itl_samples_runs(ends, durations_us, run_steps.record_first, run_steps.record_count,
                                              seg_offset + seg_start, seg_offset + seg_end, seg_req, a2)
    summary: dict = {
        "model": cfg.model,
        "hardware": cfg.hardware,
        "tp": cfg.tp,
        "latency_model": first.latency_model_name,
        "latency_model_reason": first.latency_model_reason,
        "total_kv_blocks": int(sum(i.num_kv_blocks for i in instances)),
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
    summary.update(stats("tpot", tpot[finished & (out_tokens > 1)]))
    summary.update(stats("itl", itl_values, itl_counts))
    horizon = cfg.horizon_us
    # the last step's end (a step running at the horizon stops there); the per-step ends are dropped after it
    clipped = ends[:0] if not len(ends) else np.array([ends.max() if horizon is None else min(ends.max(), horizon)])
    del ends, run_steps.ends
    duration_s = run_duration_s(arrival, finish, finished, clipped)
    summary["sim_duration_s"] = (clipped.max() if len(clipped) else 0) / 1e6
    summary["tokens_per_sec"] = float(out_tokens[finished].sum() / duration_s)
    summary["input_tokens_per_sec"] = float(req.input_tokens[finished].sum() / duration_s)
    summary["responses_per_sec"] = float(finished.sum() / duration_s)
    summary["kv_util_mean"], summary["kv_util_max"] = kv_util
    cache = [i.cache_stats() for i in instances]
    hits = sum(c.hits for c in cache)
    queries = sum(c.queries for c in cache)
    summary["prefix_cache_hit_rate"] = hits / queries if queries else 0.0
    summary["num_steps"] = int(lengths.sum())
    describe = first.latency_model.describe()
    if "lookup_coverage" in describe:
        summary["lookup_coverage"] = describe["lookup_coverage"]
    from blis.latency.fidelity import statement  # overload flag and fidelity statement (issue #10)
    from blis.overload import detect

    summary.update(detect(arrival, scheduled, finish, float(clipped.max()) if len(clipped) else 0.0))
    summary["fidelity"] = statement(cfg, first.latency_model_name, describe, summary["overloaded"])
    summary = {k: clean(v) for k, v in summary.items()}
    columns = {
        "request_id": np.arange(len(req)),
        "client": np.asarray(req.client_names, dtype=object)[req.client] if len(req) else np.zeros(0),
        "instance": log.instance.copy(),
        "arrival_ms": arrival / 1000.0,
        "scheduled_ms": scheduled / 1000.0,
        "first_token_ms": first_token / 1000.0,
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
    step_columns = StepColumns(run_steps.logs)  # the per-step table, expanded when read
    prefills = None
    if decode_log is not None:  # P/D: prefills finished per prefill instance
        pi = log.instance[log.finish_step >= 0]
        prefills = np.bincount(pi[pi >= 0], minlength=len(instances))
    rows = partial(instance_rows, instance_facts(groups), prefills, horizon_us=horizon)
    res = SimResult(summary=summary, request_columns=columns, step_columns=step_columns,
                    model_description=describe, instance_rows_factory=rows)
    if instance_table:
        res.instance_rows = rows(res)
    return res


def run_duration_s(arrival: np.ndarray, finish: np.ndarray, finished: np.ndarray, step_ends: np.ndarray) -> float:
    """Seconds from the first arrival to the later of the last finish and the last step's end (engines keep
    working after the last finished request when a horizon stops the run), at least 1 us: the denominator
    of every throughput figure."""
    end_time = max(float(np.nanmax(finish)) if finished.any() else 0.0,
                   float(step_ends.max()) if len(step_ends) else 0.0)
    start_time = float(arrival.min()) if len(arrival) else 0.0
    return max(end_time - start_time, 1.0) / 1e6


def clean(v):
    """JSON-friendly scalars: numpy to Python, NaN to None, floats rounded to 6 decimals."""
    if isinstance(v, dict):
        return {k: clean(x) for k, x in v.items()}
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        f = float(v)
        return None if f != f else round(f, 6)
    return v


# ------------------------------------------------------------------------------------------ per instance
def _num(v) -> float | int | None:
    if isinstance(v, (np.integer, int)) and not isinstance(v, bool):
        return int(v)
    f = float(v)
    return None if math.isnan(f) else round(f, 6)


def pool_rows(groups: list[InstanceGroup]) -> list[dict]:
    """One row per group (a cluster's pools): role, size, deployment, KV blocks per instance."""
    rows = []
    for g in groups:
        c = g.deployment.config
        rows.append({
            "name": g.name,
            "role": g.role,
            "count": len(g.instances),
            "model": c.model,
            "hardware": c.hardware,
            "tp": c.tp,
            "latency_model": g.deployment.latency_model_name,
            "kv_blocks_per_instance": int(g.deployment.num_kv_blocks),
        })
    return rows


def instance_facts(groups: list[InstanceGroup]) -> list[dict]:
    """What the per-instance table needs from each instance, in index order (plain values)."""
    facts = []
    for g in groups:
        c = g.deployment.config
        for inst in g.instances:
            facts.append({"instance": inst.index, "pool": g.name, "role": g.role, "model": c.model,
                          "hardware": c.hardware, "tp": c.tp, "total_kv_blocks": inst.num_kv_blocks,
                          "routed_requests": inst.num_routed, "prefix_cache_hit_rate": inst.cache_stats().hit_rate})
    facts.sort(key=lambda f: f["instance"])
    return facts


def instance_rows(facts: list[dict], prefills: Optional[np.ndarray], res: SimResult,
                  horizon_us: Optional[int] = None) -> list[dict]:
    """One row per instance: load served, throughput, KV use, preemptions, cache hits, latency percentiles.

    ``tokens_per_sec`` counts output tokens of the requests that finished on the instance over the run's
    duration (the run's figure is their sum); a P/D prefill instance reports the prompt tokens it
    computed (``prefill_tokens_per_sec``) and its finished prefills (``prefills``, per instance; None without
    P/D) as ``completed_requests``."""
    cols = res.request_columns
    steps = res.step_columns
    n = len(facts)
    finished = cols["finished"]
    step_inst = steps["instance"]
    step_ends = steps["start_us"] + steps["duration_us"]
    if horizon_us is not None:  # a step running at the horizon counts up to the horizon only
        step_ends = np.minimum(step_ends, horizon_us)
    duration_s = run_duration_s(cols["arrival_ms"] * 1000.0, cols["finish_ms"] * 1000.0, finished, step_ends)
    # where each request's tokens were streamed from
    where = cols["decode_instance"] if prefills is not None else cols["instance"]
    done_at = np.where(finished, where, -1)
    ok = done_at >= 0
    completed = np.bincount(done_at[ok], minlength=n)
    tokens = np.bincount(done_at[ok], weights=cols["output_tokens"][ok].astype(np.float64), minlength=n)
    engine_rejected = cols["rejected"] & ~cols["admission_rejected"] if "admission_rejected" in cols else \
        cols["rejected"]
    rej_at = cols["instance"][engine_rejected & (cols["instance"] >= 0)]
    rejected = np.bincount(rej_at, minlength=n)
    dur = (step_ends - steps["start_us"]).astype(np.float64)
    util_num = np.zeros(n)
    util_max = np.zeros(n)
    # the step table holds each instance's steps together, in instance order: one slice per instance
    first = np.searchsorted(step_inst, np.arange(n + 1)) if np.all(step_inst[1:] >= step_inst[:-1]) else None
    kv_used = steps["kv_blocks_used"]
    for f in facts:
        i = f["instance"]
        sel = slice(first[i], first[i + 1]) if first is not None else step_inst == i
        u = kv_used[sel] / f["total_kv_blocks"]
        util_num[i] = float((u * dur[sel]).sum())
        util_max[i] = float(u.max()) if len(u) else 0.0
    busy = np.bincount(step_inst, weights=dur, minlength=n)
    num_steps = np.bincount(step_inst, minlength=n)
    prefill_tokens = np.bincount(step_inst, weights=steps["prefill_tokens"].astype(np.float64), minlength=n)
    preempt = np.bincount(step_inst, weights=steps["preemptions"].astype(np.float64), minlength=n)
    order = np.argsort(done_at, kind="stable")
    bounds = np.searchsorted(done_at[order], np.arange(n + 1))
    ttft, e2e, tpot = cols["ttft_ms"][order], cols["e2e_ms"][order], cols["tpot_ms"][order]

    rows = []
    for f in facts:
        i = f["instance"]
        sel = slice(bounds[i], bounds[i + 1])
        t, e, tp = ttft[sel], e2e[sel], tpot[sel]
        tp = tp[~np.isnan(tp)]
        is_prefill = f["role"] == "prefill"
        row = {
            **{k: f[k] for k in ("instance", "pool", "role", "model", "hardware", "tp", "total_kv_blocks",
                                 "routed_requests")},
            "completed_requests": int(prefills[i]) if is_prefill else int(completed[i]),
            "rejected_requests": int(rejected[i]),
            "tokens_per_sec": tokens[i] / duration_s,
            "prefill_tokens_per_sec": prefill_tokens[i] / duration_s,
            "responses_per_sec": (0 if is_prefill else completed[i]) / duration_s,
            "num_steps": int(num_steps[i]),
            "busy_fraction": busy[i] / (duration_s * 1e6),
            "kv_util_mean": util_num[i] / busy[i] if busy[i] else 0.0,
            "kv_util_max": util_max[i],
            "preemptions": int(preempt[i]),
            "prefix_cache_hit_rate": f["prefix_cache_hit_rate"],
            "ttft_mean_ms": t.mean() if len(t) else np.nan,
            "ttft_p50_ms": np.percentile(t, 50) if len(t) else np.nan,
            "ttft_p99_ms": np.percentile(t, 99) if len(t) else np.nan,
            "e2e_mean_ms": e.mean() if len(e) else np.nan,
            "e2e_p50_ms": np.percentile(e, 50) if len(e) else np.nan,
            "e2e_p99_ms": np.percentile(e, 99) if len(e) else np.nan,
            "tpot_mean_ms": tp.mean() if len(tp) else np.nan,
        }
        rows.append({k: (v if isinstance(v, str) else _num(v)) for k, v in row.items()})
    return rows
