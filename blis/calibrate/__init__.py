"""Fit a latency model's free parameters to real runs by simulating them (`blis calibrate`), and validate the
fit across runs: leave-one-run-out per setup, leave-one-model-out for per-GPU parameters
(`blis.calibrate.crossval`). A refit is marked ``validated`` only when its held-back error beats the generic
per-GPU physics on every run of its setup (docs/validation.md).

Modules: `split` (train/held-back blocks, simulated pieces, loss), `ranges` (allowed range and prior of every
parameter), `search` (Nelder-Mead), `blackbox_fit`, `roofline_fit`, `crossval`, `result`, `output`.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from blis.calibrate.blackbox_fit import fit_blackbox_group, initial_blackbox, measured_decode_design
from blis.calibrate.crossval import DEFAULT_PENALTIES, cross_validate
from blis.calibrate.result import CrossValidation, GroupFit, RunErrors, holdout_errors
from blis.calibrate.roofline_fit import ROOFLINE_FREE, fit_roofline, shipped_roofline_params, write_roofline_file
from blis.calibrate.split import CalibrationSettings, Piece, plan_pieces, plan_pieces_all, train_rows
from blis.errors import BlisInputError
from blis.traces.measured import MeasuredRun

LATENCY_MODELS = ("blackbox", "roofline", "roofline-v2")

__all__ = [
    "LATENCY_MODELS", "ROOFLINE_FREE", "CalibrationResult", "CalibrationSettings", "CrossValidation", "GroupFit",
    "Piece", "RunErrors", "calibrate", "fit_blackbox_group", "fit_roofline", "group_runs", "initial_blackbox",
    "measured_decode_design", "plan_pieces", "plan_pieces_all", "shipped_roofline_params", "train_rows",
]


@dataclass
class CalibrationResult:
    latency_model: str
    settings: CalibrationSettings
    groups: list[GroupFit]  # per setup (blackbox, roofline), then the per-GPU fit (roofline, several setups)
    errors: list[RunErrors]  # in-run check: odd blocks of each run, replayed with its group's final fit
    loro: list[CrossValidation] = field(default_factory=list)
    lomo: list[CrossValidation] = field(default_factory=list)
    command: str = ""

    def validated(self, g: GroupFit) -> bool:
        """The fit passed its cross-validation (LORO for a setup, LOMO for the per-GPU fit)."""
        from blis.latency.blackbox import canonical_model_name as canon

        cvs = self.loro if g.model != "*" else self.lomo
        return any(cv.ship for cv in cvs if (cv.model == g.model or canon(cv.model) == canon(g.model))
                   and cv.tp == g.tp and cv.hardware == g.hardware)

    def to_yaml(self) -> str:
        from blis.calibrate.output import to_yaml

        return to_yaml(self)


def group_runs(runs: list[MeasuredRun]) -> dict[tuple[str, str, int], list[MeasuredRun]]:
    """Runs by (model HF id lower case, hardware, TP): one setup each."""
    from blis.latency.blackbox import canonical_model_name

    groups: dict[tuple[str, str, int], list[MeasuredRun]] = {}
    for r in runs:
        key = (canonical_model_name(r.server.model), r.server.hardware, r.server.tp)
        groups.setdefault(key, []).append(r)
    return groups


def calibrate(runs: list[MeasuredRun], latency_model: str, settings: CalibrationSettings | None = None,
              progress: Callable[[str], None] | None = None, *, cross_validation: bool = True,
              penalties: Sequence[float] = DEFAULT_PENALTIES, workers: int = 1, final: str = "all",
              parts: Sequence[str] = ("loro", "lomo")) -> CalibrationResult:
    """Fit ``latency_model`` to ``runs``, cross-validate across runs, and measure the in-run held-back error.

    ``penalties``: the grid of weights of the pull toward the per-GPU physics; cross-validation picks one per
    setup (without cross-validation, or where a setup cannot be cross-validated, the smallest is used: the
    fit follows its data, and is never marked validated).
    ``final``: 'all' fits every setup (and the per-GPU parameters) on all its runs; 'validated' only those
    that passed cross-validation (what a shipped table needs; saves the other fits). ``parts``: which
    cross-validations to run ('loro', 'lomo')."""
    settings = settings or CalibrationSettings()
    if latency_model not in LATENCY_MODELS:
        raise BlisInputError(
            f"--latency-model: {latency_model!r} cannot be calibrated; one of {', '.join(LATENCY_MODELS)}"
        )
    if not runs:
        raise BlisInputError("--traces: no runs to calibrate on")
    if not penalties or any(not (p >= 0) for p in penalties):
        raise BlisInputError(f"--penalty: need weights >= 0, got {list(penalties)}")
    hardware = {r.server.hardware for r in runs}
    if latency_model != "blackbox" and len(hardware) > 1:
        raise BlisInputError(f"--traces: runs on several hardware ({', '.join(sorted(hardware))}); "
                             "calibrate one hardware at a time")
    say = progress or (lambda msg: None)
    from blis.latency.base import create_latency_model
    from blis.traces.replay import sim_config

    dummy = {"alpha": (0.0, 0.0, 0.0), "beta": (1.0, 0.0, 0.0)} if latency_model == "blackbox" else {}
    for r in runs:  # a model that cannot be built for a run fails here, once, with its own message
        create_latency_model(latency_model, sim_config(r, latency_model, calibration="generic"
                                                       if latency_model != "blackbox" else "auto", **dummy))
    setups = group_runs(runs)
    named = {f"{k[0]} {k[1]} tp{k[2]}": v for k, v in setups.items()}
    loro: list[CrossValidation] = []
    lomo: list[CrossValidation] = []
    if cross_validation and "loro" in parts:
        say(f"leave-one-run-out over {len(named)} setup(s), penalties {list(penalties)}")
        loro = cross_validate(named, "loro", latency_model, settings, penalties, workers, say)
    if cross_validation and "lomo" in parts:
        if latency_model != "blackbox" and len({r.server.model for r in runs}) > 1:
            say("leave-one-model-out of the per-GPU parameters")
            lomo = cross_validate({next(iter(hardware)): runs}, "lomo", latency_model, settings, penalties,
                                  workers, say)
    chosen = {cv.model.lower() + str(cv.tp): cv.penalty for cv in loro}
    groups: list[GroupFit] = []
    errors: list[RunErrors] = []
    passed = {cv.model.lower() + str(cv.tp) for cv in loro if cv.ship}
    for key, members in setups.items():
        if final == "validated" and members[0].server.model.lower() + str(members[0].server.tp) not in passed:
            continue
        lam = chosen.get(members[0].server.model.lower() + str(members[0].server.tp))
        lam = min(penalties) if lam is None else lam
        say(f"fitting {latency_model} for {key[0]} {key[1]} tp{key[2]} on {len(members)} run(s), penalty {lam:g}")
        if latency_model == "blackbox":
            g = fit_blackbox_group(members, settings, lam)
            g.model = key[0]
            kw = {"alpha": tuple(g.params["alpha"]), "beta": tuple(g.params["beta"])}
            errors.extend(holdout_errors(r, "blackbox", kw, settings.block_s) for r in members)
        else:
            g = fit_roofline(members, settings, latency_model, penalty=lam)
            with tempfile.TemporaryDirectory(prefix="blis-calibrate-") as tmp:
                path = Path(tmp) / "roofline.yaml"
                write_roofline_file(path, g.params)
                errors.extend(holdout_errors(r, latency_model, {"calibration": str(path)}, settings.block_s)
                              for r in members)
        groups.append(g)
    if latency_model != "blackbox" and len(setups) > 1 and (final == "all" or any(cv.ship for cv in lomo)):
        lam = lomo[0].penalty if lomo and lomo[0].penalty is not None else min(penalties)
        say(f"fitting the per-GPU {latency_model} parameters on all {len(runs)} runs, penalty {lam:g}")
        groups.append(fit_roofline(runs, settings, latency_model, penalty=lam))
    return CalibrationResult(latency_model, settings, groups, errors, loro, lomo)
