"""--calibration auto | generic | PATH (blis/latency/calibration.py) and the fidelity statement
(blis/latency/fidelity.py), on a coefficients folder written here."""

from __future__ import annotations

import pytest
import yaml
from pydantic import ValidationError

import blis.latency.calibration as cal
from blis.config import SimConfig
from blis.errors import BlisInputError
from blis.latency.base import create_latency_model
from blis.latency.fidelity import DATASHEET, PER_GPU, REFIT, USER, one_line, statement
from blis.simulate import choose_latency_model

REFIT_PARAMS = {"step_overhead_us": 999.0, "bw_efficiency": 0.7}


@pytest.fixture
def coeff_dir(tmp_path, monkeypatch):
    (tmp_path / "roofline_models.yaml").write_text(yaml.safe_dump(
        [{"model": "meta-llama/llama-2-7b-hf", "hardware": "H100", "tp": 1, "params": REFIT_PARAMS}]))
    monkeypatch.setattr(cal, "COEFF_DIR", tmp_path)
    return tmp_path


def _params(cfg: SimConfig):
    return create_latency_model("roofline", cfg).params


def test_auto_uses_the_shipped_refit_generic_does_not(coeff_dir):
    auto = _params(SimConfig(model="llama-2-7b", latency_model="roofline"))
    generic = _params(SimConfig(model="llama-2-7b", latency_model="roofline", calibration="generic"))
    other = _params(SimConfig(model="llama-2-7b", latency_model="roofline", tp=2))  # no refit for tp2
    assert auto.step_overhead_us == 999.0 and auto.bw_efficiency == 0.7
    assert generic.step_overhead_us != 999.0
    assert other == generic


def test_a_roofline_file_lays_over_the_per_gpu_physics(coeff_dir, tmp_path):
    f = tmp_path / "mine.yaml"
    f.write_text(yaml.safe_dump({"roofline": {"layer_overhead_us": 12.5}}))
    cfg = SimConfig(model="llama-2-7b", calibration=str(f))
    assert choose_latency_model(cfg)[0] == "roofline"
    p = _params(cfg)
    generic = _params(SimConfig(model="llama-2-7b", calibration="generic"))
    assert p.layer_overhead_us == 12.5 and p.step_overhead_us == generic.step_overhead_us  # not the refit
    # the older field name means the same
    assert _params(SimConfig(model="llama-2-7b", calibration_file=str(f))) == p


def test_a_blackbox_file_picks_the_blackbox_model(tmp_path):
    f = tmp_path / "bb.yaml"
    f.write_text(yaml.safe_dump([{"model": "meta-llama/Llama-2-7b-hf", "hardware": "H100", "tp": 1,
                                  "alpha": [1000.0, 0.0, 0.0], "beta": [2000.0, 3.0, 4.0]}]))
    cfg = SimConfig(model="llama-2-7b", calibration=str(f))
    name, reason = choose_latency_model(cfg)
    assert name == "blackbox" and "calibration file" in reason
    model = create_latency_model(name, cfg)
    assert model.alpha == (1000.0, 0.0, 0.0) and model.beta == (2000.0, 3.0, 4.0)
    with pytest.raises(BlisInputError, match="holds blackbox coefficients"):
        create_latency_model("roofline", cfg)


def test_bad_choices():
    with pytest.raises(ValidationError, match="auto, generic, or a file"):
        SimConfig(calibration="nowhere.yaml")
    with pytest.raises(BlisInputError, match="per-GPU physics"):
        create_latency_model("blackbox", SimConfig(model="llama-2-7b", calibration="generic"))


def test_conflicting_names(tmp_path):
    f = tmp_path / "a.yaml"
    f.write_text("roofline: {layer_overhead_us: 1.0}\n")
    with pytest.raises(BlisInputError, match="conflicts"):
        cal.effective(SimConfig(calibration="generic", calibration_file=str(f)))


