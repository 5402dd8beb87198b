"""Roofline of single kernels (GEMV, GEMM, attention): FLOPs, bytes, and the time the hardware needs.

predicted time = max(FLOPs / (peak x efficiency), bytes / (bandwidth x efficiency)). The efficiency is a
fraction of peak in (0, 1], either given per call or looked up per kernel and precision in a table
``{"gemm": {"bf16": 0.8, ...}, ...}``; without either it is 1.0 (the ideal roofline).

Bytes assume every operand crosses DRAM exactly once (ideal caching); outputs of low-precision kernels are
written in 16 bits (what vLLM's FP8/FP4 GEMMs do).

``cache``: "cold" (default: every byte comes from DRAM, as in a serving step where each layer reads new
weights) or "warm" (a micro-benchmark re-running the same tensors: a working set that fits in L2 is read at
the L2 bandwidth, ``blis.physics.l2cache``; larger ones, or GPUs without L2 figures, stay at DRAM speed).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass

from blis.errors import BlisInputError
from blis.physics.hardware import HardwareSpec, bytes_per_element, get_hardware

KERNELS = ("gemv", "gemm", "attention")
CACHES = ("cold", "warm")


@dataclass(frozen=True)
class KernelPrediction:
    """Roofline of one kernel call.

    flops: floating-point (or integer) operations. bytes: DRAM traffic. arithmetic_intensity: FLOP/byte.
    critical_intensity: the hardware's peak FLOP/s / peak bytes/s for this precision (FLOP/byte).
    compute_time_us / memory_time_us: each bound alone at peak x efficiency (microseconds).
    predicted_time_us: max of the two. bottleneck: "compute" or "memory". efficiency: the factor applied.
    """

    kernel: str
    hardware: str
    precision: str
    shape: dict
    flops: float
    bytes: float
    arithmetic_intensity: float
    critical_intensity: float
    compute_time_us: float
    memory_time_us: float
    predicted_time_us: float
    bottleneck: str
    efficiency: float

    def to_dict(self) -> dict:
        return asdict(self)


def check_efficiency(value: float, name: str = "efficiency") -> float:
    """A fraction of peak: finite, in (0, 1]."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise BlisInputError(f"{name}: must be a number in (0, 1], got {value!r}") from None
    if not math.isfinite(v) or v <= 0.0:
        raise BlisInputError(f"{name}: must be in (0, 1] (a fraction of peak), got {value!r}")
    if v > 1.0:
        raise BlisInputError(f"{name}: {v} > 1 refused: a fraction of peak cannot exceed 1")
    return v


def resolve_efficiency(
    kernel: str,
    precision: str,
    efficiency: float | None,
    efficiencies: Mapping[str, Mapping[str, float]] | None,
) -> float:
    """The explicit ``efficiency`` if given, else ``efficiencies[kernel][precision]``, else 1.0."""
    if efficiency is not None:
        return check_efficiency(efficiency)
    if efficiencies:
        per_kernel = efficiencies.get(kernel) or {}
        if precision in per_kernel:
            return check_efficiency(per_kernel[precision], f"efficiencies.{kernel}.{precision}")
    return 1.0


