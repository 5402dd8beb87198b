"""Per-kernel, per-precision efficiency factors and the warm-cache memory level.

Efficiency: the fraction of the relevant peak a kernel reaches (compute peak for compute-bound kernels,
the bandwidth of the memory level that serves its bytes for memory-bound ones), in (0, 1], never above 1.

Cache modes of a kernel measurement:
- ``cold``: every repetition reads its operands from DRAM (a benchmark that flushes L2 between calls).
- ``warm``: repetitions run back to back without a flush; if the kernel's working set (all bytes it
  touches) fits in the GPU's L2, the bytes come from L2 at L2 bandwidth instead of DRAM. A working set
  larger than L2 is read cyclically, which an LRU-like cache evicts before reuse: DRAM, as cold.

The GB10 factors are FITTED on the five reference measurements below (the only GB10 data we have): the
check that each is predicted within 10 % is a consistency check of the arithmetic, not a validation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from blis.errors import BlisInputError
from blis.physics.hardware import HardwareSpec, get_hardware
from blis.physics.kernel_roofline import (
    KernelPrediction,
    check_efficiency,
    predict_attention,
    predict_gemm,
    predict_gemv,
)

CACHE_MODES = ("cold", "warm")
KERNEL_TYPES = ("gemv", "gemm", "attention")


@dataclass(frozen=True)
class CacheSpec:
    """The GPU's last-level on-die cache. l2_bytes: capacity (bytes). l2_bandwidth_Bps: bytes/s."""

    l2_bytes: float
    l2_bandwidth_Bps: float
    source: str



def _cache(key: str) -> CacheSpec:
    from blis.physics.l2cache import L2, SOURCES  # one table of L2 figures (blis/physics/l2cache.py)

    return CacheSpec(L2[key].bytes, L2[key].bandwidth_Bps, SOURCES[key])


# GPUs whose reference measurements are micro-benchmarks timed warm (the web page's default mode for them)
CACHES: dict[str, CacheSpec] = {"GB10": _cache("gb10")}

# The design's reference GB10 measurements: (kernel, shape, precision, measured microseconds, cache mode).
# Timed back to back without an L2 flush, hence "warm".
GB10_REFERENCE: tuple[tuple[str, tuple[int, ...], str, float, str], ...] = (
    ("gemv", (4096, 4096), "fp16", 203.4, "warm"),
    ("gemv", (4096, 4096), "fp8", 34.8, "warm"),
    ("gemm", (4096, 4096, 4096), "fp16", 14339.0, "warm"),
    ("gemm", (4096, 4096, 4096), "fp8", 834.0, "warm"),
    ("gemm", (4096, 4096, 4096), "tf32", 3681.0, "warm"),
)

# Fraction of peak compute / DRAM bandwidth, per kernel and precision. FITTED on GB10_REFERENCE (ideal
# time / measured time, rounded to 3 digits); a point whose measurement beats the ideal is capped at 1.0
# and its error shown (see docs/web.md).
EFFICIENCY: dict[str, dict[str, dict[str, float]]] = {
    "GB10": {
        # 33.57 MB / 287 GB/s = 116.97 us vs 203.4 us measured (DRAM-bound: 33.6 MB does not fit in 24 MiB L2).
        # FP8 in cold mode is assumed to stream at the FP16 fraction (not measured cold).
        "gemv": {"fp16": 0.575, "bf16": 0.575, "fp8": 0.575},
        # 137.4 GFLOP / 62 TF = 2216.8 us vs 14339 us (FP16 GEMM reaches 15 % of peak on this part).
        # 137.4 GFLOP / 250 TF = 549.8 us vs 834 us.
        # TF32: 137.4 GFLOP / 31 TF = 4433.5 us vs 3681 us measured: faster than the derived peak; capped at
        # 1.0, the +20 % error is reported, not hidden.
        "gemm": {"fp16": 0.155, "bf16": 0.155, "fp8": 0.659, "tf32": 1.0},
    },
}

