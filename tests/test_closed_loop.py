"""Closed-loop clients pinned by hand-computable cases (blackbox model, all microseconds)."""

import numpy as np
import pytest

import blis
from blis.errors import BlisInputError
from blis.workload import Workload

A0, A1, A2 = 500.0, 2.0, 30.0
B0, B1, B2 = 1000.0, 10.0, 1.0
IN, OUT = 100, 10
ENTER = A0 + A1 * IN  # API-server delay of one request


def config(workload, **engine):
    engine.setdefault("total_kv_blocks", 1000)
    return blis.SimConfig(latency_model="blackbox", alpha_coeffs=(A0, A1, A2), beta_coeffs=(B0, B1, B2),
                          engine=blis.EngineConfig(**engine), workload=workload)


def run(workload, **engine):
    return blis.simulate(config(workload, **engine))


def alone_us(n_batch=1):
    """Send to response of ``n_batch`` identical requests sent together (one prefill step, then decodes)."""
    return ENTER + (B0 + B1 * IN * n_batch) + (OUT - 1) * (B0 + B2 * n_batch) + OUT * A2


def fixed(n, **closed):
    return Workload.random(input_len=IN, output_len=OUT, num_requests=n, **closed)


def test_one_user_sends_each_request_when_the_previous_response_is_complete():
    res = run(fixed(5, concurrency=1))
    d = alone_us()
    req = res.requests
    assert req.arrival_ms.tolist() == pytest.approx([k * d / 1000 for k in range(5)])
    assert req.e2e_ms.tolist() == pytest.approx([d / 1000] * 5)
    assert res.summary["responses_per_sec"] == pytest.approx(5 / (5 * d / 1e6))
    assert (res.steps.num_waiting == 0).all()


def test_think_time_delays_the_next_request():
    think_ms = 7.5
    res = run(fixed(4, concurrency=1, think_time_ms=think_ms))
    d = alone_us()
    assert res.requests.arrival_ms.tolist() == pytest.approx([k * (d / 1000 + think_ms) for k in range(4)])
    assert res.requests.e2e_ms.tolist() == pytest.approx([d / 1000] * 4)


def test_concurrency_equal_to_max_num_seqs_runs_in_waves_and_never_queues():
    res = run(fixed(8, concurrency=4), max_num_seqs=4)
    d = alone_us(4)
    req = res.requests
    assert req.arrival_ms.tolist() == pytest.approx([0] * 4 + [d / 1000] * 4)
    assert req.e2e_ms.tolist() == pytest.approx([d / 1000] * 8)
    assert (res.steps.num_requests <= 4).all()
    assert (res.steps.num_waiting == 0).all()
    # one user more than max_num_seqs: someone waits in the queue
    over = run(fixed(8, concurrency=5), max_num_seqs=4)
    assert (over.steps.num_waiting > 0).any()


def test_rate_cap_holds_requests_to_the_schedule():
    d = alone_us()
    slow = run(fixed(4, concurrency=1, rate=50))  # 20 ms interval > d: the rate sets the pace
    assert d < 20_000
    assert slow.requests.arrival_ms.tolist() == pytest.approx([0, 20, 40, 60])
    fast = run(fixed(4, concurrency=1, rate=200))  # 5 ms interval < d: the user sets the pace
    assert fast.requests.arrival_ms.tolist() == pytest.approx([k * d / 1000 for k in range(4)])


def test_ramp_spreads_user_starts():
    # user u takes request u and starts at u * 100 ms / 2; user 0 is done first and takes request 2
    res = run(fixed(3, concurrency=2, ramp_s=0.1))
    assert res.requests.arrival_ms.tolist() == pytest.approx([0, 50, alone_us() / 1000])


def test_refused_request_frees_its_user_at_once():
    wl = Workload.model_validate({"input": {"mean": 100, "min": 50, "max": 150, "kind": "uniform"},
                                  "output": {"mean": 5, "min": 5, "max": 5}, "num_requests": 12,
                                  "concurrency": 1})
    res = run(wl, max_model_len=100)
    req = res.requests
    assert req.rejected.any() and (~req.rejected).any()
    for k in range(len(req) - 1):
        if req.rejected[k]:  # refused when it enters the waiting queue: the next send is then
            assert req.arrival_ms[k + 1] == pytest.approx(req.arrival_ms[k] + (A0 + A1 * req.input_tokens[k]) / 1000)
    assert res.summary["completed_requests"] + res.summary["rejected_requests"] == 12


