"""Prefill/decode disaggregation: KV transfer timing, the decode-side engine path, ITL and TTFT effects."""

import numpy as np
import pytest

import blis
from blis.cluster import ClusterConfig, PoolConfig, simulate_cluster
from blis.cluster.disaggregation import transfer_time_us
from blis.engine import scheduler as scheduler_module
from blis.errors import BlisInputError
from blis.workload.request_table import RequestTable

COEFFS = {"latency_model": "blackbox", "alpha_coeffs": (6000.0, 0.0, 0.0), "beta_coeffs": (6000.0, 27.0, 40.0)}
# llama-2-7b: 32 layers x 32 KV heads x head dim 128 x (K and V) x 2 bytes (bf16), per token at TP=1
LLAMA2_7B_KV_BYTES = 32 * 32 * 128 * 2 * 2


def long_prompts(n=300, rate=5.0, seed=0):
    rng = np.random.default_rng(seed)
    arrival = np.cumsum(rng.exponential(1e6 / rate, n)).astype(np.int64)
    return RequestTable(arrival, rng.integers(3000, 5000, n), rng.integers(150, 250, n))


def cfg(blocks=7462, **kw):
    return ClusterConfig(**COEFFS, engine=blis.EngineConfig(total_kv_blocks=blocks), **kw)


def test_transfer_time_by_hand():
    # 1000 tokens x 524,288 bytes = 524.288 MB at 10 GB/s = 52.4288 ms, plus 2 ms
    assert transfer_time_us(1000, LLAMA2_7B_KV_BYTES, 10.0, 2.0) == 54429
    with pytest.raises(BlisInputError, match="pd_transfer_bandwidth"):
        transfer_time_us(1000, LLAMA2_7B_KV_BYTES, 0.0, 2.0)


def test_disaggregation_lowers_itl_p99_on_long_prompts_and_transfer_is_in_ttft():
    table = long_prompts()
    colocated = simulate_cluster(cfg(num_instances=4), requests=table)
    pd = simulate_cluster(cfg(prefill_instances=2, decode_instances=2, pd_transfer_bandwidth=25.0,
                              pd_transfer_latency_ms=2.0), requests=table)
    assert pd.summary["completed_requests"] == colocated.summary["completed_requests"] == len(table)
    # co-located decodes share steps with 2048-token prefill chunks (~61 ms); decode instances never do
    assert colocated.summary["itl_p99_ms"] > 40
    assert pd.summary["itl_p99_ms"] < 0.25 * colocated.summary["itl_p99_ms"]
    df = pd.requests
    # each transfer: prompt KV bytes / bandwidth + latency, with llama-2-7b sized independently here
    expected_ms = df["input_tokens"] * LLAMA2_7B_KV_BYTES / 25e9 * 1e3 + 2.0
    assert np.allclose(df["transfer_ms"], expected_ms, atol=1e-3)
    # the client's first token comes from the decode instance, after the transfer
    assert (df["first_token_ms"] >= df["transfer_start_ms"] + df["transfer_ms"]).all()
    assert (df["transfer_start_ms"] > df["scheduled_ms"]).all()
    assert set(df["decode_instance"]) == {2, 3} and set(df["prefill_instance"]) == {0, 1}
    # a slower link adds exactly its extra latency to every request's TTFT (decode arrivals all shift by it)
    slow = simulate_cluster(cfg(prefill_instances=2, decode_instances=2, pd_transfer_bandwidth=25.0,
                                pd_transfer_latency_ms=202.0), requests=table)
    extra = slow.requests["ttft_ms"] - df["ttft_ms"]
    assert np.allclose(extra, 200.0, atol=0.01)
    assert slow.summary["ttft_mean_ms"] == pytest.approx(pd.summary["ttft_mean_ms"] + 200.0, abs=0.01)


def test_decode_side_computes_one_token_per_request_and_prefill_side_no_decode():
    table = long_prompts(n=120, rate=4.0, seed=3)
    res = simulate_cluster(cfg(prefill_instances=1, decode_instances=2), requests=table)
    steps = res.steps
    prefill_steps = steps[steps["instance"] == 0]
    decode_steps = steps[steps["instance"] > 0]
    # prefill instance: every prompt token once (unique prompts, no cache hits), never a decode token
    assert prefill_steps["prefill_tokens"].sum() == table.input_tokens.sum()
    assert prefill_steps["decode_tokens"].sum() == 0
    # decode instances: the KV arrives; only the last prompt token is recomputed (no preemption here)
    assert res.summary["preemption_count"] == 0
    assert decode_steps["prefill_tokens"].sum() == len(table)
    # and they produce every output token after the first
    assert decode_steps["decode_tokens"].sum() == (table.output_tokens - 1).sum()
    rows = res.instances
    assert rows["role"].tolist() == ["prefill", "decode", "decode"]
    assert rows.loc[0, "completed_requests"] == len(table)
    assert rows.loc[1:, "completed_requests"].sum() == len(table)
    assert rows.loc[0, "tokens_per_sec"] == 0
    assert res.summary["transfers"] == len(table)


def test_decode_kv_invariants_hold_under_preemption(monkeypatch):
    """Small decode instances: preloaded requests get preempted and recompute; KV stays conserved."""
    original = scheduler_module.Scheduler.schedule
    checked = {"decode_steps": 0}

    def schedule(self):
        self.check_invariants()
        if self.kv_preloaded:
            checked["decode_steps"] += 1
        return original(self)

    monkeypatch.setattr(scheduler_module.Scheduler, "schedule", schedule)
    rng = np.random.default_rng(9)
    n = 150
    table = RequestTable(np.cumsum(rng.exponential(1e6 / 30, n)).astype(np.int64), rng.integers(1, 400, n),
                         rng.integers(1, 200, n))
    pools = [PoolConfig(name="p", count=2, role="prefill"),
             PoolConfig(name="d", count=2, role="decode", engine={"total_kv_blocks": 80, "block_size": 8})]
    res = simulate_cluster(cfg(blocks=200, pools=pools, routing="least-loaded"), requests=table)
    assert checked["decode_steps"] > 100
    assert res.summary["completed_requests"] == n
    decode_preemptions = res.instances.loc[res.instances["role"] == "decode", "preemptions"].sum()
    assert decode_preemptions > 0
    df = res.requests
    assert (df["finish_ms"] >= df["first_token_ms"]).all()
    assert (df.loc[df["output_tokens"] == 1, "finish_ms"] == df.loc[df["output_tokens"] == 1, "first_token_ms"]).all()


def test_unknown_model_needs_explicit_kv_size():
    table = long_prompts(n=5)
    bad = ClusterConfig(**COEFFS, model="not-a-model", engine=blis.EngineConfig(total_kv_blocks=7462),
                        prefill_instances=1, decode_instances=1)
    with pytest.raises(BlisInputError, match="pd_kv_bytes_per_token"):
        simulate_cluster(bad, requests=table)
    ok = bad.model_copy(update={"pd_kv_bytes_per_token": 1000.0})
    res = simulate_cluster(ok, requests=table)
    assert res.summary["pd_kv_bytes_source"] == "pd_kv_bytes_per_token"
    assert np.allclose(res.requests["transfer_ms"], table.input_tokens * 1000 / 50e9 * 1e3 + 1.0, atol=1e-3)
