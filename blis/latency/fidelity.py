"""The fidelity statement of a prediction: on what the latency numbers rest and how far off they were,
cross-validated, on real runs (``coefficients/cross_validation.yaml``, written by ``tools/crossvalidate.py``).

basis (one of):
- ``refit validated on runs of this exact setup``: a shipped per-setup refit (auto); expected errors = mean
  over the setup's runs of the refit's leave-one-run-out error;
- ``per-GPU physics validated leave-one-model-out``: the per-GPU physics of a GPU with its own calibration;
  its parameters were fitted on no run of these setups, so every run's error is out-of-sample. Expected
  errors = mean over this setup's runs of the simulation's regime, else over the GPU's runs of that regime
  (other models), else over the setup's runs of the other regime;
- ``datasheet only``: a GPU with no calibration of its own (datasheet peaks, borrowed efficiencies): no
  expected error;
- ``user calibration (not validated by blis)``: a --calibration file or explicit blackbox coefficients.
Regime: the overloaded runs when the simulated server is overloaded, the bounded ones otherwise (a refit's
own runs fall back to all its runs when the regime has none). Never training error.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from blis.config import SimConfig

CV_FILE = Path(__file__).resolve().parent / "coefficients" / "cross_validation.yaml"
KEYS = {"ttft_mean": "ttft_mean_ms", "e2e_mean": "e2e_mean_ms", "tpot_mean": "tpot_mean_ms"}
REFIT = "refit validated on runs of this exact setup"
PER_GPU = "per-GPU physics validated leave-one-model-out"
DATASHEET = "datasheet only"
USER = "user calibration (not validated by blis)"


@functools.lru_cache(maxsize=4)
def _records(path: str) -> tuple:
    from blis._files import read_shipped_yaml

    p = Path(path)
    if not p.is_file():
        return ()
    return tuple((read_shipped_yaml(p) or {}).get("results", []))


def _same_setup(rec: dict, model: str, hardware: str, tp: int) -> bool:
    from blis.latency.blackbox import canonical_hardware_name, canonical_model_name

    return (rec.get("model") not in (None, "*") and canonical_model_name(rec["model"]) == canonical_model_name(model)
            and canonical_hardware_name(rec["hardware"]) == canonical_hardware_name(hardware)
            and int(rec.get("tp") or 0) == int(tp))


def _expected(rows: list[dict], side: str, overloaded: bool) -> tuple[dict, list[str]]:
    """Mean error per metric over ``rows`` (held-out entries) of the simulation's regime."""
    rows = [r for r in rows if r.get(side)]
    regime = [r for r in rows if bool(r.get("overloaded")) == overloaded] or rows
    out = {}
    for short, key in KEYS.items():
        vals = [r[side][key] for r in regime if r[side].get(key) is not None]
        out[short] = round(sum(vals) / len(vals), 1) if vals else None
    return out, [r["run"] for r in regime]


def _none() -> dict:
    return {k: None for k in KEYS}


def statement(config: SimConfig, latency_model: str, describe: dict, overloaded: bool,
              cv_file: str | Path = CV_FILE) -> dict:
    """``{basis, expected_error_pct: {ttft_mean, e2e_mean, tpot_mean}, evidence}`` for one simulation."""
    from blis.latency.calibration import effective

    choice = effective(config)
    recs = _records(str(cv_file))
    setup = (config.model, config.hardware, config.tp)
    if choice not in ("auto", "generic") or (latency_model == "blackbox" and config.alpha_coeffs is not None):
        return {"basis": USER, "expected_error_pct": _none(), "evidence": f"coefficients from {choice}"}
    source = str(describe.get("source") or describe.get("v1_source") or "")
    linearised = latency_model == "blackbox" and source.startswith("generic per-GPU physics")
    if (latency_model == "blackbox" and not linearised) or "roofline_models.yaml" in source:
        kind = "blackbox" if latency_model == "blackbox" else "roofline"
        rec = next((r for r in recs if r["kind"] == "loro" and r["latency_model"] == kind and r.get("ships")
                    and _same_setup(r, *setup)), None)
        if rec is None:
            return {"basis": USER if kind == "blackbox" else REFIT, "expected_error_pct": _none(),
                    "evidence": f"no cross-validation record for this {kind} refit in {Path(cv_file).name}"}
        exp, runs = _expected(rec["held_out"], "refit", overloaded)
        return {"basis": REFIT, "expected_error_pct": exp,
                "evidence": f"{kind} refit, leave-one-run-out (penalty {rec['penalty']}) on " + ", ".join(runs)}
    if "borrowed" in source:
        return {"basis": DATASHEET, "expected_error_pct": _none(),
                "evidence": f"no calibration for {config.hardware}: datasheet peaks with borrowed efficiencies"}
    from blis.latency.blackbox import canonical_hardware_name

    gpu = canonical_hardware_name(config.hardware)
    generic = {}
    for r in recs:
        if r["kind"] == "loro" and canonical_hardware_name(r["hardware"]) == gpu:
            for h in r["held_out"]:
                generic.setdefault(h["run"], {**h, "setup": _same_setup(r, *setup)})
    if not generic:
        return {"basis": PER_GPU, "expected_error_pct": _none(),
                "evidence": f"no cross-validated runs on {config.hardware} in {Path(cv_file).name}"}
    rows = list(generic.values())
    regime = [h for h in rows if bool(h.get("overloaded")) == overloaded]
    own = [h for h in regime if h["setup"]]
    pick, where = ((own, "this setup's runs") if own else
                   (regime, f"runs of other models on {config.hardware}") if regime else
                   ([h for h in rows if h["setup"]] or rows, "this setup's runs in the other regime"))
    exp, runs = _expected(pick, "generic", overloaded)
    note = " (measured with roofline v1)" if latency_model != "roofline" else ""
    if linearised:
        note = " (linearised to blackbox form here; errors measured with roofline v1)"
    return {"basis": PER_GPU, "expected_error_pct": exp,
            "evidence": f"per-GPU physics, never fitted on these runs{note}; {where}: " + ", ".join(runs)}


def one_line(fid: dict) -> str:
    """The statement in one line, for stderr."""
    e = fid.get("expected_error_pct") or {}
    nums = ", ".join(f"{k.replace('_', ' ')} {v:g}%" if isinstance(v, (int, float)) and math.isfinite(v)
                     else f"{k.replace('_', ' ')} unknown" for k, v in e.items())
    return f"blis: fidelity: {fid.get('basis')}; expected error {nums}; evidence: {fid.get('evidence')}"
