"""Engine behaviour pinned by cases small enough to compute by hand (blackbox model, all microseconds)."""

import numpy as np
import pytest

import blis
from blis.errors import BlisInputError
from blis.workload.request_table import RequestTable

A0, A1, A2 = 500.0, 2.0, 30.0
B0, B1, B2 = 1000.0, 10.0, 1.0


def run(table, alpha=(A0, A1, A2), beta=(B0, B1, B2), **engine):
    engine.setdefault("total_kv_blocks", 1000)
    cfg = blis.SimConfig(latency_model="blackbox", alpha_coeffs=alpha, beta_coeffs=beta,
                         engine=blis.EngineConfig(**engine))
    return blis.simulate(cfg, requests=table)


def test_one_request_ttft_e2e_tpot():
    res = run(RequestTable([0], [100], [10]))
    r = res.requests.iloc[0]
    ttft = A0 + A1 * 100 + B0 + B1 * 100 + A2
    decode_gap = B0 + B2 * 1 + A2
    assert r.ttft_ms == pytest.approx(ttft / 1000)
    assert r.e2e_ms == pytest.approx((ttft + 9 * decode_gap) / 1000)
    assert r.tpot_ms == pytest.approx(decode_gap / 1000)
    assert res.summary["itl_mean_ms"] == pytest.approx(decode_gap / 1000)
    assert res.summary["completed_requests"] == 1
    assert len(res.steps) == 10


def test_chunked_prefill_splits_long_prompt_by_budget():
    res = run(RequestTable([0], [5000], [2]), max_num_batched_tokens=2048)
    steps = res.steps
    assert steps.prefill_tokens.tolist()[:3] == [2048, 2048, 904]
    ttft = A0 + A1 * 5000 + 3 * B0 + B1 * 5000 + A2
    assert res.requests.ttft_ms[0] == pytest.approx(ttft / 1000)


def test_long_prefill_threshold_caps_chunks():
    res = run(RequestTable([0], [1000], [1]), long_prefill_token_threshold=300)
    assert res.steps.prefill_tokens.tolist() == [300, 300, 300, 100]


def test_identical_prompt_hits_prefix_cache_but_recomputes_last_block():
    # second request repeats the first prompt after the first finished: 96 of 100 tokens are cached
    table = RequestTable([0, 1_000_000], [100, 100], [1, 1], prompt_id=[7, 7])
    res = run(table)
    req = res.requests
    assert req.cached_tokens.tolist() == [0, 96]
    assert res.steps.prefill_tokens.tolist() == [100, 4]
    second_ttft = A0 + A1 * 100 + B0 + B1 * 4 + A2
    assert req.ttft_ms[1] == pytest.approx(second_ttft / 1000)
    assert res.summary["prefix_cache_hit_rate"] == pytest.approx(6 / 12)


def test_shared_system_prompt_hits_only_group_blocks():
    table = RequestTable([0, 1_000_000], [100, 120], [1, 1], prefix_group=[3, 3], prefix_len=[40, 40])
    res = run(table)
    assert res.requests.cached_tokens.tolist() == [0, 32]  # two full 16-token blocks of the 40-token prefix


def test_no_prefix_caching_recomputes_everything():
    table = RequestTable([0, 1_000_000], [100, 100], [1, 1], prompt_id=[7, 7])
    res = run(table, enable_prefix_caching=False)
    assert res.steps.prefill_tokens.tolist() == [100, 100]


def test_same_step_admission_sees_blocks_cached_at_scheduling_time():
    # vLLM enters full blocks in the cache when it schedules them, so a twin admitted later in the same
    # step already hits them
    table = RequestTable([0, 0], [64, 64], [1, 1], prompt_id=[1, 1])
    res = run(table)
    assert res.requests.cached_tokens.tolist() == [0, 48]
    assert res.steps.prefill_tokens.tolist() == [80]


def test_max_num_seqs_limits_running_requests():
    table = RequestTable([0] * 5, [10] * 5, [3] * 5)
    res = run(table, max_num_seqs=2)
    assert res.steps.num_requests.max() == 2
    assert res.summary["completed_requests"] == 5


