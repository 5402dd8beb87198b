"""Replay a measured run through the simulator: the real arrivals, prompt lengths and repeats, output
lengths and server settings, then the client's view of the outcome (its timeout included).

A replay can cover a time window of the run: requests arriving in ``[start - warmup, end + cooldown)`` are
simulated (the warm-up fills the queue and the prefix cache as the real server had them; the cool-down keeps
the batch of the last scored requests as full as it was) and only those arriving in ``[start, end)`` are
scored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from blis.errors import BlisInputError
from blis.traces.measured import MeasuredRun

# Simulated requests still unfinished this long after the last arrival plus the client timeout are
# failures at the client whatever happens next, so the simulation can stop there.
_HORIZON_SLACK_S = 1.0


@dataclass(frozen=True)
class Window:
    """Score requests arriving in ``[start_s, end_s)`` (seconds from the run's first arrival); simulate
    also the arrivals of the ``warmup_s`` seconds before and the ``cooldown_s`` seconds after."""

    start_s: float
    end_s: float
    warmup_s: float = 30.0
    cooldown_s: float = 10.0

    def __post_init__(self) -> None:
        if not (0.0 <= self.start_s < self.end_s):
            raise BlisInputError(f"window: need 0 <= start_s < end_s, got [{self.start_s}, {self.end_s})")
        if self.warmup_s < 0 or self.cooldown_s < 0:
            raise BlisInputError(
                f"window: warmup_s and cooldown_s must be >= 0 seconds, got {self.warmup_s}, {self.cooldown_s}"
            )


@dataclass
class ReplayResult:
    """Measured and simulated latencies of the simulated requests, aligned (arrays of length M).

    index: row of each simulated request in the run.
    scored: the request counts in the metrics (inside the window).
    sim_ttft_ms, sim_e2e_ms: simulated client-side latencies in ms (NaN if the simulation did not finish it).
    sim_failed: not finished, or over the client timeout.
    """

    run: MeasuredRun
    latency_model: str
    index: np.ndarray
    scored: np.ndarray
    sim_ttft_ms: np.ndarray
    sim_e2e_ms: np.ndarray
    sim_failed: np.ndarray
    summary: dict = field(default_factory=dict)
    result: Any = None  # the `SimResult` (per-step table for calibration)

    @property
    def output_tokens(self) -> np.ndarray:
        return self.run.requests.output_tokens[self.index]

    @property
    def measured_failed(self) -> np.ndarray:
        return self.run.failed[self.index]

    @property
    def measured_ttft_ms(self) -> np.ndarray:
        return self.run.ttft_ms[self.index]

    @property
    def measured_e2e_ms(self) -> np.ndarray:
        return self.run.e2e_ms[self.index]

    def per_request(self):
        """One row per simulated request: inputs, measured and simulated latencies (pandas DataFrame)."""
        import pandas as pd

        req = self.run.requests
        i = self.index
        return pd.DataFrame(
            {
                "index": i,
                "arrival_s": req.arrival_us[i] / 1e6,
                "stage": self.run.stage[i],
                "input_tokens": req.input_tokens[i],
                "output_tokens": req.output_tokens[i],
                "prompt_id": req.prompt_id[i],
                "scored": self.scored,
                "measured_failed": self.measured_failed,
                "measured_ttft_ms": self.measured_ttft_ms,
                "measured_e2e_ms": self.measured_e2e_ms,
                "sim_failed": self.sim_failed,
                "sim_ttft_ms": self.sim_ttft_ms,
                "sim_e2e_ms": self.sim_e2e_ms,
            }
        )


def sim_config(
    run: MeasuredRun,
    latency_model: str | None = None,
    *,
    calibration_file: str | None = None,
    alpha: tuple[float, float, float] | None = None,
    beta: tuple[float, float, float] | None = None,
    calibration: str = "auto",
    model_config_path: str | None = None,
    bench_data_path: str | None = None,
):
    """The `SimConfig` of the run's server (its workload is replaced by the run's requests).

    ``calibration``: auto | generic | PATH (``blis.latency.calibration``); ``calibration_file`` is its older
    name."""
    from blis.config import EngineConfig, SimConfig

    s = run.server
    # `blis calibrate --model-config/--bench-data-path` attach these to the runs it fits
    model_config_path = model_config_path or getattr(run, "model_config_path", None)
    bench_data_path = bench_data_path or getattr(run, "bench_data_path", None)
    engine_kw = {"enable_prefix_caching": s.enable_prefix_caching}
    for name, value in (
        ("max_num_seqs", s.max_num_seqs),
        ("max_num_batched_tokens", s.max_num_batched_tokens),
        ("block_size", s.block_size),
        ("total_kv_blocks", s.total_kv_blocks),
        ("max_model_len", s.max_model_len),
    ):
        if value is not None:
            engine_kw[name] = value
    return SimConfig(
        model=s.model,
        hardware=s.hardware,
        tp=s.tp,
        latency_model=latency_model,
        alpha_coeffs=alpha,
        beta_coeffs=beta,
        calibration=calibration,
        calibration_file=calibration_file,
        model_config_path=model_config_path,
        bench_data_path=bench_data_path,
        engine=EngineConfig(**engine_kw),
    )


def blackbox_from_file(path: str, model: str, hardware: str, tp: int) -> tuple[tuple, tuple]:
    """alpha, beta of the entry for (model, hardware, tp) in a blackbox coefficients file (the format of
    blis/latency/coefficients/blackbox.yaml, as written by `blis calibrate --latency-model blackbox`)."""
    from blis._files import read_yaml
    from blis.latency.blackbox import canonical_hardware_name, canonical_model_name

    entries = read_yaml(Path(path))
    if not isinstance(entries, list):
        raise BlisInputError(f"{path}: expected a list of blackbox entries (model, hardware, tp, alpha, beta)")
    m, h = canonical_model_name(model), canonical_hardware_name(hardware)
    for i, e in enumerate(entries):
        if not isinstance(e, dict) or not {"model", "hardware", "tp", "alpha", "beta"} <= set(e):
            raise BlisInputError(f"{path}: entry {i}: needs model, hardware, tp, alpha, beta")
        if canonical_model_name(str(e["model"])) == m and canonical_hardware_name(str(e["hardware"])) == h \
                and int(e["tp"]) == tp:
            return tuple(map(float, e["alpha"])), tuple(map(float, e["beta"]))
    raise BlisInputError(f"{path}: no blackbox entry for {model} {hardware} tp{tp}")


def select(run: MeasuredRun, window: Window | None) -> tuple[np.ndarray, np.ndarray]:
    """Rows to simulate and, among them, which are scored."""
    t = (run.requests.arrival_us - run.requests.arrival_us[0]) / 1e6
    if window is None:
        idx = np.arange(len(run))
        return idx, np.ones(len(run), dtype=bool)
    sim = (t >= window.start_s - window.warmup_s) & (t < window.end_s + window.cooldown_s)
    idx = np.flatnonzero(sim)
    scored = (t[idx] >= window.start_s) & (t[idx] < window.end_s)
    if not scored.any():
        raise BlisInputError(
            f"window: no request of {run.name} arrives in [{window.start_s}, {window.end_s}) s "
            f"(the run spans {t[-1]:.1f} s)"
        )
    return idx, scored


def replay(
    run: MeasuredRun,
    latency_model: str | None = None,
    *,
    window: Window | None = None,
    calibration_file: str | None = None,
    alpha: tuple[float, float, float] | None = None,
    beta: tuple[float, float, float] | None = None,
    config=None,
    calibration: str = "auto",
    model_config_path: str | None = None,
    bench_data_path: str | None = None,
) -> ReplayResult:
    """Simulate the run (or a window of it) with its real arrivals and server settings.

    ``config`` (a `SimConfig`) overrides the one built from the run and the keyword arguments.
    """
    import blis

    cfg = config if config is not None else sim_config(
        run, latency_model, calibration_file=calibration_file, alpha=alpha, beta=beta, calibration=calibration,
        model_config_path=model_config_path, bench_data_path=bench_data_path,
    )
    idx, scored = select(run, window)
    table = run.requests.take(idx)
    arrival0 = int(table.arrival_us[0])
    if arrival0:
        table.arrival_us = table.arrival_us - arrival0
    if run.client_timeout_s is not None:
        horizon = int(table.arrival_us[-1] + (run.client_timeout_s + _HORIZON_SLACK_S) * 1e6)
        cfg = cfg.model_copy(update={"horizon_us": horizon})
    result = blis.simulate(cfg, table)
    df = result.requests
    ttft = np.asarray(df["ttft_ms"], dtype=np.float64)
    e2e = np.asarray(df["e2e_ms"], dtype=np.float64)
    finished = np.asarray(df["finished"], dtype=bool)
    if len(ttft) != len(idx):
        raise RuntimeError(f"simulation returned {len(ttft)} requests for {len(idx)} sent")
    failed = ~finished | ~np.isfinite(e2e)
    if run.client_timeout_s is not None:
        failed |= e2e > run.client_timeout_s * 1e3
    ttft = np.where(failed, np.nan, ttft)
    e2e = np.where(failed, np.nan, e2e)
    summary = dict(result.summary)
    return ReplayResult(
        run=run,
        latency_model=str(summary.get("latency_model") or cfg.latency_model or "default"),
        index=idx,
        scored=scored,
        sim_ttft_ms=ttft,
        sim_e2e_ms=e2e,
        sim_failed=failed,
        summary=summary,
        result=result,
    )
