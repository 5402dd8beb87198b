"""Cross-validation across runs: leave-one-run-out (LORO) per setup and leave-one-model-out (LOMO) per GPU.

LORO, for a setup (model, hardware, TP) with runs R: for each penalty weight of the grid and each run r,
fit on R minus r and replay r whole with those parameters; the penalty with the lowest mean held-back score
(mean of the mean-TTFT, mean-E2E and mean-TPOT errors) is chosen, and its held-back errors are the setup's
cross-validated errors. The same runs replayed with the generic per-GPU physics give the comparison.
The refit ships only when its held-back score beats the generic one on every run of the setup; a setup with
fewer than two runs, or whose runs are all overloaded, gets no refit (nothing to hold back, or nothing but
a saturated server to learn from).

LOMO, for a GPU: fit the per-GPU roofline parameters on every model's runs but one, replay the runs of the
model left out. Note: choosing the penalty on the same folds that report the error makes the figure slightly
optimistic (at most the spread between the grid's points); the grid is small for that reason.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from blis.calibrate.result import CrossValidation, HeldOut, errors_of, score
from blis.calibrate.split import CalibrationSettings
from blis.traces.measured import MeasuredRun
from blis.traces.replay import replay
from blis.validate import is_overloaded

DEFAULT_PENALTIES = (0.03, 0.3, 3.0)


def fit_params(runs: list[MeasuredRun], latency_model: str, settings: CalibrationSettings, penalty: float
               ) -> dict:
    """Fitted parameters of ``runs`` (blackbox: {'alpha', 'beta'}; roofline: parameter mapping)."""
    if latency_model == "blackbox":
        from blis.calibrate.blackbox_fit import fit_blackbox_group

        return fit_blackbox_group(runs, settings, penalty).params
    from blis.calibrate.roofline_fit import fit_roofline

    return fit_roofline(runs, settings, latency_model, penalty=penalty).params


def replay_with(run: MeasuredRun, latency_model: str, params: dict | None) -> dict[str, float]:
    """Errors of a whole replay of ``run``: generic per-GPU physics when ``params`` is None."""
    if params is None:
        model = "roofline" if latency_model == "blackbox" else latency_model
        return errors_of(replay(run, model, calibration="generic"))
    if latency_model == "blackbox":
        return errors_of(replay(run, "blackbox", alpha=tuple(params["alpha"]), beta=tuple(params["beta"])))
    from blis.calibrate.roofline_fit import write_roofline_file

    with tempfile.TemporaryDirectory(prefix="blis-cv-") as tmp:
        path = Path(tmp) / "roofline.yaml"
        write_roofline_file(path, params)
        return errors_of(replay(run, latency_model, calibration=str(path)))


def _fold(task: tuple) -> tuple:
    key, penalty, train, test, latency_model, settings = task
    params = fit_params(train, latency_model, settings, penalty)
    return key, penalty, [(r.name, (replay_with(r, latency_model, params), params)) for r in test]


def _generic(task: tuple) -> tuple:
    run, latency_model = task
    return run.name, replay_with(run, latency_model, None)


def _map(fn: Callable, tasks: list, workers: int) -> list:
    if workers <= 1 or len(tasks) <= 1:
        return [fn(t) for t in tasks]
    import multiprocessing as mp

    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("fork")) as pool:
        return list(pool.map(fn, tasks))


def folds_loro(runs: list[MeasuredRun]) -> list[tuple[list[MeasuredRun], list[MeasuredRun]]]:
    return [([o for o in runs if o is not r], [r]) for r in runs]


def folds_lomo(runs: list[MeasuredRun]) -> list[tuple[list[MeasuredRun], list[MeasuredRun]]]:
    models = list(dict.fromkeys(r.server.model for r in runs))
    return [([r for r in runs if r.server.model != m], [r for r in runs if r.server.model == m]) for m in models]


def cross_validate(groups: dict[str, list[MeasuredRun]], kind: str, latency_model: str,
                   settings: CalibrationSettings, penalties: Sequence[float] = DEFAULT_PENALTIES, workers: int = 1,
                   say: Callable[[str], None] = lambda m: None) -> list[CrossValidation]:
    """LORO (``kind`` 'loro', one group per setup) or LOMO ('lomo', one group per GPU) of every group."""
    out: list[CrossValidation] = []
    tasks, generic_tasks = [], []
    for key, runs in groups.items():
        s = runs[0].server
        cv = CrossValidation(kind, latency_model, s.model if kind == "loro" else "*", s.hardware,
                             s.tp if kind == "loro" else None, [r.name for r in runs], None)
        out.append(cv)
        generic_tasks.extend((r, latency_model) for r in runs)
        folds = folds_loro(runs) if kind == "loro" else folds_lomo(runs)
        if kind == "loro" and len(runs) < 2:
            cv.verdict = "no refit: a single run leaves nothing to hold back"
        elif all(is_overloaded(r) for r in runs):
            cv.verdict = "no refit: every run of this setup is overloaded"
        elif kind == "lomo" and len(folds) < 2:
            cv.verdict = "no per-GPU refit: runs of a single model"
        else:
            tasks.extend((key, lam, train, test, latency_model, settings) for lam in penalties
                         for train, test in folds)
    say(f"{kind}: {len(tasks)} fits, {len(generic_tasks)} generic replays, {workers} worker(s)")
    generic = dict(_map(_generic, generic_tasks, workers))
    results = _map(_fold, tasks, workers)
    by_key: dict[str, dict[float, dict[str, dict]]] = {}
    for key, lam, scored in results:
        by_key.setdefault(key, {}).setdefault(lam, {}).update(dict(scored))
    for (key, runs), cv in zip(groups.items(), out):
        flags = {r.name: is_overloaded(r) for r in runs}
        found = by_key.get(key)
        if not found:
            cv.held_out = [HeldOut(n, flags[n], generic[n], {}) for n in cv.runs]
            continue
        cv.cv_loss = {lam: float(np.mean([score(e) for e, _ in errs.values()])) for lam, errs in found.items()}
        cv.penalty = min(cv.cv_loss, key=lambda lam: (cv.cv_loss[lam], lam))
        cv.held_out = [HeldOut(n, flags[n], generic[n], found[cv.penalty][n][0], found[cv.penalty][n][1])
                       for n in cv.runs]
        losers = [h.run for h in cv.held_out if not h.refit_wins]
        cv.ship = not losers
        cv.verdict = ("ships: beats the generic physics on every held-back run" if cv.ship else
                      "no refit: the generic physics is better on " + ", ".join(losers))
    return out


def fmt(x: float) -> str:
    return "-" if not math.isfinite(x) else f"{x:.1f}"


def table(cvs: list[CrossValidation]) -> list[str]:
    """Lines: per held-back run, generic vs refit errors (TTFT / E2E / TPOT mean, %), then the verdict."""
    lines = []
    for cv in cvs:
        who = f"{cv.model} tp{cv.tp}" if cv.kind == "loro" else f"{cv.hardware} per-GPU"
        pen = f", penalty {cv.penalty:g} (cv loss " + ", ".join(f"{k:g}: {v:.2f}" for k, v in cv.cv_loss.items()) \
            + ")" if cv.penalty is not None else ""
        lines.append(f"{cv.kind.upper()} {cv.latency_model} {who}{pen}")
        lines.append(f"  {'held-back run':54s} {'generic TTFT/E2E/TPOT %':>22s}    {'refit TTFT/E2E/TPOT %':>20s}")
        for h in cv.held_out:
            g = "/".join(fmt(h.generic.get(k, math.nan)) for k in ("ttft_mean_ms", "e2e_mean_ms", "tpot_mean_ms"))
            r = "/".join(fmt(h.refit.get(k, math.nan)) for k in ("ttft_mean_ms", "e2e_mean_ms", "tpot_mean_ms")) \
                if h.refit else "-"
            lines.append(f"  {h.run[:48]:48s}{' [ovl]' if h.overloaded else '      '} {g:>22s}    {r:>20s}")
        lines.append(f"  -> {cv.verdict}")
    return lines
