"""Regression gate on the nine shared H100 runs (shared/data/traces/h100-vllm-v1).

1. What blis does by default (``--calibration auto``) and with ``--latency-model blackbox`` (the shipped table's
   entry where a setup has one, else the generic physics linearised): each whole run is replayed and its
   errors must stay at most the limits below.
2. The cross-validated errors of ``blis/latency/coefficients/cross_validation.yaml`` (written by
   ``python -m tools.crossvalidate --write``): every held-back run is replayed with the parameters its fold
   fitted *without it* (recorded there; nothing is fitted here) and with the generic per-GPU physics, and each
   error must stay at most its recorded value. This covers leave-one-run-out (per setup, roofline and
   blackbox) and leave-one-model-out (per-GPU roofline parameters).

Limit = recorded error x 1.2 + 1.5 percentage points, so a change that makes the simulator less faithful to
these runs fails here; a change that improves them should re-record (MEASURED below, or rerun the tool).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
import yaml

from blis.latency.calibration import shipped_roofline_refit
from blis.latency.fidelity import CV_FILE
from blis.traces import load_run
from blis.traces.replay import replay
from blis.validate import compare, error_pct

RUNS = (
    "20260217-155451-llama-2-7b-tp1-codegen",
    "20260217-162547-llama-2-7b-tp1-roleplay",
    "20260217-170634-llama-2-7b-tp1-reasoning",
    "20260217-202857-llama-2-70b-tp4-general",
    "20260217-231439-llama-2-7b-tp1-general",
    "20260218-065057-llama-2-70b-hf-tp4-reasoning",
    "20260218-135247-mixtral-8x7b-v0-1-tp2-reasoning",
    "20260218-150304-codellama-34b-tp2-general",
    "20260218-160939-codellama-34b-tp2-reasoning",
)
OVERLOADED = {RUNS[2], RUNS[5], RUNS[6], RUNS[8]}
BOUNDED_KEYS = ("ttft_mean_ms", "e2e_mean_ms", "tpot_mean_ms", "e2e_p99_ms")
OVERLOADED_KEYS = ("completed", "ttft_p50_ms")
CV_KEYS = ("ttft_mean_ms", "e2e_mean_ms", "tpot_mean_ms")
MARGIN_FACTOR, MARGIN_POINTS = 1.2, 1.5

# errors (%) measured with the default choice (auto) and with --latency-model blackbox at the commit that
# re-recorded them (python -m tools.record_regression)
MEASURED: dict[str, dict[str, dict[str, float]]] = {
    "default": {
        "20260217-155451-llama-2-7b-tp1-codegen": {
            "ttft_mean_ms": 14.68, "e2e_mean_ms": 11.82, "tpot_mean_ms": 11.78, "e2e_p99_ms": 8.38},
        "20260217-162547-llama-2-7b-tp1-roleplay": {
            "ttft_mean_ms": 21.8, "e2e_mean_ms": 11.26, "tpot_mean_ms": 11.12, "e2e_p99_ms": 8.94},
        "20260217-170634-llama-2-7b-tp1-reasoning": {
            "completed": 0.68, "ttft_p50_ms": 15.75},
        "20260217-202857-llama-2-70b-tp4-general": {
            "ttft_mean_ms": 41.26, "e2e_mean_ms": 8.41, "tpot_mean_ms": 7.76, "e2e_p99_ms": 18.34},
        "20260217-231439-llama-2-7b-tp1-general": {
            "ttft_mean_ms": 0.65, "e2e_mean_ms": 0.83, "tpot_mean_ms": 0.84, "e2e_p99_ms": 4.59},
        "20260218-065057-llama-2-70b-hf-tp4-reasoning": {
            "completed": 50.0, "ttft_p50_ms": 38.67},
        "20260218-135247-mixtral-8x7b-v0-1-tp2-reasoning": {
            "completed": 218.73, "ttft_p50_ms": 52.04},
        "20260218-150304-codellama-34b-tp2-general": {
            "ttft_mean_ms": 0.72, "e2e_mean_ms": 3.38, "tpot_mean_ms": 3.43, "e2e_p99_ms": 1.85},
        "20260218-160939-codellama-34b-tp2-reasoning": {
            "completed": 0.08, "ttft_p50_ms": 79.72},
    },
    "blackbox": {
        "20260217-155451-llama-2-7b-tp1-codegen": {
            "ttft_mean_ms": 4.56, "e2e_mean_ms": 13.46, "tpot_mean_ms": 13.59, "e2e_p99_ms": 2.87},
        "20260217-162547-llama-2-7b-tp1-roleplay": {
            "ttft_mean_ms": 5.76, "e2e_mean_ms": 25.25, "tpot_mean_ms": 25.51, "e2e_p99_ms": 21.86},
        "20260217-170634-llama-2-7b-tp1-reasoning": {
            "completed": 158.06, "ttft_p50_ms": 37.32},
        "20260217-202857-llama-2-70b-tp4-general": {
            "ttft_mean_ms": 55.41, "e2e_mean_ms": 31.55, "tpot_mean_ms": 31.08, "e2e_p99_ms": 32.17},
        "20260217-231439-llama-2-7b-tp1-general": {
            "ttft_mean_ms": 26107.25, "e2e_mean_ms": 376.74, "tpot_mean_ms": 48.74, "e2e_p99_ms": 636.18},
        "20260218-065057-llama-2-70b-hf-tp4-reasoning": {
            "completed": 50.0, "ttft_p50_ms": 99.95},
        "20260218-135247-mixtral-8x7b-v0-1-tp2-reasoning": {
            "completed": 218.73, "ttft_p50_ms": 99.94},
        "20260218-150304-codellama-34b-tp2-general": {
            "ttft_mean_ms": 25.23, "e2e_mean_ms": 28.09, "tpot_mean_ms": 28.12, "e2e_p99_ms": 21.68},
        "20260218-160939-codellama-34b-tp2-reasoning": {
            "completed": 0.08, "ttft_p50_ms": 99.96},
    },
}


def _errors(rep) -> dict[str, float]:
    out = {k: rep.metrics[k].error_pct for k in ("ttft_mean_ms", "e2e_mean_ms", "tpot_mean_ms", "e2e_p99_ms")}
    out["ttft_p50_ms"] = rep.extra["ttft_p50_ms"].error_pct
    out["completed"] = error_pct(rep.completed_measured, rep.completed_simulated)
    return out


class Replays:
    """Whole-run replays, each done once: (run, latency model, calibration or fitted parameters)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.runs: dict = {}
        self.done: dict = {}

    def run(self, name: str):
        if name not in self.runs:
            self.runs[name] = load_run(self.root / name)
        return self.runs[name]

    def errors(self, name: str, model: str | None, calibration: str = "auto", params: dict | None = None) -> dict:
        run = self.run(name)
        s = run.server
        if model in (None, "roofline") and calibration == "auto" and shipped_roofline_refit(s.model, s.hardware,
                                                                                            s.tp) is None:
            model, calibration = "roofline", "generic"  # the default for this setup is the generic physics
        key = (name, model or "roofline", calibration, json.dumps(params, sort_keys=True))
        if key not in self.done:
            if params is not None and model == "blackbox":
                r = replay(run, "blackbox", alpha=tuple(params["alpha"]), beta=tuple(params["beta"]))
            elif params is not None:
                with tempfile.TemporaryDirectory() as tmp:
                    path = Path(tmp) / "fold.yaml"
                    path.write_text(yaml.safe_dump({"roofline": params}))
                    r = replay(run, model, calibration=str(path))
            else:
                r = replay(run, model, calibration=calibration)
            rep = compare(r)
            assert rep.overloaded == (name in OVERLOADED), name
            self.done[key] = _errors(rep)
        return self.done[key]


