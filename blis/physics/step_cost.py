"""FLOPs and bytes of one engine step, per GPU, decomposed into the kernels a transformer layer runs.

This is the readable reference decomposition. ``blis.latency.roofline`` evaluates the same formulas from
precomputed constants (fast path); roofline v2 can reuse the pieces here and replace the fixed MFU by a
table lookup per GEMM shape and per attention shape.

Conventions (all per GPU under tensor parallelism ``tp``):
- T = prefill tokens + decode tokens of the step. Every non-expert GEMM multiplies T token rows.
- A GEMM of shape (k, n) multiplies a (m x k) activation by a (k x n) weight: 2*m*k*n FLOPs, k*n weight
  elements read once, m*(k + n) activation elements read/written.
- MoE: each token is routed to ``experts_per_token`` (k_e) experts, so the expert GEMMs see T*k_e token
  rows in total, spread over the experts actually hit. The expected number of distinct experts hit by T
  tokens each picking k_e of E is E*(1 - (1 - k_e/E)**T); each hit expert's weights are read once.
- Attention of a prefill chunk of n new tokens with c tokens already cached (prefix hits or earlier
  chunks) is causal over its full context: query i (1..n) sees c + i keys, so it scores n*c + n(n+1)/2
  pairs. A decode token with c cached tokens scores c + 1 pairs. Each pair costs 4*head_dim FLOPs per
  query head (QK^T and PV). KV bytes: every context token's K and V are read once per step, the new
  tokens' K and V are written once.
- TP shards q heads, kv heads (replicated when fewer than tp), FFN/expert widths and the vocabulary; norms
  and the router are replicated. Each layer ends its attention and its FFN with an all-reduce of the
  T x hidden activation (two per layer); a ring all-reduce moves 2(tp-1)/tp of those bytes per GPU.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from blis.physics.model_spec import ModelSpec, check_tp
from blis.physics.moe import expected_active_experts  # noqa: F401  (re-exported)

ACT_BYTES = 2.0  # activations and attention inputs/outputs in bf16/fp16


class GemmShape(NamedTuple):
    """One weight GEMM of a layer, per GPU: ``k`` input features, ``n`` output features, ``count``
    instances per layer (the number of experts for ``expert_*`` GEMMs, else 1)."""

    name: str
    k: int
    n: int
    count: int


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def heads_per_gpu(model: ModelSpec, tp: int) -> int:
    check_tp(model, tp)
    return model.num_heads // tp


def gemm_shapes(model: ModelSpec, tp: int = 1) -> list[GemmShape]:
    """The weight GEMMs of one decoder layer on one GPU, for a model of uniform GQA layers
    (``ModelSpec.is_uniform``); ``blis.physics.layer_cost.layer_gemms`` lists those of any model.

    Dense: qkv (hidden -> (h + 2*kv) * head_dim), o, gate_up (hidden -> 2*ffn), down.
    MoE: qkv, o, router (hidden -> E, replicated), expert_gate_up and expert_down with count = E.
    Token rows (m): all T tokens for the non-expert GEMMs; for the expert GEMMs T*experts_per_token rows
    in total, about T*experts_per_token / expected_active_experts(T, ...) per expert hit.
    """
    hd = model.head_dim
    q = heads_per_gpu(model, tp) * hd
    kv = model.kv_heads_per_gpu(tp) * hd
    ffn = _ceil_div(model.intermediate_size, tp)
    h = model.hidden_size
    shapes = [GemmShape("qkv", h, q + 2 * kv, 1), GemmShape("o", q, h, 1)]
    if model.is_moe:
        e = model.num_experts
        shapes += [GemmShape("router", h, e, 1), GemmShape("expert_gate_up", h, 2 * ffn, e),
                   GemmShape("expert_down", ffn, h, e)]  # fmt: skip
    else:
        shapes += [GemmShape("gate_up", h, 2 * ffn, 1), GemmShape("down", ffn, h, 1)]
    return shapes


def lm_head_shape(model: ModelSpec, tp: int = 1) -> GemmShape:
    """The LM head (vocabulary-parallel under TP); its token rows are the sampled tokens of the step."""
    return GemmShape("lm_head", model.hidden_size, _ceil_div(model.vocab_size, tp), 1)




def kv_token_bytes_per_layer(model: ModelSpec, tp: int = 1) -> float:
    """Bytes of one token's K and V in one layer on one GPU."""
    return 2.0 * model.kv_heads_per_gpu(tp) * model.head_dim * model.kv_bytes_per_element


