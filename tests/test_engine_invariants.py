"""Invariants on random workloads: every request finishes or is reported, KV blocks are conserved and
never negative, arrival <= scheduled <= first token <= finish, budget and max_num_seqs are respected."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import blis
from blis.engine import scheduler as scheduler_module
from blis.errors import BlisInputError
from blis.workload.request_table import RequestTable


@st.composite
def scenarios(draw):
    n = draw(st.integers(1, 60))
    seed = draw(st.integers(0, 2**31))
    rng = np.random.default_rng(seed)
    inp = rng.integers(1, 300, n)
    out = rng.integers(1, 120, n)
    arrival = np.sort(rng.integers(0, 500_000, n))
    kind = draw(st.sampled_from(["unique", "repeat", "group", "multi_turn"]))
    extra = {}
    if kind == "repeat":
        extra["prompt_id"] = rng.integers(0, 5, n)
    elif kind == "group":
        extra["prefix_group"] = rng.integers(-1, 3, n)
        extra["prefix_len"] = np.where(extra["prefix_group"] >= 0, np.minimum(inp, 40), 0)
    elif kind == "multi_turn" and n > 1:
        parent = np.full(n, -1)
        for i in range(1, n):
            if rng.random() < 0.5:
                parent[i] = rng.integers(0, i)
                inp[i] = inp[parent[i]] + out[parent[i]] + rng.integers(1, 50)
        extra["parent"] = parent
    engine = dict(
        total_kv_blocks=draw(st.integers(20, 400)),
        max_num_seqs=draw(st.integers(1, 32)),
        max_num_batched_tokens=draw(st.integers(8, 600)),
        long_prefill_token_threshold=draw(st.sampled_from([0, 0, 7, 64])),
        block_size=draw(st.sampled_from([16, 16, 4, 1])),
        enable_prefix_caching=draw(st.booleans()),
        async_scheduling=draw(st.booleans()),
    )
    return RequestTable(arrival, inp, out, **extra), engine


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_invariants_hold_on_random_workloads(scenario):
    table, engine = scenario
    original = scheduler_module.Scheduler.schedule
    seen = {"steps": 0}

    def checked(self):
        self.check_invariants()
        batch = original(self)
        assert batch.num_prefill_tokens + batch.num_decode_tokens <= self.budget
        assert batch.num_requests <= self.max_num_seqs
        assert 0 <= self.pool.num_free <= self.pool.num_blocks
        for new, _ in batch.prefill_chunks:
            assert new >= 1
        seen["steps"] += 1
        return batch

    scheduler_module.Scheduler.schedule = checked
    try:
        cfg = blis.SimConfig(latency_model="blackbox", alpha_coeffs=(10, 0.5, 3), beta_coeffs=(100, 2, 1),
                             engine=blis.EngineConfig(**engine))
        try:
            res = blis.simulate(cfg, requests=table)
        except BlisInputError as exc:
            assert "input_tokens" in str(exc)  # only refusal allowed: a request that can never fit
            return
    finally:
        scheduler_module.Scheduler.schedule = original
    req = res.requests
    assert res.summary["completed_requests"] == len(table)
    assert req.finished.all()
    assert (req.arrival_ms <= req.scheduled_ms).all()
    assert (req.scheduled_ms <= req.first_token_ms).all()
    assert (req.first_token_ms <= req.finish_ms).all()
    assert (res.steps.kv_blocks_used <= engine["total_kv_blocks"]).all()
    assert (res.steps.duration_us > 0).all()
    # each step starts after the previous one ends
    starts = res.steps.start_us.to_numpy()
    ends = starts + res.steps.duration_us.to_numpy()
    assert (starts[1:] >= ends[:-1]).all()
    # tokens: total decode tokens + final prefill samples account for every output token
    assert res.steps.decode_tokens.sum() + len(table) + req.preemptions.sum() >= req.output_tokens.sum()
