"""Model figures: HuggingFace config.json parsing, the built-in registry, parameter and KV-byte counts."""

from __future__ import annotations

import json

import pytest

from blis.errors import BlisInputError
from blis.physics.model_spec import (
    ModelSpec,
    available_models,
    get_model,
    load_hf_config,
    spec_from_hf_config,
)

# registry name -> folder in shared/data/model_configs the figures were typed from
REGISTRY_SOURCES = {
    "llama-2-7b": "llama-2-7b-hf",
    "llama-2-70b": "llama-2-70b-hf",
    "codellama-34b": "codellama-34b-instruct-hf",
    "mixtral-8x7b": "mixtral-8x7b-v0.1",
    "llama-3.1-8b": "llama-3.1-8b-instruct",
    "llama-3.1-70b": "llama-3.1-70b-instruct",
    "qwen2.5-7b": "qwen2.5-7b-instruct",
    "qwen3-14b": "qwen3-14b",
    "qwen3-30b-a3b": "qwen3-30b-a3b",
    "mistral-nemo": "mistral-nemo-instruct-2407",
    "yi-34b": "yi-34b",
}
# DeepSeek-V2-Lite, Llama-4-Scout and GLM (MLA, chunked attention, shared experts, sparse attention) are
# read since issue #13: tests/test_model_families.py


def _raw(shared_data, folder):
    return json.loads((shared_data / "model_configs" / folder / "config.json").read_text())


