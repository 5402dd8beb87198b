"""Cluster configuration, admission policies and the CLI flags: bad input is refused with one clear line."""

import argparse
import json

import numpy as np
import pytest
from pydantic import ValidationError

import blis
from blis.cli import main
from blis.cluster import ClusterConfig, PoolConfig, load_cluster_file, simulate_cluster
from blis.cluster.admission import TokenBucket, admission_mask
from blis.cluster.cli_args import add_cluster_arguments, maybe_simulate_cluster
from blis.cluster.config import parse_scorers
from blis.errors import BlisInputError

BASE = {"latency_model": "blackbox", "alpha_coeffs": (6000.0, 0.0, 0.0), "beta_coeffs": (6000.0, 27.0, 40.0),
            "engine": blis.EngineConfig(total_kv_blocks=2000)}
CLI_BASE = ["run", "--latency-model", "blackbox", "--alpha-coeffs", "6000,0,0", "--beta-coeffs", "6000,27,40",
            "--total-kv-blocks", "2000", "--num-requests", "40", "--rate", "20", "--no-progress"]


def field_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    return ".".join(str(p) for p in err["loc"]) + ": " + err["msg"]


@pytest.mark.parametrize("kwargs, needle", [
    ({"routing": "random-walk"}, "unknown policy 'random-walk'"),
    ({"routing": "weighted", "routing_scorers": "prefix-affinity:2,bogus:1"}, "unknown scorer 'bogus'"),
    ({"routing": "weighted", "routing_scorers": "queue-depth:heavy"}, "weight 'heavy' of scorer 'queue-depth'"),
    ({"routing": "weighted", "routing_scorers": "queue-depth:-1"}, "must be a finite number >= 0"),
    ({"routing": "weighted", "routing_scorers": "queue-depth:0"}, "at least one scorer weight must be > 0"),
    ({"routing": "least-loaded", "routing_scorers": "queue-depth:1"}, "only used with routing 'weighted'"),
    ({"admission": "lottery"}, "unknown policy 'lottery'"),
    ({"admission": "token-bucket", "token_bucket_capacity": 100.0}, "needs both"),
    ({"token_bucket_rate": 5.0}, "only used with admission 'token-bucket'"),
    ({"prefill_instances": 2}, "needs both >= 1"),
    ({"prefill_instances": 2, "decode_instances": 2, "num_instances": 5}, "does not match"),
    ({"prefill_instances": 1, "decode_instances": 1, "pd_transfer_bandwidth": 0.0}, "greater than 0"),
    ({"snapshot_refresh_ms": -1.0}, "greater than or equal to 0"),
    ({"num_instances": 0}, "greater than or equal to 1"),
    ({"pools": [PoolConfig(count=2, role="prefill")]}, "at least one 'prefill' and one 'decode'"),
    ({"pools": [PoolConfig(count=2, role="prefill"), PoolConfig(count=1, role="decode")], "prefill_instances": 3},
     "prefill_instances: 3 does not match the prefill pools' total 2"),
    ({"pools": [PoolConfig(count=2), PoolConfig(count=1, role="decode")]}, "not supported"),
])
def test_bad_cluster_config_names_the_problem(kwargs, needle):
    with pytest.raises(ValidationError) as info:
        ClusterConfig(**BASE, **kwargs)
    assert needle in str(info.value)
    assert len(info.value.errors()) == 1


def test_pool_engine_overrides_are_checked():
    with pytest.raises(ValidationError, match="unknown engine field"):
        PoolConfig(count=1, engine={"max_num_seq": 3})
    with pytest.raises(ValidationError, match="cluster-wide"):
        PoolConfig(count=1, engine={"max_model_len": 4096})
    cfg = ClusterConfig(**BASE, pools=[PoolConfig(count=1, engine={"max_num_seqs": 0})],
                        workload=blis.Workload.preset("chatbot", num_requests=5))
    with pytest.raises(BlisInputError, match=r"pools\[0\] \(pool0\): max_num_seqs"):
        simulate_cluster(cfg)