@pytest.fixture(scope="module")
def replays(shared_data) -> Replays:
    return Replays(shared_data / "traces" / "h100-vllm-v1")


def _limit(recorded: float) -> float:
    return recorded * MARGIN_FACTOR + MARGIN_POINTS


@pytest.mark.parametrize("model", ["default", "blackbox"])
def test_errors_do_not_grow(replays, model):
    assert MEASURED, "re-record MEASURED"
    worse = []
    for name, recorded in MEASURED.get(model, {}).items():
        now = replays.errors(name, None if model == "default" else model)
        keys = OVERLOADED_KEYS if name in OVERLOADED else BOUNDED_KEYS
        for k in keys:
            if not now[k] <= _limit(recorded[k]):
                worse.append(f"{name} {k}: {now[k]:.2f}% > {_limit(recorded[k]):.2f}% (was {recorded[k]:.2f}%)")
    assert not worse, "simulator less faithful to the shared runs:\n" + "\n".join(worse)


def _cv_records() -> list[dict]:
    return (yaml.safe_load(Path(CV_FILE).read_text()) or {}).get("results", [])


def test_cross_validation_file_covers_every_run():
    recs = _cv_records()
    for kind, model in (("loro", "roofline"), ("loro", "blackbox"), ("lomo", "roofline")):
        runs = {h["run"] for r in recs if (r["kind"], r["latency_model"]) == (kind, model) for h in r["held_out"]}
        assert runs in (set(), set(RUNS)), (kind, model, sorted(set(RUNS) - runs))
    assert {h["run"] for r in recs if r["kind"] == "loro" for h in r["held_out"]} == set(RUNS)
    for r in recs:
        for h in r["held_out"]:
            assert (h["refit"] is None) == (h.get("fold_params") is None), (r["kind"], h["run"])


@pytest.mark.parametrize("kind", ["loro", "lomo"])
def test_cross_validated_errors_do_not_grow(replays, kind):
    worse = []
    for rec in _cv_records():
        if rec["kind"] != kind:
            continue
        for h in rec["held_out"]:
            sides = [("generic", replays.errors(h["run"], "roofline", "generic"))]
            if h.get("fold_params"):
                sides.append(("refit", replays.errors(h["run"], rec["latency_model"], params=h["fold_params"])))
            for side, now in sides:
                for k in CV_KEYS:
                    was = h[side][k]
                    if was is not None and not now[k] <= _limit(was):
                        worse.append(f"{kind} {rec['latency_model']} {side} {h['run']} {k}: {now[k]:.2f}% > "
                                     f"{_limit(was):.2f}% (recorded {was:.2f}%)")
    assert not worse, "cross-validated errors grew:\n" + "\n".join(worse)
