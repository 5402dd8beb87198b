"""Invariants of runs with a horizon (issue #19): no instance is busy more than 100 % of the run, and nothing is
reported after the horizon (no token, no finish, no step start, the run's duration at most the horizon)."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import blis

# a2 = 0: no client-side delay per output token (it is added after the engine's step, so with a2 > 0 a token
# made before the horizon reaches the client a little after it)
BB = {"latency_model": "blackbox", "alpha_coeffs": (500.0, 1.0, 0.0), "beta_coeffs": (6000.0, 20.0, 60.0)}


@st.composite
def runs(draw):
    workload = blis.Workload.preset(draw(st.sampled_from(["chatbot", "contentgen"])),
                                    rate=draw(st.floats(2.0, 300.0)), num_requests=draw(st.integers(5, 150)),
                                    seed=draw(st.integers(0, 1000)), arrival=draw(st.sampled_from(["constant",
                                                                                                    "poisson"])))
    horizon_us = draw(st.integers(50_000, 4_000_000))
    engine = blis.EngineConfig(total_kv_blocks=draw(st.integers(400, 3000)), max_num_seqs=draw(st.integers(1, 64)),
                               async_scheduling=draw(st.booleans()))
    kind = draw(st.sampled_from(["single", "cluster", "pd"]))
    common = dict(**BB, engine=engine, workload=workload, horizon_us=horizon_us)
    if kind == "single":
        return blis.SimConfig(**common)
    if kind == "pd":
        return blis.ClusterConfig(**common, prefill_instances=1, decode_instances=draw(st.integers(1, 2)))
    return blis.ClusterConfig(**common, num_instances=draw(st.integers(1, 3)),
                              routing=draw(st.sampled_from(blis.cluster.available_routers())))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(runs())
def test_busy_fraction_at_most_one_and_nothing_after_the_horizon(config):
    res = blis.simulate_cluster(config) if isinstance(config, blis.ClusterConfig) else blis.simulate(config)
    horizon_us = config.horizon_us
    assert res.summary["sim_duration_s"] <= horizon_us / 1e6 + 1e-9
    for row in res.instance_rows:
        assert 0.0 <= row["busy_fraction"] <= 1.0 + 1e-9, row
    req = res.requests
    for column in ("scheduled_ms", "first_token_ms", "finish_ms"):
        times = req[column].to_numpy()
        assert not (times[~np.isnan(times)] > horizon_us / 1e3 + 1e-6).any(), column
    assert (res.steps["start_us"] < horizon_us).all()
    finished = req["finished"].to_numpy()
    assert finished.sum() == res.summary["completed_requests"]
