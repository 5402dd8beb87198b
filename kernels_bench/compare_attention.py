"""``python -m kernels_bench compare-attention``: every prefill attention kernel on the same inputs.

For each shape (batch, heads, kv_heads, seq_len, head_dim) and for causal and non-causal attention, time
torch SDPA with each backend it has (flash, efficient, math, cudnn), flash-attn and flashinfer's batch
prefill, and check each output against an fp32 reference (relative error; above 1e-2 is FAIL). A rate
above the GPU's peak cannot be real: such a row shows INVALID instead of a number. Kernels that are not
installed, or that do not fit in memory, show as skipped with the reason.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from kernels_bench import flops as fl
from kernels_bench.reference import DEFAULT_TOLERANCE, attention_fp32, relative_error
from kernels_bench.timing import Timer, median_latency_us

SDPA_BACKENDS = ("FLASH_ATTENTION", "EFFICIENT_ATTENTION", "MATH", "CUDNN_ATTENTION")
REFERENCE_SEQUENCES = 2  # sequences of each batch compared with the fp32 reference


@dataclass(frozen=True)
class CompareShape:
    batch: int
    heads: int
    kv_heads: int
    seq_len: int
    head_dim: int
    source: str = ""

    @property
    def label(self) -> str:
        return f"B={self.batch} H={self.heads}/{self.kv_heads} S={self.seq_len} D={self.head_dim}"


@dataclass
class CompareRow:
    """One kernel on one shape. status: OK, FAIL (error above tolerance or NaN), INVALID (rate above
    peak), SKIP (not installed, unsupported or out of memory; reason in ``note``)."""

    shape: str
    kernel: str
    causal: bool
    status: str
    ms: float | None = None
    tflops: float | None = None
    fraction_of_peak: float | None = None
    rel_error: float | None = None
    note: str = ""


def classify(flops: float, latency_us: float, peak_flops: float, rel_error: float,
             tolerance: float = DEFAULT_TOLERANCE) -> tuple[str, float, float, str]:
    """Status, TFLOP/s, fraction of peak and note of a timed kernel. A rate above the peak is INVALID:
    the FLOP count or the timing is wrong, so the rate is not reported as a result."""
    rate = fl.achieved_flops(flops, latency_us)
    frac = rate / peak_flops
    if frac > 1.0:
        return "INVALID", rate / 1e12, frac, (
            f"{rate / 1e12:.0f} TFLOP/s exceeds the peak {peak_flops / 1e12:.0f}: FLOP count or timing wrong")
    if not rel_error <= tolerance:
        return "FAIL", rate / 1e12, frac, f"relative error {rel_error:.2e} > {tolerance:g}"
    return "OK", rate / 1e12, frac, ""


def default_shapes(head_dims: Sequence[int], batch: int, heads: int, seq_len: int) -> list[CompareShape]:
    return [CompareShape(batch, heads, heads, seq_len, d, "issue shape") for d in head_dims]


def model_shapes(models: Sequence[tuple[str, Any]], batch: int, seq_len: int, limit: int) -> list[CompareShape]:
    """Up to ``limit`` distinct TP-1 head shapes of registered models."""
    from kernels_bench.shapes import model_attention_shape

    out: dict[tuple[int, int, int], CompareShape] = {}
    for name, spec in models:
        shape = model_attention_shape(spec, 1)
        if shape is not None and shape not in out and len(out) < limit:
            out[shape] = CompareShape(batch, shape[0], shape[1], seq_len, shape[2], name)
    return list(out.values())


def math_backend_bytes(shape: CompareShape) -> float:
    """Memory the SDPA math backend needs: the fp32 score and probability matrices."""
    return 2.0 * shape.batch * shape.heads * shape.seq_len * shape.seq_len * 4.0


# --- on the GPU --------------------------------------------------------------------------------------


def _kernels(shape: CompareShape, causal: bool, q: Any, k: Any, v: Any, free_bytes: float
             ) -> list[tuple[str, Callable[[], Any] | None, str]]:
    """(name, launcher returning [batch, seq, heads, d] output or None, skip reason) per kernel."""
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from kernels_bench.attention_prefill import sdpa

    out: list[tuple[str, Callable[[], Any] | None, str]] = []
    qt, kt, vt = (x.transpose(1, 2).contiguous() for x in (q, k, v))  # [b, heads, s, d]
    for name in SDPA_BACKENDS:
        backend = getattr(SDPBackend, name, None)
        if backend is None:
            out.append((f"sdpa-{name.lower()}", None, f"torch {torch.__version__} has no SDPBackend.{name}"))
            continue
        if name == "MATH" and math_backend_bytes(shape) > 0.5 * free_bytes:
            out.append(("sdpa-math", None, f"needs {math_backend_bytes(shape) / 2**30:.0f} GiB for scores"))
            continue

        def run(backend: Any = backend) -> Any:
            with sdpa_kernel(backend):
                return sdpa(qt, kt, vt, causal).transpose(1, 2)

        out.append((f"sdpa-{name.lower()}", run, ""))
    try:
        from flash_attn import flash_attn_func

        out.append(("flash-attn", lambda: flash_attn_func(q, k, v, causal=causal), ""))
    except ImportError:
        out.append(("flash-attn", None, "flash-attn not installed"))
    try:
        import flashinfer

        b, s = shape.batch, shape.seq_len
        workspace = torch.empty(256 << 20, dtype=torch.uint8, device=q.device)
        wrapper = flashinfer.BatchPrefillWithRaggedKVCacheWrapper(workspace, "NHD")
        indptr = torch.arange(b + 1, dtype=torch.int32, device=q.device) * s
        wrapper.plan(indptr, indptr, shape.heads, shape.kv_heads, shape.head_dim, causal=causal,
                     q_data_type=torch.bfloat16)
        qf, kf, vf = (x.reshape(b * s, x.shape[2], x.shape[3]) for x in (q, k, v))
        out.append(("flashinfer", lambda: wrapper.run(qf, kf, vf).reshape(b, s, shape.heads, shape.head_dim), ""))
    except ImportError:
        out.append(("flashinfer", None, "flashinfer not installed"))
    return out


def reference_error(q: Any, k: Any, v: Any, o: Any, causal: bool, sequences: int = REFERENCE_SEQUENCES) -> float:
    """Worst relative error over the first ``sequences`` sequences (``[batch, seq, heads, d]`` tensors)."""
    worst = 0.0
    for i in range(min(sequences, q.shape[0])):
        err = relative_error(o[i], attention_fp32(q[i], k[i], v[i], causal))
        if math.isnan(err):
            return err
        worst = max(worst, err)
    return worst


def compare_shape(shape: CompareShape, timer: Timer, peak_flops: float) -> list[CompareRow]:
    """Every kernel, causal and not, on random bf16 inputs of ``shape``."""
    import torch

    rows: list[CompareRow] = []
    q = torch.randn(shape.batch, shape.seq_len, shape.heads, shape.head_dim, dtype=torch.bfloat16, device="cuda")
    k = torch.randn(shape.batch, shape.seq_len, shape.kv_heads, shape.head_dim, dtype=torch.bfloat16, device="cuda")
    v = torch.randn_like(k)
    for causal in (True, False):
        flops = fl.prefill_attention_flops([shape.seq_len] * shape.batch, shape.heads, shape.head_dim, causal)
        free, _ = torch.cuda.mem_get_info()
        for name, launch, reason in _kernels(shape, causal, q, k, v, free):
            if launch is None:
                rows.append(CompareRow(shape.label, name, causal, "SKIP", note=reason))
                continue
            try:
                out = launch()
                err = reference_error(q, k, v, out, causal)
                del out
                lat = median_latency_us(launch, timer)
            except torch.cuda.OutOfMemoryError:
                torch.cuda.empty_cache()
                rows.append(CompareRow(shape.label, name, causal, "SKIP", note="out of GPU memory"))
                continue
            except RuntimeError as exc:  # e.g. "No available kernel" from a forced SDPA backend
                rows.append(CompareRow(shape.label, name, causal, "SKIP", note=str(exc).splitlines()[0][:120]))
                continue
            status, tflops, frac, note = classify(flops, lat, peak_flops, err)
            shown = status != "INVALID"
            rows.append(CompareRow(shape.label, name, causal, status, lat / 1000.0,
                                   tflops if shown else None, frac if shown else None, err, note))
    return rows


def ragged_check(timer: Timer, peak_flops: float, heads: int = 32, kv_heads: int = 8, head_dim: int = 128,
                 seq_lens: Sequence[int] = (4096, 2048, 1024, 512, 128)) -> list[CompareRow]:
    """flash-attn's varlen kernel on a batch of unequal lengths: timed and checked per sequence."""
    import torch

    from kernels_bench.attention_prefill import FLASH_ATTN, PrefillInputs, available_backend

    label = f"ragged {'/'.join(map(str, seq_lens))} H={heads}/{kv_heads} D={head_dim}"
    if available_backend() != FLASH_ATTN:
        return [CompareRow(label, "flash-attn-varlen", True, "SKIP", note="flash-attn not installed")]
    inputs = PrefillInputs(seq_lens, heads, kv_heads, head_dim, FLASH_ATTN)
    launch = inputs.launcher(causal=True)
    out = launch()
    errs = []
    for i in range(len(seq_lens)):
        q, k, v, o = inputs.sequence(out, i)
        errs.append(relative_error(o, attention_fp32(q, k, v, True)))
    err = math.nan if any(math.isnan(e) for e in errs) else max(errs)
    lat = median_latency_us(launch, timer)
    flops = fl.prefill_attention_flops(seq_lens, heads, head_dim, causal=True)
    status, tflops, frac, note = classify(flops, lat, peak_flops, err)
    shown = status != "INVALID"
    del out
    torch.cuda.empty_cache()
    return [CompareRow(label, "flash-attn-varlen", True, status, lat / 1000.0,
                       tflops if shown else None, frac if shown else None, err, note)]


