"""Whole-cluster runs: request conservation, agreement with the single-instance simulator, scaling, output."""

import json

import numpy as np
import pytest

import blis
from blis.cluster import ClusterConfig, simulate_cluster
from blis.workload.request_table import RequestTable

COEFFS = {"latency_model": "blackbox", "alpha_coeffs": (6000.0, 0.0, 0.0), "beta_coeffs": (6000.0, 27.0, 40.0)}


def engine(blocks, **kw):
    return blis.EngineConfig(total_kv_blocks=blocks, **kw)


@pytest.mark.parametrize("routing", ["round-robin", "least-loaded", "weighted"])
def test_request_conservation_with_admission_and_horizon(routing):
    rng = np.random.default_rng(11)
    n = 900
    arrival = np.cumsum(rng.exponential(1e6 / 120, n)).astype(np.int64)
    inp = rng.integers(20, 600, n)
    inp[::50] = 5000  # longer than max_model_len: the engine rejects these
    table = RequestTable(arrival, inp, rng.integers(5, 300, n))
    horizon_us = int(arrival[int(n * 0.8)])  # the last fifth never arrives; many are still running
    cfg = ClusterConfig(**COEFFS, engine=engine(1500, max_model_len=4096), num_instances=3, routing=routing,
                        admission="token-bucket", token_bucket_capacity=20_000, token_bucket_rate=25_000,
                        horizon_us=horizon_us)
    res = simulate_cluster(cfg, requests=table)
    s = res.summary
    df = res.requests
    arrived = arrival < horizon_us
    assert s["arrived_requests"] == arrived.sum()
    assert s["admitted_requests"] + s["admission_rejected_requests"] == s["arrived_requests"]
    assert 0 < s["admission_rejected_requests"] < s["arrived_requests"] // 2
    assert s["routed_requests"] == s["admitted_requests"]
    assert sum(r["routed_requests"] for r in s["instances"]) >= s["routed_requests"]
    routed = df[arrived & ~df["admission_rejected"]]
    assert (routed["instance"] >= 0).all()
    engine_rejected = int((routed["rejected"]).sum())
    assert engine_rejected > 0
    in_flight = int((~routed["finished"] & ~routed["rejected"]).sum())
    assert in_flight > 0
    assert s["completed_requests"] + engine_rejected + in_flight == s["routed_requests"]
    # rejected requests never produce tokens; every request is finished, rejected or unfinished
    assert not (df["finished"] & df["rejected"]).any()
    assert s["completed_requests"] + s["rejected_requests"] + s["unfinished_requests"] == n
    assert s["rejected_requests"] == s["admission_rejected_requests"] + engine_rejected
    assert not (df["rejected"] & ~arrived).any()


@pytest.mark.parametrize("routing", ["round-robin", "least-loaded", "weighted"])
def test_one_instance_cluster_equals_single_instance_simulator(routing):
    base = dict(**COEFFS, engine=engine(1200), workload=blis.Workload.preset(
        "chatbot", rate=45, num_requests=500, arrival="poisson", seed=3))
    single = blis.simulate(blis.SimConfig(**base))
    assert single.summary["preemption_count"] > 0  # a run with preemptions, not only the easy path
    cluster = simulate_cluster(ClusterConfig(**base, num_instances=1, routing=routing))
    for key, value in single.summary.items():
        assert cluster.summary[key] == value, key
    a = single.requests
    b = cluster.requests[a.columns]
    assert a.fillna(-1).equals(b.fillna(-1))


def test_four_instances_at_four_times_the_rate_match_one_instance():
    # round robin over constant arrivals gives each instance the single instance's arrival rate
    one = blis.simulate(blis.SimConfig(**COEFFS, engine=engine(7462), workload=blis.Workload.preset(
        "chatbot", rate=30, num_requests=1500, seed=1)))
    four = simulate_cluster(ClusterConfig(**COEFFS, engine=engine(7462), num_instances=4,
                                          workload=blis.Workload.preset("chatbot", rate=120, num_requests=6000,
                                                                        seed=2)))
    ref = one.summary
    for row in four.summary["instances"]:
        assert row["routed_requests"] == 1500
        assert row["ttft_p50_ms"] == pytest.approx(ref["ttft_p50_ms"], rel=0.05)
        assert row["ttft_p99_ms"] == pytest.approx(ref["ttft_p99_ms"], rel=0.1)
        assert row["e2e_p50_ms"] == pytest.approx(ref["e2e_p50_ms"], rel=0.08)
        assert row["e2e_p99_ms"] == pytest.approx(ref["e2e_p99_ms"], rel=0.08)
        assert row["tpot_mean_ms"] == pytest.approx(ref["tpot_mean_ms"], rel=0.05)
        assert row["kv_util_mean"] == pytest.approx(ref["kv_util_mean"], rel=0.1)
    assert four.summary["tokens_per_sec"] == pytest.approx(4 * ref["tokens_per_sec"], rel=0.05)


def test_per_instance_breakdown_adds_up_and_is_json():
    cfg = ClusterConfig(**COEFFS, engine=engine(900), num_instances=3, routing="least-loaded",
                        workload=blis.Workload.preset("chatbot", rate=150, num_requests=600, arrival="poisson"))
    res = simulate_cluster(cfg)
    s = json.loads(res.to_json())
    rows = s["instances"]
    assert len(rows) == 3 and res.instances.shape[0] == 3
    assert [r["instance"] for r in rows] == [0, 1, 2]
    assert sum(r["completed_requests"] for r in rows) == s["completed_requests"]
    assert sum(r["preemptions"] for r in rows) == s["preemption_count"] > 0
    assert sum(r["tokens_per_sec"] for r in rows) == pytest.approx(s["tokens_per_sec"], rel=1e-6)
    assert sum(r["num_steps"] for r in rows) == s["num_steps"]
    assert max(r["kv_util_max"] for r in rows) == pytest.approx(s["kv_util_max"], abs=1e-6)
    for r in rows:
        assert 0 < r["kv_util_mean"] <= r["kv_util_max"] <= 1
        assert 0 < r["busy_fraction"] <= 1
    steps = res.steps
    assert sorted(steps["instance"].unique()) == [0, 1, 2]


@pytest.mark.parametrize("kw", [{"num_instances": 3, "routing": "weighted"},
                                {"prefill_instances": 1, "decode_instances": 2, "routing": "least-loaded"}])
def test_progress_reports_and_ends(kw):
    seen = []
    cfg = ClusterConfig(**COEFFS, engine=engine(2000), **kw,
                        workload=blis.Workload.preset("chatbot", rate=60, num_requests=300, arrival="poisson"))
    res = simulate_cluster(cfg, progress=seen.append)
    assert res.summary["completed_requests"] == 300
    assert len(seen) > 10 and seen[-1] == 1.0
    assert all(a <= b for a, b in zip(seen, seen[1:]))
    plain = simulate_cluster(cfg)
    assert plain.to_json() == res.to_json()
