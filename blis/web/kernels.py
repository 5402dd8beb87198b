"""Kernel validation and the roofline calculator behind the HTTP API (plain functions, no web imports).

A benchmark row: kernel_type (gemv | gemm | attention), shape, precision (case-insensitive, e.g. "FP16"),
measured_time_us, and optional measured_tflops / measured_bandwidth_gb_s / ai (recomputed when absent).
Shapes: gemv [N, K]; gemm [M, N, K]; attention [batch, heads, kv_heads, q_len, kv_len, head_dim] or
[batch, heads, seq_len, head_dim] (self-attention, kv_heads = heads, causal).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from blis.errors import BlisInputError
from blis.physics.efficiency import CACHES, KERNEL_TYPES, efficiency_table, predict_kernel
from blis.physics.hardware import BYTES_PER_ELEMENT, COMPUTE_PRECISION, get_hardware

KNOWN_PRECISIONS = tuple(BYTES_PER_ELEMENT)
MAX_DIM = 1 << 24  # largest kernel dimension accepted (keeps every count finite)
# what the /api/validate colours mean (|error| in percent)
GREEN_BELOW_PCT = 10.0
RED_ABOVE_PCT = 25.0


def normalise_precision(value: str, where: str, hardware: str) -> str:
    """'FP16' -> 'fp16'; an unknown or unsupported precision raises one line naming it."""
    prec = str(value).strip().lower()
    if prec not in KNOWN_PRECISIONS:
        raise BlisInputError(f"{where}: unknown precision {value!r}; allowed: {', '.join(KNOWN_PRECISIONS)}")
    hw = get_hardware(hardware)
    if hw.peak_flops.get(COMPUTE_PRECISION.get(prec, prec), 0.0) <= 0:
        raise BlisInputError(f"{where}: precision {value!r} is not supported on {hw.name}; supported: "
                             f"{', '.join(hw.supported_precisions())}")
    return prec


def shape_dict(kernel: str, shape: Sequence[int], where: str) -> dict:
    """The named dimensions of ``shape`` for ``kernel`` (see the module docstring)."""
    if kernel not in KERNEL_TYPES:
        raise BlisInputError(f"{where}.kernel_type: unknown {kernel!r}; allowed: {', '.join(KERNEL_TYPES)}")
    dims = list(shape)
    if any(isinstance(d, bool) or not isinstance(d, int) or not 1 <= d <= MAX_DIM for d in dims):
        raise BlisInputError(f"{where}.shape: dimensions must be integers in [1, {MAX_DIM}], got {dims}")
    if kernel == "gemv" and len(dims) == 2:
        return {"N": dims[0], "K": dims[1]}
    if kernel == "gemm" and len(dims) == 3:
        return {"M": dims[0], "N": dims[1], "K": dims[2]}
    if kernel == "attention" and len(dims) == 6:
        return dict(zip(("batch", "heads", "kv_heads", "q_len", "kv_len", "head_dim"), dims), causal=True)
    if kernel == "attention" and len(dims) == 4:
        b, h, s, d = dims
        return {"batch": b, "heads": h, "kv_heads": h, "q_len": s, "kv_len": s, "head_dim": d, "causal": True}
    expected = {"gemv": "[N, K]", "gemm": "[M, N, K]",
                "attention": "[batch, heads, kv_heads, q_len, kv_len, head_dim] or [batch, heads, seq_len, head_dim]"}
    raise BlisInputError(f"{where}.shape: {kernel} expects {expected[kernel]}, got {dims}")


def default_cache(hardware: str) -> str:
    """'warm' where we know the hardware's L2 (back-to-back repetitions keep small working sets there),
    else 'cold'."""
    return "warm" if get_hardware(hardware).name in CACHES else "cold"


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def validate_benchmarks(hardware: str, benchmarks: Sequence[Mapping], cache: str | None = None) -> dict:
    """Predicted vs measured for each row; the /api/validate response. Nothing is skipped: a bad row raises."""
    hw = get_hardware(hardware)
    results = []
    for i, b in enumerate(benchmarks):
        where = f"benchmarks[{i}]"
        kernel = str(b.get("kernel_type", "")).strip().lower()
        shape = shape_dict(kernel, b.get("shape") or [], where)
        prec = normalise_precision(b.get("precision", ""), f"{where}.precision", hw.name)
        mode = b.get("cache") or cache or default_cache(hw.name)
        measured = float(b["measured_time_us"])
        if not (math.isfinite(measured) and measured > 0):
            raise BlisInputError(f"{where}.measured_time_us: must be a finite number > 0, got {measured!r}")
        p = predict_kernel(kernel, shape, prec, hw, cache=mode)
        predicted = p["predicted_time_us"]
        measured_tflops = b.get("measured_tflops")
        if measured_tflops is None:
            measured_tflops = p["flops"] / measured / 1e6
        err = (predicted - measured) / measured * 100.0
        results.append({
            "kernel_type": kernel,
            "shape": list(b.get("shape")),
            "precision": b.get("precision"),
            "predicted_time_us": predicted,
            "measured_time_us": measured,
            "error_pct": err,
            "predicted_tflops": p["flops"] / predicted / 1e6,
            "measured_tflops": _finite(float(measured_tflops)),
            "bottleneck": p["bottleneck"],
            "ai": p["arithmetic_intensity"],
            "cache": mode,
            "memory_level": p["memory_level"],
            "efficiency": p["efficiency"],
            "ideal_time_us": p["ideal_time_us"],
        })
    errs = [abs(r["error_pct"]) for r in results]
    summary = {
        "mean_error_pct": sum(errs) / len(errs) if errs else 0.0,
        "max_error_pct": max(errs) if errs else 0.0,
        "num_benchmarks": len(results),
    }
    return {"hardware": hw.name, "results": results, "summary": summary}


def roofline_calc(hardware: str, kernel: str, shape: Sequence[int], precision: str, cache: str | None) -> dict:
    """The calculator: counts, intensity, ridge point, bound and time, ideal and with efficiency factors."""
    hw = get_hardware(hardware)
    kernel = str(kernel).strip().lower()
    dims = shape_dict(kernel, shape, "roofline")
    prec = normalise_precision(precision, "precision", hw.name)
    mode = cache or "cold"
    ideal = predict_kernel(kernel, dims, prec, hw, cache=mode, use_efficiency=False)
    eff = predict_kernel(kernel, dims, prec, hw, cache=mode, use_efficiency=True)
    fitted = efficiency_table(hw).get(kernel, {})
    return {
        "hardware": hw.name,
        "kernel_type": kernel,
        "shape": dims,
        "precision": prec,
        "cache": mode,
        "memory_level": ideal["memory_level"],
        "flops": ideal["flops"],
        "bytes": ideal["bytes"],
        "arithmetic_intensity": ideal["arithmetic_intensity"],
        "ridge_point": ideal["critical_intensity"],
        "peak_tflops": hw.peak(prec) / 1e12,
        "bandwidth_gb_s": hw.memory_bandwidth_Bps / 1e9,
        "bound": ideal["bottleneck"],
        "time_us": ideal["predicted_time_us"],
        "time_with_efficiency_us": eff["predicted_time_us"],
        "bound_with_efficiency": eff["bottleneck"],
        "efficiency": eff["efficiency"],
        "efficiency_fitted": prec in fitted,
    }


def hardware_rows() -> list[dict]:
    """Every built-in GPU: peaks per precision (TFLOP/s), bandwidth, ridge points, L2 and efficiency factors."""
    from blis.physics.hardware import available_hardware

    rows = []
    for name in available_hardware():
        hw = get_hardware(name)
        peaks = {p: hw.peak_flops[p] / 1e12 for p in hw.supported_precisions()}
        cache = CACHES.get(hw.name)
        rows.append({
            "name": hw.name,
            "aliases": list(hw.aliases),
            "memory_gb": hw.memory_bytes / 1e9,
            "bandwidth_gb_s": hw.memory_bandwidth_Bps / 1e9,
            "peak_tflops": peaks,
            "ridge_points": {p: v * 1e12 / hw.memory_bandwidth_Bps for p, v in peaks.items()},
            "l2_bytes": cache.l2_bytes if cache else None,
            "l2_bandwidth_gb_s": cache.l2_bandwidth_Bps / 1e9 if cache else None,
            "efficiency": efficiency_table(hw),
            "source": hw.source,
        })
    return rows