@pytest.mark.parametrize("name,folder", sorted(REGISTRY_SOURCES.items()))
def test_config_json_parses_to_the_file_figures(shared_data, name, folder):
    raw = _raw(shared_data, folder)
    spec = load_hf_config(shared_data / "model_configs" / folder / "config.json")
    assert spec.num_layers == raw["num_hidden_layers"]
    assert spec.hidden_size == raw["hidden_size"]
    assert spec.num_heads == raw["num_attention_heads"]
    assert spec.num_kv_heads == raw["num_key_value_heads"]
    assert spec.head_dim == raw.get("head_dim", raw["hidden_size"] // raw["num_attention_heads"])
    assert spec.vocab_size == raw["vocab_size"]
    assert spec.tie_word_embeddings == raw["tie_word_embeddings"]
    experts = raw.get("num_local_experts") or raw.get("num_experts") or 0
    assert spec.num_experts == experts
    assert spec.experts_per_token == (raw["num_experts_per_tok"] if experts else 0)
    ffn = raw["moe_intermediate_size"] if "moe_intermediate_size" in raw else raw["intermediate_size"]
    assert spec.intermediate_size == ffn
    # the built-in entry was typed from this file: same architecture figures
    builtin = get_model(name)
    for field in ("num_layers", "hidden_size", "num_heads", "num_kv_heads", "head_dim", "intermediate_size",
                  "vocab_size", "num_experts", "experts_per_token", "max_position_embeddings", "architecture"):
        assert getattr(builtin, field) == getattr(spec, field), field


def test_unknown_architecture_is_named():
    cfg = {"architectures": ["FooForCausalLM"], "hidden_size": 64, "num_attention_heads": 4,
           "num_hidden_layers": 2, "intermediate_size": 128, "vocab_size": 100}
    with pytest.raises(BlisInputError, match="architecture 'FooForCausalLM' is not supported"):
        spec_from_hf_config(cfg)


def test_missing_field_is_named(tmp_path):
    cfg = {"architectures": ["LlamaForCausalLM"], "hidden_size": 4096, "num_attention_heads": 32,
           "intermediate_size": 11008, "vocab_size": 32000}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    with pytest.raises(BlisInputError, match="missing field 'num_hidden_layers'"):
        load_hf_config(path)


def test_missing_moe_field_is_named():
    cfg = {"architectures": ["MixtralForCausalLM"], "hidden_size": 4096, "num_attention_heads": 32,
           "num_key_value_heads": 8, "num_hidden_layers": 32, "intermediate_size": 14336, "vocab_size": 32000,
           "num_experts_per_tok": 2}
    with pytest.raises(BlisInputError, match="num_local_experts"):
        spec_from_hf_config(cfg)


def test_explicit_head_dim_wins_over_hidden_over_heads():
    cfg = {"architectures": ["MistralForCausalLM"], "hidden_size": 5120, "num_attention_heads": 32,
           "num_key_value_heads": 8, "head_dim": 128, "num_hidden_layers": 40, "intermediate_size": 14336,
           "vocab_size": 131072}
    assert spec_from_hf_config(cfg).head_dim == 128  # 5120 / 32 would be 160


def test_absent_kv_heads_means_multi_head_and_dtype_sets_bytes():
    cfg = {"architectures": ["LlamaForCausalLM"], "hidden_size": 64, "num_attention_heads": 4,
           "num_hidden_layers": 2, "intermediate_size": 128, "vocab_size": 100, "torch_dtype": "float32"}
    spec = spec_from_hf_config(cfg)
    assert spec.num_kv_heads == 4 and spec.head_dim == 16
    assert spec.weight_bytes_per_param == 4.0


def test_tied_embeddings_drop_the_lm_head():
    base = {"architectures": ["Qwen2ForCausalLM"], "hidden_size": 64, "num_attention_heads": 4,
            "num_key_value_heads": 2, "num_hidden_layers": 2, "intermediate_size": 128, "vocab_size": 1000}
    untied = spec_from_hf_config({**base, "tie_word_embeddings": False})
    tied = spec_from_hf_config({**base, "tie_word_embeddings": True})
    assert untied.param_count() - tied.param_count() == 1000 * 64


def test_lookup_is_case_insensitive_for_names_and_hf_ids():
    names = ["llama-2-7b", "meta-llama/Llama-2-70b-hf", "codellama-34b", "mixtral-8x7b", "llama-3.1-8b",
             "llama-3.1-70b", "qwen2.5-7b", "qwen3-14b", "qwen3-32b", "mistral-nemo", "yi-34b", "llama-2-70b",
             "qwen3-30b-a3b", "meta-llama/Llama-2-7b-hf", "mistralai/Mixtral-8x7B-v0.1",
             "codellama/CodeLlama-34b-Instruct-hf"]
    for n in names:
        assert get_model(n) is get_model(n.upper())
    assert get_model("META-LLAMA/llama-2-70b-HF") is get_model("llama-2-70b")
    assert set(available_models()) >= {"llama-2-7b", "qwen3-32b", "yi-34b"}
    with pytest.raises(BlisInputError, match="unknown 'gpt-5'"):
        get_model("gpt-5")


def test_qwen3_32b_public_figures():
    m = get_model("Qwen/Qwen3-32B")
    assert (m.num_layers, m.hidden_size, m.num_heads, m.num_kv_heads, m.head_dim, m.intermediate_size,
            m.vocab_size) == (64, 5120, 64, 8, 128, 25600, 151936)


@pytest.mark.parametrize("name,published_billions", [
    ("llama-2-7b", 6.74), ("llama-2-70b", 68.98), ("mixtral-8x7b", 46.70), ("qwen3-30b-a3b", 30.5),
    ("llama-3.1-8b", 8.03), ("qwen2.5-7b", 7.61),
])
def test_parameter_counts_match_published_sizes(name, published_billions):
    # published sizes: model cards / safetensors metadata of the HF repositories
    assert get_model(name).param_count() / 1e9 == pytest.approx(published_billions, rel=0.005)


def test_active_parameters_of_moe():
    q = get_model("qwen3-30b-a3b")
    assert q.active_param_count() / 1e9 == pytest.approx(3.3, rel=0.03)  # "A3B": about 3.3B active
    m = get_model("mixtral-8x7b")
    assert m.active_param_count() / 1e9 == pytest.approx(12.9, rel=0.01)  # Mistral: 12.9B active


def test_kv_bytes_per_token_by_hand():
    assert get_model("llama-2-7b").kv_bytes_per_token() == 2 * 32 * 32 * 128 * 2  # 512 KiB
    assert get_model("llama-2-70b").kv_bytes_per_token(tp=4) == 2 * 80 * 2 * 128 * 2
    # 8 KV heads on 16 GPUs: vLLM replicates, one head per GPU
    assert get_model("llama-2-70b").kv_bytes_per_token(tp=16) == 2 * 80 * 1 * 128 * 2


def test_tp_must_split_heads():
    with pytest.raises(BlisInputError, match="tp: 3 does not divide"):
        get_model("llama-2-7b").kv_bytes_per_token(tp=3)


def test_impossible_figures_refused():
    with pytest.raises(BlisInputError, match="experts_per_token"):
        ModelSpec("x", "x", "MixtralForCausalLM", 2, 64, 4, 4, 16, 128, 100, num_experts=2, experts_per_token=3)
    with pytest.raises(BlisInputError, match="num_layers"):
        ModelSpec("x", "x", "LlamaForCausalLM", 0, 64, 4, 4, 16, 128, 100)