def test_closed_loop_is_deterministic_and_leaves_the_callers_table_alone():
    wl = Workload.preset("chatbot", num_requests=60, concurrency=8, think_time_ms=3)
    a, b = run(wl), run(wl)
    assert a.to_json() == b.to_json()
    table = wl.generate()
    before = table.arrival_us.copy()
    blis.simulate(config(wl), requests=table)
    assert (table.arrival_us == before).all()


def test_instance_on_finish_hook_fires_once_per_request_at_its_last_step():
    import simpy

    from blis.engine import BlockKeys, Instance, RequestLog
    from blis.run import enter_times, prepare_requests, resolve_deployment

    cfg = config(fixed(3, rate=1000))
    req = prepare_requests(cfg)
    dep = resolve_deployment(cfg)
    env = simpy.Environment()
    log = RequestLog(3)
    seen = []
    inst = Instance(env, 0, cfg.engine, dep.num_kv_blocks, dep.latency_model, BlockKeys(req, cfg.engine.block_size),
                    log, req.input_tokens.tolist(), req.output_tokens.tolist(), enter_times(dep, req).tolist(),
                    on_finish=lambda i: seen.append((i, int(env.now))))
    log.instance[:] = 0
    inst.assign_all(list(range(3)))
    env.run()
    ends = inst.steps.end_us()
    assert sorted(i for i, _ in seen) == [0, 1, 2]
    assert all(t == ends[log.finish_step[i]] for i, t in seen)


def test_cluster_round_robin_two_users_two_instances():
    wl = fixed(6, concurrency=2)
    cfg = blis.ClusterConfig(latency_model="blackbox", alpha_coeffs=(A0, A1, A2), beta_coeffs=(B0, B1, B2),
                             engine=blis.EngineConfig(total_kv_blocks=1000), workload=wl, num_instances=2,
                             routing="round-robin")
    res = blis.simulate_cluster(cfg)
    d = alone_us()
    req = res.requests
    assert req.e2e_ms.tolist() == pytest.approx([d / 1000] * 6)
    assert req.arrival_ms.tolist() == pytest.approx([0, 0, d / 1000, d / 1000, 2 * d / 1000, 2 * d / 1000])
    assert sorted(req.instance.tolist()) == [0, 0, 0, 1, 1, 1]
    for routing in ("least-loaded", "weighted"):
        other = blis.simulate_cluster(cfg.model_copy(update={"routing": routing}))
        assert other.summary["completed_requests"] == 6


def test_cluster_disaggregated_closed_loop_finishes_every_request():
    cfg = blis.ClusterConfig(workload=Workload.preset("chatbot", num_requests=30, concurrency=4),
                             prefill_instances=1, decode_instances=2)
    res = blis.simulate_cluster(cfg)
    assert res.summary["completed_requests"] == 30
    # never more than 4 requests in flight: sort sends and finishes
    req = res.requests
    events = sorted([(t, 1) for t in req.arrival_ms] + [(t, -1) for t in req.finish_ms])
    assert max(np.cumsum([e for _, e in events])) <= 4


def test_workload_closed_loop_fields_validate():
    assert Workload(concurrency=3).rate is None
    assert Workload(concurrency=3, rate=2).rate == 2
    assert Workload.preset("chatbot").rate == 1.0
    assert Workload.preset("chatbot").with_overrides(concurrency=4).rate is None
    with pytest.raises(ValueError, match="think_time_ms"):
        Workload(think_time_ms=5)
    with pytest.raises(ValueError, match="ramp_s"):
        Workload(ramp_s=5)
    with pytest.raises(ValueError, match="stages"):
        Workload(concurrency=2, stages=[{"rate": 1, "duration_s": 5}])
    with pytest.raises(ValueError, match="rate"):
        Workload(rate=None)
    with pytest.raises(BlisInputError, match="range_ratio"):
        Workload.random(range_ratio=1.0)
    rt = Workload(concurrency=3, think_time_ms=2)
    assert Workload.model_validate_json(rt.model_dump_json()) == rt


