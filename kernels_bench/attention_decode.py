"""Decode attention tables ``attention_decode/<heads>-<kv_heads>-<head_dim>.csv``
(``dtype,kv_dtype,batch_size,kv_len,latency_us,mfu``): one query token per sequence attending to
``kv_len`` cached tokens, for ``batch_size`` sequences, heads per GPU.

Kernel: flashinfer's ``BatchDecodeWithPagedKVCacheWrapper`` over a paged cache (page size 16, ``NHD``
layout, pages of a batch in random order as a block allocator leaves them), planned once per point
outside the timing. When flashinfer is not installed: torch SDPA over a contiguous cache (bf16 only),
recorded in the provenance. The query and output are bf16; ``kv_dtype`` fp8 stores the cache in e4m3
(flashinfer only). Achieved bandwidth (least bytes over latency) is reported beside the table.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from kernels_bench import flops as fl
from kernels_bench.shapes import DTYPE_BYTES, AttentionShape, decode_kv_cache_bytes
from kernels_bench.sweep import Point, PointSkipped, TableSpec
from kernels_bench.timing import Timer, median_latency_us

COLUMNS = ("dtype", "kv_dtype", "batch_size", "kv_len", "latency_us", "mfu")
KEY_COLUMNS = ("dtype", "kv_dtype", "batch_size", "kv_len")
Q_DTYPE = "bf16"
KV_DTYPES = ("bf16", "fp8")
PAGE_SIZE = 16
FLASHINFER = "flashinfer"
SDPA = "torch-sdpa"
WORKSPACE_BYTES = 256 << 20
CHECK_MAX_KV_LEN = 8192  # paged points up to this length are checked against the fp32 reference


def table(shape: AttentionShape) -> TableSpec:
    return TableSpec(f"attention_decode/{shape.file_stem}.csv", COLUMNS, KEY_COLUMNS)


def points(
    shapes: Sequence[AttentionShape],
    grid: Sequence[tuple[int, int]],
    kv_dtypes: Sequence[str],
    memory_limit_bytes: float,
) -> tuple[list[Point], int]:
    """Points per shape, kv dtype and ``(batch_size, kv_len)``; those whose paged K/V cache exceeds
    ``memory_limit_bytes`` are dropped (their count is returned)."""
    out: list[Point] = []
    dropped = 0
    for shape in shapes:
        spec = table(shape)
        for kv_dtype in kv_dtypes:
            if kv_dtype not in KV_DTYPES:
                raise ValueError(f"--dtype: decode KV dtype {kv_dtype!r} is not one of {', '.join(KV_DTYPES)}")
            kv_bytes = DTYPE_BYTES[kv_dtype]
            for b, kv in grid:
                cache = decode_kv_cache_bytes(b, kv, shape.num_kv_heads, shape.head_dim, kv_bytes, PAGE_SIZE)
                if cache > memory_limit_bytes:
                    dropped += 1
                    continue
                out.append(
                    Point(
                        table=spec,
                        key={"dtype": Q_DTYPE, "kv_dtype": kv_dtype, "batch_size": b, "kv_len": kv},
                        label=f"{Q_DTYPE}/{kv_dtype} batch={b} kv_len={kv}",
                        flops=fl.decode_attention_flops(b, shape.num_heads, kv, shape.head_dim),
                        nbytes=fl.decode_attention_bytes(
                            b, shape.num_heads, shape.num_kv_heads, kv, shape.head_dim,
                            DTYPE_BYTES[Q_DTYPE], kv_bytes,
                        ),
                        precision=Q_DTYPE,
                        params={
                            "batch_size": b,
                            "kv_len": kv,
                            "heads": shape.num_heads,
                            "kv_heads": shape.num_kv_heads,
                            "head_dim": shape.head_dim,
                            "kv_dtype": kv_dtype,
                        },
                    )
                )
    return out, dropped


def available_backend() -> str:
    """``flashinfer`` when importable, else ``torch-sdpa``."""
    try:
        import flashinfer  # noqa: F401
    except ImportError:
        return SDPA
    return FLASHINFER


def resolve_backend(choice: str) -> str:
    """'auto' picks `available_backend`; naming flashinfer when it is not importable is an error."""
    if choice == "auto":
        return available_backend()
    if choice not in (FLASHINFER, SDPA):
        raise ValueError(f"--decode-backend must be auto, {FLASHINFER} or {SDPA}, got {choice!r}")
    if choice == FLASHINFER and available_backend() != FLASHINFER:
        raise RuntimeError("--decode-backend flashinfer: flashinfer is not importable")
    return choice


def use_tensor_cores(mode: str, heads: int, kv_heads: int) -> bool:
    """flashinfer decode on tensor cores: 'on', 'off', or 'auto' = query heads per KV head above 4 (the
    rule vLLM's flashinfer backend long used), or a group size its CUDA-core kernel lacks (not 1, 2, 4)."""
    if mode == "on":
        return True
    if mode == "off":
        return False
    if mode != "auto":
        raise ValueError(f"--decode-tensor-cores must be auto, on or off, got {mode!r}")
    group = heads // kv_heads
    return group > 4 or group not in (1, 2, 4)


def kernel_description(backend: str, tensor_cores: str) -> str:
    if backend == FLASHINFER:
        return (f"flashinfer.BatchDecodeWithPagedKVCacheWrapper(NHD, page_size={PAGE_SIZE}, "
                f"use_tensor_cores={tensor_cores}), random page order")
    return "torch.nn.functional.scaled_dot_product_attention over a contiguous bf16 cache (flashinfer absent)"


def _torch_dtype(name: str) -> Any:
    import torch

    return {"bf16": torch.bfloat16, "fp8": torch.float8_e4m3fn}[name]


def random_cache(shape: tuple[int, ...], dtype: str, device: str = "cuda", chunk: int = 1 << 14) -> Any:
    """Standard-normal cache values (bf16, or e4m3 filled in chunks along dim 0 to bound the bf16 copy)."""
    import torch

    if dtype == "bf16":
        return torch.randn(shape, dtype=torch.bfloat16, device=device)
    out = torch.empty(shape, dtype=_torch_dtype(dtype), device=device)
    for lo in range(0, shape[0], chunk):
        hi = min(shape[0], lo + chunk)
        out[lo:hi] = torch.randn((hi - lo, *shape[1:]), dtype=torch.bfloat16, device=device).to(out.dtype)
    return out


class PagedDecodeInputs:
    """A paged K/V cache for ``batch`` sequences of ``kv_len`` tokens and one query token each."""

    def __init__(self, batch: int, kv_len: int, heads: int, kv_heads: int, head_dim: int, kv_dtype: str,
                 device: str = "cuda", seed: int = 0):
        import torch

        self.batch, self.kv_len, self.heads, self.kv_heads, self.head_dim = batch, kv_len, heads, kv_heads, head_dim
        self.kv_dtype = kv_dtype
        pages_per_seq = math.ceil(kv_len / PAGE_SIZE)
        num_pages = batch * pages_per_seq
        gen = torch.Generator(device="cpu").manual_seed(seed)
        self.k_cache = random_cache((num_pages, PAGE_SIZE, kv_heads, head_dim), kv_dtype, device)
        self.v_cache = random_cache((num_pages, PAGE_SIZE, kv_heads, head_dim), kv_dtype, device)
        self.indices = torch.randperm(num_pages, generator=gen, dtype=torch.int64).to(torch.int32).to(device)
        self.indptr = (torch.arange(batch + 1, dtype=torch.int32) * pages_per_seq).to(device)
        last = kv_len - (pages_per_seq - 1) * PAGE_SIZE
        self.last_page_len = torch.full((batch,), last, dtype=torch.int32, device=device)
        self.q = torch.randn(batch, heads, head_dim, dtype=torch.bfloat16, device=device)

    def sequence_kv(self, i: int) -> tuple[Any, Any]:
        """K and V of sequence ``i`` gathered from its pages: ``[kv_len, kv_heads, head_dim]`` each."""
        lo, hi = int(self.indptr[i]), int(self.indptr[i + 1])
        pages = self.indices[lo:hi].long()
        return _gather_pages(self.k_cache, pages, self.kv_len), _gather_pages(self.v_cache, pages, self.kv_len)


def _gather_pages(cache: Any, pages: Any, kv_len: int) -> Any:
    """Rows of ``pages`` from a ``[pages, page_size, kv_heads, head_dim]`` cache as ``[kv_len, kv_heads,
    head_dim]``. One-byte dtypes are gathered as uint8 (torch lacks indexing for some float8 types)."""
    import torch

    if cache.element_size() == 1:
        picked = cache.view(torch.uint8)[pages].view(cache.dtype)
    else:
        picked = cache[pages]
    return picked.reshape(-1, cache.shape[2], cache.shape[3])[:kv_len]


def check_against_reference(inputs: PagedDecodeInputs, out: Any, where: str) -> float:
    """Relative error of the first and last sequences' outputs against the fp32 reference over the
    gathered pages; RuntimeError above the tolerance."""
    from kernels_bench.reference import DEFAULT_TOLERANCE, attention_fp32, relative_error

    worst = 0.0
    for i in sorted({0, inputs.batch - 1}):
        k, v = inputs.sequence_kv(i)
        ref = attention_fp32(inputs.q[i : i + 1], k, v, causal=False)
        err = relative_error(out[i : i + 1], ref)
        if not err <= DEFAULT_TOLERANCE:
            raise RuntimeError(f"{where}: sequence {i} differs from the fp32 reference by {err:.2e} "
                               f"(tolerance {DEFAULT_TOLERANCE:g})")
        worst = max(worst, err)
    return worst


class DecodeRunner:
    """Times decode points with flashinfer (or SDPA when flashinfer is absent)."""

    def __init__(self, timer: Timer, backend: str, tensor_cores: str = "auto", device: str = "cuda"):
        self.timer = timer
        self.backend = backend
        self.tensor_cores = tensor_cores
        self.device = device
        self._workspace: Any = None

    def _flashinfer_launcher(self, inp: PagedDecodeInputs) -> Any:
        import flashinfer
        import torch

        if self._workspace is None:
            self._workspace = torch.empty(WORKSPACE_BYTES, dtype=torch.uint8, device=self.device)
        wrapper = flashinfer.BatchDecodeWithPagedKVCacheWrapper(
            self._workspace, "NHD", use_tensor_cores=use_tensor_cores(self.tensor_cores, inp.heads, inp.kv_heads)
        )
        wrapper.plan(
            inp.indptr, inp.indices, inp.last_page_len, inp.heads, inp.kv_heads, inp.head_dim, PAGE_SIZE,
            pos_encoding_mode="NONE", q_data_type=torch.bfloat16, kv_data_type=_torch_dtype(inp.kv_dtype),
        )
        cache = (inp.k_cache, inp.v_cache)
        return lambda: wrapper.run(inp.q, cache)

    def _sdpa_launcher(self, p: dict) -> Any:
        import torch

        from kernels_bench.attention_prefill import sdpa

        b, kv, h, kvh, d = p["batch_size"], p["kv_len"], p["heads"], p["kv_heads"], p["head_dim"]
        q = torch.randn(b, h, 1, d, dtype=torch.bfloat16, device=self.device)
        k = torch.randn(b, kvh, kv, d, dtype=torch.bfloat16, device=self.device)
        v = torch.randn(b, kvh, kv, d, dtype=torch.bfloat16, device=self.device)
        return lambda: sdpa(q, k, v, causal=False)

    def __call__(self, point: Point) -> float:
        import torch

        p = dict(point.params)
        launch = inputs = None
        try:
            if self.backend == FLASHINFER:
                inputs = PagedDecodeInputs(p["batch_size"], p["kv_len"], p["heads"], p["kv_heads"],
                                           p["head_dim"], p["kv_dtype"], self.device)
                launch = self._flashinfer_launcher(inputs)
            else:
                if p["kv_dtype"] != "bf16":
                    raise PointSkipped("fp8 KV cache needs flashinfer")
                launch = self._sdpa_launcher(p)
            out = launch()
            if inputs is not None and p["kv_len"] <= CHECK_MAX_KV_LEN:
                check_against_reference(inputs, out, f"attention_decode {point.label}")
            elif not bool(torch.isfinite(out).all()):
                raise RuntimeError(f"attention_decode {point.label}: non-finite output")
            del out
            return median_latency_us(launch, self.timer)
        except torch.cuda.OutOfMemoryError:
            launch = inputs = None
            torch.cuda.empty_cache()
            raise PointSkipped("out of GPU memory") from None