def _positive_int(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        try:
            as_int = int(value)
        except (TypeError, ValueError):
            as_int = 0
        if as_int != value or as_int < 1:
            raise BlisInputError(f"{name}: must be an integer >= 1, got {value!r}")
        return as_int
    return value


def roofline(
    kernel: str,
    flops: float,
    nbytes: float,
    precision: str,
    hardware: HardwareSpec,
    efficiency: float,
    shape: dict,
    cache: str = "cold",
) -> KernelPrediction:
    """Combine counts with the hardware figures (times in microseconds)."""
    peak = hardware.peak(precision)
    bw = memory_bandwidth(hardware, nbytes, cache)
    compute_us = flops / (peak * efficiency) * 1e6
    memory_us = nbytes / (bw * efficiency) * 1e6
    return KernelPrediction(
        kernel=kernel,
        hardware=hardware.name,
        precision=precision,
        shape=shape,
        flops=flops,
        bytes=nbytes,
        arithmetic_intensity=flops / nbytes if nbytes else math.inf,
        critical_intensity=peak / bw,
        compute_time_us=compute_us,
        memory_time_us=memory_us,
        predicted_time_us=max(compute_us, memory_us),
        bottleneck="compute" if compute_us >= memory_us else "memory",
        efficiency=efficiency,
    )


def memory_bandwidth(hardware: HardwareSpec, nbytes: float, cache: str = "cold") -> float:
    """Bytes/s the kernel's operands stream at: DRAM, or L2 for a warm working set that fits in it."""
    if cache not in CACHES:
        raise BlisInputError(f"cache: {cache!r} is not one of {', '.join(CACHES)}")
    if cache == "warm":
        from blis.physics.l2cache import l2_figures

        l2 = l2_figures(hardware.name)
        if l2 is not None and nbytes <= l2.bytes:
            return l2.bandwidth_Bps
    return hardware.memory_bandwidth_Bps


def gemm_counts(M: int, N: int, K: int, precision: str) -> tuple[float, float]:
    """(FLOPs, bytes) of C[M,N] = A[M,K] @ B[K,N]: 2MNK; A and B once in ``precision``, C in >= 16 bits."""
    b = bytes_per_element(precision)
    out_b = max(b, 2.0)
    return 2.0 * M * N * K, (M * K + K * N) * b + M * N * out_b


def attention_pairs(q_len: int, kv_len: int, causal: bool) -> float:
    """Query-key pairs scored per (sequence, head). Causal: the q_len queries are the last positions of
    the kv_len context, so query i (1-based) sees kv_len - q_len + i keys."""
    if not causal:
        return float(q_len) * kv_len
    return float(q_len) * (kv_len - q_len) + q_len * (q_len + 1) / 2.0


def attention_counts(
    batch: int, heads: int, kv_heads: int, q_len: int, kv_len: int, head_dim: int, causal: bool, precision: str
) -> tuple[float, float]:
    """(FLOPs, bytes) of fused attention: 4 x head_dim FLOPs per scored pair per head (QK^T and PV);
    Q, K, V read once, O written once."""
    b = bytes_per_element(precision)
    out_b = max(b, 2.0)
    flops = 4.0 * batch * heads * head_dim * attention_pairs(q_len, kv_len, causal)
    nbytes = batch * (q_len * heads * head_dim * (b + out_b) + 2.0 * kv_len * kv_heads * head_dim * b)
    return flops, nbytes


def predict_gemm(
    M: int,
    N: int,
    K: int,
    precision: str = "bf16",
    hardware: str | HardwareSpec = "H100",
    *,
    efficiency: float | None = None,
    efficiencies: Mapping[str, Mapping[str, float]] | None = None,
    hardware_extra: Mapping[str, HardwareSpec] | None = None,
    cache: str = "cold",
) -> KernelPrediction:
    """Roofline of an (M x K) @ (K x N) GEMM (M tokens, K input features, N output features)."""
    M, N, K = _positive_int(M, "M"), _positive_int(N, "N"), _positive_int(K, "K")
    hw = get_hardware(hardware, hardware_extra)
    eff = resolve_efficiency("gemm", precision, efficiency, efficiencies)
    flops, nbytes = gemm_counts(M, N, K, precision)
    return roofline("gemm", flops, nbytes, precision, hw, eff, {"M": M, "N": N, "K": K}, cache)


def predict_gemv(
    N: int,
    K: int,
    precision: str = "bf16",
    hardware: str | HardwareSpec = "H100",
    *,
    efficiency: float | None = None,
    efficiencies: Mapping[str, Mapping[str, float]] | None = None,
    hardware_extra: Mapping[str, HardwareSpec] | None = None,
    cache: str = "cold",
) -> KernelPrediction:
    """Roofline of y[N] = W[N x K] @ x[K] (a GEMM with M = 1; the weight read dominates)."""
    N, K = _positive_int(N, "N"), _positive_int(K, "K")
    hw = get_hardware(hardware, hardware_extra)
    eff = resolve_efficiency("gemv", precision, efficiency, efficiencies)
    flops, nbytes = gemm_counts(1, N, K, precision)
    return roofline("gemv", flops, nbytes, precision, hw, eff, {"N": N, "K": K}, cache)


def predict_attention(
    batch: int,
    heads: int,
    kv_heads: int,
    q_len: int,
    kv_len: int,
    head_dim: int,
    causal: bool = True,
    precision: str = "bf16",
    hardware: str | HardwareSpec = "H100",
    *,
    efficiency: float | None = None,
    efficiencies: Mapping[str, Mapping[str, float]] | None = None,
    hardware_extra: Mapping[str, HardwareSpec] | None = None,
    cache: str = "cold",
) -> KernelPrediction:
    """Roofline of fused (flash) attention over ``batch`` sequences of q_len new queries each attending
    to kv_len keys (kv_len includes the new tokens; decode is q_len = 1)."""
    batch, heads = _positive_int(batch, "batch"), _positive_int(heads, "heads")
    kv_heads, head_dim = _positive_int(kv_heads, "kv_heads"), _positive_int(head_dim, "head_dim")
    q_len, kv_len = _positive_int(q_len, "q_len"), _positive_int(kv_len, "kv_len")
    if heads % kv_heads:
        raise BlisInputError(f"kv_heads: {kv_heads} must divide heads ({heads})")
    if causal and kv_len < q_len:
        raise BlisInputError(f"kv_len: must be >= q_len ({q_len}) for causal attention, got {kv_len}")
    hw = get_hardware(hardware, hardware_extra)
    eff = resolve_efficiency("attention", precision, efficiency, efficiencies)
    flops, nbytes = attention_counts(batch, heads, kv_heads, q_len, kv_len, head_dim, causal, precision)
    shape = {"batch": batch, "heads": heads, "kv_heads": kv_heads, "q_len": q_len, "kv_len": kv_len,
             "head_dim": head_dim, "causal": bool(causal)}  # fmt: skip
    return roofline("attention", flops, nbytes, precision, hw, eff, shape, cache)
