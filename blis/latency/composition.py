"""One step composition shared by roofline v1 and roofline v2 (microseconds, one GPU of the TP group).

    step = step_overhead + per-layer overhead of the kernels timed analytically
         + [T > 0]  weight GEMMs of every layer (MoE: the experts hit) + element-wise kernels + TP all-reduces
         + [prefill chunks] prefill attention + prefill_step_overhead
         + [decode tokens]  decode attention
         + [sampled tokens] LM head

Each bracketed kernel family is one method of a `KernelTimes` object: roofline v1 times every family from
``blis.physics.step_cost`` with its fitted efficiencies (``blis.latency.roofline``); roofline v2 replaces a
family by measured (interpolated) kernel latencies where its tables cover it and keeps v1's method where
they do not (``blis.latency.roofline_v2``). A measured kernel already contains its launch and tail time, so
its share of v1's per-layer overhead is dropped (`layer_overhead_share`); the step's CPU costs (step and
prefill-step overheads) stay. With no family measured, v2's composition is v1's exactly.
"""

from __future__ import annotations

from typing import Protocol

from blis.latency.base import StepBatch


class KernelTimes(Protocol):
    """Per-step time of each kernel family over all layers, microseconds."""

    def gemms_us(self, P: int, D: int, T: int) -> float: ...

    def elementwise_us(self, T: int) -> float: ...

    def allreduce_us(self, T: int) -> float: ...

    def prefill_attention_us(self, chunks) -> float: ...

    def decode_attention_us(self, D: int, keys: int) -> float: ...

    def lm_head_us(self, S: int) -> float: ...


class StepComposition:
    """The step formula above over a `KernelTimes`; fixed costs in microseconds."""

    __slots__ = ("fixed_us", "k", "prefill_fixed_us")

    def __init__(self, kernels: KernelTimes, fixed_us: float, prefill_fixed_us: float) -> None:
        self.k = kernels
        self.fixed_us = fixed_us
        self.prefill_fixed_us = prefill_fixed_us

    def step_time_float_us(self, batch: StepBatch) -> float:
        k = self.k
        P = batch.num_prefill_tokens
        D = batch.num_decode_tokens
        T = P + D
        t = self.fixed_us
        if T:
            t += k.gemms_us(P, D, T) + k.elementwise_us(T) + k.allreduce_us(T)
        if batch.prefill_chunks:
            t += k.prefill_attention_us(batch.prefill_chunks) + self.prefill_fixed_us
        if D:
            t += k.decode_attention_us(D, batch.sum_decode_context + D)
        S = batch.num_sampled
        if S:
            t += k.lm_head_us(S)
        return t


def layer_overhead_share(num_gemms: int, gemms_measured: bool, attention_measured: bool) -> float:
    """Fraction of v1's per-layer overhead still charged: one share per kernel of a layer (each weight GEMM,
    attention) that is timed analytically; 1.0 when nothing is measured."""
    total = num_gemms + 1
    analytic = (0 if gemms_measured else num_gemms) + (0 if attention_measured else 1)
    return analytic / total
