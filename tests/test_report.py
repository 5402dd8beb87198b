"""One report path for a single instance and a cluster: the per-instance table agrees with the summary, and a
single run's table equals a one-instance cluster's."""

import pytest

import blis
from blis.cluster import ClusterConfig, simulate_cluster

BASE = dict(latency_model="blackbox", alpha_coeffs=(6000.0, 0.0, 0.0), beta_coeffs=(6000.0, 27.0, 40.0),
            engine=blis.EngineConfig(total_kv_blocks=1200),
            workload=blis.Workload.preset("chatbot", rate=45, num_requests=400, arrival="poisson", seed=3))


def test_single_run_instance_row_agrees_with_its_summary_and_with_a_one_instance_cluster():
    single = blis.simulate(blis.SimConfig(**BASE))
    s = single.summary
    assert "instances" not in s  # the single-instance summary keeps its keys
    rows = single.instances
    assert len(rows) == 1
    row = rows.iloc[0]
    assert (row["pool"], row["role"], row["routed_requests"]) == ("default", "mixed", 400)
    for key in ("completed_requests", "rejected_requests", "num_steps", "kv_util_max", "prefix_cache_hit_rate",
                "ttft_mean_ms", "e2e_mean_ms", "total_kv_blocks"):
        assert row[key] == pytest.approx(s[key], rel=1e-6), key
    assert row["tokens_per_sec"] == pytest.approx(s["tokens_per_sec"], rel=1e-6)
    assert row["preemptions"] == s["preemption_count"] > 0
    cluster = simulate_cluster(ClusterConfig(**BASE, num_instances=1))
    assert cluster.summary["instances"] == single.instance_rows
    assert single.to_json() != cluster.to_json()  # the cluster summary adds its own keys
    assert {k: cluster.summary[k] for k in s} == s


def test_simulate_takes_a_cluster_config_and_a_cluster_config_is_not_a_sim_config():
    cfg = ClusterConfig(**BASE, num_instances=2, routing="least-loaded")
    assert not isinstance(cfg, blis.SimConfig)
    assert blis.simulate(cfg).to_json() == simulate_cluster(cfg).to_json()
    with pytest.raises(TypeError, match="ClusterConfig"):
        simulate_cluster(blis.SimConfig(**BASE))
