"""Fit a latency model's free parameters to real runs by simulating them (`blis calibrate`).

Split: every run is cut into blocks of ``block_s`` seconds of arrivals; even blocks are for training, odd
blocks are held back. The reported out-of-sample error is measured on the held-back blocks of a full
replay with the fitted parameters.

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
that are not overloaded, which get ``overloaded_weight`` (default 0): neither model matches the bounded
runs and the saturated decode that sets an overloaded run's throughput with one parameter set (see
docs/validation.md), and the bounded runs are what the coefficients are for. Held-back errors are reported
for every run either way.

Blackbox (per model, hardware and TP): the step coefficients start from a least-squares fit of the
measured decode time of each request, (E2E - TTFT), against the decode batch the real server had (from
the measured first-token and finish times of all requests: decode steps = output_len - 1, mean decode
batch over the request's decode interval, prompt tokens computed meanwhile), which needs no simulation;
a group of overloaded runs only starts from the roofline model's step times (a least-squares fit of b0, b1,
b2 to them), scaled until the simulated decode time matches the measured one.
Then Nelder-Mead through the simulator refines (a0, a1, b0, b1, b2). a2 stays 0: in decode steps it is
not separable from b0 (one token per step), and vLLM streams tokens from a separate process, so no
per-token delay accumulates outside the engine.

Roofline (v1 or v2; one parameter set for the hardware, fitted on all the runs given): Nelder-Mead over
``ROOFLINE_FREE`` (the end-to-end overheads and the efficiencies a loaded server changes), the kernel-level
ones staying as shipped.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from blis.errors import BlisInputError
from blis.traces.measured import MeasuredRun
from blis.traces.replay import ReplayResult, Window, replay
from blis.validate import METRICS, compare, error_pct, is_overloaded, latency_metrics

LATENCY_MODELS = ("blackbox", "roofline", "roofline-v2")
ROOFLINE_FREE = (
    "queueing_base_us",
    "step_overhead_us",
    "layer_overhead_us",
    "bw_efficiency",
    "bw_efficiency_attention",
    "mfu_decode",
)
_FRACTIONS = {"bw_efficiency", "bw_efficiency_attention", "mfu_decode", "mfu_prefill", "mfu_attention_prefill",
              "interconnect_efficiency"}


@dataclass(frozen=True)
class CalibrationSettings:
    """How runs are split and subsampled, and how long the search may run.

    block_s: seconds of arrivals per block; even blocks train, odd blocks are held back.
    windows_per_run: training blocks simulated per run that is not overloaded (spread over its stages).
    warmup_s, cooldown_s: arrivals simulated before / after a training block, not scored.
    max_evals: simulator evaluations of the Nelder-Mead search (per fitted group).
    overloaded_weight: loss weight of an overloaded run fitted together with runs that are not overloaded
        (a fit on overloaded runs only weighs every run 1).
    """

    block_s: float = 60.0
    windows_per_run: int = 3
    warmup_s: float = 30.0
    cooldown_s: float = 15.0
    max_evals: int = 60
    overloaded_weight: float = 0.0

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
        return [Piece(run, True, None, train)]
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


# ------------------------------------------------------------------------------------------ searching
@dataclass
class SearchTrace:
    evals: int = 0
    best: float = math.inf
    history: list[float] = field(default_factory=list)


def _scipy_optimize(*names: str):
    """scipy.optimize functions, or a one-line error saying how to install scipy (an optional dependency)."""
    try:
        import scipy.optimize as opt
    except ModuleNotFoundError as exc:
        raise BlisInputError("calibrate needs scipy: pip install 'blis[calibrate]'") from exc
    found = tuple(getattr(opt, n) for n in names)
    return found if len(found) > 1 else found[0]


def nelder_mead(loss: Callable[[np.ndarray], float], x0: np.ndarray, max_evals: int, step: float = 0.25,
                trace: SearchTrace | None = None) -> np.ndarray:
    """Minimise ``loss`` from ``x0`` (scipy's Nelder-Mead, at most ``max_evals`` calls; initial simplex
    moves each coordinate by ``step`` relative, or by ``step`` when it is 0)."""
    minimize = _scipy_optimize("minimize")

    trace = trace or SearchTrace()
    cache: dict[tuple, float] = {}

    def wrapped(x: np.ndarray) -> float:
        key = tuple(np.round(x, 10))
        if key not in cache:
            cache[key] = loss(x)
            trace.evals += 1
            trace.best = min(trace.best, cache[key])
            trace.history.append(cache[key])
        return cache[key]

    if max_evals <= 0:
        wrapped(x0)
        return x0
    n = len(x0)
    simplex = [x0]
    for i in range(n):
        x = x0.copy()
        x[i] = x[i] * (1 + step) if x[i] != 0 else step
        simplex.append(x)
    res = minimize(wrapped, x0, method="Nelder-Mead",
                   options={"maxfev": max_evals, "initial_simplex": np.array(simplex), "xatol": 1e-3,
                            "fatol": 1e-4})
    return np.asarray(res.x)


# ----------------------------------------------------------------------------------------- blackbox
def measured_decode_design(run: MeasuredRun, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per completed training request: features [decode steps, prompt tokens computed, decode tokens]
    over its decode interval as the real server ran it, and its measured decode time (E2E - TTFT) in us.

    The decode batch at time t is the number of requests between their measured first token and finish;
    its time average over the interval times (output_len - 1) steps gives the decode tokens; the prompt
    tokens are those of requests whose first token came in the interval (whole prompts for a prompt's
    first appearance, its last partial block otherwise: vLLM's prefix cache held the rest)."""
    ok = ~run.failed
    a = run.requests.arrival_us / 1e3
    first = a + run.ttft_ms
    finish = a + run.e2e_ms
    t_ev = np.concatenate([first[ok], finish[ok]])
    d_ev = np.concatenate([np.ones(ok.sum()), -np.ones(ok.sum())])
    order = np.argsort(t_ev, kind="stable")
    t_ev, count = t_ev[order], np.cumsum(d_ev[order])
    area = np.concatenate([[0.0], np.cumsum(count[:-1] * np.diff(t_ev))])

    def integral(t: np.ndarray) -> np.ndarray:
        k = np.clip(np.searchsorted(t_ev, t, side="right") - 1, 0, len(t_ev) - 1)
        return area[k] + count[k] * (t - t_ev[k])

    inp = run.requests.input_tokens
    pid = run.requests.prompt_id
    first_seen = np.zeros(len(run), dtype=bool)
    first_seen[np.unique(pid, return_index=True)[1]] = True
    bs = run.server.block_size or 16
    new = np.where(first_seen, inp, inp - ((inp - 1) // bs) * bs)
    ft_sorted = np.argsort(first[ok], kind="stable")
    ft = first[ok][ft_sorted]
    cnew = np.concatenate([[0.0], np.cumsum(new[ok][ft_sorted])])
    sel = ok & rows
    dur = finish[sel] - first[sel]
    good = dur > 0
    steps = run.requests.output_tokens[sel].astype(np.float64) - 1.0
    decode = np.where(good, (integral(finish[sel]) - integral(first[sel])) / np.where(good, dur, 1.0), 0.0) * steps
    prefill = cnew[np.searchsorted(ft, finish[sel])] - cnew[np.searchsorted(ft, first[sel], side="right")]
    X = np.stack([steps, prefill, decode], axis=1)[good & (steps > 0)]
    y = dur[good & (steps > 0)] * 1e3
    return X, y


def roofline_beta_guess(run: MeasuredRun) -> tuple[float, float, float]:
    """b0, b1, b2 (us) from a least-squares fit of the roofline step time over batches like the run's."""
    nnls = _scipy_optimize("nnls")

    from blis.latency.base import StepBatch, create_latency_model
    from blis.traces.replay import sim_config

    model = create_latency_model("roofline", sim_config(run, "roofline"))
    ctx = int(np.median(run.requests.input_tokens) + np.median(run.requests.output_tokens) / 2)
    seqs = run.server.max_num_seqs or 128
    budget = run.server.max_num_batched_tokens or 2048
    rows, ys = [], []
    for d in np.unique(np.linspace(1, seqs, 12).astype(int)):
        for p in (0, budget // 8, budget // 2, budget):
            chunks = [(p, 0)] if p else []
            b = StepBatch(num_prefill_tokens=p, num_decode_tokens=int(d), sum_decode_context=int(d) * ctx,
                          prefill_chunks=chunks, num_sampled=int(d) + (1 if p else 0))
            rows.append([1.0, p, d])
            ys.append(model.step_time_us(b))
    beta, _ = nnls(np.array(rows, dtype=np.float64), np.array(ys, dtype=np.float64))
    return tuple(float(b) for b in beta)


def initial_blackbox(runs: list[MeasuredRun], pieces: list[Piece], settings: CalibrationSettings
                     ) -> tuple[np.ndarray, str]:
    """Starting (a0, a1, b0, b1, b2) for a group of runs of one model/TP, and how it was found."""
    nnls = _scipy_optimize("nnls")

    calm = [r for r in runs if not is_overloaded(r)]
    if calm:
        Xs, ys = [], []
        for r in calm:
            X, y = measured_decode_design(r, train_rows(r, settings.block_s))
            w = 1.0 / (y.mean() * math.sqrt(len(y)))
            Xs.append(X * w)
            ys.append(y * w)
        beta, _ = nnls(np.vstack(Xs), np.concatenate(ys))
        how = "least squares on measured decode intervals"
    else:
        # Overloaded runs only: the roofline's step times, scaled until the simulated decode time
        # (E2E - TTFT) of the requests completed in both matches the measured one. In saturation the batch
        # is the same in both, so the scale carries over exactly.
        beta = np.array(roofline_beta_guess(runs[0]))
        a0 = shipped_roofline_params(runs[0].server.hardware)["queueing_base_us"]
        for _ in range(2):
            ratios = []
            for p in pieces:
                r = replay(p.run, "blackbox", window=p.window, alpha=(a0, 0.0, 0.0), beta=tuple(beta))
                both = r.scored & p.rows[r.index] & ~r.measured_failed & ~r.sim_failed
                if both.sum() >= 10:
                    meas = np.mean(r.measured_e2e_ms[both] - r.measured_ttft_ms[both])
                    sim = np.mean(r.sim_e2e_ms[both] - r.sim_ttft_ms[both])
                    ratios.append(meas / sim)
            if ratios:
                beta = beta * float(np.median(ratios))
        how = "roofline step times scaled to the measured decode time"
        return np.array([a0, 0.0, *beta], dtype=np.float64), how
    # a0: the TTFT the engine alone does not explain (one simulation with a0 = 0)
    gaps = []
    for p in pieces:
        r = replay(p.run, "blackbox", window=p.window, alpha=(0.0, 0.0, 0.0), beta=tuple(beta))
        sel = r.scored & p.rows[r.index]
        m = latency_metrics(r.measured_ttft_ms[sel], r.measured_e2e_ms[sel], r.output_tokens[sel])
        s = latency_metrics(r.sim_ttft_ms[sel], r.sim_e2e_ms[sel], r.output_tokens[sel])
        if not p.overloaded and math.isfinite(s["ttft_mean_ms"]):
            gaps.append(m["ttft_mean_ms"] - s["ttft_mean_ms"])
    a0 = max(0.0, float(np.median(gaps)) * 1e3) if gaps else 5000.0
    return np.array([a0, 0.0, *beta], dtype=np.float64), how


# scale of each blackbox coefficient when its start value is 0 (us, us/token)
_BB_SCALE = np.array([5000.0, 1.0, 5000.0, 10.0, 50.0])


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


def fit_blackbox_group(runs: list[MeasuredRun], settings: CalibrationSettings) -> GroupFit:
    t0 = time.process_time()
    pieces = weigh(plan_pieces_all(runs, settings), settings)
    x0, how = initial_blackbox(runs, [p for p in pieces if p.weight > 0], settings)
    scale = np.where(x0 > 0, x0, _BB_SCALE)

    def coeffs(x: np.ndarray) -> tuple[tuple, tuple]:
        c = np.abs(x) * scale
        return (float(c[0]), float(c[1]), 0.0), (float(c[2]), float(c[3]), float(c[4]))

    def loss(x: np.ndarray) -> float:
        alpha, beta = coeffs(x)
        return total_loss(pieces, {"alpha": alpha, "beta": beta}, "blackbox")

    trace = SearchTrace()
    start = x0 / scale
    loss_start = loss(start)
    best = nelder_mead(loss, start, settings.max_evals, trace=trace)
    loss_end = loss(best)
    if loss_end > loss_start:
        best, loss_end = start, loss_start
    alpha, beta = coeffs(best)
    a_start, b_start = coeffs(start)
    s = runs[0].server
    return GroupFit(
        model=s.model, hardware=s.hardware, tp=s.tp,
        params={"alpha": [round(v, 4) for v in alpha], "beta": [round(v, 4) for v in beta]},
        start={"alpha": [round(v, 4) for v in a_start], "beta": [round(v, 4) for v in b_start]},
        start_method=how, runs=_weighed(pieces), loss_start=loss_start, loss_end=loss_end,
        evals=trace.evals + 2, cpu_seconds=time.process_time() - t0,
    )


# ----------------------------------------------------------------------------------------- roofline
def shipped_roofline_params(hardware: str) -> dict:
    from dataclasses import asdict

    from blis.latency.roofline import load_calibration
    from blis.physics.hardware import get_hardware

    params, _ = load_calibration(get_hardware(hardware))
    return asdict(params)


def write_roofline_file(path: Path, params: dict) -> None:
    import yaml

    path.write_text(yaml.safe_dump({"roofline": {k: float(v) for k, v in params.items()}}, sort_keys=False))


def fit_roofline(runs: list[MeasuredRun], settings: CalibrationSettings, latency_model: str = "roofline",
                 free: Sequence[str] = ROOFLINE_FREE) -> GroupFit:
    t0 = time.process_time()
    hardware = runs[0].server.hardware
    base = shipped_roofline_params(hardware)
    pieces = weigh(plan_pieces_all(runs, settings), settings)
    scale = np.array([base[k] if base[k] > 0 else 1000.0 for k in free], dtype=np.float64)

    with tempfile.TemporaryDirectory(prefix="blis-calibrate-") as tmp:
        path = Path(tmp) / "roofline.yaml"

        def params_of(x: np.ndarray) -> dict:
            c = np.abs(x) * scale
            return {k: float(v) for k, v in zip(free, c)}

        def loss(x: np.ndarray) -> float:
            p = params_of(x)
            if any(p[k] > 1.0 or p[k] <= 0.0 for k in free if k in _FRACTIONS):
                return math.inf
            write_roofline_file(path, p)
            return total_loss(pieces, {"calibration_file": str(path)}, latency_model)

        trace = SearchTrace()
        start = np.array([base[k] for k in free], dtype=np.float64) / scale
        loss_start = loss(start)
        best = nelder_mead(loss, start, settings.max_evals, step=0.15, trace=trace)
        loss_end = loss(best)
        if loss_end > loss_start:
            best, loss_end = start, loss_start
    return GroupFit(
        model="*", hardware=hardware, tp=None,
        params={k: round(v, 6) for k, v in params_of(best).items()},
        start={k: round(v, 6) for k, v in params_of(start).items()},
        start_method=f"shipped {hardware} roofline calibration",
        runs=_weighed(pieces), loss_start=loss_start, loss_end=loss_end,
        evals=trace.evals + 2, cpu_seconds=time.process_time() - t0,
    )


# ----------------------------------------------------------------------------------- held-out check
@dataclass
class RunErrors:
    """Errors (percent) of one run's full replay with the fitted parameters, per part."""

    name: str
    overloaded: bool
    train: dict[str, float]
    test: dict[str, float]
    all: dict[str, float]


def _errors(r: ReplayResult, mask: np.ndarray) -> dict[str, float]:
    rep = compare(replace(r, scored=r.scored & mask))
    out = {k: rep.metrics[k].error_pct for k in METRICS}
    out["ttft_p50_ms"] = rep.extra["ttft_p50_ms"].error_pct
    out["completed"] = error_pct(rep.completed_measured, rep.completed_simulated)
    return out


def holdout_errors(run: MeasuredRun, latency_model: str, replay_kw: dict, settings: CalibrationSettings
                   ) -> RunErrors:
    r = replay(run, latency_model, **replay_kw)
    train = train_rows(run, settings.block_s)[r.index]
    return RunErrors(run.name, is_overloaded(run), _errors(r, train), _errors(r, ~train),
                     _errors(r, np.ones(len(r.index), dtype=bool)))


# ------------------------------------------------------------------------------------------ driver
@dataclass
class CalibrationResult:
    latency_model: str
    settings: CalibrationSettings
    groups: list[GroupFit]
    errors: list[RunErrors]
    command: str = ""

    def to_yaml(self) -> str:
        """The coefficients file: for blackbox a list of table entries (the format of
        blis/latency/coefficients/blackbox.yaml); for roofline a ``roofline:`` mapping of parameters (for
        ``--calibration-file``). The fit's details are comments."""
        import yaml

        lines = [
            f"# Fitted by: {self.command}" if self.command else "# Fitted by blis calibrate",
            (f"# latency model: {self.latency_model}; loss: see blis/calibrate.py (training blocks of "
             f"{self.settings.block_s:g} s, odd blocks held back)"),
        ]
        for g in self.groups:
            lines.append(f"# {g.model} tp{g.tp if g.tp is not None else '*'}: loss {g.loss_start:.4f} -> "
                         f"{g.loss_end:.4f} in {g.evals} simulations ({g.cpu_seconds:.0f} s CPU); start from "
                         f"{g.start_method}; fitted on: {', '.join(g.runs)}")
        for e in self.errors:
            test = e.test
            lines.append(
                f"# held-back error {e.name}{' (overloaded)' if e.overloaded else ''}: "
                + ", ".join(f"{k.removesuffix('_ms')} {_fmt(test[k])}%" for k in
                            ("ttft_mean_ms", "e2e_mean_ms", "tpot_mean_ms", "e2e_p99_ms", "completed"))
            )
        if self.latency_model == "blackbox":
            entries = [
                {"model": g.model.lower(), "hardware": g.hardware, "tp": g.tp, "alpha": g.params["alpha"],
                 "beta": g.params["beta"], "source": "blis calibrate, fitted on " + ", ".join(g.runs)}
                for g in self.groups
            ]
            body = yaml.safe_dump(entries, sort_keys=False, default_flow_style=None, width=200)
        else:
            body = yaml.safe_dump({"roofline": self.groups[0].params}, sort_keys=False)
        return "\n".join(lines) + "\n" + body


def _fmt(x: float) -> str:
    return "nan" if not math.isfinite(x) else f"{x:.1f}"


def group_runs(runs: list[MeasuredRun]) -> dict[tuple[str, str, int], list[MeasuredRun]]:
    """Runs by (model HF id lower case, hardware, TP): one blackbox entry each."""
    from blis.latency.blackbox import canonical_model_name

    groups: dict[tuple[str, str, int], list[MeasuredRun]] = {}
    for r in runs:
        key = (canonical_model_name(r.server.model), r.server.hardware, r.server.tp)
        groups.setdefault(key, []).append(r)
    return groups


def calibrate(runs: list[MeasuredRun], latency_model: str, settings: CalibrationSettings = CalibrationSettings(),
              progress: Callable[[str], None] | None = None) -> CalibrationResult:
    """Fit ``latency_model`` to ``runs`` and measure the held-back error of the fit."""
    if latency_model not in LATENCY_MODELS:
        raise BlisInputError(
            f"--latency-model: {latency_model!r} cannot be calibrated; one of {', '.join(LATENCY_MODELS)}"
        )
    if not runs:
        raise BlisInputError("--traces: no runs to calibrate on")
    say = progress or (lambda msg: None)
    from blis.latency.base import create_latency_model
    from blis.traces.replay import sim_config

    dummy = {"alpha": (0.0, 0.0, 0.0), "beta": (1.0, 0.0, 0.0)} if latency_model == "blackbox" else {}
    for r in runs:  # a model that cannot be built for a run fails here, once, with its own message
        create_latency_model(latency_model, sim_config(r, latency_model, **dummy))
    groups: list[GroupFit] = []
    errors: list[RunErrors] = []
    if latency_model == "blackbox":
        for key, members in group_runs(runs).items():
            say(f"fitting blackbox for {key[0]} {key[1]} tp{key[2]} on {len(members)} run(s)")
            g = fit_blackbox_group(members, settings)
            g.model = key[0]
            groups.append(g)
            kw = {"alpha": tuple(g.params["alpha"]), "beta": tuple(g.params["beta"])}
            errors.extend(holdout_errors(r, "blackbox", kw, settings) for r in members)
    else:
        hardware = {r.server.hardware for r in runs}
        if len(hardware) > 1:
            raise BlisInputError(f"--traces: runs on several hardware ({', '.join(sorted(hardware))}); "
                                 "calibrate one hardware at a time")
        say(f"fitting {latency_model} on {len(runs)} run(s)")
        g = fit_roofline(runs, settings, latency_model)
        groups.append(g)
        with tempfile.TemporaryDirectory(prefix="blis-calibrate-") as tmp:
            path = Path(tmp) / "roofline.yaml"
            write_roofline_file(path, g.params)
            errors.extend(holdout_errors(r, latency_model, {"calibration_file": str(path)}, settings) for r in runs)
    return CalibrationResult(latency_model, settings, groups, errors)
