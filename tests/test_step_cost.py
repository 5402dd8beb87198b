"""Step decomposition: FLOPs and bytes by hand for one dense and one MoE layer, TP sharding, monotonicity."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blis.physics.model_spec import get_model
from blis.physics.step_cost import (
    attention_decode_counts,
    attention_prefill_counts,
    expected_active_experts,
    gemm_shapes,
    lm_head_shape,
    ring_allreduce_traffic,
    step_pieces,
    step_totals,
)

LLAMA7 = get_model("llama-2-7b")
MIXTRAL = get_model("mixtral-8x7b")


def _by_name(pieces):
    return {p.name: p for p in pieces}


def test_dense_layer_shapes_and_counts_by_hand():
    shapes = {g.name: (g.k, g.n, g.count) for g in gemm_shapes(LLAMA7, 1)}
    assert shapes == {"qkv": (4096, 3 * 4096, 1), "o": (4096, 4096, 1), "gate_up": (4096, 2 * 11008, 1),
                      "down": (11008, 4096, 1)}
    # one layer, T = 100 prefill tokens: 2 FLOPs per weight per token; weights 2 bytes each
    params = 4 * 4096 * 4096 + 3 * 4096 * 11008  # 202,375,168 per layer
    L = 32
    pieces = _by_name(step_pieces(LLAMA7, 1, 100, 0, 0, [(100, 0)], 1))
    gemm_flops = sum(pieces[n].flops for n in ("qkv", "o", "gate_up", "down"))
    assert gemm_flops == 2 * 100 * params * L
    names = ("qkv", "o", "gate_up", "down")
    weight_bytes = sum(pieces[n].bytes - 100 * (pieces[n].k + pieces[n].n) * 2 * L for n in names)
    assert weight_bytes == params * 2 * L
    # causal attention over 100 new tokens: 100*101/2 pairs, 4 * 32 heads * 128 FLOPs each, per layer
    assert pieces["attention_prefill"].flops == 4 * 32 * 128 * (100 * 101 / 2) * L
    # LM head for the one sampled token
    assert pieces["lm_head"].flops == 2 * 4096 * 32000
    assert pieces["lm_head"].bytes == 4096 * 32000 * 2 + (4096 + 32000) * 2
    assert "allreduce" not in pieces  # TP1


def test_moe_layer_by_hand_one_decode_token():
    shapes = {g.name: (g.k, g.n, g.count) for g in gemm_shapes(MIXTRAL, 1)}
    assert shapes == {"qkv": (4096, 4096 + 2 * 1024, 1), "o": (4096, 4096, 1), "router": (4096, 8, 1),
                      "expert_gate_up": (4096, 2 * 14336, 8), "expert_down": (14336, 4096, 8)}
    L = 32
    pieces = _by_name(step_pieces(MIXTRAL, 1, 0, 1, 500, [], 1))
    expert = pieces["expert_gate_up"].flops + pieces["expert_down"].flops
    assert expert == 2 * 2 * (3 * 4096 * 14336) * L  # one token x 2 experts x 3 matrices
    # one token picks 2 of 8 experts: exactly 2 experts' weights are read
    w = pieces["expert_gate_up"].bytes + pieces["expert_down"].bytes
    act = 2 * ((4096 + 2 * 14336) + (14336 + 4096)) * 2 * L  # 2 routed rows in and out, bf16
    assert w - act == pytest.approx(2 * 3 * 4096 * 14336 * 2 * L)
    assert pieces["router"].flops == 2 * 4096 * 8 * L
    # decode attention: 500 cached + 1 own key, 32 heads x 128
    assert pieces["attention_decode"].flops == 4 * 32 * 128 * 501 * L
    kv_token = 2 * 8 * 128 * 2
    assert pieces["attention_decode"].bytes == (501 * kv_token + (kv_token + 2 * 32 * 128 * 2)) * L


def test_expected_active_experts():
    assert expected_active_experts(0, 8, 2) == 0
    assert expected_active_experts(1, 8, 2) == pytest.approx(2.0)
    assert expected_active_experts(2, 8, 2) == pytest.approx(8 * (1 - 0.75**2))
    assert expected_active_experts(1000, 8, 2) == pytest.approx(8.0)
    values = [expected_active_experts(t, 128, 8) for t in range(1, 200)]
    assert all(a < b for a, b in itertools.pairwise(values)) and values[-1] <= 128


def test_tp2_halves_weight_bytes_per_gpu():
    for model in (LLAMA7, get_model("llama-2-70b"), MIXTRAL):
        one = sum(g.k * g.n * g.count for g in gemm_shapes(model, 1) if g.name != "router")
        two = sum(g.k * g.n * g.count for g in gemm_shapes(model, 2) if g.name != "router")
        assert two * 2 == one, model.name
    assert lm_head_shape(LLAMA7, 2).n * 2 == 32000


def test_tp_all_reduces_two_per_layer():
    p = _by_name(step_pieces(LLAMA7, 2, 0, 10, 1000, [], 10))["allreduce"]
    assert p.calls == 2 * 32
    assert p.bytes == 2 * 32 * ring_allreduce_traffic(10 * 4096 * 2, 2)
    assert ring_allreduce_traffic(1000, 4) == 1500 and ring_allreduce_traffic(1000, 1) == 0


def test_prefill_chunks_count_only_new_tokens_against_full_context():
    # 2 new tokens after 3 cached: queries see 4 and 5 keys
    f, b = attention_prefill_counts(LLAMA7, 1, [(2, 3)])
    assert f == 4 * 32 * 128 * 9
    kv_token = 2 * 32 * 128 * 2
    assert b == 5 * kv_token + 2 * (kv_token + 2 * 32 * 128 * 2)
    # the same tokens as one fresh prompt of 5 cost more (15 pairs)
    assert attention_prefill_counts(LLAMA7, 1, [(5, 0)])[0] > f
    assert attention_decode_counts(LLAMA7, 1, 0, 0) == (0.0, 0.0)


batches = st.tuples(
    st.lists(st.tuples(st.integers(1, 2048), st.integers(0, 4096)), max_size=4),
    st.integers(0, 256),
    st.integers(0, 2000),
    st.integers(0, 64),
)


@settings(max_examples=60, deadline=None)
@given(batches, st.sampled_from(["llama-2-7b", "mixtral-8x7b", "qwen3-30b-a3b"]), st.integers(1, 300))
def test_more_tokens_never_cost_less_flops_or_bytes(batch, name, extra):
    chunks, decodes, ctx_per, sampled = batch
    model = get_model(name)

    def totals(chunks, d, ctx, s):
        p = sum(n for n, _ in chunks)
        return step_totals(step_pieces(model, 1, p, d, ctx, chunks, s))

    base = totals(chunks, decodes, decodes * ctx_per, sampled)
    for more in (
        totals(chunks + [(extra, 0)], decodes, decodes * ctx_per, sampled),
        totals(chunks, decodes + 1, decodes * ctx_per + ctx_per, sampled),
        totals(chunks, decodes, decodes * ctx_per + extra, sampled),
        totals([(n + extra, c) for n, c in chunks], decodes, decodes * ctx_per, sampled),
        totals(chunks, decodes, decodes * ctx_per, sampled + 1),
    ):
        assert more[0] >= base[0] and more[1] >= base[1]
