"""Golden runs: per-request times and step logs of a fixed set of configurations, recorded before the engine's
speed work (issue #17) so that every later engine change can be checked to change no answer.

    python tests/golden/runs.py --write    # re-record tests/golden/golden_runs.json (only on purpose)

Each run records, per request, the scheduled / first-token / finish times (integer microseconds, -1 when the
request never got there), preemptions and instance, plus the number of engine steps, a hash of every
instance's step log (start, duration, tokens, KV blocks, preemptions, waiting) and the summary fields computed
from the timeline (latency percentiles including ITL, KV utilisation, throughput).
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np

import blis
from blis.workload.request_table import RequestTable

HERE = Path(__file__).parent
GOLDEN = HERE / "golden_runs.json"
BB = dict(latency_model="blackbox", alpha_coeffs=(100, 1, 5), beta_coeffs=(3000, 20, 30))
RF = dict(model="llama-2-7b", hardware="H100", tp=1, latency_model="roofline")
# summary fields computed from the step timeline (others may be added to the summary without touching these)
SUMMARY_KEYS = ("completed_requests", "preemption_count", "num_steps", "sim_duration_s", "tokens_per_sec",
                "kv_util_mean", "kv_util_max", "prefix_cache_hit_rate") + tuple(
    f"{m}_{s}_ms" for m in ("ttft", "e2e", "tpot", "itl") for s in ("mean", "p50", "p90", "p95", "p99"))
STEP_COLS = ("start_us", "duration_us", "prefill_tokens", "decode_tokens", "num_requests", "kv_blocks_used",
             "preemptions", "num_waiting")


def _table(n: int = 60, seed: int = 3, span_us: int = 8_000_000, prompt_ids: int = 12) -> RequestTable:
    rng = np.random.default_rng(seed)
    return RequestTable(np.sort(rng.integers(0, span_us, n)), rng.integers(1, 600, n), rng.integers(1, 300, n),
                        prompt_id=rng.integers(0, prompt_ids, n))


def _chat(rate: float, n: int = 40, seed: int = 5, **kw) -> blis.Workload:
    return blis.Workload.preset("chatbot", rate=rate, num_requests=n, seed=seed, **kw)


def cases() -> dict:
    """name -> (config, requests or None)."""
    E = blis.EngineConfig
    C = blis.ClusterConfig
    return {
        "bb_light": (blis.SimConfig(**BB, engine=E(total_kv_blocks=2000), workload=_chat(2)), None),
        "bb_light_sync": (blis.SimConfig(**BB, engine=E(total_kv_blocks=2000, async_scheduling=False),
                                         workload=_chat(2)), None),
        "bb_saturated": (blis.SimConfig(**BB, engine=E(total_kv_blocks=2000, max_num_seqs=16),
                                        workload=_chat(200, n=60)), None),
        "bb_prefix_preempt": (blis.SimConfig(**BB, engine=E(total_kv_blocks=120, max_num_seqs=32)), _table()),
        "bb_prefix_preempt_sync": (blis.SimConfig(**BB, engine=E(total_kv_blocks=120, max_num_seqs=32,
                                                                 async_scheduling=False)), _table()),
        "bb_no_prefix_budget": (blis.SimConfig(**BB, engine=E(total_kv_blocks=400, enable_prefix_caching=False,
                                                              max_num_batched_tokens=256,
                                                              long_prefill_token_threshold=64)), _table(seed=4)),
        "bb_horizon": (blis.SimConfig(**BB, engine=E(total_kv_blocks=2000), workload=_chat(3),
                                      horizon_us=6_500_000), None),
        "bb_closed_loop": (blis.SimConfig(**BB, engine=E(total_kv_blocks=2000),
                                          workload=_chat(None, n=40, concurrency=4, think_time_ms=300)), None),
        "rf_light": (blis.SimConfig(**RF, workload=_chat(2)), None),
        "rf_light_sync": (blis.SimConfig(**RF, engine=E(async_scheduling=False), workload=_chat(2)), None),
        "rf_saturated": (blis.SimConfig(**RF, engine=E(max_num_seqs=32), workload=_chat(300, n=80)), None),
        "rf_small_kv": (blis.SimConfig(**RF, engine=E(total_kv_blocks=150)), _table(seed=6)),
        "rf_horizon": (blis.SimConfig(**RF, workload=_chat(3), horizon_us=7_000_000), None),
        "rf_closed_loop": (blis.SimConfig(**RF, workload=_chat(None, n=40, concurrency=3)), None),
        "cl_bb_round_robin": (C(**BB, engine=E(total_kv_blocks=600), num_instances=3,
                                workload=_chat(12, n=60)), None),
        "cl_bb_least_loaded": (C(**BB, engine=E(total_kv_blocks=300), num_instances=3, routing="least-loaded",
                                 workload=_chat(40, n=60, arrival="poisson")), None),
        "cl_rf_weighted_horizon": (C(**RF, num_instances=2, routing="weighted", horizon_us=5_000_000,
                                     workload=_chat(10, n=60, arrival="poisson")), None),
        "cl_bb_pd": (C(**BB, engine=E(total_kv_blocks=600), prefill_instances=1, decode_instances=2,
                       workload=_chat(8, n=40)), None),
    }


def _us(ms) -> list[int]:
    a = np.asarray(ms, dtype=np.float64) * 1000.0
    return [-1 if np.isnan(v) else int(round(v)) for v in a]


def record(cfg, requests) -> dict:
    res = blis.simulate(cfg, requests=requests)
    c = res.request_columns
    steps = res.step_columns
    h = hashlib.sha256()
    for name in ("instance",) + STEP_COLS:
        h.update(np.ascontiguousarray(steps[name], dtype=np.int64).tobytes())
    return {"scheduled_us": _us(c["scheduled_ms"]), "first_token_us": _us(c["first_token_ms"]),
            "finish_us": _us(c["finish_ms"]), "preemptions": [int(x) for x in c["preemptions"]],
            "instance": [int(x) for x in c["instance"]], "num_steps": int(res.summary["num_steps"]),
            "steps_sha256": h.hexdigest(),
            "summary": {k: res.summary[k] for k in SUMMARY_KEYS if k in res.summary}}


def main() -> None:
    if "--write" not in sys.argv:
        sys.exit(__doc__)
    out = {name: record(cfg, req) for name, (cfg, req) in cases().items()}
    GOLDEN.write_text(json.dumps(out, separators=(",", ":"), sort_keys=True) + "\n")
    print(f"wrote {GOLDEN} ({GOLDEN.stat().st_size} bytes, {len(out)} runs)")


if __name__ == "__main__":
    main()
