"""How runs are split into training and held-back requests, the pieces simulated during a fit, and the loss.

Split: every run is cut into blocks of ``block_s`` seconds of arrivals; even blocks are for training, odd
blocks are held back (used by the in-run check). Across runs, `blis.calibrate.crossval` holds back whole runs.

Cost: a run whose queue stays bounded (not overloaded) is simulated only in ``windows_per_run`` training
blocks spread over its stages, each with ``warmup_s`` seconds of earlier arrivals (queue and prefix cache
as the real server had them) and ``cooldown_s`` of later ones; an overloaded run is simulated whole (its
state at any time depends on all earlier arrivals) and scored on its training blocks.

Loss (what the fit minimises) = weighted mean over runs of, per run and averaged over its pieces:
- not overloaded: |e(mean TTFT)| + |e(mean E2E)| + (|e(p90 TTFT)| + |e(p90 E2E)|) / 2;
- overloaded: |e(completed requests)| + |e(mean TTFT)| + |e(mean E2E)|, the means over the requests
  completed both in the run and in the simulation;
with e(x) = (simulated - measured) / measured over the training requests, each |e| capped at 1 so that
one run far off cannot decide the fit alone. Weights: 1, except overloaded runs fitted together with runs
that are not overloaded, which get ``overloaded_weight`` (default 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from blis.errors import BlisInputError
from blis.traces.measured import MeasuredRun
from blis.traces.replay import ReplayResult, Window, replay
from blis.validate import error_pct, is_overloaded, latency_metrics


@dataclass(frozen=True)
class CalibrationSettings:
    """How runs are split and subsampled, and how long the search may run.

    block_s: seconds of arrivals per block; even blocks train, odd blocks are held back.
    windows_per_run: training blocks simulated per run that is not overloaded (spread over its stages).
    warmup_s, cooldown_s: arrivals simulated before / after a training block, not scored.
    max_evals: simulator evaluations of the Nelder-Mead search (per fitted group).
    overloaded_span_s: an overloaded run is simulated from its start over this many seconds of arrivals
        (its state depends on every earlier arrival, so the piece starts at 0; the saturated server and
        the growing queue are there within minutes); None = the whole run.
    overloaded_weight: loss weight of an overloaded run fitted together with runs that are not overloaded
        (a fit on overloaded runs only weighs every run 1).
    """

    block_s: float = 60.0
    windows_per_run: int = 3
    warmup_s: float = 30.0
    cooldown_s: float = 15.0
    max_evals: int = 60
    overloaded_weight: float = 1.0
    overloaded_span_s: float | None = 300.0

    def __post_init__(self) -> None:
        if not self.block_s > 0:
            raise BlisInputError(f"block_s: must be > 0 seconds, got {self.block_s}")
        if self.windows_per_run < 1:
            raise BlisInputError(f"windows_per_run: must be >= 1, got {self.windows_per_run}")
        if self.warmup_s < 0 or self.cooldown_s < 0:
            raise BlisInputError("warmup_s, cooldown_s: must be >= 0 seconds")
        if self.max_evals < 0:
            raise BlisInputError(f"max_evals: must be >= 0, got {self.max_evals}")
        if not 0.0 <= self.overloaded_weight <= 1e6:
            raise BlisInputError(f"overloaded_weight: must be >= 0, got {self.overloaded_weight}")


# --------------------------------------------------------------------------------------------- split
def train_rows(run: MeasuredRun, block_s: float) -> np.ndarray:
    """True for requests arriving in an even block of ``block_s`` seconds (training), False for odd."""
    t = (run.requests.arrival_us - run.requests.arrival_us[0]) / 1e6
    return (np.floor(t / block_s).astype(np.int64) % 2) == 0


@dataclass
class Piece:
    """One simulation of the fit: a whole run or a window of it; ``rows`` are the run's training rows."""

    run: MeasuredRun
    overloaded: bool
    window: Window | None
    rows: np.ndarray
    weight: float = 1.0


