"""Prefill attention tables ``attention_prefill/<heads>-<kv_heads>-<head_dim>.csv``
(``dtype,batch_size,seq_len,latency_us,mfu``): causal self-attention of ``batch_size`` prompts of
``seq_len`` tokens each, heads per GPU.

Kernel: flash-attn's ``flash_attn_func`` (equal lengths, ``[batch, seq, heads, head_dim]``) and
``flash_attn_varlen_func`` (unequal lengths, packed tokens with cumulative offsets); when flash-attn is
not installed, torch's ``scaled_dot_product_attention`` (the backend it picks; grouped-query attention
through ``enable_gqa``), recorded in the provenance.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kernels_bench import flops as fl
from kernels_bench.shapes import DTYPE_BYTES, AttentionShape
from kernels_bench.sweep import Point, PointSkipped, TableSpec
from kernels_bench.timing import Timer, median_latency_us

COLUMNS = ("dtype", "batch_size", "seq_len", "latency_us", "mfu")
KEY_COLUMNS = ("dtype", "batch_size", "seq_len")
DTYPES = ("bf16",)
FLASH_ATTN = "flash-attn"
SDPA = "torch-sdpa"
MAX_FLASH_HEAD_DIM = 256
CHECK_MAX_SEQ_LEN = 4096  # points up to this length are checked against the fp32 reference


def table(shape: AttentionShape) -> TableSpec:
    return TableSpec(f"attention_prefill/{shape.file_stem}.csv", COLUMNS, KEY_COLUMNS)


def points(
    shapes: Sequence[AttentionShape], grid: Sequence[tuple[int, int]], dtypes: Sequence[str] = ("bf16",)
) -> list[Point]:
    """One point per shape, dtype and ``(batch_size, seq_len)`` of ``grid``; causal FLOPs."""
    out = []
    for shape in shapes:
        spec = table(shape)
        for dtype in dtypes:
            if dtype not in DTYPES:
                raise ValueError(f"--dtype: prefill attention dtype {dtype!r} is not one of {', '.join(DTYPES)}")
            for b, s in grid:
                lens = [s] * b
                out.append(
                    Point(
                        table=spec,
                        key={"dtype": dtype, "batch_size": b, "seq_len": s},
                        label=f"{dtype} batch={b} seq_len={s}",
                        flops=fl.prefill_attention_flops(lens, shape.num_heads, shape.head_dim, causal=True),
                        nbytes=fl.prefill_attention_bytes(
                            lens, shape.num_heads, shape.num_kv_heads, shape.head_dim, DTYPE_BYTES[dtype]
                        ),
                        precision=dtype,
                        params={
                            "seq_lens": tuple(lens),
                            "heads": shape.num_heads,
                            "kv_heads": shape.num_kv_heads,
                            "head_dim": shape.head_dim,
                            "dtype": dtype,
                        },
                    )
                )
    return out


def available_backend() -> str:
    """``flash-attn`` when importable, else ``torch-sdpa``."""
    try:
        import flash_attn  # noqa: F401
    except ImportError:
        return SDPA
    return FLASH_ATTN


def resolve_backend(choice: str) -> str:
    """'auto' picks `available_backend`; naming flash-attn when it is not importable is an error."""
    if choice == "auto":
        return available_backend()
    if choice not in (FLASH_ATTN, SDPA):
        raise ValueError(f"--prefill-backend must be auto, {FLASH_ATTN} or {SDPA}, got {choice!r}")
    if choice == FLASH_ATTN and available_backend() != FLASH_ATTN:
        raise RuntimeError("--prefill-backend flash-attn: flash_attn is not importable")
    return choice


def kernel_description(backend: str) -> str:
    if backend == FLASH_ATTN:
        return "flash_attn.flash_attn_func(causal=True), flash_attn_varlen_func for unequal lengths"
    return "torch.nn.functional.scaled_dot_product_attention(is_causal=True), backend chosen by torch"


def sdpa(q: Any, k: Any, v: Any, causal: bool) -> Any:
    """SDPA on ``[batch, heads, seq, head_dim]`` tensors; grouped-query attention without copying K/V
    where torch has ``enable_gqa`` (2.5+), else K/V heads repeated (more bytes read: noted by callers)."""
    import torch.nn.functional as F

    if q.shape[1] == k.shape[1]:
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    try:
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=True)
    except TypeError:
        rep = q.shape[1] // k.shape[1]
        return F.scaled_dot_product_attention(
            q, k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1), is_causal=causal
        )


class PrefillInputs:
    """Random bf16 Q, K, V for a batch of sequences, in the layout the backend wants.

    Equal lengths: ``q`` is ``[batch, seq, heads, head_dim]`` (flash-attn) or ``[batch, heads, seq,
    head_dim]`` (SDPA). Unequal lengths (flash-attn only): packed ``[total_tokens, heads, head_dim]`` with
    int32 cumulative offsets ``cu_seqlens``.
    """

    def __init__(self, seq_lens: Sequence[int], heads: int, kv_heads: int, head_dim: int, backend: str,
                 device: str = "cuda"):
        import torch

        self.seq_lens = list(seq_lens)
        self.backend = backend
        self.equal = len(set(self.seq_lens)) == 1
        dt = torch.bfloat16
        if self.equal:
            b, s = len(self.seq_lens), self.seq_lens[0]
            if backend == FLASH_ATTN:
                self.q = torch.randn(b, s, heads, head_dim, dtype=dt, device=device)
                self.k = torch.randn(b, s, kv_heads, head_dim, dtype=dt, device=device)
                self.v = torch.randn(b, s, kv_heads, head_dim, dtype=dt, device=device)
            else:
                self.q = torch.randn(b, heads, s, head_dim, dtype=dt, device=device)
                self.k = torch.randn(b, kv_heads, s, head_dim, dtype=dt, device=device)
                self.v = torch.randn(b, kv_heads, s, head_dim, dtype=dt, device=device)
        else:
            if backend != FLASH_ATTN:
                raise PointSkipped("unequal sequence lengths need flash-attn's varlen kernel")
            total = sum(self.seq_lens)
            self.q = torch.randn(total, heads, head_dim, dtype=dt, device=device)
            self.k = torch.randn(total, kv_heads, head_dim, dtype=dt, device=device)
            self.v = torch.randn(total, kv_heads, head_dim, dtype=dt, device=device)
            offsets = [0]
            for s in self.seq_lens:
                offsets.append(offsets[-1] + s)
            self.cu_seqlens = torch.tensor(offsets, dtype=torch.int32, device=device)
            self.max_seqlen = max(self.seq_lens)

    def launcher(self, causal: bool = True) -> Any:
        """Zero-argument launcher of the attention over these inputs."""
        if self.backend == SDPA:
            return lambda: sdpa(self.q, self.k, self.v, causal)
        from flash_attn import flash_attn_func, flash_attn_varlen_func

        if self.equal:
            return lambda: flash_attn_func(self.q, self.k, self.v, causal=causal)
        return lambda: flash_attn_varlen_func(
            self.q, self.k, self.v, self.cu_seqlens, self.cu_seqlens, self.max_seqlen, self.max_seqlen,
            causal=causal,
        )

    def sequence(self, out: Any, i: int) -> tuple[Any, Any, Any, Any]:
        """(q, k, v, out) of sequence ``i`` as ``[seq, heads, head_dim]`` tensors (for reference checks)."""
        if not self.equal:
            lo, hi = sum(self.seq_lens[:i]), sum(self.seq_lens[: i + 1])
            return self.q[lo:hi], self.k[lo:hi], self.v[lo:hi], out[lo:hi]
        if self.backend == FLASH_ATTN:
            return self.q[i], self.k[i], self.v[i], out[i]
        return (self.q[i].transpose(0, 1), self.k[i].transpose(0, 1), self.v[i].transpose(0, 1),
                out[i].transpose(0, 1))


class PrefillRunner:
    """Times prefill attention points with ``backend`` ('flash-attn' or 'torch-sdpa')."""

    def __init__(self, timer: Timer, backend: str, device: str = "cuda"):
        self.timer = timer
        self.backend = backend
        self.device = device

    def __call__(self, point: Point) -> float:
        import torch

        p = point.params
        if self.backend == FLASH_ATTN and p["head_dim"] > MAX_FLASH_HEAD_DIM:
            raise PointSkipped(f"flash-attn supports head_dim <= {MAX_FLASH_HEAD_DIM}")
        inputs = None
        try:
            inputs = PrefillInputs(p["seq_lens"], p["heads"], p["kv_heads"], p["head_dim"], self.backend,
                                   self.device)
            launch = inputs.launcher(causal=True)
            out = launch()
            if max(p["seq_lens"]) <= CHECK_MAX_SEQ_LEN:
                check_against_reference(inputs, out, f"attention_prefill {point.label}")
            elif not bool(torch.isfinite(out).all()):
                raise RuntimeError(f"attention_prefill {point.label}: non-finite output")
            del out
            return median_latency_us(launch, self.timer)
        except torch.cuda.OutOfMemoryError:
            del inputs
            torch.cuda.empty_cache()
            raise PointSkipped("out of GPU memory") from None


def check_against_reference(inputs: PrefillInputs, out: Any, where: str, causal: bool = True) -> float:
    """Relative error of the first and last sequences against the fp32 reference; RuntimeError above
    the tolerance (a wrong kernel call must stop the sweep, not fill a table)."""
    from kernels_bench.reference import DEFAULT_TOLERANCE, attention_fp32, relative_error

    worst = 0.0
    for i in sorted({0, len(inputs.seq_lens) - 1}):
        q, k, v, o = inputs.sequence(out, i)
        err = relative_error(o, attention_fp32(q, k, v, causal))
        if not err <= DEFAULT_TOLERANCE:
            raise RuntimeError(f"{where}: sequence {i} differs from the fp32 reference by {err:.2e} "
                               f"(tolerance {DEFAULT_TOLERANCE:g})")
        worst = max(worst, err)
    return worst
