"""Step pieces of models beyond one uniform layer: MLA, windowed layers, shared experts, dense first
layers, per-group weight formats and expert parallelism (``step_cost.step_pieces`` hands them here).

Same conventions as ``blis.physics.step_cost`` (per GPU, summed over layers, FLOPs split into prefill and
decode shares); each GEMM piece carries its weight format in ``Piece.precision`` so a latency model can
apply the tensor-core rate of that format (``blis.physics.precision.gemm_precision``).
Pieces and their kinds: attention projections (``gemm``; MLA: ``q_a``/``q_b`` or ``q``, ``kv_a``
replicated, ``kv_b`` over the context rows in prefill and the decode rows (absorbed), ``o``), dense FFN
(``gemm``: ``dense_gate_up``/``dense_down`` on the dense layers), MoE (``router``, ``shared_gate_up``/
``shared_down``, ``expert_gemm``: ``expert_gate_up``/``expert_down`` at the busiest GPU's rows under
EP), attention (``attention_prefill`` / ``attention_decode``, one piece per kind of layer: full, window,
mla), ``elementwise``, ``lm_head``, ``allreduce`` and ``all_to_all`` (EP dispatch + combine).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from blis.physics import attention as att
from blis.physics.model_spec import ModelSpec, check_ep, check_tp
from blis.physics.moe import all_to_all_bytes_per_layer, expected_active_experts, expert_rows_busiest_gpu
from blis.physics.step_cost import (
    Piece,
    attention_decode_counts,
    attention_prefill_counts,
    lm_head_shape,
    ring_allreduce_traffic,
)

ACT_BYTES = 2.0


def _cd(a: int, b: int) -> int:
    return -(-a // b)


class LayerGemm(NamedTuple):
    """A weight GEMM on one GPU: ``k`` x ``n`` weights, ``count`` copies per layer (experts on the GPU),
    present in ``layers`` layers, weights in format group ``group``, token rows from ``rows`` ('tokens':
    all tokens of the step; 'experts': routed rows; 'mla_kv_b': context rows in prefill, decode rows)."""

    name: str
    k: int
    n: int
    count: int
    layers: int
    group: str
    rows: str = "tokens"


def layer_gemms(model: ModelSpec, tp: int = 1, ep: int = 1) -> list[LayerGemm]:
    """Every weight GEMM of the decoder layers on one GPU (LM head apart)."""
    check_tp(model, tp)
    check_ep(model, tp, ep)
    L, h = model.num_layers, model.hidden_size
    hg = model.num_heads // tp
    out: list[LayerGemm] = []
    if model.is_mla:
        qk = model.qk_nope_head_dim + model.qk_rope_head_dim
        if model.q_lora_rank:
            out += [LayerGemm("q_a", h, model.q_lora_rank, 1, L, "attn"),
                    LayerGemm("q_b", model.q_lora_rank, hg * qk, 1, L, "attn")]  # fmt: skip
        else:
            out.append(LayerGemm("q", h, hg * qk, 1, L, "attn"))
        out += [
            LayerGemm("kv_a", h, model.kv_lora_rank + model.qk_rope_head_dim, 1, L, "attn"),
            LayerGemm("kv_b", model.kv_lora_rank, hg * (model.qk_nope_head_dim + model.v_head_dim), 1, L, "attn",
                      "mla_kv_b"),
            LayerGemm("o", hg * model.v_head_dim, h, 1, L, "attn"),
        ]  # fmt: skip
        if model.index_topk:  # DSA lightning indexer, replicated on every rank
            q_in = model.q_lora_rank or h
            out += [LayerGemm("index_q", q_in, model.index_n_heads * model.index_head_dim, 1, L, "attn"),
                    LayerGemm("index_k", h, model.index_head_dim, 1, L, "attn"),
                    LayerGemm("index_w", h, model.index_n_heads, 1, L, "embed")]  # fmt: skip
    else:
        kv = model.kv_heads_per_gpu(tp) * model.head_dim
        out += [LayerGemm("qkv", h, hg * model.head_dim + 2 * kv, 1, L, "attn"),
                LayerGemm("o", hg * model.head_dim, h, 1, L, "attn")]  # fmt: skip
    if not model.is_moe:
        ffn = _cd(model.intermediate_size, tp)
        return out + [LayerGemm("gate_up", h, 2 * ffn, 1, L, "mlp"), LayerGemm("down", ffn, h, 1, L, "mlp")]
    if model.num_dense_layers:
        ffn = _cd(model.dense_intermediate_size, tp)
        nd = model.num_dense_layers
        out += [LayerGemm("dense_gate_up", h, 2 * ffn, 1, nd, "mlp"), LayerGemm("dense_down", ffn, h, 1, nd, "mlp")]
    nm = model.num_moe_layers
    out.append(LayerGemm("router", h, model.num_experts, 1, nm, "embed"))
    if model.shared_expert_intermediate_size:
        s = _cd(model.shared_expert_intermediate_size, tp)
        out += [LayerGemm("shared_gate_up", h, 2 * s, 1, nm, "mlp"), LayerGemm("shared_down", s, h, 1, nm, "mlp")]
    e = model.num_experts // ep
    ffn = _cd(model.intermediate_size, tp // ep)
    out += [LayerGemm("expert_gate_up", h, 2 * ffn, e, nm, "experts", "experts"),
            LayerGemm("expert_down", ffn, h, e, nm, "experts", "experts")]  # fmt: skip
    return out


def general_step_pieces(model: ModelSpec, tp: int, P: int, D: int, sum_decode_context: int,
                        prefill_chunks: Iterable[tuple[int, int]], num_sampled: int, ep: int = 1,
                        include_attention: bool = True) -> list:
    """All pieces of one engine step for any supported model (see the module docstring);
    ``include_attention=False`` leaves the attention pieces out (``attention_pieces`` gives them)."""
    chunks = list(prefill_chunks)
    T = P + D
    L = model.num_layers
    fmt = {g: model.weight_format(g) for g in ("attn", "mlp", "experts", "embed")}
    wb = {g: model.weight_bytes_of(g) for g in fmt}
    E, k = model.num_experts, model.experts_per_token
    rows_e = expert_rows_busiest_gpu(T, E, k, ep) if model.is_moe else 0.0
    active = expected_active_experts(T, E, k) / ep if model.is_moe else 0.0
    ctx_rows = sum(c + n for n, c in chunks)
    pieces: list[Piece] = []
    for g in layer_gemms(model, tp, ep):
        per_row = 2.0 * g.k * g.n * g.layers
        if g.rows == "experts":
            share_p = P / T if T else 0.0
            rp, rd = rows_e * share_p, rows_e * (1.0 - share_p)
            weights = active * g.k * g.n * wb[g.group]
            kind = "expert_gemm"
        elif g.rows == "mla_kv_b":
            rp, rd = (P if model.index_topk else ctx_rows), D  # DSA prefill runs absorbed: new rows only
            weights = g.k * g.n * wb[g.group] if (rp + rd) else 0.0
            kind = "gemm"
        else:
            rp, rd = P, D
            weights = g.k * g.n * wb[g.group] if T else 0.0
            kind = "gemm"
        rows = rp + rd
        if not rows:
            continue
        pieces.append(Piece(
            name=g.name, kind=kind, flops_prefill=per_row * rp, flops_decode=per_row * rd,
            bytes=g.layers * (weights + rows * (g.k + g.n) * ACT_BYTES), calls=g.layers, m=rows, k=g.k, n=g.n,
            precision=fmt[g.group],
        ))  # fmt: skip
    if include_attention:
        pieces += attention_pieces(model, tp, chunks, D, sum_decode_context)
    if T:
        pieces.append(Piece("elementwise", "elementwise", 0.0, 0.0, T * _elementwise_bytes(model, tp, ep, T, rows_e),
                            L))
    if num_sampled:
        g = lm_head_shape(model, tp)
        pieces.append(Piece(
            name="lm_head", kind="lm_head", flops_prefill=0.0, flops_decode=2.0 * num_sampled * g.k * g.n,
            bytes=g.k * g.n * wb["embed"] + num_sampled * (g.k + g.n) * ACT_BYTES, calls=1, m=num_sampled,
            k=g.k, n=g.n, precision=fmt["embed"],
        ))  # fmt: skip
    if T:
        moe_a2a = model.num_moe_layers if ep > 1 else 0
        reduces = 2 * L - moe_a2a  # attention + FFN per layer; MoE layers under EP combine by all-to-all
        if tp > 1 and reduces:
            traffic = ring_allreduce_traffic(float(T) * model.hidden_size * ACT_BYTES, tp)
            pieces.append(Piece("allreduce", "allreduce", 0.0, 0.0, reduces * traffic, reduces, m=T))
        if moe_a2a:
            a2a = all_to_all_bytes_per_layer(T, model.hidden_size, k, ep, ACT_BYTES)
            pieces.append(Piece("all_to_all", "all_to_all", 0.0, 0.0, moe_a2a * a2a, 2 * moe_a2a, m=T))
    return pieces


def attention_pieces(model: ModelSpec, tp: int, chunks: list, D: int, sum_ctx: int) -> list:
    """The attention pieces of a step: one per kind of layer (full, window, mla) and phase."""
    P = sum(n for n, _ in chunks)
    hg = model.num_heads // tp
    out = []
    if model.is_mla and model.index_topk:
        L = model.num_layers
        if chunks:
            fa, ba, fi, bi = att.dsa_prefill(model, hg, chunks)
            out += [Piece("attention_prefill_dsa", "attention_prefill", L * fa, 0.0, L * ba, L, m=P),
                    Piece("indexer_prefill", "attention_prefill", L * fi, 0.0, L * bi, L, m=P)]
        if D:
            fa, ba, fi, bi = att.dsa_decode(model, hg, D, sum_ctx)
            out += [Piece("attention_decode_dsa", "attention_decode", 0.0, L * fa, L * ba, L, m=D),
                    Piece("indexer_decode", "attention_decode", 0.0, L * fi, L * bi, L, m=D)]
        return out
    if model.is_mla:
        L = model.num_layers
        if chunks:
            f, b = att.mla_prefill(model, hg, chunks)
            out.append(Piece("attention_prefill_mla", "attention_prefill", L * f, 0.0, L * b, L, m=P))
        if D:
            f, b = att.mla_decode(model, hg, D, sum_ctx)
            out.append(Piece("attention_decode_mla", "attention_decode", 0.0, L * f, L * b, L, m=D))
        return out
    full, win = model.num_full_layers, model.num_window_layers
    kvb = 2.0 * model.kv_heads_per_gpu(tp) * model.head_dim * model.kv_bytes_per_element
    if chunks:
        if full:
            f, b = attention_prefill_counts(model, tp, chunks)
            out.append(Piece("attention_prefill", "attention_prefill", full * f, 0.0, full * b, full, m=P))
        if win:
            f, b = att.gqa_window_prefill(model, tp, chunks, kvb, hg)
            out.append(Piece("attention_prefill_window", "attention_prefill", win * f, 0.0, win * b, win, m=P))
    if D:
        if full:
            f, b = attention_decode_counts(model, tp, D, sum_ctx)
            out.append(Piece("attention_decode", "attention_decode", 0.0, full * f, full * b, full, m=D))
        if win:
            f, b = att.gqa_window_decode(model, D, sum_ctx, kvb, hg)
            out.append(Piece("attention_decode_window", "attention_decode", 0.0, win * f, win * b, win, m=D))
    return out


def _elementwise_bytes(model: ModelSpec, tp: int, ep: int, T: int, rows_e: float) -> float:
    """Element-wise bytes per token of the step, all layers: two fused add+RMSNorm (8 hidden), rotary on
    q and k, SiLU-and-mul (3 x FFN width per routed row, shared expert and dense FFN)."""
    h, L = model.hidden_size, model.num_layers
    hg = model.num_heads // tp
    if model.is_mla:
        rope = hg * model.qk_rope_head_dim + model.qk_rope_head_dim
    else:
        rope = hg * model.head_dim + model.kv_heads_per_gpu(tp) * model.head_dim
    per_layer = 8 * h + 2 * rope
    total = L * per_layer
    if not model.is_moe:
        return (total + L * 3 * _cd(model.intermediate_size, tp)) * ACT_BYTES
    total += model.num_dense_layers * 3 * _cd(model.dense_intermediate_size, tp)
    moe = 3 * _cd(model.shared_expert_intermediate_size, tp) if model.shared_expert_intermediate_size else 0
    moe += 3 * _cd(model.intermediate_size, tp // ep) * (rows_e / T if T else 0.0)  # busiest GPU's rows
    return (total + model.num_moe_layers * moe) * ACT_BYTES