def test_preemption_by_recompute_hand_trace():
    """Two requests of 8 prompt + 20 output tokens, 4-token blocks, 10 blocks: each needs 7 blocks.

    Step 0 prefills both; decodes need blocks at steps 1, 5, 9 (10 used) and 13, where A finds none and
    preempts the tail (B, 13 tokens emitted, 5 full blocks cached on release). A's new blocks at steps 13
    and 17 take B's freed blocks from the front of the free queue, deepest first, so B's first 3 blocks
    stay cached. B (21 tokens, 12 cached) needs 6 blocks (3 cached-but-free ones count) and waits until A
    finishes at step 19, recomputes 9 tokens at step 20 and decodes steps 21-26.
    """
    table = RequestTable([0, 0], [8, 8], [20, 20])
    res = run(table, alpha=(0, 0, 0), beta=(1000, 10, 1), block_size=4, total_kv_blocks=10)
    req = res.requests
    assert req.preemptions.tolist() == [0, 1]
    steps = res.steps
    assert steps.prefill_tokens.tolist()[20] == 9
    assert steps.kv_blocks_used.max() == 10
    a_finish = 1160 + 12 * 1002 + 7 * 1001
    b_finish = a_finish + 1090 + 6 * 1001
    assert req.finish_ms.tolist() == pytest.approx([a_finish / 1000, b_finish / 1000])
    assert res.summary["preemption_count"] == 1


def test_prompt_that_can_never_fit_is_refused():
    with pytest.raises(BlisInputError, match="input_tokens"):
        run(RequestTable([0], [10_000], [10]), total_kv_blocks=100)


def test_max_model_len_rejects_long_prompts_and_caps_output():
    table = RequestTable([0, 0], [50, 200], [100, 5])
    res = run(table, max_model_len=100)
    req = res.requests
    assert req.rejected.tolist() == [False, True]
    assert res.summary["rejected_requests"] == 1
    assert req.output_tokens[0] == 50
    assert res.summary["completed_requests"] == 1


def test_horizon_reports_unfinished_requests():
    table = RequestTable([0, 0], [10, 10], [1000, 1000])
    cfg = blis.SimConfig(latency_model="blackbox", alpha_coeffs=(0, 0, 0), beta_coeffs=(1000, 0, 0),
                         engine=blis.EngineConfig(total_kv_blocks=1000), horizon_us=50_000)
    res = blis.simulate(cfg, requests=table)
    assert res.summary["completed_requests"] == 0
    assert res.summary["unfinished_requests"] == 2
    assert not res.requests.finished.any()


def test_negative_step_time_is_refused():
    class Negative:
        name = "negative"

        def step_time_us(self, batch):
            return -5

        def queueing_time_us(self, n):
            return 0

        def output_token_processing_time_us(self):
            return 0

        def scheduling_processing_time_us(self):
            return 0

        def preemption_processing_time_us(self):
            return 0

        def describe(self):
            return {"name": "negative"}

    from blis.latency import base

    base._FACTORIES["test-negative"] = lambda cfg: Negative()
    try:
        with pytest.raises(ValueError, match="negative step time"):
            blis.simulate(blis.SimConfig(latency_model="test-negative",
                                         engine=blis.EngineConfig(total_kv_blocks=100)),
                          requests=RequestTable([0], [10], [2]))
    finally:
        del base._FACTORIES["test-negative"]


def test_itl_pools_every_gap():
    # two requests decoding together: every gap is one decode step of batch 2 (plus a2)
    table = RequestTable([0, 0], [16, 16], [5, 5])
    res = run(table)
    gap = B0 + B2 * 2 + A2
    s = res.summary
    assert s["itl_p50_ms"] == pytest.approx(gap / 1000)
    assert s["itl_p99_ms"] == pytest.approx(gap / 1000)
    assert np.allclose(res.requests.tpot_ms, gap / 1000)


@pytest.mark.parametrize("async_scheduling,scheduled_us", [(False, 1160), (True, 2161)])
def test_async_scheduling_admits_mid_step_arrivals_one_step_later(async_scheduling, scheduled_us):
    """A arrives at 0 and prefills in step 0 (1000 + 16 x 10 us); B arrives at 500 us, during step 0.
    Sync: B joins step 1 (starts at 1160). Async: step 1 was scheduled when step 0 launched, so B joins
    step 2, which starts after A's decode step 1 (1160 + 1001)."""
    table = RequestTable([0, 500], [16, 16], [10, 10])
    res = run(table, alpha=(0, 0, 0), beta=(1000, 10, 1), async_scheduling=async_scheduling)
    assert res.requests.scheduled_ms[1] == pytest.approx(scheduled_us / 1000)
    assert res.requests.scheduled_ms[0] == 0