def test_parse_scorers_forms():
    assert parse_scorers("prefix-affinity:2, queue-depth") == (("prefix-affinity", 2.0), ("queue-depth", 1.0))
    assert parse_scorers({"kv-utilization": 0.5}) == (("kv-utilization", 0.5),)
    with pytest.raises(ValueError, match="given twice"):
        parse_scorers("queue-depth:1,queue-depth:2")


def test_token_bucket_by_hand():
    # capacity 100 tokens, refill 10 tokens/s, full at t=0
    bucket = TokenBucket(capacity=100, rate=10)
    arrivals = np.array([0, 1_000_000, 2_000_000, 2_500_000, 2_600_000])
    costs = np.array([60, 60, 60, 1, 200])
    # t=0: 100 -> admit, 40 left; t=1s: 50 < 60 reject; t=2s: 60 -> admit, 0 left; t=2.5s: 5 -> admit, 4 left;
    # 200 > capacity: never fits
    assert admission_mask(bucket, arrivals, costs).tolist() == [True, False, True, True, False]


def test_cluster_file(tmp_path):
    path = tmp_path / "cluster.yaml"
    path.write_text("routing: weighted\nrouting_scorers: 'queue-depth:1'\npools:\n"
                    "  - {name: big, count: 2, engine: {total_kv_blocks: 3000}}\n  - {name: small, count: 1}\n")
    data = load_cluster_file(path)
    cfg = ClusterConfig(**BASE, **data)
    assert [p.count for p in cfg.pools] == [2, 1]
    assert cfg.total_instances == 3
    bad = tmp_path / "bad.yaml"
    bad.write_text("routing: weighted\nrouters: 3\n")
    with pytest.raises(BlisInputError, match="unknown field"):
        load_cluster_file(bad)


def _args(argv):
    parser = argparse.ArgumentParser()
    parser.add_argument("--x")
    add_cluster_arguments(parser)
    return parser.parse_args(argv)


def test_no_cluster_flags_means_single_instance_path():
    sim = blis.SimConfig(**BASE, workload=blis.Workload.preset("chatbot", num_requests=5))
    assert maybe_simulate_cluster(_args([]), sim) is None
    res = maybe_simulate_cluster(_args(["--num-instances", "2", "--routing", "least-loaded"]), sim)
    assert res.summary["num_instances"] == 2 and res.summary["routing"] == "least-loaded"
    with pytest.raises(BlisInputError, match="^routing_scorers: weight 'x' of scorer 'queue-depth' is not a number$"):
        maybe_simulate_cluster(_args(["--routing", "weighted", "--routing-scorers", "queue-depth:x"]), sim)


def test_cli_cluster_json(capsys):
    assert main(CLI_BASE + ["--num-instances", "3", "--routing", "least-loaded"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["num_instances"] == 3
    assert len(out["instances"]) == 3
    assert sum(row["routed_requests"] for row in out["instances"]) == 40
    assert out["completed_requests"] == 40


@pytest.mark.parametrize("extra, needle", [
    (["--num-instances", "2", "--routing", "fastest"], "routing: unknown policy 'fastest'"),
    (["--num-instances", "2", "--routing", "weighted", "--routing-scorers", "prefix-affinity:two"],
     "weight 'two' of scorer 'prefix-affinity' is not a number"),
    (["--num-instances", "2", "--routing", "weighted", "--routing-scorers", "latency:1"], "unknown scorer 'latency'"),
    (["--prefill-instances", "1", "--decode-instances", "1", "--pd-transfer-bandwidth", "0"],
     "pd_transfer_bandwidth: Input should be greater than 0"),
    (["--num-instances", "3", "--prefill-instances", "1", "--decode-instances", "1"],
     "num_instances: 3 does not match prefill_instances + decode_instances = 2"),
    (["--admission", "token-bucket", "--token-bucket-capacity", "10"], "token_bucket_rate"),
])
def test_cli_bad_cluster_input_exits_2_with_one_line(capsys, extra, needle):
    assert main(CLI_BASE + extra) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("blis: error")]
    assert len(lines) == 1 and needle in lines[0], err
    assert "Traceback" not in err