def plan_pieces(run: MeasuredRun, settings: CalibrationSettings) -> list[Piece]:
    """The simulations that stand for ``run`` during the fit (see the module docstring)."""
    train = train_rows(run, settings.block_s)
    overloaded = is_overloaded(run)
    if overloaded:
        span = settings.overloaded_span_s
        t_end = float(run.requests.arrival_us[-1] - run.requests.arrival_us[0]) / 1e6
        if span is None or span >= t_end:
            return [Piece(run, True, None, train)]
        return [Piece(run, True, Window(0.0, span, 0.0, 0.0), train)]
    t = (run.requests.arrival_us - run.requests.arrival_us[0]) / 1e6
    blocks = np.floor(t / settings.block_s).astype(np.int64)
    even = [int(b) for b in np.unique(blocks) if b % 2 == 0]
    # spread the chosen blocks over the stages, then evenly inside each stage
    stages = {int(s): [b for b in even if (run.stage[blocks == b] == s).any()] for s in np.unique(run.stage)}
    per_stage = max(1, settings.windows_per_run // max(1, len(stages)))
    chosen: list[int] = []
    for blist in stages.values():
        if not blist:
            continue
        # skip a stage's first block when possible: a window there starts from an idle server
        inner = blist[1:] if len(blist) > per_stage else blist
        picks = np.linspace(0, len(inner) - 1, num=min(per_stage, len(inner)) + 2)[1:-1] if len(inner) > per_stage \
            else np.arange(len(inner))
        chosen.extend(inner[round(float(p))] for p in picks)
    pieces = []
    for b in sorted(set(chosen)):
        w = Window(b * settings.block_s, (b + 1) * settings.block_s, settings.warmup_s, settings.cooldown_s)
        pieces.append(Piece(run, False, w, train))
    return pieces


def plan_pieces_all(runs: list[MeasuredRun], settings: CalibrationSettings) -> list[Piece]:
    return [p for r in runs for p in plan_pieces(r, settings)]


def _weighed(pieces: list[Piece]) -> list[str]:
    """Names of the runs with a nonzero loss weight, in order."""
    return list(dict.fromkeys(p.run.name for p in pieces if p.weight > 0))


def weigh(pieces: list[Piece], settings: CalibrationSettings) -> list[Piece]:
    """Overloaded runs weigh ``settings.overloaded_weight`` when bounded runs are fitted with them, else 1."""
    if not all(p.overloaded for p in pieces):
        for p in pieces:
            p.weight = settings.overloaded_weight if p.overloaded else 1.0
    return pieces


# ----------------------------------------------------------------------------------------------- loss
def _rel(measured: float, simulated: float) -> float:
    """|simulated - measured| / measured capped at 1; 1 when either side has no value."""
    e = error_pct(measured, simulated)
    return 1.0 if math.isnan(e) else min(e / 100.0, 1.0)


def piece_loss(replayed: ReplayResult, rows: np.ndarray, overloaded: bool) -> float:
    """Loss of one simulated piece over its training requests (see the module docstring)."""
    sel = replayed.scored & rows[replayed.index]
    out = replayed.output_tokens[sel]
    m = latency_metrics(replayed.measured_ttft_ms[sel], replayed.measured_e2e_ms[sel], out)
    s = latency_metrics(replayed.sim_ttft_ms[sel], replayed.sim_e2e_ms[sel], out)
    if overloaded:
        # TTFT and E2E over the requests completed on both sides: which requests complete is scored by
        # the count alone, so a shifted cut-off does not also swing the means
        both = sel & ~replayed.measured_failed & ~replayed.sim_failed
        out_b = replayed.output_tokens[both]
        mb = latency_metrics(replayed.measured_ttft_ms[both], replayed.measured_e2e_ms[both], out_b)
        sb = latency_metrics(replayed.sim_ttft_ms[both], replayed.sim_e2e_ms[both], out_b)
        return (_rel(m["completed"], s["completed"]) + _rel(mb["ttft_mean_ms"], sb["ttft_mean_ms"])
                + _rel(mb["e2e_mean_ms"], sb["e2e_mean_ms"]))
    return (
        _rel(m["ttft_mean_ms"], s["ttft_mean_ms"])
        + _rel(m["e2e_mean_ms"], s["e2e_mean_ms"])
        + 0.5 * (_rel(m["ttft_p90_ms"], s["ttft_p90_ms"]) + _rel(m["e2e_p90_ms"], s["e2e_p90_ms"]))
    )


def total_loss(pieces: list[Piece], replay_kw: dict, latency_model: str) -> float:
    """Weighted mean over runs of the mean loss of each run's pieces."""
    by_run: dict[int, list[float]] = {}
    weight: dict[int, float] = {}
    for p in pieces:
        if p.weight == 0:
            continue
        try:
            r = replay(p.run, latency_model, window=p.window, **replay_kw)
        except BlisInputError:
            return math.inf  # parameters the model refuses (e.g. a fraction of peak above 1)
        by_run.setdefault(id(p.run), []).append(piece_loss(r, p.rows, p.overloaded))
        weight[id(p.run)] = p.weight
    if not by_run:
        raise BlisInputError("calibrate: every run has loss weight 0; nothing to fit")
    w = np.array([weight[k] for k in by_run])
    return float(np.sum(w * np.array([np.mean(v) for v in by_run.values()])) / w.sum())


