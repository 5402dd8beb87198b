"""`blis validate`: metric definitions, errors, tolerances, the JSON schema and exit codes."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from blis.cli import main
from blis.errors import BlisInputError
from blis.traces import load_run
from blis.validate import (
    METRICS,
    ExperimentReport,
    MetricComparison,
    ValidationReport,
    error_pct,
    is_overloaded,
    latency_metrics,
    parse_tolerances,
    tolerance_violations,
    validate,
)

A0, B0, B1, B2 = 5000.0, 4000.0, 10.0, 100.0  # blackbox coefficients of the tiny runs (us)


def _alone_latency_ms(prompt: int, output: int) -> tuple[float, float]:
    """A request alone on an idle blackbox server: queueing, one prefill step, output-1 decode steps."""
    ttft = A0 + B0 + B1 * prompt
    e2e = ttft + (output - 1) * (B0 + B2)
    return ttft / 1e3, e2e / 1e3


def _tiny_run(folder, prompts=(100, 200, 300), output=5, scale=1.0, failed=()):
    """Requests 100 s apart (each alone), measured latencies = the hand formula x ``scale``."""
    folder.mkdir(parents=True)
    rows = ["index,arrival_time_us,input_tokens,output_tokens,prefix_group,has_error,e2e_s,ttft_s"]
    for i, p in enumerate(prompts):
        if i in failed:
            rows.append(f"{i},{i * 100_000_000},0,0,,1,300.1,")
            continue
        ttft, e2e = _alone_latency_ms(p, output)
        rows.append(f"{i},{i * 100_000_000},{p},{output},,0,{e2e * scale / 1e3},{ttft * scale / 1e3}")
    (folder / "requests.csv").write_text("\n".join(rows) + "\n")
    (folder / "meta.json").write_text(json.dumps({
        "experiment": folder.name, "model_id": "meta-llama/Llama-2-7b-hf",
        "config": {"tensor_parallelism": 1, "max_num_seqs": 8, "max_num_batched_tokens": 512,
                   "kv_blocks_total_gpu": 1000, "block_size": 16}}))
    (folder / "exp-config.yaml").write_text("model: meta-llama/Llama-2-7b-hf\ntensor_parallelism: 1\n"
                                            "max_model_len: 4096\n")
    (folder / "profile.yaml").write_text(json.dumps({
        "data": {"shared_prefix": {"output_len": output}},
        "load": {"stages": [{"rate": len(prompts) / 300, "duration": 300}]}}))
    return folder


def _coeff_file(tmp_path):
    path = tmp_path / "coeffs.yaml"
    path.write_text(f"- model: meta-llama/llama-2-7b-hf\n  hardware: H100\n  tp: 1\n"
                    f"  alpha: [{A0}, 0.0, 0.0]\n  beta: [{B0}, {B1}, {B2}]\n  source: test\n")
    return path


def test_latency_metrics_by_hand():
    ttft = np.array([10.0, 20.0, np.nan, 30.0])
    e2e = np.array([110.0, 220.0, np.nan, 330.0])
    out = np.array([11, 21, 5, 1])
    m = latency_metrics(ttft, e2e, out)
    assert m["completed"] == 3
    assert m["ttft_mean_ms"] == pytest.approx(20.0)
    assert m["e2e_mean_ms"] == pytest.approx(220.0)
    assert m["ttft_p90_ms"] == pytest.approx(28.0)  # linear interpolation between 20 and 30
    # TPOT only for output_len > 1: (110-10)/10 = 10 and (220-20)/20 = 10
    assert m["tpot_mean_ms"] == pytest.approx(10.0)
    assert math.isnan(latency_metrics(np.array([np.nan]), np.array([np.nan]), np.array([3]))["ttft_mean_ms"])


def test_error_pct():
    assert error_pct(200.0, 150.0) == pytest.approx(25.0)
    assert error_pct(200.0, 250.0) == pytest.approx(25.0)
    assert math.isnan(error_pct(0.0, 1.0)) and math.isnan(error_pct(1.0, math.nan))


def test_parse_tolerances():
    assert parse_tolerances("ttft_mean=15, e2e_mean_ms=10") == {("ttft_mean_ms", "median"): 15.0,
                                                                 ("e2e_mean_ms", "median"): 10.0}
    assert parse_tolerances("e2e_mean:worst=10,tpot_mean:mean=4") == {("e2e_mean_ms", "worst"): 10.0,
                                                                      ("tpot_mean_ms", "mean"): 4.0}
    assert parse_tolerances(None) == {}
    for bad, pattern in (("ttft=5", "METRIC one of"), ("ttft_mean", "METRIC one of"),
                         ("ttft_mean:max=5", "statistic 'max'"),
                         ("ttft_mean=x", "not a number"), ("ttft_mean=-1", ">= 0")):
        with pytest.raises(BlisInputError, match=pattern):
            parse_tolerances(bad)


def _report(errors: list[float]) -> ValidationReport:
    exps = []
    for i, err in enumerate(errors):
        metrics = {k: MetricComparison(100.0, 100.0 + err, err) for k in METRICS}
        exps.append(ExperimentReport(f"r{i}", "m", 1, "blackbox", 10, 10, 10, metrics))
    return ValidationReport(exps)


def test_median_and_tolerance_violations():
    rep = _report([1.0, 5.0, 30.0])
    assert rep.median_error_pct()["ttft_mean_ms"] == pytest.approx(5.0)
    assert tolerance_violations(rep, {"ttft_mean_ms": 5.0}) == []
    assert len(tolerance_violations(rep, {"ttft_mean_ms": 4.9, "e2e_p99_ms": 10})) == 1
    # mean 12, worst 30 (run r2): a bound on the worst run catches what the median hides
    assert rep.mean_error_pct()["ttft_mean_ms"] == pytest.approx(12.0)
    assert rep.worst_error_pct()["ttft_mean_ms"] == (30.0, "r2")
    assert tolerance_violations(rep, {("ttft_mean_ms", "median"): 10.0}) == []
    (line,) = tolerance_violations(rep, {("ttft_mean_ms", "worst"): 10.0})
    assert "worst error 30.00% (run r2)" in line
    assert tolerance_violations(rep, {("ttft_mean_ms", "mean"): 12.5}) == []


def test_exact_replay_of_an_idle_server(tmp_path):
    """Measured latencies equal to the hand-computed blackbox latencies give 0 % error; x1.25 gives 20 %."""
    coeffs = _coeff_file(tmp_path)
    exact = _tiny_run(tmp_path / "runs" / "exact")
    slow = _tiny_run(tmp_path / "runs" / "slow", scale=1.25)
    rep = validate([tmp_path / "runs"], "blackbox", calibration_file=str(coeffs))
    by_name = {e.name: e for e in rep.experiments}
    for k in METRICS:
        assert by_name["exact"].metrics[k].error_pct == pytest.approx(0.0, abs=1e-6), k
        assert by_name["slow"].metrics[k].error_pct == pytest.approx(20.0, abs=1e-6), k
    assert by_name["exact"].completed_simulated == 3
    assert not by_name["exact"].overloaded
    assert load_run(exact).requests.prompt_id.tolist() == [0, 1, 2]
    assert load_run(slow).failed.sum() == 0


def test_failed_requests_are_sent_but_not_scored(tmp_path):
    coeffs = _coeff_file(tmp_path)
    run = _tiny_run(tmp_path / "run", failed=(1,))
    rep = validate([run], "blackbox", calibration_file=str(coeffs)).experiments[0]
    assert rep.requests == 3
    assert rep.completed_measured == 2
    assert rep.completed_simulated == 3  # the simulated server serves it; the measured side lost it
    assert rep.overloaded  # client failures mark a run overloaded
    ttft0, _ = _alone_latency_ms(100, 5)
    ttft2, _ = _alone_latency_ms(300, 5)
    assert rep.metrics["ttft_mean_ms"].measured == pytest.approx((ttft0 + ttft2) / 2)


def test_overload_detection_from_growing_ttft(tmp_path):
    run = load_run(_tiny_run(tmp_path / "run", prompts=tuple(range(100, 140))))
    assert not is_overloaded(run)
    run.ttft_ms = np.linspace(10.0, 60_000.0, len(run))
    assert is_overloaded(run)


def test_cli_json_schema_and_exit_codes(tmp_path, capsys):
    coeffs = _coeff_file(tmp_path)
    _tiny_run(tmp_path / "runs" / "exact")
    _tiny_run(tmp_path / "runs" / "slow", scale=1.25)
    args = ["validate", "--traces", str(tmp_path / "runs"), "--latency-model", "blackbox",
            "--calibration-file", str(coeffs), "--json"]
    assert main(args + ["--tolerance", "ttft_mean=10.5"]) == 0  # median of 0 % and 20 % = 10 %
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"experiments", "summary"}
    assert set(out["summary"]) == {"median_error_pct", "mean_error_pct", "worst_error_pct"}
    assert set(out["summary"]["median_error_pct"]) == set(METRICS)
    assert out["summary"]["median_error_pct"]["e2e_mean_ms"] == pytest.approx(10.0)
    assert out["summary"]["mean_error_pct"]["e2e_mean_ms"] == pytest.approx(10.0)
    assert out["summary"]["worst_error_pct"]["e2e_mean_ms"]["error_pct"] == pytest.approx(20.0)
    assert out["summary"]["worst_error_pct"]["e2e_mean_ms"]["run"] == "slow"
    exp = out["experiments"][0]
    assert set(exp) == {"name", "model", "tp", "latency_model", "requests", "completed_measured",
                        "completed_simulated", "metrics"}
    assert (exp["model"], exp["tp"], exp["latency_model"], exp["requests"]) == (
        "meta-llama/Llama-2-7b-hf", 1, "blackbox", 3)
    assert set(exp["metrics"]) == set(METRICS)
    assert set(exp["metrics"]["ttft_mean_ms"]) == {"measured", "simulated", "error_pct"}
    assert main(args + ["--tolerance", "ttft_mean=9.5"]) == 1
    err = capsys.readouterr().err
    assert "tolerance exceeded: ttft_mean_ms" in err
    assert main(args + ["--tolerance", "ttft_mean=10.5,ttft_mean:worst=19"]) == 1  # the slow run is 20 % off
    assert "worst error 20.00% (run slow)" in capsys.readouterr().err


def test_cli_table_and_bad_input(tmp_path, capsys):
    coeffs = _coeff_file(tmp_path)
    _tiny_run(tmp_path / "runs" / "exact")
    assert main(["validate", "--traces", str(tmp_path / "runs"), "--latency-model", "blackbox",
                 "--calibration-file", str(coeffs)]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and "median error" in captured.err
    assert main(["validate", "--traces", str(tmp_path / "runs"), "--tolerance", "bogus=1"]) == 2
    assert "blis: error: --tolerance" in capsys.readouterr().err
    assert main(["validate", "--traces", str(tmp_path / "nowhere")]) == 2
