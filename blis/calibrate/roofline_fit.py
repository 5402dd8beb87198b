"""Roofline fit (v1 or v2): the end-to-end overheads and the efficiencies a loaded server changes
(``ROOFLINE_FREE``), by simulating the runs; the kernel-level parameters stay at the per-GPU physics.

The search starts at the per-GPU physics (``coefficients/roofline_<gpu>.json``, the prior), stays inside
`ROOFLINE_RANGES`, and pays ``penalty x mean log(p / prior)^2`` for leaving the prior. Fitted on one setup's
runs it is a per-setup refit; fitted on several models' runs it is a per-GPU refit.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from blis.calibrate.ranges import ROOFLINE_RANGES, Space
from blis.calibrate.result import GroupFit
from blis.calibrate.search import SearchTrace, nelder_mead
from blis.calibrate.split import CalibrationSettings, _weighed, plan_pieces_all, total_loss, weigh
from blis.traces.measured import MeasuredRun

ROOFLINE_FREE = tuple(ROOFLINE_RANGES)


def shipped_roofline_params(hardware: str) -> dict:
    """The per-GPU physics parameters (the generic model) for ``hardware``."""
    from dataclasses import asdict

    from blis.latency.roofline import load_calibration
    from blis.physics.hardware import get_hardware

    params, _ = load_calibration(get_hardware(hardware))
    return asdict(params)


def write_roofline_file(path: Path, params: dict) -> None:
    import yaml

    path.write_text(yaml.safe_dump({"roofline": {k: float(v) for k, v in params.items()}}, sort_keys=False))


def fit_roofline(runs: list[MeasuredRun], settings: CalibrationSettings, latency_model: str = "roofline",
                 free: Sequence[str] = ROOFLINE_FREE, penalty: float = 0.0) -> GroupFit:
    """Fit ``free`` on ``runs`` (one hardware); ``penalty`` weighs the distance from the per-GPU physics."""
    t0 = time.process_time()
    hardware = runs[0].server.hardware
    base = shipped_roofline_params(hardware)
    pieces = weigh(plan_pieces_all(runs, settings), settings)
    space = Space.build(free, base, ROOFLINE_RANGES)

    with tempfile.TemporaryDirectory(prefix="blis-calibrate-") as tmp:
        path = Path(tmp) / "roofline.yaml"

        def loss(x: np.ndarray) -> float:
            write_roofline_file(path, space.params(x))
            return total_loss(pieces, {"calibration": str(path)}, latency_model) + space.penalty(x, penalty)

        trace = SearchTrace()
        start = np.zeros(len(free))
        loss_start = loss(start)
        best = nelder_mead(loss, start, settings.max_evals, step=0.15, trace=trace)
        loss_end = loss(best)
        if loss_end > loss_start:
            best, loss_end = start, loss_start
    models = sorted({r.server.model for r in runs})
    one = len(models) == 1 and len({r.server.tp for r in runs}) == 1
    return GroupFit(
        model=models[0] if one else "*", hardware=hardware, tp=runs[0].server.tp if one else None,
        params={k: round(v, 6) for k, v in space.params(best).items()},
        start={k: round(v, 6) for k, v in space.params(start).items()},
        start_method=f"{hardware} per-GPU physics",
        runs=_weighed(pieces), loss_start=loss_start, loss_end=loss_end,
        evals=trace.evals + 2, cpu_seconds=time.process_time() - t0, penalty=penalty,
    )
