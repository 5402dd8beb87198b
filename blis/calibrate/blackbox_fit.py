"""Blackbox fit (per model, hardware and TP): alpha/beta coefficients by simulating the runs.

The step coefficients start from a least-squares fit of the measured decode time of each request,
(E2E - TTFT), against the decode batch the real server had (from the measured first-token and finish times
of all requests: decode steps = output_len - 1, mean decode batch over the request's decode interval, prompt
tokens computed meanwhile), which needs no simulation; a group of overloaded runs only starts from the
roofline model's step times (a least-squares fit of b0, b1, b2 to them), scaled until the simulated decode
time matches the measured one. Then Nelder-Mead through the simulator refines (a0, a1, b0, b1, b2) inside
`BLACKBOX_RANGES`, with a penalty toward the physics prior (a0, a1 from the per-GPU roofline queueing
terms; b0, b1, b2 from a least-squares fit to the generic roofline's step times). a2 stays 0: in decode
steps it is not separable from b0 (one token per step), and vLLM streams tokens from a separate process, so
no per-token delay accumulates outside the engine.
"""

from __future__ import annotations

import math
import time

import numpy as np

from blis.calibrate.ranges import BLACKBOX_NAMES, BLACKBOX_RANGES, Space
from blis.calibrate.result import GroupFit
from blis.calibrate.search import SearchTrace, _scipy_optimize, nelder_mead
from blis.calibrate.split import (
    CalibrationSettings,
    Piece,
    _weighed,
    plan_pieces_all,
    total_loss,
    train_rows,
    weigh,
)
from blis.traces.measured import MeasuredRun
from blis.traces.replay import replay
from blis.validate import is_overloaded, latency_metrics


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

    model = create_latency_model("roofline", sim_config(run, "roofline", calibration="generic"))
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




def physics_prior(run: MeasuredRun) -> dict[str, float]:
    """The blackbox coefficients the generic per-GPU roofline implies for the run's setup."""
    from blis.calibrate.roofline_fit import shipped_roofline_params

    base = shipped_roofline_params(run.server.hardware)
    b0, b1, b2 = roofline_beta_guess(run)
    return {"a0": base["queueing_base_us"], "a1": base["queueing_per_token_us"], "b0": b0, "b1": b1, "b2": b2}


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
        a0 = physics_prior(runs[0])["a0"]
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




def fit_blackbox_group(runs: list[MeasuredRun], settings: CalibrationSettings, penalty: float = 0.0
                       ) -> GroupFit:
    """Fit (a0, a1, b0, b1, b2) of one setup on ``runs``; ``penalty`` weighs the distance from the prior."""
    t0 = time.process_time()
    pieces = weigh(plan_pieces_all(runs, settings), settings)
    start_vec, how = initial_blackbox(runs, [p for p in pieces if p.weight > 0], settings)
    space = Space.build(BLACKBOX_NAMES, physics_prior(runs[0]), BLACKBOX_RANGES)

    def coeffs(x: np.ndarray) -> tuple[tuple, tuple]:
        c = space.params(x)
        return (c["a0"], c["a1"], 0.0), (c["b0"], c["b1"], c["b2"])

    def loss(x: np.ndarray) -> float:
        alpha, beta = coeffs(x)
        return total_loss(pieces, {"alpha": alpha, "beta": beta}, "blackbox") + space.penalty(x, penalty)

    trace = SearchTrace()
    start = space.coords(dict(zip(BLACKBOX_NAMES, start_vec)))
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
        evals=trace.evals + 2, cpu_seconds=time.process_time() - t0, penalty=penalty,
    )
