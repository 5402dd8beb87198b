"""Benchmark files in, the load they describe out: vllm bench serve JSON, GuideLLM reports and the shared
GuideLLM sweeps (real data), and `--emit vllm-bench` read back by the same reader."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest

import blis
from blis.errors import BlisInputError
from blis.traces.bench_format import vllm_bench_summary
from blis.traces.benchmark import median_errors, read_benchmark, run_benchmark
from blis.workload import Workload

GUIDELLM_RUNS = ("jan20-codellama-prefill-1", "jan20-prefill-llama7b-tp1-1")


def write(tmp_path, doc, name="result.json"):
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


def bench_doc(**over):
    doc = {"model_id": "meta-llama/Llama-2-7b-hf", "num_prompts": 4, "request_rate": "inf", "burstiness": 1.0,
           "max_concurrency": 2, "completed": 4, "total_input_tokens": 400, "total_output_tokens": 40,
           "mean_ttft_ms": 20.0, "median_ttft_ms": 19.0, "p99_ttft_ms": 30.0, "mean_tpot_ms": 6.0,
           "mean_e2el_ms": 80.0, "request_throughput": 3.0, "output_throughput": 30.0}
    doc.update(over)
    return doc


def test_vllm_bench_max_concurrency_and_detailed_lengths(tmp_path):
    b = read_benchmark(write(tmp_path, bench_doc(input_lens=[90, 100, 110, 100], output_lens=[5, 10, 15, 10])))
    (p,) = b.points
    assert (p.workload.concurrency, p.workload.rate, p.workload.num_requests) == (2, None, 4)
    t = p.requests()
    assert t.input_tokens.tolist() == [90, 100, 110, 100] and t.output_tokens.tolist() == [5, 10, 15, 10]
    assert p.measured["ttft_mean_ms"] == 20.0 and p.measured["tokens_per_sec"] == 30.0
    assert b.server.model == "meta-llama/Llama-2-7b-hf"


def test_vllm_bench_rate_burstiness_and_mean_lengths(tmp_path):
    b = read_benchmark(write(tmp_path, bench_doc(request_rate=5.0, burstiness=0.5, max_concurrency=None, seed=7)))
    wl = b.points[0].workload
    assert (wl.rate, wl.arrival, wl.concurrency, wl.seed) == (5.0, "gamma", None, 7)
    assert wl.cv == pytest.approx(1 / math.sqrt(0.5))
    t = b.points[0].requests()
    assert (t.input_tokens == 100).all() and (t.output_tokens == 10).all()
    assert any("save-detailed" in n for n in b.notes)
    poisson = read_benchmark(write(tmp_path, bench_doc(request_rate=2, max_concurrency=None), "p.json"))
    assert poisson.points[0].workload.arrival == "poisson"


def test_vllm_bench_inf_rate_without_cap_sends_everything_at_once(tmp_path):
    b = read_benchmark(write(tmp_path, bench_doc(max_concurrency=None)))
    assert b.points[0].workload.concurrency == 4


def test_bad_benchmark_files_say_which_field(tmp_path):
    with pytest.raises(BlisInputError, match="request_rate"):
        read_benchmark(write(tmp_path, {"model_id": "x"}))
    with pytest.raises(BlisInputError, match="burstiness"):
        read_benchmark(write(tmp_path, bench_doc(request_rate=1, burstiness=0)))
    with pytest.raises(BlisInputError, match="benchmark result"):
        read_benchmark(write(tmp_path, [1, 2], "x.txt"))


def guidellm_report():
    def bench(strategy, n, metrics):
        reqs = [{"prompt_tokens": 100 + i, "output_tokens": 10 + i, "request_start_time": 1000.0 + i}
                for i in range(n)]
        return {"config": {"strategy": strategy, "backend": {"model": "meta-llama/Llama-2-7b-hf"},
                           "requests": {"data": "['prompt_tokens=100,output_tokens=10']"}},
                "metrics": {"request_totals": {"successful": n, "errored": 0},
                            "time_to_first_token_ms": {"successful": {"mean": metrics[0], "median": metrics[0],
                                                                      "percentiles": {"p99": metrics[0] * 2}}},
                            "inter_token_latency_ms": {"successful": {"mean": metrics[1]}},
                            "request_latency": {"successful": {"mean": metrics[2]}}},
                "requests": {"successful": list(reversed(reqs))}}

    return {"benchmarks": [bench({"type_": "synchronous"}, 3, (15.0, 6.0, 0.08)),
                           bench({"type_": "concurrent", "streams": 4}, 6, (20.0, 6.5, 0.09)),
                           bench({"type_": "constant", "rate": 2.5, "max_concurrency": 16}, 5, (16.0, 6.1, 0.08)),
                           bench({"type_": "poisson", "rate": 3.0}, 4, (17.0, 6.2, 0.08))],
            "args": {"random_seed": 11}}


def test_guidellm_report_json_and_yaml(tmp_path):
    import yaml

    for path in (write(tmp_path, guidellm_report(), "benchmarks.json"), tmp_path / "benchmarks.yaml"):
        if path.suffix == ".yaml":
            path.write_text(yaml.safe_dump(guidellm_report()))
        b = read_benchmark(path)
        assert b.kind == "guidellm" and b.server.model == "meta-llama/Llama-2-7b-hf"
        loads = [(p.profile, p.workload.concurrency, p.workload.rate, p.workload.arrival, p.workload.num_requests)
                 for p in b.points]
        assert loads == [("synchronous", 1, None, "constant", 3), ("concurrent", 4, None, "constant", 6),
                         ("constant", 16, 2.5, "constant", 5), ("poisson", None, 3.0, "poisson", 4)]
        assert all(p.workload.seed == 11 for p in b.points)
        first = b.points[0]
        assert first.requests().input_tokens.tolist() == [100, 101, 102]  # send order, not file order
        assert first.measured["e2e_mean_ms"] == pytest.approx(80.0)
        assert first.measured["ttft_p99_ms"] == 30.0


def test_emitted_vllm_bench_summary_reads_back_as_the_same_load(tmp_path):
    wl = Workload.random(input_len=200, output_len=20, num_requests=30, concurrency=3)
    cfg = blis.SimConfig(workload=wl, latency_model="blackbox", alpha_coeffs=(500, 2, 30),
                         beta_coeffs=(1000, 10, 1), engine=blis.EngineConfig(total_kv_blocks=2000))
    res = blis.simulate(cfg)
    doc = {"model_id": "llama-2-7b", "num_prompts": 30, "request_rate": "inf", "burstiness": 1.0,
           "max_concurrency": 3, **vllm_bench_summary(res)}
    assert doc["completed"] == 30 and doc["mean_ttft_ms"] == pytest.approx(res.summary["ttft_mean_ms"])
    bench = read_benchmark(write(tmp_path, doc))
    p = bench.points[0]
    again = blis.simulate(cfg.model_copy(update={"workload": p.workload}), requests=p.requests())
    for ours, theirs in (("ttft_mean_ms", "mean_ttft_ms"), ("tpot_mean_ms", "mean_tpot_ms"),
                         ("e2e_mean_ms", "mean_e2el_ms")):
        assert again.summary[ours] == pytest.approx(doc[theirs], rel=1e-6)


def test_cli_emit_and_replay_benchmark(tmp_path):
    out = subprocess.run([sys.executable, "-m", "blis", "run", "--concurrency", "2", "--num-requests", "10",
                          "--input-len", "128", "--output-len", "16", "--emit", "vllm-bench", "--no-progress"],
                         capture_output=True, text=True, check=True)
    doc = json.loads(out.stdout)
    for key in ("mean_ttft_ms", "median_ttft_ms", "p99_ttft_ms", "mean_tpot_ms", "mean_itl_ms", "mean_e2el_ms",
                "request_throughput", "output_throughput", "total_token_throughput", "completed"):
        assert key in doc
    path = write(tmp_path, {"model_id": "llama-2-7b", "num_prompts": 10, "request_rate": "inf",
                            "max_concurrency": 2, **doc})
    rep = subprocess.run([sys.executable, "-m", "blis", "replay", "--benchmark", str(path)],
                         capture_output=True, text=True, check=True)
    row = json.loads(rep.stdout)["points"][0]
    assert row["err_ttft_mean_ms"] == pytest.approx(0, abs=1e-6)  # same load, same model: same numbers
    bad = subprocess.run([sys.executable, "-m", "blis", "replay", "--benchmark", str(path), "--trace", "x"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "exactly one" in bad.stderr


# ---------------------------------------------------------------------------------------- real data
@pytest.mark.parametrize("run", GUIDELLM_RUNS)
def test_shared_guidellm_sweeps_read_and_replay(shared_data, run):
    folder = shared_data / "traces" / "vllm-0.11-guidellm" / run
    bench = read_benchmark(folder)
    assert [p.profile for p in bench.points] == ["synchronous", "throughput", "constant", "constant", "constant"]
    assert all(p.workload.num_requests == 40 and p.input_tokens is not None for p in bench.points)
    assert bench.points[0].workload.concurrency == 1
    assert bench.server.model == "codellama/CodeLlama-34b-Instruct-hf"
    csv_ttft = float(np.genfromtxt(folder / "guidellm_benchmarks.csv", delimiter=",", names=True)["ttft_ms_mean"][0])
    assert bench.points[0].measured["ttft_mean_ms"] == pytest.approx(csv_ttft)
    rows = run_benchmark(bench)
    errs = median_errors(rows)
    # gates a little above what was measured (docs/validation.md): the single-user point within 10 %, the
    # median TPOT error over the sweep within 15 %, the constant-rate points' median TTFT error within 25 %
    assert abs(rows[0]["err_ttft_mean_ms"]) < 0.10 and abs(rows[0]["err_tpot_mean_ms"]) < 0.10
    assert np.median([abs(r["err_tpot_mean_ms"]) for r in rows]) < 0.15
    assert errs["constant"]["ttft_mean_ms_median_abs_err"] < 0.25


def test_rate_driven_points_use_recorded_send_times(tmp_path):
    b = read_benchmark(write(tmp_path, guidellm_report(), "benchmarks.json"))
    constant = b.points[2]
    assert constant.sent_us.tolist() == [0, 1_000_000, 2_000_000, 3_000_000, 4_000_000]
    assert constant.requests().arrival_us.tolist() == constant.sent_us.tolist()
    assert constant.requests(recorded_times=False).arrival_us.tolist() == [0, 400_000, 800_000, 1_200_000,
                                                                          1_600_000]
    assert b.points[0].sent_us is None  # closed-loop profiles: send times come from the simulation
    vb = read_benchmark(write(tmp_path, bench_doc(request_rate=4, input_lens=[10, 20, 30, 40],
                                                  output_lens=[1, 2, 3, 4], start_times=[5.5, 5.0, 5.25, 6.0])))
    p = vb.points[0]
    assert p.sent_us.tolist() == [0, 250_000, 500_000, 1_000_000]
    assert p.requests().input_tokens.tolist() == [20, 30, 10, 40]