# Fraction of L2 bandwidth reached when the working set is L2-resident (warm mode). FITTED on the FP8 GEMV:
# 16.79 MB / 7.74 TB/s = 2.17 us vs 34.8 us measured: the kernel is far from L2-bound (fixed per-launch and
# per-pass costs dominate a 17 MB read); what the warm mode explains is why DRAM does not bound it.
WARM_EFFICIENCY: dict[str, dict[str, dict[str, float]]] = {
    "GB10": {"gemv": {"fp8": 0.0623}},
}


def cache_spec(hardware: str | HardwareSpec) -> CacheSpec | None:
    """The L2 figures of ``hardware`` (None where we have none)."""
    return CACHES.get(get_hardware(hardware).name)


def efficiency_table(hardware: str | HardwareSpec) -> dict[str, dict[str, float]]:
    """{kernel: {precision: fraction of peak}} for ``hardware`` (empty where none were fitted)."""
    name = get_hardware(hardware).name
    table = EFFICIENCY.get(name, {})
    for kernel, per in table.items():
        for prec, v in per.items():
            check_efficiency(v, f"efficiency.{name}.{kernel}.{prec}")
    return {k: dict(v) for k, v in table.items()}


def _working_set(kernel: str, pred: KernelPrediction) -> float:
    """Bytes the kernel touches: with every operand read once, its DRAM bytes (bytes)."""
    return pred.bytes


def predict_kernel(
    kernel: str,
    shape: Mapping[str, int],
    precision: str,
    hardware: str | HardwareSpec,
    *,
    cache: str = "cold",
    use_efficiency: bool = True,
) -> dict:
    """Roofline of one kernel with the hardware's efficiency factors and the cache mode.

    ``shape``: gemv {N, K}; gemm {M, N, K}; attention {batch, heads, kv_heads, q_len, kv_len, head_dim,
    causal}. Returns KernelPrediction fields plus ``cache``, ``memory_level`` ("DRAM" or "L2"),
    ``working_set_bytes`` and ``ideal_time_us`` (efficiency 1, same memory level). Times in microseconds.
    """
    if kernel not in KERNEL_TYPES:
        raise BlisInputError(f"kernel_type: unknown {kernel!r}; allowed: {', '.join(KERNEL_TYPES)}")
    if cache not in CACHE_MODES:
        raise BlisInputError(f"cache: unknown {cache!r}; allowed: {', '.join(CACHE_MODES)}")
    hw = get_hardware(hardware)
    table = efficiency_table(hw) if use_efficiency else {}
    if kernel == "gemv":
        fn = lambda **kw: predict_gemv(shape["N"], shape["K"], precision, hw, **kw)  # noqa: E731
    elif kernel == "gemm":
        fn = lambda **kw: predict_gemm(shape["M"], shape["N"], shape["K"], precision, hw, **kw)  # noqa: E731
    else:
        fn = lambda **kw: predict_attention(  # noqa: E731
            shape["batch"], shape["heads"], shape["kv_heads"], shape["q_len"], shape["kv_len"], shape["head_dim"],
            bool(shape.get("causal", True)), precision, hw, **kw)
    pred = fn(efficiencies=table)
    ideal = fn(efficiency=1.0)
    out = pred.to_dict()
    out.update(cache=cache, memory_level="DRAM", working_set_bytes=_working_set(kernel, pred),
               ideal_time_us=ideal.predicted_time_us)
    spec = CACHES.get(hw.name)
    if cache == "warm" and spec is not None and out["working_set_bytes"] <= spec.l2_bytes:
        eff = 1.0
        if use_efficiency:
            eff = check_efficiency(WARM_EFFICIENCY.get(hw.name, {}).get(kernel, {}).get(precision, 1.0),
                                   "warm efficiency")
        mem_us = pred.bytes / (spec.l2_bandwidth_Bps * eff) * 1e6
        ideal_mem_us = pred.bytes / spec.l2_bandwidth_Bps * 1e6
        out.update(memory_level="L2", memory_time_us=mem_us,
                   predicted_time_us=max(pred.compute_time_us, mem_us),
                   bottleneck="compute" if pred.compute_time_us >= mem_us else "memory",
                   ideal_time_us=max(ideal.compute_time_us, ideal_mem_us))
        if pred.compute_time_us < mem_us:
            out["efficiency"] = eff
    return out
