"""Regression gate on the nine shared H100 runs (shared/data/traces/h100-vllm-v1).

1. What blis does by default (``--calibration auto``) and the shipped blackbox table (setups with an entry):
   each whole run is replayed and its errors must stay at most the limits below.
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

# errors (%) measured with the default choice (auto) and the shipped blackbox table at the commit that
# re-recorded them; runs of a setup without a blackbox entry are not in "blackbox"
MEASURED: dict[str, dict[str, dict[str, float]]] = {}


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
    loro = {h["run"] for r in recs if r["kind"] == "loro" for h in r["held_out"]}
    lomo = {h["run"] for r in recs if r["kind"] == "lomo" for h in r["held_out"]}
    assert loro == set(RUNS) and lomo == set(RUNS)
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