def rows_as_dicts(rows: Sequence[CompareRow]) -> list[dict[str, Any]]:
    """Rows for JSON (NaN becomes None)."""
    return [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(r).items()}
            for r in rows]


def render(rows: Sequence[CompareRow], peak_flops: float, console: Any) -> None:
    """A rich table: shape, kernel, causal, ms, TFLOP/s, fraction of peak, relative error, status."""
    from rich.table import Table

    t = Table(title=f"prefill attention kernels (bf16; peak {peak_flops / 1e12:.0f} TFLOP/s)")
    for col in ("shape", "kernel", "causal", "ms", "TFLOP/s", "of peak", "rel err", "status"):
        t.add_column(col, justify="right" if col in ("ms", "TFLOP/s", "of peak", "rel err") else "left")
    style = {"OK": "green", "FAIL": "red", "INVALID": "red", "SKIP": "dim"}
    for r in rows:
        t.add_row(
            r.shape, r.kernel, "yes" if r.causal else "no",
            "-" if r.ms is None else f"{r.ms:.3f}",
            "-" if r.tflops is None else f"{r.tflops:.1f}",
            "-" if r.fraction_of_peak is None else f"{100 * r.fraction_of_peak:.1f}%",
            "-" if r.rel_error is None else f"{r.rel_error:.1e}",
            f"[{style[r.status]}]{r.status}[/]" + (f" {r.note}" if r.note else ""),
        )
    console.print(t)
