"""MLA, sliding-window and quantised MoE layers by hand; the config.json reader on the shared configs;
the registry's new models against their published parameter counts."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blis.errors import BlisInputError
from blis.physics.layer_cost import general_step_pieces, layer_gemms
from blis.physics.model_spec import get_model, load_hf_config, spec_from_hf_config


def _by_name(pieces):
    return {p.name: p for p in pieces}


# --- one MLA layer (DeepSeek-V3, TP8: 16 of 128 heads per GPU) ----------------------------------------
def test_mla_decode_layer_by_hand():
    m = get_model("deepseek-v3")
    L = m.num_layers  # every piece is summed over the 61 layers; divide to get one layer
    pieces = _by_name(general_step_pieces(m, 8, 0, 1, 999, [], 1))
    # absorbed decode: 1 query x 1000 keys x 16 heads x (2 (512 + 64) score + 2 x 512 value) FLOPs
    att = pieces["attention_decode_mla"]
    assert att.flops / L == 16 * (2 * 576 + 2 * 512) * 1000 == 34_816_000
    # bytes: 1000 latents of 576 bf16 elements read, the new latent written, absorbed q (576) and o (512) x 16 heads
    assert att.bytes / L == 1000 * 1152 + 1152 + 16 * (576 + 512) * 2 == 1_187_968
    # projections for the one token (fp8 weights, 1 byte each): q_a 7168x1536 and kv_a 7168x576 replicated,
    # q_b 1536 x 16*192, kv_b (absorbed W_UK / W_UV) 512 x 16*(128+128), o 16*128 x 7168
    shapes = {"q_a": (7168, 1536), "q_b": (1536, 3072), "kv_a": (7168, 576), "kv_b": (512, 4096), "o": (2048, 7168)}
    for name, (k, n) in shapes.items():
        p = pieces[name]
        assert (p.k, p.n) == (k, n), name
        assert p.flops / L == 2 * k * n
        assert p.bytes / L == k * n * 1.0 + (k + n) * 2  # weights fp8 + activation in/out bf16
        assert p.precision == "fp8"
    # the latent cache is not split by TP: 61 layers x 576 elements x 2 bytes per token on every GPU
    assert m.kv_bytes_per_token(8) == 61 * 576 * 2 == m.kv_bytes_per_token(1)


def test_mla_prefill_layer_by_hand():
    m = get_model("deepseek-v2-lite")  # 16 heads, no q_lora, nope 128, rope 64, v 128, TP1
    L = m.num_layers
    pieces = _by_name(general_step_pieces(m, 1, 100, 0, 0, [(100, 20)], 1))
    att = pieces["attention_prefill_mla"]
    pairs = 100 * 20 + 100 * 101 / 2  # 7050 causal pairs over 120 keys
    assert att.flops / L == 16 * (2 * 192 + 2 * 128) * pairs
    # read 120 latents (576 x 2 B) and their up-projected K,V (16 x 320 x 2 B, written and read);
    # write 100 latents; read Q and write O (16 x 320 x 2 B) for the 100 new tokens
    assert att.bytes / L == 120 * (1152 + 2 * 16 * 320 * 2) + 100 * (1152 + 16 * 320 * 2)
    # kv_b up-projects the whole context: 120 rows of 512 -> 16 x (128 + 128)
    assert pieces["kv_b"].flops_prefill / L == 2 * 120 * 512 * 4096


# --- one sliding-window layer (gpt-oss-120b, TP2: 32 heads, 4 KV heads of 64 per GPU, window 128) -------
def test_sliding_window_layer_by_hand():
    m = get_model("gpt-oss-120b")
    assert (m.num_window_layers, m.num_full_layers, m.sliding_window) == (18, 18, 128)
    pieces = _by_name(general_step_pieces(m, 2, 200, 0, 0, [(200, 0)], 1))
    win, full = pieces["attention_prefill_window"], pieces["attention_prefill"]
    # positions 1..128 see 1..128 keys (8256 pairs), positions 129..200 see 128 each (72 x 128 = 9216)
    assert win.flops / 18 == 4 * 32 * 64 * (8256 + 9216) == 143_130_624
    assert full.flops / 18 == 4 * 32 * 64 * (200 * 201 / 2)
    # K,V per token: 2 x 4 heads x 64 x 2 B = 1024 B; Q read + O written: 2 x 32 x 64 x 2 B = 8192 B per new token
    assert win.bytes / 18 == 200 * 1024 + 200 * (1024 + 8192) == 2_048_000
    dec = _by_name(general_step_pieces(m, 2, 0, 1, 1000, [], 1))
    # one decode with 1000 cached tokens: the windowed layer scores 128 keys, the full layer 1001
    assert dec["attention_decode_window"].flops / 18 == 4 * 32 * 64 * 128 == 1_048_576
    assert dec["attention_decode_window"].bytes / 18 == 128 * 1024 + 1024 + 8192 == 140_288
    assert dec["attention_decode"].flops / 18 == 4 * 32 * 64 * 1001
    # a chunk that starts past the window reads only the window plus itself
    later = _by_name(general_step_pieces(m, 2, 10, 0, 0, [(10, 500)], 1))["attention_prefill_window"]
    assert later.flops / 18 == 4 * 32 * 64 * 10 * 128
    assert later.bytes / 18 == (10 + 127) * 1024 + 10 * (1024 + 8192)


def test_chunked_local_attention_pairs():
    from blis.physics.attention import window_keys_read, window_pairs

    # chunks of 4: positions 1..10 see 1,2,3,4,1,2,3,4,1,2 keys
    assert window_pairs(10, 0, 4, "chunked") == 23
    assert window_pairs(3, 5, 4, "chunked") == 2 + 3 + 4  # positions 6, 7, 8
    assert window_keys_read(3, 5, 4, "chunked") == 4  # chunk 5..8
    assert window_pairs(10, 0, 4, "sliding") == 1 + 2 + 3 + 4 * 7


# --- one quantised MoE layer (gpt-oss-120b, TP2, MXFP4 experts) ----------------------------------------
def test_mxfp4_moe_layer_by_hand():
    m = get_model("gpt-oss-120b")
    assert (m.weight_format("attn"), m.weight_format("experts")) == ("bf16", "mxfp4")
    L = 36
    pieces = _by_name(general_step_pieces(m, 2, 0, 1, 100, [], 1))
    up, down = pieces["expert_gate_up"], pieces["expert_down"]
    assert (up.k, up.n, down.k, down.n) == (2880, 2 * 1440, 1440, 2880)  # width 2880 split over 2 GPUs
    # one token x 4 experts: 2 FLOPs per weight
    assert (up.flops + down.flops) / L == 2 * 4 * (2880 * 2880 + 1440 * 2880) == 99_532_800
    # exactly 4 experts' weights read, at 4.25 bits (E8M0 scale per 32 elements) = 0.53125 B per weight
    weights = 4 * (2880 * 2880 + 1440 * 2880) * 0.53125
    act = 4 * ((2880 + 2880) + (1440 + 2880)) * 2
    assert (up.bytes + down.bytes) / L == pytest.approx(weights + act) and weights == 26_438_400
    assert up.precision == "mxfp4"
    # attention projections stay bf16: qkv 2880 -> (32 + 2 x 4) x 64 per GPU, 2 B per weight
    assert pieces["qkv"].bytes / L == 2880 * 2560 * 2 + (2880 + 2560) * 2
    # the whole checkpoint: experts 36 x 128 x 3 x 2880^2 at 0.53125 B, everything else bf16
    experts = 36 * 128 * 3 * 2880 * 2880
    assert m.weight_bytes() == pytest.approx(experts * 0.53125 + (m.param_count() - experts) * 2)


def test_layer_gemms_dense_first_layers_and_shared_experts():
    m = get_model("deepseek-v3")
    g = {x.name: x for x in layer_gemms(m, 8)}
    assert g["dense_gate_up"].layers == 3 and g["dense_gate_up"].n == 2 * 18432 // 8
    assert g["shared_gate_up"].layers == 58 and g["shared_gate_up"].n == 2 * 2048 // 8
    assert g["expert_gate_up"].count == 256 and g["expert_gate_up"].n == 2 * 256  # 2048 / 8 per GPU
    ep = {x.name: x for x in layer_gemms(m, 8, ep=8)}
    assert ep["expert_gate_up"].count == 32 and ep["expert_gate_up"].n == 2 * 2048  # whole experts per GPU


# --- registry: published sizes --------------------------------------------------------------------------
@pytest.mark.parametrize("name,total,active", [
    # model cards: gpt-oss 116.8B / 5.1B active (input embedding not counted as active), DeepSeek-V3 671B / 37B,
    # Kimi-K2 paper 1.04T / 32B, Qwen3-235B-A22B 235B / 22B, MiniMax-M2.5 230B / 10B, DeepSeek-V2-Lite 15.7B / 2.4B
    ("gpt-oss-120b", 116.8, 5.1), ("deepseek-v3", 671, 37), ("kimi-k2.5", 1040, 32), ("qwen3-235b-a22b", 235, 22),
    ("minimax-m2.5", 230, 10), ("deepseek-v2-lite", 15.7, 2.4),
])
def test_new_models_match_published_sizes(name, total, active):
    m = get_model(name)
    assert m.param_count() / 1e9 == pytest.approx(total, rel=0.015)
    # active counts include the LM head and (for some cards) the embedding: within 12 %
    excl_embed = (m.active_param_count() - m.vocab_size * m.hidden_size) / 1e9
    assert excl_embed == pytest.approx(active, rel=0.12)


def test_hf_ids_resolve():
    for hf in ("openai/gpt-oss-120b", "Qwen/Qwen3-235B-A22B", "MiniMaxAI/MiniMax-M2.5", "deepseek-ai/DeepSeek-V3",
               "moonshotai/Kimi-K2.5", "meta-llama/Llama-3.1-8B-Instruct", "Qwen/Qwen3-32B", "Qwen/Qwen3-32B-FP8"):
        assert get_model(hf) is get_model(hf.upper())  # resolves (an unknown id raises)


# --- the reader on the shared configs -------------------------------------------------------------------
def _cfg(shared_data, folder):
    return shared_data / "model_configs" / folder / "config.json"


def test_reader_deepseek_v2_lite_matches_registry(shared_data):
    spec = load_hf_config(_cfg(shared_data, "deepseek-v2-lite"))
    builtin = get_model("deepseek-v2-lite")
    for f in ("num_layers", "hidden_size", "num_heads", "kv_lora_rank", "q_lora_rank", "qk_nope_head_dim",
              "qk_rope_head_dim", "v_head_dim", "num_experts", "experts_per_token", "intermediate_size",
              "num_dense_layers", "dense_intermediate_size", "shared_expert_intermediate_size", "vocab_size"):
        assert getattr(spec, f) == getattr(builtin, f), f
    assert spec.is_mla and spec.num_dense_layers == 1 and spec.shared_expert_intermediate_size == 2 * 1408


def test_reader_llama4_scout_fp8(shared_data):
    spec = load_hf_config(_cfg(shared_data, "llama-4-scout-17b-16e-instruct-fp8-dynamic"))
    # text_config: 48 layers, 16 experts top-1 + shared expert, chunked attention on the 36 RoPE layers
    assert (spec.num_layers, spec.num_experts, spec.experts_per_token) == (48, 16, 1)
    assert (spec.sliding_window, spec.num_window_layers, spec.window_kind) == (8192, 36, "chunked")
    assert spec.shared_expert_intermediate_size == 8192
    # compressed-tensors FP8 on Linear layers; self_attn listed in 'ignore' -> attention stays bf16
    assert (spec.weight_format("attn"), spec.weight_format("mlp"), spec.weight_format("experts")) == \
        ("bf16", "fp8", "fp8")
    assert spec.weight_format("embed") == "bf16"
    builtin = get_model("llama-4-scout")
    assert spec.param_count() == builtin.param_count()


def test_reader_qwen3_moe_and_dense_configs_unchanged(shared_data):
    spec = load_hf_config(_cfg(shared_data, "qwen3-30b-a3b"))
    assert spec.is_uniform and spec.num_dense_layers == 0 and not spec.num_window_layers


def test_reader_glm_reads_mla_with_sparse_attention_fp8(shared_data):
    spec = load_hf_config(_cfg(shared_data, "glm-5.2-fp8"))
    assert spec.is_mla and spec.kv_lora_rank == 512 and spec.num_dense_layers == 3
    assert (spec.index_topk, spec.index_n_heads, spec.index_head_dim) == (2048, 32, 128)
    assert spec.weight_format("experts") == "fp8" and spec.quant_method == "fp8"
    # GLM-5 model card: 744B total, 40B active
    assert spec.param_count() / 1e9 == pytest.approx(744, rel=0.01)
    # cache per token and layer: latent 576 x 2 B + indexer key 128 x 1 B + fp32 scale
    assert spec.kv_bytes_per_token(8) == 78 * (576 * 2 + 132)


def test_sparse_attention_decode_layer_by_hand(shared_data):
    m = load_hf_config(_cfg(shared_data, "glm-5.2-fp8"))  # 64 heads: 8 per GPU at TP8
    L = m.num_layers
    p = _by_name(general_step_pieces(m, 8, 0, 1, 9999, [], 1))
    # 10000 cached keys, the query attends to its top 2048 in absorbed form
    assert p["attention_decode_dsa"].flops / L == 8 * (2 * 576 + 2 * 512) * 2048 == 35_651_584
    assert p["attention_decode_dsa"].bytes / L == 2048 * 1152 + 1152 + 8 * (576 + 512) * 2 == 2_377_856
    # the indexer scores all 10000 keys with 32 heads of 128, reading each cached indexer key (132 B)
    assert p["indexer_decode"].flops / L == 2 * 32 * 128 * 10000 == 81_920_000
    assert p["indexer_decode"].bytes / L == 10000 * 132 + 132


@pytest.mark.parametrize("field,value,what", [
    ("layer_types", ["linear_attention", "full_attention"], "layer_types"),
    ("full_attention_interval", 4, "full_attention_interval"),
    ("layers_block_type", ["mamba", "attention"], "layers_block_type"),
])
def test_linear_and_hybrid_attention_refused(field, value, what):
    cfg = {"architectures": ["Qwen3NextForCausalLM"], "hidden_size": 64, "num_attention_heads": 4,
           "num_hidden_layers": 2, "intermediate_size": 128, "vocab_size": 100, field: value}
    with pytest.raises(BlisInputError, match=f"field '{what}'"):
        spec_from_hf_config(cfg)


def test_gpt_oss_style_config_reads_windows_sinks_and_mxfp4():
    cfg = {"architectures": ["GptOssForCausalLM"], "model_type": "gpt_oss", "hidden_size": 2880,
           "num_attention_heads": 64, "num_key_value_heads": 8, "head_dim": 64, "num_hidden_layers": 4,
           "intermediate_size": 2880, "vocab_size": 201088, "num_local_experts": 8, "experts_per_token": 4,
           "sliding_window": 128, "attention_bias": True, "max_position_embeddings": 131072,
           "layer_types": ["sliding_attention", "full_attention"] * 2,
           "quantization_config": {"quant_method": "mxfp4",
                                   "modules_to_not_convert": ["model.layers.*.self_attn", "lm_head"]}}
    spec = spec_from_hf_config(cfg)
    assert (spec.num_window_layers, spec.sliding_window, spec.attention_sinks) == (2, 128, True)
    assert spec.weight_format("experts") == "mxfp4" and spec.weight_format("attn") == "bf16"


# --- invariants over the new decompositions -------------------------------------------------------------
_batches = st.tuples(
    st.lists(st.tuples(st.integers(1, 2048), st.integers(0, 4096)), max_size=3),
    st.integers(0, 128),
    st.integers(0, 3000),
    st.integers(0, 32),
)


@settings(max_examples=40, deadline=None)
@given(_batches, st.sampled_from([("gpt-oss-120b", 2, 1), ("deepseek-v3", 8, 8), ("deepseek-v2-lite", 1, 1),
                                  ("kimi-k2.5", 8, 1), ("minimax-m2.5", 4, 2), ("llama-4-scout", 4, 1)]),
       st.integers(1, 300))
def test_more_work_never_costs_less(batch, case, extra):
    from blis.physics.step_cost import step_pieces, step_totals

    chunks, decodes, ctx_per, sampled = batch
    name, tp, ep = case
    model = get_model(name)

    def totals(chunks, d, ctx, s):
        return step_totals(step_pieces(model, tp, sum(n for n, _ in chunks), d, ctx, chunks, s, ep=ep))

    base = totals(chunks, decodes, decodes * ctx_per, sampled)
    more = [
        totals(chunks + [(extra, 0)], decodes, decodes * ctx_per, sampled),
        totals(chunks, decodes + 1, decodes * ctx_per + ctx_per, sampled),
        totals(chunks, decodes, decodes * ctx_per, sampled + 1),
    ]
    if model.window_kind != "chunked":  # chunked local attention really reads fewer keys past a chunk boundary
        more.append(totals(chunks, decodes, decodes * ctx_per + extra, sampled))
    for m in more:
        assert m[0] >= base[0] * (1 - 1e-12) and m[1] >= base[1] * (1 - 1e-12)
