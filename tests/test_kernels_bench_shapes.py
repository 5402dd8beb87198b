"""Shape enumeration: per-GPU layer shapes by hand, dedupe, and coverage of every registered model."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from kernels_bench import shapes


@dataclass(frozen=True)
class Spec:
    num_layers: int = 32
    hidden_size: int = 4096
    num_heads: int = 32
    num_kv_heads: int = 32
    head_dim: int = 128
    intermediate_size: int = 11008
    vocab_size: int = 32000
    num_experts: int = 0
    experts_per_token: int = 0


LLAMA2_7B_LIKE = Spec()
GQA_70B_LIKE = Spec(hidden_size=8192, num_heads=64, num_kv_heads=8, intermediate_size=28672, vocab_size=32000)
MOE_LIKE = Spec(hidden_size=2048, num_heads=32, num_kv_heads=4, intermediate_size=768, vocab_size=151936,
                num_experts=128, experts_per_token=8)


def test_dense_layer_shapes_by_hand():
    assert shapes.model_gemm_shapes(LLAMA2_7B_LIKE, 1) == [
        ("qkv", 4096, 3 * 4096),
        ("o", 4096, 4096),
        ("gate_up", 4096, 2 * 11008),
        ("down", 11008, 4096),
        ("lm_head", 4096, 32000),
    ]
    assert shapes.model_gemm_shapes(LLAMA2_7B_LIKE, 8) == [
        ("qkv", 4096, 3 * 4 * 128),
        ("o", 512, 4096),
        ("gate_up", 4096, 2 * 1376),
        ("down", 1376, 4096),
        ("lm_head", 4096, 4000),
    ]


def test_gqa_kv_heads_split_then_replicate():
    assert shapes.model_attention_shape(GQA_70B_LIKE, 8) == (8, 1, 128)
    # TP 16: 4 query heads per GPU, the 8 KV heads replicated so each GPU holds one.
    assert shapes.model_attention_shape(GQA_70B_LIKE, 16) == (4, 1, 128)
    assert {name: (k, n) for name, k, n in shapes.model_gemm_shapes(GQA_70B_LIKE, 8)}["qkv"] == (8192, 10 * 128)
    assert shapes.kv_heads_per_gpu(8, 2) == 4
    assert shapes.kv_heads_per_gpu(4, 8) == 1
    assert shapes.kv_heads_per_gpu(6, 4) is None
    assert shapes.kv_heads_per_gpu(3, 2) is None


def test_indivisible_tp_is_skipped():
    odd = Spec(num_heads=40, num_kv_heads=40, intermediate_size=13824)
    assert shapes.model_gemm_shapes(odd, 16) == []  # 40 heads do not split 16 ways
    assert shapes.model_attention_shape(odd, 16) is None
    assert shapes.model_gemm_shapes(Spec(intermediate_size=11000), 16) == []  # FFN width not divisible


def test_moe_shapes_are_per_expert():
    got = {name: (k, n) for name, k, n in shapes.model_gemm_shapes(MOE_LIKE, 2)}
    assert got["expert_gate_up"] == (2048, 2 * 384)
    assert got["expert_down"] == (384, 2048)
    assert got["lm_head"] == (2048, 75968)


def test_dedupe_merges_sources():
    one = shapes.gemm_shapes([("a", LLAMA2_7B_LIKE)], [1, 2])
    two = shapes.gemm_shapes([("a", LLAMA2_7B_LIKE), ("b", LLAMA2_7B_LIKE)], [1, 2])
    assert [(s.k, s.n) for s in one] == [(s.k, s.n) for s in two]
    assert all(len(s.sources) == 2 * len(o.sources) for s, o in zip(two, one))
    pairs = [(s.k, s.n) for s in two]
    assert pairs == sorted(set(pairs))
    # TP 1 and TP 2 share the O projection's n and the LM head's k, but no full pair: 10 shapes.
    assert len(one) == 10


def test_m_values_cover_powers_of_two_and_the_budget():
    ms = shapes.gemm_m_values([("moe", Spec(num_experts=60, experts_per_token=4))])
    assert ms == sorted(set(ms))
    assert {2**i for i in range(15)} <= set(ms)
    assert {256, 768, 1280, 1536, 1792, 2048} <= set(ms)
    assert 137 in ms  # ceil(2048 * 4 / 60): tokens one expert sees in a full step
    assert max(ms) == 16384
    assert shapes.gemm_m_values(quick=True) == [1, 16, 256, 2048, 16384]


def test_attention_grids():
    pts = shapes.prefill_points(max_tokens=65536)
    assert all(b * s <= 65536 for b, s in pts)
    assert {s for _, s in pts} == {2**i for i in range(7, 16)}
    assert (1, 32768) in pts and (2, 32768) in pts and (4, 32768) not in pts
    dec = shapes.decode_points()
    assert len(dec) == 10 * 11
    assert min(dec) == (1, 128) and max(dec) == (512, 131072)


def test_decode_kv_cache_bytes_by_hand():
    # 2 sequences of 20 tokens in 16-token pages: 2 pages each, 4 pages of 16*8*128 elements, K and V, bf16.
    assert shapes.decode_kv_cache_bytes(2, 20, 8, 128, 2.0) == 2 * 4 * 16 * 8 * 128 * 2


def test_every_registered_model_is_covered():
    model_spec = pytest.importorskip("blis.physics.model_spec")
    models = shapes.load_models(None)
    assert [name for name, _ in models] == list(model_spec.available_models())
    gemm = shapes.gemm_shapes(models, shapes.TP_DEGREES)
    attn = shapes.attention_shapes(models, shapes.TP_DEGREES)
    pairs = {(s.k, s.n) for s in gemm}
    assert len(pairs) == len(gemm)  # deduplicated
    heads = {(a.num_heads, a.num_kv_heads, a.head_dim) for a in attn}
    assert len(heads) == len(attn)
    for name, spec in models:
        assert shapes.model_gemm_shapes(spec, 1), f"{name} has no TP-1 shapes"
        for tp in shapes.TP_DEGREES:
            for _, k, n in shapes.model_gemm_shapes(spec, tp):
                assert (k, n) in pairs
            shape = shapes.model_attention_shape(spec, tp)
            if shape is not None:
                assert shape in heads
    sourced = {src.split()[0] for s in gemm for src in s.sources}
    assert sourced == {name for name, _ in models}


def test_unknown_model_is_named():
    pytest.importorskip("blis.physics.model_spec")
    with pytest.raises(ValueError, match="--models: unknown model 'no-such-model'"):
        shapes.load_models(["no-such-model"])
