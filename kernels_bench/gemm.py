"""GEMM tables ``gemm_<dtype>.csv`` (``m,k,n,latency_us,mfu``): ``[m, k] @ [k, n]`` as a linear layer
computes it (activations row-major, the weight stored ``[n, k]`` and used transposed).

bf16 runs through ``torch.matmul``; fp8 (e4m3 operands, bf16 output, per-tensor scales) through
``torch._scaled_mm``, on GPUs of compute capability 8.9 or newer, for shapes whose k and n are multiples
of 16 (cuBLASLt's FP8 requirement).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kernels_bench import flops as fl
from kernels_bench.shapes import DTYPE_BYTES, GemmShape
from kernels_bench.sweep import Point, PointSkipped, TableSpec
from kernels_bench.timing import Timer, median_latency_us

COLUMNS = ("m", "k", "n", "latency_us", "mfu")
KEY_COLUMNS = ("m", "k", "n")
DTYPES = ("bf16", "fp8")
OUT_BYTES = 2.0  # bf16 output for both dtypes
KERNEL_NAMES = {
    "bf16": "torch.matmul(a[m,k] bf16, w[n,k].t() bf16) -> bf16 (cuBLAS)",
    "fp8": "torch._scaled_mm(a[m,k] e4m3, w[n,k].t() e4m3, per-tensor fp32 scales, out_dtype=bf16)",
}


def table(dtype: str) -> TableSpec:
    return TableSpec(f"gemm_{dtype}.csv", COLUMNS, KEY_COLUMNS)


def fp8_shape_ok(k: int, n: int) -> bool:
    """torch._scaled_mm needs k and n divisible by 16."""
    return k % 16 == 0 and n % 16 == 0


def points(shapes: Sequence[GemmShape], ms: Sequence[int], dtypes: Sequence[str]) -> tuple[list[Point], list[str]]:
    """Points ordered dtype, (k, n), m (so one weight serves a run of points), and the shapes left out."""
    out: list[Point] = []
    left_out: list[str] = []
    for dtype in dtypes:
        if dtype not in DTYPES:
            raise ValueError(f"--dtype: GEMM dtype {dtype!r} is not one of {', '.join(DTYPES)}")
        spec = table(dtype)
        for s in shapes:
            if dtype == "fp8" and not fp8_shape_ok(s.k, s.n):
                left_out.append(f"gemm_fp8 k={s.k} n={s.n}: k and n must be multiples of 16")
                continue
            for m in ms:
                out.append(
                    Point(
                        table=spec,
                        key={"m": m, "k": s.k, "n": s.n},
                        label=f"m={m} k={s.k} n={s.n}",
                        flops=fl.gemm_flops(m, s.k, s.n),
                        nbytes=fl.gemm_bytes(m, s.k, s.n, DTYPE_BYTES[dtype], OUT_BYTES),
                        precision=dtype,
                        params={"m": m, "k": s.k, "n": s.n, "dtype": dtype},
                    )
                )
    return out, left_out


def fp8_support() -> tuple[bool, str]:
    """Whether this torch and GPU can run FP8 GEMMs, and why not."""
    import torch

    if not hasattr(torch, "float8_e4m3fn") or not hasattr(torch, "_scaled_mm"):
        return False, f"torch {torch.__version__} has no float8_e4m3fn/_scaled_mm"
    cap = torch.cuda.get_device_capability()
    if cap < (8, 9):
        return False, f"compute capability {cap[0]}.{cap[1]} < 8.9 has no FP8 tensor cores"
    return True, ""


def _first(result: Any) -> Any:
    # torch < 2.4 returned (out, amax) from _scaled_mm; 2.4+ returns the tensor alone.
    return result[0] if isinstance(result, tuple) else result


def make_launcher(a: Any, w: Any, dtype: str) -> Any:
    """Zero-argument launcher of one GEMM. ``a``: [m, k]; ``w``: [n, k] (bf16, or e4m3 for fp8)."""
    import torch

    w_t = w.t()  # [k, n] column-major view, as a linear layer uses its weight
    if dtype == "bf16":
        return lambda: torch.matmul(a, w_t)
    scale_a = torch.ones((), dtype=torch.float32, device=a.device)
    scale_b = torch.ones((), dtype=torch.float32, device=a.device)
    return lambda: _first(torch._scaled_mm(a, w_t, scale_a=scale_a, scale_b=scale_b, out_dtype=torch.bfloat16))


def random_matrix(rows: int, cols: int, dtype: str, device: str = "cuda") -> Any:
    """Standard-normal values in bf16, or cast to e4m3 for fp8 (never zeros)."""
    import torch

    x = torch.randn(rows, cols, dtype=torch.bfloat16, device=device)
    return x.to(torch.float8_e4m3fn) if dtype == "fp8" else x


class GemmRunner:
    """Times GEMM points; keeps the weight of the last (k, n, dtype) for the next points."""

    def __init__(self, timer: Timer, device: str = "cuda"):
        self.timer = timer
        self.device = device
        self._weight_key: tuple | None = None
        self._weight: Any = None

    def __call__(self, point: Point) -> float:
        import torch

        m, k, n, dtype = (point.params[x] for x in ("m", "k", "n", "dtype"))
        try:
            if self._weight_key != (k, n, dtype):
                self._weight = None
                self._weight = random_matrix(n, k, dtype, self.device)
                self._weight_key = (k, n, dtype)
            a = random_matrix(m, k, dtype, self.device)
            launch = make_launcher(a, self._weight, dtype)
            out = launch()
            if tuple(out.shape) != (m, n) or not bool(torch.isfinite(out).all()):
                raise RuntimeError(f"gemm_{dtype} {point.label}: output shape {tuple(out.shape)} or values wrong")
            del out
            return median_latency_us(launch, self.timer)
        except torch.cuda.OutOfMemoryError:
            self._weight, self._weight_key = None, None
            torch.cuda.empty_cache()
            raise PointSkipped("out of GPU memory") from None
