"""Replaying a run: settings passed to the engine, windows, the client timeout, `blis replay`."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from test_validate import _alone_latency_ms, _coeff_file, _tiny_run

from blis.cli import main
from blis.errors import BlisInputError
from blis.traces import load_run
from blis.traces.replay import Window, blackbox_from_file, replay, sim_config


def test_sim_config_carries_the_real_server_settings(tmp_path):
    run = load_run(_tiny_run(tmp_path / "run"))
    cfg = sim_config(run, "blackbox", alpha=(1.0, 0.0, 0.0), beta=(1.0, 1.0, 1.0))
    e = cfg.engine
    assert (e.max_num_seqs, e.max_num_batched_tokens, e.total_kv_blocks, e.block_size, e.max_model_len) == (
        8, 512, 1000, 16, 4096)
    assert (cfg.model, cfg.tp, cfg.hardware) == ("meta-llama/Llama-2-7b-hf", 1, "H100")


def test_window_simulates_margins_and_scores_inside(tmp_path):
    coeffs = _coeff_file(tmp_path)
    run = load_run(_tiny_run(tmp_path / "run", prompts=(100, 200, 300, 400)))  # arrivals 0, 100, 200, 300 s
    r = replay(run, "blackbox", window=Window(150.0, 250.0, warmup_s=60.0, cooldown_s=40.0),
               calibration_file=str(coeffs))
    assert r.index.tolist() == [1, 2]  # arrivals in [90, 290): 100 s and 200 s
    assert r.scored.tolist() == [False, True]
    ttft, e2e = _alone_latency_ms(300, 5)
    assert r.sim_ttft_ms[1] == pytest.approx(ttft) and r.sim_e2e_ms[1] == pytest.approx(e2e)
    with pytest.raises(BlisInputError, match="no request"):
        replay(run, "blackbox", window=Window(10.0, 20.0), calibration_file=str(coeffs))
    with pytest.raises(BlisInputError, match="start_s < end_s"):
        Window(5.0, 5.0)


def test_client_timeout_fails_slow_requests(tmp_path):
    path = tmp_path / "slow.yaml"
    # one decode step takes 80 s: 5 output tokens need 400 s, past the client's 300 s
    path.write_text("- {model: meta-llama/llama-2-7b-hf, hardware: H100, tp: 1, alpha: [0, 0, 0], "
                    "beta: [80000000, 0, 0], source: test}\n")
    run = load_run(_tiny_run(tmp_path / "run"))
    assert run.client_timeout_s == 300.0
    r = replay(run, "blackbox", calibration_file=str(path))
    assert r.sim_failed.all()
    assert np.isnan(r.sim_e2e_ms).all()


def test_blackbox_from_file_errors(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("roofline: {step_overhead_us: 1}\n")
    with pytest.raises(BlisInputError, match="expected a list of blackbox entries"):
        blackbox_from_file(str(path), "llama-2-7b", "H100", 1)
    coeffs = _coeff_file(tmp_path)
    with pytest.raises(BlisInputError, match="no blackbox entry for llama-2-7b H100 tp2"):
        blackbox_from_file(str(coeffs), "llama-2-7b", "H100", 2)
    assert blackbox_from_file(str(coeffs), "meta-llama/Llama-2-7b-hf", "h100", 1)[1] == (4000.0, 10.0, 100.0)


def test_cli_replay_writes_requests(tmp_path, capsys):
    coeffs = _coeff_file(tmp_path)
    folder = _tiny_run(tmp_path / "run")
    out_csv = tmp_path / "req.csv"
    assert main(["replay", "--trace", str(folder), "--latency-model", "blackbox", "--calibration-file",
                 str(coeffs), "--requests-out", str(out_csv)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["experiment"]["metrics"]["e2e_mean_ms"]["error_pct"] == pytest.approx(0.0, abs=1e-6)
    assert out["simulation"]["completed_requests"] == 3
    df = pd.read_csv(out_csv)
    assert len(df) == 3
    assert np.allclose(df.sim_ttft_ms, df.measured_ttft_ms)
    assert main(["replay", "--trace", str(tmp_path / "missing")]) == 2
