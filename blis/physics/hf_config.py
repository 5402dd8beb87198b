"""Read a HuggingFace ``config.json`` into a ``ModelSpec``, by its fields (no case per model name).

What each field means is documented in docs/models.md. Families whose fields are known: Llama (2/3, Yi,
CodeLlama), Mistral, Mixtral, Qwen2/2.5, Qwen3, Qwen2/3-MoE, DeepSeek-V2/V3 and Kimi-K2 (MLA), gpt-oss,
Llama-4 (its ``text_config``), MiniMax-M2, GLM-4-MoE. Anything the simulator does not model (linear or
hybrid attention, state-space layers) is refused with the field that says so. DeepSeek sparse attention
(``index_topk``: DeepSeek-V3.2, GLM-5) is read on MLA models.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from blis._files import read_json
from blis.errors import BlisInputError
from blis.physics.model_spec import ModelSpec
from blis.physics.precision import dtype_name, quantization_from_hf

_ARCHS = {
    "LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM", "MixtralForCausalLM",
    "Qwen3MoeForCausalLM", "Qwen2MoeForCausalLM", "DeepseekV2ForCausalLM", "DeepseekV3ForCausalLM",
    "KimiK25ForConditionalGeneration", "GptOssForCausalLM", "Llama4ForConditionalGeneration",
    "Llama4ForCausalLM", "MiniMaxM2ForCausalLM", "Glm4MoeForCausalLM", "GlmMoeDsaForCausalLM",
    "Qwen3NextForCausalLM", "DeepseekV32ForCausalLM",
}  # fmt: skip
_MOE_ARCHS = {"MixtralForCausalLM", "Qwen3MoeForCausalLM", "Qwen2MoeForCausalLM", "DeepseekV2ForCausalLM",
              "DeepseekV3ForCausalLM", "GptOssForCausalLM", "MiniMaxM2ForCausalLM", "Glm4MoeForCausalLM"}
_DTYPE_BYTES = {"float16": 2.0, "bfloat16": 2.0, "float32": 4.0, "fp16": 2.0, "bf16": 2.0, "half": 2.0}

# field present -> what it means; the simulator has no cost model for these
_UNMODELLED = (
    ("full_attention_interval", "hybrid linear attention (Gated DeltaNet layers)"),
    ("linear_num_value_heads", "linear attention layers"),
    ("attn_type_list", "lightning (linear) attention layers"),
    ("layers_block_type", "state-space (Mamba) layers"),
    ("hybrid_override_pattern", "state-space (Mamba) layers"),
    ("mamba_d_state", "state-space (Mamba) layers"),
)
_LAYER_TYPES = {"full_attention", "sliding_attention"}


def _need(cfg: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in cfg or cfg[key] is None:
        raise BlisInputError(f"model config {where}: missing field '{key}'")
    return cfg[key]


def _int_field(cfg: Mapping[str, Any], key: str, where: str) -> int:
    v = _need(cfg, key, where)
    if not isinstance(v, int) or isinstance(v, bool) or v < 1:
        raise BlisInputError(f"model config {where}: field '{key}' must be an integer >= 1, got {v!r}")
    return v


def _opt_int(cfg: Mapping[str, Any], key: str, where: str) -> int:
    v = cfg.get(key)
    if v is None:
        return 0
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        raise BlisInputError(f"model config {where}: field '{key}' must be an integer >= 0, got {v!r}")
    return v


def _refuse_unmodelled(cfg: Mapping[str, Any], where: str) -> None:
    for key, what in _UNMODELLED:
        if cfg.get(key) not in (None, 0, [], ""):
            raise BlisInputError(f"model config {where}: field '{key}' ({what}) is not modelled")
    types = cfg.get("layer_types")
    if types:
        other = sorted({str(t) for t in types} - _LAYER_TYPES)
        if other:
            raise BlisInputError(f"model config {where}: field 'layer_types' has {', '.join(other)} layers, "
                                 f"which are not modelled (only {', '.join(sorted(_LAYER_TYPES))})")


def _moe_layers(cfg: Mapping[str, Any], layers: int, where: str) -> int:
    """How many layers are MoE: DeepSeek's first_k_dense_replace / moe_layer_freq, Qwen's mlp_only_layers /
    decoder_sparse_step, Llama-4's interleave_moe_layer_step (or an explicit moe_layers list)."""
    if cfg.get("moe_layers") is not None:
        return len(set(cfg["moe_layers"]))
    first = _opt_int(cfg, "first_k_dense_replace", where)
    freq = cfg.get("moe_layer_freq", 1) or 1
    step = cfg.get("decoder_sparse_step", 1) or 0
    inter = cfg.get("interleave_moe_layer_step", 1) or 1
    dense_only = set(cfg.get("mlp_only_layers") or ())
    n = 0
    for i in range(layers):
        moe = i >= first and i % freq == 0
        moe = moe and i not in dense_only and step > 0 and (i + 1) % step == 0
        moe = moe and (i + 1) % inter == 0
        n += moe
    return n


