"""Per-pool and per-instance breakdowns of a cluster run (plain Python values, JSON-ready)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from blis.result import SimResult

if TYPE_CHECKING:  # pragma: no cover
    from blis.cluster.cluster import Cluster


def _num(v) -> float | int | None:
    if isinstance(v, (np.integer, int)) and not isinstance(v, bool):
        return int(v)
    f = float(v)
    return None if math.isnan(f) else round(f, 6)


def pool_rows(cluster: Cluster) -> list[dict]:
    rows = []
    for run in cluster.pools:
        c = run.config
        rows.append({
            "name": run.pool.name,
            "role": run.pool.role,
            "count": run.pool.count,
            "model": c.model,
            "hardware": c.hardware,
            "tp": c.tp,
            "latency_model": run.prep.latency_model_name,
            "kv_blocks_per_instance": int(run.prep.num_blocks),
        })
    return rows


def instance_rows(cluster: Cluster, res: SimResult) -> list[dict]:
    """One row per instance: load served, throughput, KV use, preemptions, cache hits, latency percentiles.

    ``tokens_per_sec`` counts output tokens of the requests that finished on the instance over the run's
    duration (the cluster figure is their sum); a P/D prefill instance reports the prompt tokens it
    computed (``prefill_tokens_per_sec``) and its finished prefills as ``completed_requests``."""
    cols = res.request_columns
    steps = res.step_columns
    n = len(cluster.instances)
    arrival_us = cols["arrival_ms"] * 1000.0
    finish_us = cols["finish_ms"] * 1000.0
    finished = cols["finished"]
    step_inst = steps["instance"]
    ends = steps["start_us"] + steps["duration_us"]
    horizon = cluster.config.horizon_us
    if horizon is not None:  # a step running at the horizon counts up to the horizon only
        ends = np.minimum(ends, horizon)
    # the run lasts until the last step ends (engines keep working after the last finished request)
    end_time = max(float(np.nanmax(finish_us)) if finished.any() else 0.0, float(ends.max() if len(ends) else 0.0))
    start_time = float(arrival_us.min()) if len(arrival_us) else 0.0
    duration_s = max(end_time - start_time, 1.0) / 1e6
    # where each request's tokens were streamed from
    where = cols["decode_instance"] if cluster.disaggregated else cols["instance"]
    out_tokens = cols["output_tokens"].astype(np.float64)
    done_at = np.where(finished, where, -1)
    ok = done_at >= 0
    completed = np.bincount(done_at[ok], minlength=n)
    tokens = np.bincount(done_at[ok], weights=out_tokens[ok], minlength=n)
    engine_rejected = cols["rejected"] & ~cols["admission_rejected"]
    rej_at = cols["instance"][engine_rejected & (cols["instance"] >= 0)]
    rejected = np.bincount(rej_at, minlength=n)
    dur = (ends - steps["start_us"]).astype(np.float64)
    util_num = np.zeros(n)
    util_max = np.zeros(n)
    for run in cluster.pools:
        for inst in run.instances:
            mask = step_inst == inst.index
            u = steps["kv_blocks_used"][mask] / inst.scheduler.pool.num_blocks
            util_num[inst.index] = float((u * dur[mask]).sum())
            util_max[inst.index] = float(u.max()) if len(u) else 0.0
    busy = np.bincount(step_inst, weights=dur, minlength=n)
    num_steps = np.bincount(step_inst, minlength=n)
    prefill_tokens = np.bincount(step_inst, weights=steps["prefill_tokens"].astype(np.float64), minlength=n)
    preempt = np.bincount(step_inst, weights=steps["preemptions"].astype(np.float64), minlength=n)
    if cluster.disaggregated:
        prefill_done = cluster.log.finish_step >= 0
        pi = cluster.log.instance[prefill_done]
        prefills = np.bincount(pi[pi >= 0], minlength=n)
    order = np.argsort(done_at, kind="stable")
    bounds = np.searchsorted(done_at[order], np.arange(n + 1))
    ttft, e2e, tpot = cols["ttft_ms"][order], cols["e2e_ms"][order], cols["tpot_ms"][order]

    rows = []
    for run in cluster.pools:
        c = run.config
        for inst in run.instances:
            i = inst.index
            sel = slice(bounds[i], bounds[i + 1])
            t, e, tp = ttft[sel], e2e[sel], tpot[sel]
            tp = tp[~np.isnan(tp)]
            pool = inst.scheduler.pool
            is_prefill = run.pool.role == "prefill"
            row = {
                "instance": i,
                "pool": run.pool.name,
                "role": run.pool.role,
                "model": c.model,
                "hardware": c.hardware,
                "tp": c.tp,
                "total_kv_blocks": pool.num_blocks,
                "routed_requests": inst.num_routed,
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
                "prefix_cache_hit_rate": pool.hits / pool.queries if pool.queries else 0.0,
                "ttft_mean_ms": t.mean() if len(t) else np.nan,
                "ttft_p50_ms": np.percentile(t, 50) if len(t) else np.nan,
                "ttft_p99_ms": np.percentile(t, 99) if len(t) else np.nan,
                "e2e_mean_ms": e.mean() if len(e) else np.nan,
                "e2e_p50_ms": np.percentile(e, 50) if len(e) else np.nan,
                "e2e_p99_ms": np.percentile(e, 99) if len(e) else np.nan,
                "tpot_mean_ms": tp.mean() if len(tp) else np.nan,
            }
            rows.append({k: (v if isinstance(v, str) else _num(v)) for k, v in row.items()})
    rows.sort(key=lambda r: r["instance"])
    return rows
