"""Cross-validation across runs (blis/calibrate/crossval.py) and the parameter space (ranges.py): small
checks only; the real cross-validation runs in tools/crossvalidate.py."""

from __future__ import annotations

import math

import numpy as np
import pytest

from blis.calibrate import CalibrationSettings, calibrate
from blis.calibrate.crossval import folds_lomo, folds_loro
from blis.calibrate.ranges import BLACKBOX_RANGES, ROOFLINE_RANGES, Space, in_range
from blis.calibrate.result import HeldOut, score
from blis.calibrate.roofline_fit import shipped_roofline_params
from blis.traces import load_run
from tests.test_calibrate import _synthetic_run


def test_every_parameter_has_a_range_and_the_prior_is_inside():
    prior = shipped_roofline_params("H100")
    assert in_range({k: prior[k] for k in ROOFLINE_RANGES}, ROOFLINE_RANGES) == []
    for lo, hi, why in list(ROOFLINE_RANGES.values()) + list(BLACKBOX_RANGES.values()):
        assert 0 <= lo < hi and why
    for k in ("bw_efficiency", "bw_efficiency_attention", "mfu_decode"):
        assert ROOFLINE_RANGES[k][1] <= 1.0  # a fraction of peak
    assert in_range({"bw_efficiency": 1.2}, ROOFLINE_RANGES) == ["bw_efficiency=1.2 not in [0.5, 1]"]


def test_space_clips_and_penalises_by_log_ratio():
    space = Space.build(("bw_efficiency", "step_overhead_us"), {"bw_efficiency": 0.8, "step_overhead_us": 1000.0},
                        ROOFLINE_RANGES)
    assert space.params(np.zeros(2)) == {"bw_efficiency": 0.8, "step_overhead_us": 1000.0}
    p = space.params(np.array([5.0, math.log(2.0)]))
    assert p["bw_efficiency"] == 1.0 and p["step_overhead_us"] == pytest.approx(2000.0)  # clipped to 1
    # penalty = w x mean(min(log ratio^2, 1)): ratio 1.25 -> log 0.223; ratio 2 -> 0.693
    want = (math.log(1.25) ** 2 + math.log(2.0) ** 2) / 2
    assert space.penalty(np.array([5.0, math.log(2.0)]), 1.0) == pytest.approx(want)
    assert space.penalty(np.array([0.0, 30.0]), 1.0) == pytest.approx(0.5)  # capped at 1 per parameter


def test_the_ship_rule_needs_every_held_back_run():
    g = {"ttft_mean_ms": 10.0, "e2e_mean_ms": 5.0, "tpot_mean_ms": 3.0}
    better = {"ttft_mean_ms": 9.0, "e2e_mean_ms": 4.0, "tpot_mean_ms": 3.0}
    assert score(g) == pytest.approx(6.0)
    assert HeldOut("r", False, g, better).refit_wins
    assert not HeldOut("r", False, g, g).refit_wins  # a tie keeps the generic physics
    assert score({"ttft_mean_ms": math.nan, "e2e_mean_ms": 0.0, "tpot_mean_ms": 0.0}) == pytest.approx(100 / 3)


def test_folds(tmp_path):
    a = load_run(_synthetic_run(tmp_path / "1", "a", seed=1))
    b = load_run(_synthetic_run(tmp_path / "2", "b", seed=2))
    assert [([r.name for r in tr], [r.name for r in te]) for tr, te in folds_loro([a, b])] == [
        (["b"], ["a"]), (["a"], ["b"])]
    assert len(folds_lomo([a, b])) == 1  # one model: nothing to leave out


def test_leave_one_run_out_on_two_synthetic_runs(tmp_path):
    """Two runs made by the simulator with the same coefficients: each fold's fit, scored on the other run,
    beats the generic physics (which knows nothing of those coefficients), so the refit is validated."""
    runs = [load_run(_synthetic_run(tmp_path / n, n, seed=s)) for n, s in (("a", 1), ("b", 2))]
    settings = CalibrationSettings(block_s=20.0, windows_per_run=2, warmup_s=10.0, cooldown_s=5.0, max_evals=6)
    res = calibrate(runs, "blackbox", settings, penalties=(0.0, 0.3))
    (cv,) = res.loro
    assert cv.kind == "loro" and [h.run for h in cv.held_out] == ["a", "b"]
    assert set(cv.cv_loss) == {0.0, 0.3} and cv.penalty in (0.0, 0.3)
    for h in cv.held_out:
        assert h.refit["e2e_mean_ms"] < h.generic["e2e_mean_ms"]
        assert h.params and len(h.params["beta"]) == 3
    assert cv.ship and res.validated(res.groups[0])
    assert "validated: true" in res.to_yaml()


def test_a_single_run_gets_no_validated_refit(tmp_path):
    run = load_run(_synthetic_run(tmp_path))
    res = calibrate([run], "blackbox", CalibrationSettings(block_s=20.0, max_evals=0))
    assert not res.loro[0].ship and "single run" in res.loro[0].verdict
    assert not res.validated(res.groups[0])


def test_shipped_refits_passed_and_stay_in_range():
    """Every shipped refit has a leave-one-run-out record that ships it, and its parameters are inside the
    physical ranges; every blackbox entry likewise."""
    import yaml

    from blis.latency.blackbox import canonical_model_name, load_coefficient_table
    from blis.latency.calibration import COEFF_DIR
    from blis.latency.fidelity import CV_FILE

    recs = yaml.safe_load(CV_FILE.read_text())["results"]
    shipped = {(r["latency_model"], canonical_model_name(r["model"]), r["tp"]) for r in recs
               if r["kind"] == "loro" and r["ships"]}
    for e in yaml.safe_load((COEFF_DIR / "roofline_models.yaml").read_text()) or []:
        assert ("roofline", canonical_model_name(e["model"]), e["tp"]) in shipped, e["model"]
        assert in_range(e["params"], ROOFLINE_RANGES) == [], e["model"]
    for e in load_coefficient_table():
        assert ("blackbox", canonical_model_name(e["model"]), e["tp"]) in shipped, e["model"]
        names = dict(zip(("a0", "a1", "b0", "b1", "b2"), [*e["alpha"][:2], *e["beta"]]))
        assert in_range(names, BLACKBOX_RANGES) == [], e["model"]


def test_calibrate_cli_says_what_it_would_ship(tmp_path, capsys):
    from blis.cli import main

    folder = _synthetic_run(tmp_path)
    out = tmp_path / "bb.yaml"
    assert main(["calibrate", "--traces", str(folder), "--latency-model", "blackbox", "--out", str(out),
                 "--max-evals", "0", "--block-seconds", "20"]) == 0
    err = capsys.readouterr().err
    assert "LORO blackbox" in err and "generic TTFT/E2E/TPOT" in err
    assert "would NOT ship" in err and "single run" in err
    assert main(["calibrate", "--traces", str(folder), "--latency-model", "blackbox", "--out", str(out),
                 "--penalty", "x"]) == 2
    assert main(["calibrate", "--traces", str(folder), "--latency-model", "blackbox", "--out", str(out),
                 "--calibration", "auto"]) == 2