def attention_prefill_counts(model: ModelSpec, tp: int, chunks: Iterable[tuple[int, int]]) -> tuple[float, float]:
    """(FLOPs, bytes) of one layer's attention for prefill chunks [(new_tokens, context_before)], per GPU.

    FLOPs = 4 * heads_per_gpu * head_dim * sum(n*c + n(n+1)/2);
    bytes = sum((c + n) * kv_token_bytes  [read K,V]  + n * kv_token_bytes  [write new K,V]
                + 2 * n * heads_per_gpu * head_dim * ACT_BYTES  [read Q, write O]).
    """
    hg = heads_per_gpu(model, tp)
    kvb = kv_token_bytes_per_layer(model, tp)
    qo = 2.0 * hg * model.head_dim * ACT_BYTES
    pairs = 0.0
    nbytes = 0.0
    for n, c in chunks:
        pairs += n * c + n * (n + 1) / 2.0
        nbytes += (c + n) * kvb + n * (kvb + qo)
    return 4.0 * hg * model.head_dim * pairs, nbytes


def attention_decode_counts(model: ModelSpec, tp: int, num_decode: int, sum_context: int) -> tuple[float, float]:
    """(FLOPs, bytes) of one layer's attention for ``num_decode`` decoding requests whose caches hold
    ``sum_context`` tokens in total, per GPU. Each scores context + 1 keys (its own new token too).

    FLOPs = 4 * heads_per_gpu * head_dim * (sum_context + num_decode);
    bytes = (sum_context + num_decode) * kv_token_bytes + num_decode * (kv_token_bytes + q/o bytes).
    """
    hg = heads_per_gpu(model, tp)
    kvb = kv_token_bytes_per_layer(model, tp)
    qo = 2.0 * hg * model.head_dim * ACT_BYTES
    keys = sum_context + num_decode
    return 4.0 * hg * model.head_dim * keys, keys * kvb + num_decode * (kvb + qo)


def elementwise_bytes_per_token(model: ModelSpec, tp: int = 1) -> float:
    """Bytes per token per layer of the memory-bound element-wise kernels (no weights):
    two fused residual-add + RMSNorm (read x and residual, write both: 4*hidden each), rotary embedding
    (read and write q and k), SiLU-and-multiply (read 2*ffn, write ffn; per routed expert for MoE)."""
    hd = model.head_dim
    q = heads_per_gpu(model, tp) * hd
    kv = model.kv_heads_per_gpu(tp) * hd
    ffn = _ceil_div(model.intermediate_size, tp)
    routed = model.experts_per_token if model.is_moe else 1
    elements = 8 * model.hidden_size + 2 * (q + kv) + 3 * ffn * routed
    return elements * ACT_BYTES


def allreduce_bytes(model: ModelSpec, tokens: int) -> float:
    """Bytes of the activation one all-reduce sums (tokens x hidden)."""
    return float(tokens) * model.hidden_size * ACT_BYTES


def ring_allreduce_traffic(nbytes: float, tp: int) -> float:
    """Bytes each GPU sends in a ring all-reduce of ``nbytes``: 2 (tp - 1) / tp x nbytes."""
    return 0.0 if tp <= 1 else 2.0 * (tp - 1) / tp * nbytes


@dataclass(frozen=True)
class Piece:
    """FLOPs and bytes of one kind of kernel over the whole step (all layers), per GPU.

    kind: "gemm", "expert_gemm", "lm_head", "attention_prefill", "attention_decode", "elementwise",
    "allreduce". flops_prefill / flops_decode: FLOPs due to prefill / decode tokens (the roofline uses a
    different MFU for each). bytes: DRAM bytes (for "allreduce": bytes each GPU sends over the link).
    calls: kernel launches (or all-reduces) in the step. m: token rows of a GEMM (total over experts).
    precision: weight format of a GEMM's weights ('' = the model's one format); see blis.physics.precision.
    Kinds added for MLA / windowed / EP models (``blis.physics.layer_cost``): "all_to_all" (bytes each GPU
    sends in the EP dispatch and combine); attention pieces of windowed and MLA layers keep the
    attention kinds with names ``*_window`` / ``*_mla``.
    """

    name: str
    kind: str
    flops_prefill: float
    flops_decode: float
    bytes: float
    calls: int
    m: float = 0.0
    k: int = 0
    n: int = 0
    precision: str = ""

    @property
    def flops(self) -> float:
        return self.flops_prefill + self.flops_decode