def _window(cfg: Mapping[str, Any], layers: int, maxpos: int, where: str) -> tuple[int, int, str]:
    """(window tokens, windowed layer count, 'sliding' | 'chunked')."""
    chunk = cfg.get("attention_chunk_size")
    if chunk:  # Llama-4: chunked local attention on the RoPE layers; NoPE layers (every 4th) are global
        rope = cfg.get("no_rope_layers") or [int((i + 1) % 4 != 0) for i in range(layers)]
        return int(chunk), int(sum(1 for r in rope[:layers] if r)), "chunked"
    w = cfg.get("sliding_window")
    if not w or cfg.get("use_sliding_window") is False:
        return 0, 0, "sliding"
    if not isinstance(w, int) or isinstance(w, bool) or w < 1:
        raise BlisInputError(f"model config {where}: field 'sliding_window' must be an integer >= 1, got {w!r}")
    types = cfg.get("layer_types")
    n = sum(1 for t in types[:layers] if t == "sliding_attention") if types else layers
    if w >= maxpos:  # a window as long as the context window changes nothing
        return 0, 0, "sliding"
    return w, n, "sliding"


def spec_from_hf_config(cfg: Mapping[str, Any], name: str = "custom", where: str = "config.json") -> ModelSpec:
    """Turn a parsed HuggingFace config dict into a ModelSpec (errors name the field)."""
    archs = cfg.get("architectures") or []
    arch = archs[0] if archs else None
    if arch is None:
        raise BlisInputError(f"model config {where}: missing field 'architectures'")
    if arch not in _ARCHS:
        raise BlisInputError(f"model config {where}: architecture {arch!r} is not supported; supported: "
                             f"{', '.join(sorted(_ARCHS))}")
    top_quant = cfg.get("quantization_config")
    if isinstance(cfg.get("text_config"), Mapping):  # multimodal wrapper: the language model's figures
        cfg = {**cfg["text_config"], "architectures": [arch], "_name_or_path": cfg.get("_name_or_path"),
               "quantization_config": top_quant or cfg["text_config"].get("quantization_config")}
    _refuse_unmodelled(cfg, where)
    hidden = _int_field(cfg, "hidden_size", where)
    heads = _int_field(cfg, "num_attention_heads", where)
    layers = _int_field(cfg, "num_hidden_layers", where)
    kv_heads = _int_field(cfg, "num_key_value_heads", where) if cfg.get("num_key_value_heads") is not None \
        else heads  # absent = multi-head attention (Llama-2-7B style); 0 is refused
    head_dim = cfg.get("head_dim") or (hidden // heads)
    mla = _opt_int(cfg, "kv_lora_rank", where)
    if mla:
        head_dim = _int_field(cfg, "qk_nope_head_dim", where) + _int_field(cfg, "qk_rope_head_dim", where)
        kv_heads = heads
    elif not cfg.get("head_dim") and hidden % heads:
        raise BlisInputError(
            f"model config {where}: hidden_size {hidden} is not a multiple of num_attention_heads {heads}; "
            "give 'head_dim'"
        )
    dtype = str(cfg.get("torch_dtype") or cfg.get("dtype") or "bfloat16")
    if dtype not in _DTYPE_BYTES:
        raise BlisInputError(
            f"model config {where}: field 'torch_dtype' {dtype!r} not supported; allowed: {', '.join(_DTYPE_BYTES)}"
        )
    formats = quantization_from_hf(cfg.get("quantization_config"), dtype_name(dtype), where)
    quantised = formats["method"] != dtype_name(dtype)
    experts = cfg.get("num_local_experts") or cfg.get("num_experts") or cfg.get("n_routed_experts") or 0
    if arch in _MOE_ARCHS and not experts:
        raise BlisInputError(f"model config {where}: missing field 'num_local_experts' (or 'num_experts', "
                             "'n_routed_experts')")
    per_tok = 0
    inter_key = "intermediate_size"
    dense_layers = dense_inter = shared = 0
    if experts:
        per_tok = cfg.get("num_experts_per_tok") or cfg.get("experts_per_token")
        if not per_tok:
            raise BlisInputError(f"model config {where}: missing field 'num_experts_per_tok'")
        if cfg.get("moe_intermediate_size"):
            inter_key = "moe_intermediate_size"
        dense_layers = layers - _moe_layers(cfg, layers, where)
        if dense_layers:
            dense_inter = _int_field(cfg, "intermediate_size_mlp" if "intermediate_size_mlp" in cfg
                                     else "intermediate_size", where)
        shared = (_opt_int(cfg, "n_shared_experts", where) * _int_field(cfg, inter_key, where)
                  + _opt_int(cfg, "shared_expert_intermediate_size", where)
                  + _opt_int(cfg, "shared_intermediate_size", where))
        if cfg.get("model_type") == "llama4_text":  # Llama-4 MoE layers always add one shared expert
            shared += _int_field(cfg, "intermediate_size", where)
    maxpos = int(cfg.get("max_position_embeddings") or 4096)
    window, n_window, kind = _window(cfg, layers, maxpos, where)
    return ModelSpec(
        name=name,
        hf_id=str(cfg.get("_name_or_path") or name),
        architecture=arch,
        num_layers=layers,
        hidden_size=hidden,
        num_heads=heads,
        num_kv_heads=int(kv_heads),
        head_dim=int(head_dim),
        intermediate_size=_int_field(cfg, inter_key, where),
        vocab_size=_int_field(cfg, "vocab_size", where),
        num_experts=int(experts),
        experts_per_token=int(per_tok),
        tie_word_embeddings=bool(cfg.get("tie_word_embeddings", False)),
        weight_bytes_per_param=_DTYPE_BYTES[dtype],
        kv_bytes_per_element=_DTYPE_BYTES[dtype],
        max_position_embeddings=maxpos,
        attention_bias=bool(cfg.get("attention_bias", arch == "Qwen2ForCausalLM")),
        qk_norm=arch in ("Qwen3ForCausalLM", "Qwen3MoeForCausalLM") or bool(cfg.get("use_qk_norm")),
        dtype=dtype,
        attn_dtype=formats["attn"] if quantised else "",
        mlp_dtype=formats["mlp"] if quantised else "",
        expert_dtype=formats["experts"] if quantised else "",
        quant_method=formats["method"] if quantised else "",
        kv_lora_rank=mla,
        q_lora_rank=_opt_int(cfg, "q_lora_rank", where) if mla else 0,
        qk_nope_head_dim=_opt_int(cfg, "qk_nope_head_dim", where) if mla else 0,
        qk_rope_head_dim=_opt_int(cfg, "qk_rope_head_dim", where) if mla else 0,
        v_head_dim=_opt_int(cfg, "v_head_dim", where) if mla else 0,
        sliding_window=window,
        num_window_layers=n_window,
        window_kind=kind,
        attention_sinks=cfg.get("model_type") == "gpt_oss",  # gpt-oss: learned sink logit per head
        num_dense_layers=dense_layers,
        dense_intermediate_size=dense_inter,
        shared_expert_intermediate_size=shared,
        index_topk=_opt_int(cfg, "index_topk", where),
        index_n_heads=_opt_int(cfg, "index_n_heads", where) if cfg.get("index_topk") else 0,
        index_head_dim=_opt_int(cfg, "index_head_dim", where) if cfg.get("index_topk") else 0,
        source=where,
    )


def load_hf_config(path: str | Path, name: str | None = None) -> ModelSpec:
    """Read a HuggingFace ``config.json`` (or a folder holding one)."""
    p = Path(path)
    if p.is_dir():
        p = p / "config.json"
    cfg = read_json(p, "model_config_path")
    if not isinstance(cfg, dict):
        raise BlisInputError(f"model_config_path: {p} must hold a JSON object")
    label = name or p.parent.name or "custom"
    spec = spec_from_hf_config(cfg, name=label, where=str(p))
    return spec if cfg.get("_name_or_path") else replace(spec, hf_id=label)
