"""`blis calibrate`: the train/held-back split, the measured decode design, and recovering known
coefficients from runs the simulator itself produced."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

import blis
from blis.calibrate import (
    CalibrationSettings,
    calibrate,
    measured_decode_design,
    plan_pieces,
    train_rows,
)
from blis.cli import main
from blis.errors import BlisInputError
from blis.traces import load_run
from blis.traces.replay import blackbox_from_file, sim_config

TRUE_ALPHA = (8000.0, 0.0, 0.0)
TRUE_BETA = (5000.0, 20.0, 150.0)


def _write_folder(folder, arrival_us, inputs, output_len, ttft_s, e2e_s, stages):
    folder.mkdir(parents=True)
    rows = ["index,arrival_time_us,input_tokens,output_tokens,prefix_group,has_error,e2e_s,ttft_s"]
    for i, (a, n, t, e) in enumerate(zip(arrival_us, inputs, ttft_s, e2e_s)):
        rows.append(f"{i},{int(a)},{int(n)},{output_len},,0,{e},{t}")
    (folder / "requests.csv").write_text("\n".join(rows) + "\n")
    (folder / "meta.json").write_text(json.dumps({
        "experiment": folder.name, "model_id": "meta-llama/Llama-2-7b-hf",
        "config": {"tensor_parallelism": 1, "max_num_seqs": 64, "max_num_batched_tokens": 1024,
                   "kv_blocks_total_gpu": 4000, "block_size": 16}}))
    (folder / "exp-config.yaml").write_text("model: meta-llama/Llama-2-7b-hf\ntensor_parallelism: 1\n")
    (folder / "profile.yaml").write_text(json.dumps({
        "data": {"shared_prefix": {"output_len": output_len}},
        "load": {"stages": [{"rate": r, "duration": d} for r, d in stages]}}))
    return folder


def _synthetic_run(tmp_path, name="synthetic", seed=1):
    """A run whose 'measured' latencies are a blackbox simulation with TRUE_ALPHA/TRUE_BETA."""
    rng = np.random.default_rng(seed)
    n = 240
    arrival = np.sort(rng.uniform(0, 120e6, n)).astype(np.int64)
    arrival[0] = 0
    inputs = rng.integers(100, 600, n)
    output_len = 30
    table = blis.RequestTable(arrival_us=arrival, input_tokens=inputs, output_tokens=np.full(n, output_len))
    probe = _write_folder(tmp_path / "probe", arrival, inputs, output_len, np.full(n, 0.1), np.full(n, 1.0),
                          [(2.0, 120)])
    cfg = sim_config(load_run(probe), "blackbox", alpha=TRUE_ALPHA, beta=TRUE_BETA)
    res = blis.simulate(cfg, table).requests
    return _write_folder(tmp_path / name, arrival, inputs, output_len, res.ttft_ms / 1e3, res.e2e_ms / 1e3,
                         [(2.0, 120)])


def test_train_rows_alternate_blocks(tmp_path):
    run = load_run(_synthetic_run(tmp_path))
    t = run.requests.arrival_us / 1e6
    train = train_rows(run, 30.0)
    assert (train == ((t // 30) % 2 == 0)).all()
    assert train.any() and (~train).any()


def test_pieces_are_training_windows(tmp_path):
    run = load_run(_synthetic_run(tmp_path))
    pieces = plan_pieces(run, CalibrationSettings(block_s=20.0, windows_per_run=2))
    assert len(pieces) == 2
    for p in pieces:
        assert not p.overloaded
        assert int(p.window.start_s // 20) % 2 == 0  # an even (training) block
        assert p.window.end_s - p.window.start_s == 20.0


def test_measured_decode_design_by_hand(tmp_path):
    # two requests, 11 output tokens: A decodes over [0.1, 1.1] s alone except [0.6, 1.1] shared with B
    folder = _write_folder(tmp_path / "two", [0, 500_000], [32, 32], 11, [0.1, 0.1], [1.1, 1.1],
                           [(1.0, 2)])
    X, y = measured_decode_design(load_run(folder), np.array([True, True]))
    assert X.shape == (2, 3) and np.allclose(y, [1e6, 1e6])
    assert np.allclose(X[:, 0], 10)  # decode steps = output_len - 1
    # time-average decode batch over A's interval: 1 for 0.5 s, 2 for 0.5 s -> 1.5; x 10 steps
    assert X[0, 2] == pytest.approx(15.0)
    assert X[1, 2] == pytest.approx(15.0)
    # prompt tokens computed during A's decode: B's, whose prompt (two full blocks, a new prompt) is all new
    assert X[0, 1] == pytest.approx(32.0)
    assert X[1, 1] == pytest.approx(0.0)


def test_blackbox_recovers_known_coefficients(tmp_path):
    """Data made by the simulator with known coefficients: the fit reproduces the held-back latencies."""
    run = load_run(_synthetic_run(tmp_path))
    settings = CalibrationSettings(block_s=20.0, windows_per_run=3, warmup_s=10.0, cooldown_s=5.0, max_evals=40)
    res = calibrate([run], "blackbox", settings)
    (err,) = res.errors
    for k in ("ttft_mean_ms", "e2e_mean_ms", "tpot_mean_ms"):
        assert err.test[k] < 3.0, (k, err.test[k])
    beta = res.groups[0].params["beta"]
    assert beta[0] + 10 * beta[2] == pytest.approx(TRUE_BETA[0] + 10 * TRUE_BETA[2], rel=0.1)
    assert res.groups[0].loss_end <= res.groups[0].loss_start
    entries = yaml.safe_load(res.to_yaml())
    assert entries[0]["model"] == "meta-llama/llama-2-7b-hf" and entries[0]["tp"] == 1


def test_cli_writes_usable_files(tmp_path, capsys):
    folder = _synthetic_run(tmp_path)
    out = tmp_path / "bb.yaml"
    assert main(["calibrate", "--traces", str(folder), "--latency-model", "blackbox", "--out", str(out),
                 "--max-evals", "0", "--block-seconds", "20"]) == 0
    alpha, beta = blackbox_from_file(str(out), "llama-2-7b", "H100", 1)
    assert len(alpha) == 3 and alpha[2] == 0.0 and all(b >= 0 for b in beta)
    assert "held back synthetic" in capsys.readouterr().err
    out2 = tmp_path / "rf.yaml"
    assert main(["calibrate", "--traces", str(folder), "--latency-model", "roofline", "--out", str(out2),
                 "--max-evals", "0", "--block-seconds", "20"]) == 0
    from blis.latency.roofline import read_calibration_file

    params = read_calibration_file(out2)
    assert set(params) >= {"step_overhead_us", "queueing_base_us", "bw_efficiency"}
    assert main(["validate", "--traces", str(folder), "--latency-model", "roofline", "--calibration-file",
                 str(out2), "--json"]) == 0


def test_bad_settings():
    with pytest.raises(BlisInputError, match="block_s"):
        CalibrationSettings(block_s=0)
    with pytest.raises(BlisInputError, match="cannot be calibrated"):
        calibrate([], "nonsense")


def test_blackbox_for_a_model_without_table_entry(tmp_path):
    folder = _synthetic_run(tmp_path)
    meta = json.loads((folder / "meta.json").read_text())
    meta["model_id"] = "Qwen/Qwen2.5-7B-Instruct"
    (folder / "meta.json").write_text(json.dumps(meta))
    (folder / "exp-config.yaml").write_text("model: Qwen/Qwen2.5-7B-Instruct\ntensor_parallelism: 1\n")
    res = calibrate([load_run(folder)], "blackbox", CalibrationSettings(block_s=20.0, max_evals=0))
    assert res.groups[0].model == "qwen/qwen2.5-7b-instruct"
    assert all(b >= 0 for b in res.groups[0].params["beta"])