def step_pieces(
    model: ModelSpec,
    tp: int,
    num_prefill_tokens: int,
    num_decode_tokens: int,
    sum_decode_context: int,
    prefill_chunks: Iterable[tuple[int, int]],
    num_sampled: int,
    ep: int = 1,
) -> list[Piece]:
    """Every piece of one engine step (per GPU, summed over layers). Reference implementation: clear, not
    fast. Arguments follow ``blis.latency.base.StepBatch``; ``ep`` is the expert-parallel degree. Models
    beyond one uniform layer (``ModelSpec.is_uniform`` false) and ep > 1 are decomposed by
    ``blis.physics.layer_cost.general_step_pieces``."""
    if ep != 1 or not model.is_uniform:
        from blis.physics.layer_cost import general_step_pieces

        return general_step_pieces(model, tp, num_prefill_tokens, num_decode_tokens, sum_decode_context,
                                   prefill_chunks, num_sampled, ep)
    L = model.num_layers
    P, D = num_prefill_tokens, num_decode_tokens
    T = P + D
    wb = model.weight_bytes_per_param
    pieces: list[Piece] = []
    active = expected_active_experts(T, model.num_experts, model.experts_per_token)
    for g in gemm_shapes(model, tp):
        per_row = 2.0 * g.k * g.n
        if g.name.startswith("expert_"):
            rows_p, rows_d = P * model.experts_per_token, D * model.experts_per_token
            weights = active * g.k * g.n * wb
            kind = "expert_gemm"
        else:
            rows_p, rows_d = P, D
            weights = g.k * g.n * wb
            kind = "gemm"
        rows = rows_p + rows_d
        pieces.append(Piece(
            name=g.name, kind=kind, flops_prefill=L * per_row * rows_p, flops_decode=L * per_row * rows_d,
            bytes=L * (weights + rows * (g.k + g.n) * ACT_BYTES), calls=L, m=rows, k=g.k, n=g.n,
        ))  # fmt: skip
    chunks = list(prefill_chunks)
    if chunks:
        f, b = attention_prefill_counts(model, tp, chunks)
        pieces.append(Piece("attention_prefill", "attention_prefill", L * f, 0.0, L * b, L, m=P))
    if D:
        f, b = attention_decode_counts(model, tp, D, sum_decode_context)
        pieces.append(Piece("attention_decode", "attention_decode", 0.0, L * f, L * b, L, m=D))
    if T:
        pieces.append(Piece("elementwise", "elementwise", 0.0, 0.0, L * T * elementwise_bytes_per_token(model, tp), L))
    if num_sampled:
        g = lm_head_shape(model, tp)
        pieces.append(Piece(
            name="lm_head", kind="lm_head", flops_prefill=0.0, flops_decode=2.0 * num_sampled * g.k * g.n,
            bytes=g.k * g.n * wb + num_sampled * (g.k + g.n) * ACT_BYTES, calls=1, m=num_sampled, k=g.k, n=g.n,
        ))  # fmt: skip
    if tp > 1 and T:
        traffic = ring_allreduce_traffic(allreduce_bytes(model, T), tp)
        pieces.append(Piece("allreduce", "allreduce", 0.0, 0.0, 2 * L * traffic, 2 * L, m=T))
    return pieces


def step_totals(pieces: Iterable[Piece]) -> tuple[float, float]:
    """(FLOPs, DRAM bytes) of a step; all-reduce link traffic is not DRAM traffic and is left out."""
    flops = 0.0
    nbytes = 0.0
    for p in pieces:
        flops += p.flops
        if p.kind != "allreduce":
            nbytes += p.bytes
    return flops, nbytes
