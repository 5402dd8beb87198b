"""Roofline v1 over the step pieces of ``blis.physics.step_cost`` for the models its precomputed fast path
does not cover: MLA, windowed layers, shared experts, dense first layers, weights in several formats,
expert parallelism (``ModelSpec.is_uniform`` false or ep > 1).

Each piece costs max(compute, memory) with roofline v1's parameters, as in ``blis.latency.roofline``:
GEMMs (dense, experts, LM head) at the tensor-core peak of their weight format
(``blis.physics.precision.gemm_precision``) x ``mfu_prefill`` / ``mfu_decode``, bytes at ``bw_efficiency``;
attention at the 16-bit peak (prefill x ``mfu_attention_prefill``, decode x ``mfu_decode``), bytes at
``bw_efficiency_attention``; element-wise bytes at ``bw_efficiency``; all-reduces and the EP all-to-all
at ``allreduce_latency_us`` per collective + bytes / (link x ``interconnect_efficiency``); plus the step,
layer and prefill overheads. For a uniform model it gives the fast path's step time (a test checks).

The weight-GEMM part depends only on (prefill tokens, decode tokens, sampled, MLA context rows) and is
cached on that key; attention is evaluated every step.
"""

from __future__ import annotations

from blis.latency.base import StepBatch
from blis.physics.hardware import HardwareSpec
from blis.physics.layer_cost import attention_pieces, general_step_pieces
from blis.physics.model_spec import ModelSpec
from blis.physics.precision import gemm_precision

_CACHE_LIMIT = 100_000


def uniform_gap(model: ModelSpec, ep: int = 1) -> str:
    """Why ``model`` (at expert-parallel degree ``ep``) is not a stack of uniform GQA layers with one
    weight format, as roofline-v2's composition needs; '' when it is."""
    if model.is_mla:
        return "MLA attention"
    if model.num_window_layers:
        return "windowed attention layers"
    if model.num_dense_layers:
        return "dense and MoE layers mixed"
    if model.shared_expert_intermediate_size:
        return "shared experts"
    if ep != 1:
        return f"expert parallelism (ep={ep})"
    if model.layer_format is None:
        return "weights in several formats"
    return ""


class PieceRoofline:
    """Step time of roofline v1 evaluated piece by piece (microseconds)."""

    def __init__(self, model: ModelSpec, hardware: HardwareSpec, tp: int, ep: int, params,
                 bandwidth_Bps: float) -> None:  # fmt: skip
        self.model, self.hardware, self.tp, self.ep, self.params = model, hardware, tp, ep, params
        p = params
        self._peak16 = p.peak_tflops * 1e12 if p.peak_tflops is not None else hardware.peak("bf16")
        self._us_b = 1e6 / (bandwidth_Bps * p.bw_efficiency)
        self._us_kv = 1e6 / (bandwidth_Bps * p.bw_efficiency_attention)
        self._link = hardware.interconnect_bandwidth_Bps * p.interconnect_efficiency
        self._fixed = p.step_overhead_us + model.num_layers * p.layer_overhead_us
        self.precisions = {g: gemm_precision(model.weight_format(g), hardware)
                           for g in ("attn", "mlp", "experts", "embed")}  # fmt: skip
        self._peaks: dict[str, float] = {}
        self._mla = model.is_mla
        self._cache: dict[tuple, float] = {}

    def summary(self) -> str:
        """Weight format of each group and, where it differs, the tensor-core rate it runs at:
        'attn=bf16 mlp=bf16 experts=mxfp4@bf16 embed=bf16'."""
        out = []
        for g, prec in self.precisions.items():
            fmt = self.model.weight_format(g)
            out.append(f"{g}={fmt}" if fmt == prec else f"{g}={fmt}@{prec}")
        return " ".join(out)

    def _peak(self, fmt: str) -> float:
        peak = self._peaks.get(fmt)
        if peak is None:
            prec = gemm_precision(fmt or self.model.base_dtype(), self.hardware)
            peak = self._peak16 if prec in ("bf16", "fp16") else self.hardware.peak(prec)
            self._peaks[fmt] = peak
        return peak

    def piece_time_us(self, piece) -> float:
        """One piece's time (microseconds) under roofline v1."""
        p = self.params
        kind = piece.kind
        if kind in ("allreduce", "all_to_all"):
            return piece.calls * p.allreduce_latency_us + piece.bytes / self._link * 1e6
        if kind == "elementwise":
            return piece.bytes * self._us_b
        if kind == "attention_prefill":
            return max(piece.flops * 1e6 / (self._peak16 * p.mfu_attention_prefill), piece.bytes * self._us_kv)
        if kind == "attention_decode":
            return max(piece.flops * 1e6 / (self._peak16 * p.mfu_decode), piece.bytes * self._us_kv)
        peak = self._peak(piece.precision)
        compute = (piece.flops_prefill / (peak * p.mfu_prefill) + piece.flops_decode / (peak * p.mfu_decode)) * 1e6
        return max(compute, piece.bytes * self._us_b)

    def step_time_float_us(self, batch: StepBatch) -> float:
        P, D = batch.num_prefill_tokens, batch.num_decode_tokens
        chunks = batch.prefill_chunks
        t = self._fixed
        if P + D or batch.num_sampled:
            rows = sum(c + n for n, c in chunks) if self._mla else 0  # MLA kv_b up-projects the context
            key = (P, D, batch.num_sampled, rows)
            w = self._cache.get(key)
            if w is None:
                if len(self._cache) >= _CACHE_LIMIT:
                    self._cache.clear()
                pieces = general_step_pieces(self.model, self.tp, P, D, 0, chunks, batch.num_sampled, self.ep,
                                             include_attention=False)
                w = self._cache[key] = sum(self.piece_time_us(x) for x in pieces)
            t += w
        for x in attention_pieces(self.model, self.tp, chunks, D, batch.sum_decode_context):
            t += self.piece_time_us(x)
        if chunks:
            t += self.params.prefill_step_overhead_us
        return t
