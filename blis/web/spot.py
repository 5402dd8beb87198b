"""Spot check: time a GEMM (or GEMV) on this server's GPU through kernels_bench and compare with the roofline.

Without torch or a CUDA device the check cannot run: ``SpotCheckUnavailable`` carries the reason (HTTP 409).
Results come back in the /api/validate response schema.
"""

from __future__ import annotations

from blis.web.kernels import validate_benchmarks

SPOT_PRECISIONS = ("bf16", "fp16", "fp8", "tf32")


class SpotCheckUnavailable(Exception):
    """No GPU path on this server (HTTP 409)."""


def gpu_reason() -> str | None:
    """None when torch sees a CUDA device, else why not."""
    try:
        import torch
    except ImportError:
        return "torch is not installed on this server (pip install 'blis[bench]')"
    if not torch.cuda.is_available():
        return f"torch {torch.__version__} sees no CUDA device on this server"
    return None


def _time_one(torch, shape: list[int], prec: str, reps: int) -> float:
    from kernels_bench.gemm import make_launcher, random_matrix
    from kernels_bench.timing import CudaEventTimer, median_latency_us

    m, n, k = (1, *shape) if len(shape) == 2 else shape
    torch.backends.cuda.matmul.allow_tf32 = prec == "tf32"
    if prec == "fp8":
        rows = max(16, -(-m // 16) * 16)  # torch's FP8 GEMM needs multiples of 16 rows
        a, w = random_matrix(rows, k, "fp8"), random_matrix(n, k, "fp8")
        fn = make_launcher(a, w, "fp8")
    else:
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "tf32": torch.float32}[prec]
        a = torch.randn(m, k, device="cuda", dtype=dtype)
        w = torch.randn(n, k, device="cuda", dtype=dtype)
        fn = lambda: torch.matmul(a, w.t())  # noqa: E731
    timer = CudaEventTimer(warmup=3, min_reps=reps, max_reps=reps, target_ms=100.0)
    return median_latency_us(fn, timer)


def spot_check(hardware: str, shape: list[int], precision: str, reps: int) -> dict:
    """Measure ``shape`` ([M, N, K] GEMM or [N, K] GEMV) in ``precision`` (or 'all') and validate it."""
    reason = gpu_reason()
    if reason is not None:
        raise SpotCheckUnavailable(f"spot check needs a GPU: {reason}")
    import torch

    from kernels_bench.gemm import fp8_support

    precs = list(SPOT_PRECISIONS) if precision.lower() == "all" else [precision.lower()]
    rows, skipped = [], []
    for prec in precs:
        if prec == "fp8" and not fp8_support()[0]:
            skipped.append(f"fp8: {fp8_support()[1]}")
            continue
        t = _time_one(torch, shape, prec, reps)
        rows.append({"kernel_type": "gemv" if len(shape) == 2 else "gemm", "shape": list(shape),
                     "precision": prec.upper(), "measured_time_us": t, "cache": "cold"})
    if not rows:
        raise SpotCheckUnavailable("nothing measured: " + "; ".join(skipped))
    out = validate_benchmarks(hardware, rows)
    out["device"] = torch.cuda.get_device_name()
    out["skipped"] = skipped
    return out
