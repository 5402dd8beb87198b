"""The FastAPI application behind ``blis serve``: the HTTP API (OpenAPI at /docs and /openapi.json) and the
page at ``/`` (static files in blis/web/static, plotly.js from the plotly package: works offline)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from fastapi import FastAPI, HTTPException, Query
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles

from blis.errors import BlisInputError
from blis.web import kernels
from blis.web.schemas import (
    RooflineRequest,
    SimulateRequest,
    SpotCheckRequest,
    ValidateRequest,
    ValidateResponse,
)
from blis.web.sim import Limits, SimLimitError, run_bounded

STATIC = Path(__file__).parent / "static"


def plotly_js_path() -> Path:
    """plotly.min.js as shipped inside the plotly Python package."""
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def gb10_reference_body() -> dict:
    """The design's five GB10 measurements as a /api/validate body (timed back to back: cache warm)."""
    from blis.physics.efficiency import GB10_REFERENCE

    return {"hardware_key": "gb10", "cache": "warm", "benchmarks": [
        {"kernel_type": k, "shape": list(s), "precision": p.upper(), "measured_time_us": t}
        for k, s, p, t, _ in GB10_REFERENCE]}


def _unprocessable(exc: Exception) -> HTTPException:
    return HTTPException(status_code=422, detail=str(exc).splitlines()[0] if str(exc) else type(exc).__name__)


def create_app(limits: Optional[Limits] = None) -> FastAPI:
    """A new app (no global state): ``limits`` bound /api/simulate."""
    limits = limits or Limits()
    app = FastAPI(title="blis", version="0.1.0",
                  description="LLM-serving simulator: kernel roofline, validation against measured kernels, "
                  "spot checks, benchmark-script export, simulations.")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/simulate", include_in_schema=False)
    def simulate_page() -> FileResponse:
        return FileResponse(STATIC / "simulate.html", media_type="text/html")

    @app.get("/vendor/plotly.min.js", include_in_schema=False)
    def plotly_js() -> FileResponse:
        return FileResponse(plotly_js_path(), media_type="application/javascript")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.post("/api/validate", response_model=ValidateResponse,
              summary="Predicted vs measured kernel times (an unknown kernel type or precision is a 422)")
    def validate(body: ValidateRequest) -> dict:
        try:
            return kernels.validate_benchmarks(body.hardware_key, [b.model_dump() for b in body.benchmarks],
                                               body.cache)
        except (BlisInputError, ValueError, OverflowError) as exc:
            raise _unprocessable(exc) from None

    @app.post("/api/roofline", summary="The kernel roofline calculator, ideal and with efficiency factors")
    def roofline(body: RooflineRequest) -> dict:
        try:
            return kernels.roofline_calc(body.hardware, body.kernel_type, body.shape, body.precision, body.cache)
        except (BlisInputError, ValueError, OverflowError) as exc:
            raise _unprocessable(exc) from None

    @app.get("/api/hardware", summary="Built-in GPUs: peaks per precision, bandwidth, ridge points, L2")
    def hardware() -> list[dict]:
        return kernels.hardware_rows()

    @app.get("/api/models", summary="Built-in models")
    def models() -> list[dict]:
        from blis.physics.model_spec import available_models, get_model

        out = []
        for name in available_models():
            m = get_model(name)
            out.append({"name": m.name, "hf_id": m.hf_id, "architecture": m.architecture,
                        "num_layers": m.num_layers, "hidden_size": m.hidden_size, "num_heads": m.num_heads,
                        "num_kv_heads": m.num_kv_heads, "params_b": m.param_count() / 1e9,
                        "num_experts": m.num_experts})
        return out

    @app.post("/api/simulate", summary="Run a SimConfig (or a rate sweep) within this server's limits",
              responses={408: {"description": "time limit"}, 413: {"description": "size limit"}})
    def simulate(body: SimulateRequest) -> dict:
        try:
            out = run_bounded(body.config, body.sweep_rates, limits)
        except SimLimitError as exc:
            raise HTTPException(status_code=exc.status, detail=str(exc)) from None
        except (BlisInputError, ValueError) as exc:
            raise _unprocessable(exc) from None
        out["limits"] = {"max_requests": limits.max_requests, "max_sweep": limits.max_sweep,
                         "time_limit_s": limits.time_limit_s}
        return JSONResponse(_finite(out))

    @app.post("/api/spot-check", response_model=ValidateResponse,
              summary="Time a GEMM on this server's GPU (409 with the reason when there is none)",
              responses={409: {"description": "no torch or no CUDA device on the server"}})
    def spot_check(body: SpotCheckRequest) -> dict:
        from blis.web.spot import SPOT_PRECISIONS, SpotCheckUnavailable
        from blis.web.spot import spot_check as run

        try:
            kernels.shape_dict("gemv" if len(body.shape) == 2 else "gemm", body.shape, "spot-check")
            if body.precision.lower() != "all":
                if body.precision.lower() not in SPOT_PRECISIONS:
                    raise BlisInputError(f"precision: {body.precision!r} not offered by the spot check; "
                                         f"allowed: {', '.join(SPOT_PRECISIONS)}, all")
                kernels.normalise_precision(body.precision, "precision", body.hardware)
            else:
                kernels.normalise_precision("bf16", "precision", body.hardware)
            return run(body.hardware, body.shape, body.precision, body.repetitions)
        except SpotCheckUnavailable as exc:
            raise HTTPException(status_code=409, detail=str(exc)) from None
        except (BlisInputError, ValueError) as exc:
            raise _unprocessable(exc) from None

    @app.get("/api/export-benchmark", response_class=PlainTextResponse,
             summary="A standalone torch-only benchmark script for the target GPU")
    def export_benchmark(hardware: str = Query("gb10", max_length=64),
                         output: str = Query("validate-json", max_length=32)) -> Response:
        from kernels_bench.export_script import render_script

        try:
            text = render_script(hardware, output)
        except (BlisInputError, ValueError) as exc:
            raise _unprocessable(exc) from None
        name = f"bench_{hardware.lower().replace('/', '_')}.py"
        return PlainTextResponse(text, headers={"Content-Disposition": f'attachment; filename="{name}"'})

    @app.get("/api/reference/gb10", summary="The design's GB10 reference measurements (a /api/validate body)")
    def reference_gb10() -> dict:
        return gb10_reference_body()

    return app


def _finite(o):
    """JSON-safe copy: numpy scalars to Python, NaN and infinities to None."""
    import math

    import numpy as np

    if isinstance(o, dict):
        return {k: _finite(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_finite(v) for v in o]
    if isinstance(o, np.generic):
        o = o.item()
    if isinstance(o, float) and not math.isfinite(o):
        return None
    return o
