"""What a calibration returns: the fitted groups, the in-run held-back errors, the cross-validation."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from blis.traces.measured import MeasuredRun
from blis.traces.replay import ReplayResult, replay
from blis.validate import METRICS, compare, error_pct, is_overloaded

# the metrics of a held-back run that decide whether a refit ships, and that the fidelity statement quotes
SCORE_METRICS = ("ttft_mean_ms", "e2e_mean_ms", "tpot_mean_ms")


@dataclass
class GroupFit:
    """Fitted parameters of one group of runs and how the search went."""

    model: str
    hardware: str
    tp: int | None
    params: dict
    start: dict
    start_method: str
    runs: list[str]  # runs that weighed in the loss
    loss_start: float
    loss_end: float
    evals: int
    cpu_seconds: float
    penalty: float = 0.0


@dataclass
class RunErrors:
    """Errors (percent) of one run's full replay with the fitted parameters: training blocks, held-back
    blocks, all requests."""

    name: str
    overloaded: bool
    train: dict[str, float]
    test: dict[str, float]
    all: dict[str, float]


def errors_of(r: ReplayResult, mask: np.ndarray | None = None) -> dict[str, float]:
    """Error % per metric (METRICS, ttft_p50_ms, completed) over the replay's scored requests in ``mask``."""
    rep = compare(r if mask is None else replace(r, scored=r.scored & mask))
    out = {k: rep.metrics[k].error_pct for k in METRICS}
    out["ttft_p50_ms"] = rep.extra["ttft_p50_ms"].error_pct
    out["completed"] = error_pct(rep.completed_measured, rep.completed_simulated)
    return out


def score(errors: dict[str, float]) -> float:
    """Mean of the SCORE_METRICS errors (a missing value counts as 100 %)."""
    return float(np.mean([errors[k] if math.isfinite(errors.get(k, math.nan)) else 100.0 for k in SCORE_METRICS]))


def holdout_errors(run: MeasuredRun, latency_model: str, replay_kw: dict, block_s: float) -> RunErrors:
    from blis.calibrate.split import train_rows

    r = replay(run, latency_model, **replay_kw)
    train = train_rows(run, block_s)[r.index]
    return RunErrors(run.name, is_overloaded(run), errors_of(r, train), errors_of(r, ~train), errors_of(r))


@dataclass
class HeldOut:
    """One run scored with parameters fitted without it, beside the generic model's errors on it."""

    run: str
    overloaded: bool
    generic: dict[str, float]
    refit: dict[str, float]
    params: dict | None = None  # what the fold fitted without this run (replayable by the CI gate)

    @property
    def refit_wins(self) -> bool:
        return score(self.refit) < score(self.generic)


@dataclass
class CrossValidation:
    """Leave-one-run-out of one setup (``kind`` 'loro') or leave-one-model-out of a GPU ('lomo')."""

    kind: str
    latency_model: str
    model: str
    hardware: str
    tp: int | None
    runs: list[str]
    penalty: float | None  # chosen by the cross-validation; None when nothing was fitted
    cv_loss: dict[float, float] = field(default_factory=dict)  # mean held-back score per penalty tried
    held_out: list[HeldOut] = field(default_factory=list)
    ship: bool = False
    verdict: str = ""