def test_vllm_random_lengths_are_uniform_in_the_range():
    wl = Workload.random(input_len=1000, output_len=100, range_ratio=0.1, prefix_len=24, num_requests=2000)
    t = wl.generate()
    assert t.input_tokens.min() >= 24 + 900 and t.input_tokens.max() <= 24 + 1100
    # vLLM's bounds in floating point: ceil(100 * 1.1) = ceil(110.00000000000001) = 111
    assert (t.output_tokens.min(), t.output_tokens.max()) == (90, 111)
    assert abs(t.output_tokens.mean() - 100.5) < 1.0
    assert len(np.unique(t.output_tokens)) == 22
    assert (Workload.random(input_len=7, output_len=3).generate().output_tokens == 3).all()


def test_mixed_clients_closed_and_open_loop():
    wl = Workload.model_validate({
        "rate": 100,
        "num_requests": 20,
        "clients": [
            {"name": "users", "rate_fraction": 0.5, "concurrency": 1, "input": {"mean": IN, "min": IN, "max": IN},
             "output": {"mean": OUT, "min": OUT, "max": OUT}},
            {"name": "batch", "rate_fraction": 0.5, "input": {"mean": IN, "min": IN, "max": IN},
             "output": {"mean": OUT, "min": OUT, "max": OUT}},
        ],
    })
    res = run(wl)
    req = res.requests
    users = req[req.client == "users"].sort_values("arrival_ms")
    starts, ends = users.arrival_ms.to_numpy(), users.finish_ms.to_numpy()
    assert (starts[1:] >= ends[:-1] - 1e-9).all()  # one user: never two in flight
    batch = req[req.client == "batch"]
    assert batch.arrival_ms.tolist() == pytest.approx([k * 20.0 for k in range(10)])  # open loop at 50/s


def test_closed_loop_equals_an_open_loop_replay_of_its_send_times():
    wl = Workload.preset("chatbot", num_requests=300, concurrency=16, think_time_ms=20)
    cfg = config(wl, total_kv_blocks=4000)
    closed = blis.simulate(cfg)
    table = wl.generate()
    sent = np.round(closed.requests.arrival_ms.to_numpy() * 1000).astype(np.int64)
    order = np.argsort(sent, kind="stable")
    trace = table.take(order)
    trace.arrival_us = sent[order]
    opened = blis.simulate(config(Workload.preset("chatbot"), total_kv_blocks=4000), requests=trace)
    assert opened.summary["num_steps"] == closed.summary["num_steps"]
    for key in ("ttft_mean_ms", "tpot_mean_ms", "e2e_p99_ms", "itl_mean_ms"):
        assert opened.summary[key] == closed.summary[key]
    # and never more than 16 requests in flight from the client's point of view
    req = closed.requests
    events = sorted([(t, 1) for t in req.arrival_ms] + [(t, -1) for t in req.finish_ms])
    assert max(np.cumsum([e for _, e in events])) <= 16


CL_SCRIPT = """
import blis
wl = blis.Workload.model_validate({"num_requests": 150, "clients": [
    {"name": "a", "concurrency": 6, "think_time_ms": 40, "lengths": "chatbot"},
    {"name": "b", "concurrency": 2, "lengths": "summarization"}]})
cfg = blis.ClusterConfig(workload=wl, num_instances=2, routing="least-loaded", latency_model="blackbox",
                         engine=blis.EngineConfig(total_kv_blocks=3000))
print(blis.simulate_cluster(cfg).to_json())
"""


def test_cluster_closed_loop_json_identical_across_processes():
    import os
    import subprocess
    import sys

    outs = [subprocess.run([sys.executable, "-c", CL_SCRIPT], env=dict(os.environ, PYTHONHASHSEED=seed),
                           capture_output=True, text=True, check=True).stdout for seed in ("1", "999")]
    assert outs[0] == outs[1] and '"completed_requests": 150' in outs[0]


def test_cluster_admission_is_asked_at_send_time():
    cfg = blis.ClusterConfig(workload=Workload(concurrency=8, num_requests=100, think_time_ms=10), num_instances=2,
                             routing="least-loaded", admission="token-bucket", token_bucket_capacity=2000,
                             token_bucket_rate=500)
    s = blis.simulate_cluster(cfg).summary
    assert 0 < s["admission_rejected_requests"] < 100
    assert s["completed_requests"] + s["admission_rejected_requests"] == 100