def _cv_file(tmp_path):
    held = [
        {"run": "a-bounded", "overloaded": False, "generic": {"ttft_mean_ms": 10.0, "e2e_mean_ms": 4.0,
                                                              "tpot_mean_ms": 2.0},
         "refit": {"ttft_mean_ms": 6.0, "e2e_mean_ms": 2.0, "tpot_mean_ms": 1.0}},
        {"run": "b-bounded", "overloaded": False, "generic": {"ttft_mean_ms": 20.0, "e2e_mean_ms": 8.0,
                                                              "tpot_mean_ms": 4.0},
         "refit": {"ttft_mean_ms": 8.0, "e2e_mean_ms": 4.0, "tpot_mean_ms": 3.0}},
        {"run": "c-overloaded", "overloaded": True, "generic": {"ttft_mean_ms": 50.0, "e2e_mean_ms": 40.0,
                                                                "tpot_mean_ms": 30.0},
         "refit": {"ttft_mean_ms": 45.0, "e2e_mean_ms": 35.0, "tpot_mean_ms": 25.0}},
    ]
    other = [{"run": "d-other-model", "overloaded": False, "generic": {"ttft_mean_ms": 1.0, "e2e_mean_ms": 1.0,
                                                                       "tpot_mean_ms": 1.0}, "refit": None}]
    doc = {"results": [
        {"kind": "loro", "latency_model": "roofline", "model": "meta-llama/Llama-2-7b-hf", "hardware": "H100",
         "tp": 1, "penalty": 0.3, "ships": True, "held_out": held},
        {"kind": "loro", "latency_model": "roofline", "model": "codellama/CodeLlama-34b-Instruct-hf",
         "hardware": "H100", "tp": 2, "penalty": None, "ships": False, "held_out": other},
    ]}
    path = tmp_path / "cv.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_fidelity_of_a_validated_refit(coeff_dir, tmp_path):
    cv = _cv_file(tmp_path)
    cfg = SimConfig(model="llama-2-7b", latency_model="roofline")
    desc = create_latency_model("roofline", cfg).describe()
    fid = statement(cfg, "roofline", desc, overloaded=False, cv_file=cv)
    assert fid["basis"] == REFIT
    assert fid["expected_error_pct"] == {"ttft_mean": 7.0, "e2e_mean": 3.0, "tpot_mean": 2.0}  # bounded runs
    assert "a-bounded" in fid["evidence"] and "c-overloaded" not in fid["evidence"]
    over = statement(cfg, "roofline", desc, overloaded=True, cv_file=cv)
    assert over["expected_error_pct"] == {"ttft_mean": 45.0, "e2e_mean": 35.0, "tpot_mean": 25.0}
    assert "expected error ttft mean 7%" in one_line(fid)


def test_fidelity_of_the_per_gpu_physics(coeff_dir, tmp_path):
    cv = _cv_file(tmp_path)
    generic = SimConfig(model="llama-2-7b", latency_model="roofline", calibration="generic")
    desc = create_latency_model("roofline", generic).describe()
    fid = statement(generic, "roofline", desc, overloaded=False, cv_file=cv)
    assert fid["basis"] == PER_GPU
    assert fid["expected_error_pct"] == {"ttft_mean": 15.0, "e2e_mean": 6.0, "tpot_mean": 3.0}  # this setup's
    unseen = SimConfig(model="qwen2.5-7b", latency_model="roofline")  # no run of this model: the GPU's runs
    fid = statement(unseen, "roofline", create_latency_model("roofline", unseen).describe(), False, cv_file=cv)
    assert fid["basis"] == PER_GPU
    assert fid["expected_error_pct"] == {"ttft_mean": 10.3, "e2e_mean": 4.3, "tpot_mean": 2.3}  # a, b, d
    assert "runs of other models" in fid["evidence"]
    # a setup whose runs are all bounded, simulated overloaded: the GPU's overloaded runs (other models)
    cl = SimConfig(model="codellama-34b", tp=2, latency_model="roofline")
    fid = statement(cl, "roofline", create_latency_model("roofline", cl).describe(), True, cv_file=cv)
    assert fid["expected_error_pct"] == {"ttft_mean": 50.0, "e2e_mean": 40.0, "tpot_mean": 30.0}
    assert "c-overloaded" in fid["evidence"]


def test_fidelity_without_calibration_or_with_a_user_file(tmp_path):
    cv = _cv_file(tmp_path)
    cfg = SimConfig(model="llama-2-7b", hardware="A100-80GB", latency_model="roofline")
    desc = create_latency_model("roofline", cfg).describe()
    fid = statement(cfg, "roofline", desc, overloaded=False, cv_file=cv)
    assert fid["basis"] == DATASHEET and fid["expected_error_pct"]["e2e_mean"] is None
    f = tmp_path / "mine.yaml"
    f.write_text("roofline: {layer_overhead_us: 1.0}\n")
    user = SimConfig(model="llama-2-7b", calibration=str(f))
    assert statement(user, "roofline", {}, False, cv_file=cv)["basis"] == USER


def test_every_summary_has_fidelity_and_overload():
    import blis

    s = blis.simulate(SimConfig(model="llama-2-7b")).summary
    assert set(s["fidelity"]) == {"basis", "expected_error_pct", "evidence"}
    assert set(s["fidelity"]["expected_error_pct"]) == {"ttft_mean", "e2e_mean", "tpot_mean"}
    assert s["overloaded"] in (True, False) and "sustained_rate_rps" in s
