"""Built-in models, by short name or HuggingFace id (case-insensitive).

Figures of the first block were typed from the HuggingFace ``config.json`` files in
shared/data/model_configs/<dir> (named per entry; a test checks each against its file). The second block
holds models whose configs are not in that folder and cannot be downloaded here: each names its source
(the model card / ``config.json`` of the HuggingFace repository) and a test checks the published total and
active parameter counts.
"""

from __future__ import annotations

from blis.errors import BlisInputError
from blis.physics.model_spec import ModelSpec


def _m(name: str, hf_id: str, arch: str, layers: int, hidden: int, heads: int, kv: int, inter: int, vocab: int,
       maxpos: int, dtype: str = "bfloat16", experts: int = 0, per_tok: int = 0, head_dim: int = 128,
       bias: bool = False, qk_norm: bool = False, **extra) -> ModelSpec:  # fmt: skip
    return ModelSpec(
        name=name, hf_id=hf_id, architecture=arch, num_layers=layers, hidden_size=hidden, num_heads=heads,
        num_kv_heads=kv, head_dim=head_dim, intermediate_size=inter, vocab_size=vocab, num_experts=experts,
        experts_per_token=per_tok, tie_word_embeddings=False, weight_bytes_per_param=2.0,
        kv_bytes_per_element=2.0, max_position_embeddings=maxpos, attention_bias=bias, qk_norm=qk_norm,
        dtype=dtype, **extra,
    )  # fmt: skip


_L, _MI, _Q2, _Q3 = "LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM"
_DSV3 = "DeepseekV3ForCausalLM"
# DeepSeek-V3-style MLA: q_lora 1536, kv_lora 512, nope 128, rope 64, v 128 (head_dim = nope + rope)
_MLA_V3 = {"kv_lora_rank": 512, "q_lora_rank": 1536, "qk_nope_head_dim": 128, "qk_rope_head_dim": 64,
           "v_head_dim": 128}
_FP8 = {"attn_dtype": "fp8", "mlp_dtype": "fp8", "expert_dtype": "fp8", "quant_method": "fp8"}

_BUILTIN: tuple[tuple[ModelSpec, tuple[str, ...]], ...] = (
    # (spec, extra aliases). Aliases that are a base/instruct twin share the architecture figures.
    # model_configs/llama-2-7b-hf
    (_m("llama-2-7b", "meta-llama/Llama-2-7b-hf", _L, 32, 4096, 32, 32, 11008, 32000, 4096, "float16"),
     ("llama2-7b", "meta-llama/Llama-2-7b-chat-hf")),
    # model_configs/llama-2-70b-hf
    (_m("llama-2-70b", "meta-llama/Llama-2-70b-hf", _L, 80, 8192, 64, 8, 28672, 32000, 4096, "float16"),
     ("llama2-70b", "meta-llama/Llama-2-70b-chat-hf")),
    # model_configs/codellama-34b-instruct-hf
    (_m("codellama-34b", "codellama/CodeLlama-34b-Instruct-hf", _L, 48, 8192, 64, 8, 22016, 32000, 16384),
     ("codellama-34b-instruct", "codellama/CodeLlama-34b-hf")),
    (_m("mixtral-8x7b", "mistralai/Mixtral-8x7B-v0.1", "MixtralForCausalLM", 32, 4096, 32, 8, 14336, 32000, 32768,
        experts=8, per_tok=2),  # mixtral-8x7b-v0.1
     ("mistralai/Mixtral-8x7B-Instruct-v0.1", "mixtral-8x7b-instruct")),
    # model_configs/llama-3.1-8b-instruct
    (_m("llama-3.1-8b", "meta-llama/Llama-3.1-8B-Instruct", _L, 32, 4096, 32, 8, 14336, 128256, 131072),
     ("meta-llama/Llama-3.1-8B", "meta-llama/Meta-Llama-3.1-8B-Instruct", "llama-3.1-8b-instruct")),
    # model_configs/llama-3.1-70b-instruct
    (_m("llama-3.1-70b", "meta-llama/Llama-3.1-70B-Instruct", _L, 80, 8192, 64, 8, 28672, 128256, 131072),
     ("meta-llama/Llama-3.1-70B", "meta-llama/Meta-Llama-3.1-70B-Instruct", "llama-3.1-70b-instruct")),
    # model_configs/qwen2.5-7b-instruct
    (_m("qwen2.5-7b", "Qwen/Qwen2.5-7B-Instruct", _Q2, 28, 3584, 28, 4, 18944, 152064, 32768, bias=True),
     ("Qwen/Qwen2.5-7B", "qwen2.5-7b-instruct")),
    # model_configs/qwen3-14b
    (_m("qwen3-14b", "Qwen/Qwen3-14B", _Q3, 40, 5120, 40, 8, 17408, 151936, 40960, qk_norm=True), ()),
    # Not in shared/data/model_configs: public Qwen/Qwen3-32B config (64 layers, hidden 5120, 64 heads, 8 KV
    # heads, head_dim 128, intermediate 25600, vocab 151936, 40960 positions).
    (_m("qwen3-32b", "Qwen/Qwen3-32B", _Q3, 64, 5120, 64, 8, 25600, 151936, 40960, qk_norm=True), ()),
    (_m("qwen3-30b-a3b", "Qwen/Qwen3-30B-A3B", "Qwen3MoeForCausalLM", 48, 2048, 32, 4, 768, 151936, 40960,
        experts=128, per_tok=8, qk_norm=True), ()),  # qwen3-30b-a3b (moe_intermediate_size 768)
    # model_configs/mistral-nemo-instruct-2407
    (_m("mistral-nemo", "mistralai/Mistral-Nemo-Instruct-2407", _MI, 40, 5120, 32, 8, 14336, 131072, 131072),
     ("mistral-nemo-12b", "mistralai/Mistral-Nemo-Base-2407")),
    (_m("yi-34b", "01-ai/Yi-34B", _L, 60, 7168, 56, 8, 20480, 64000, 4096), ()),  # yi-34b
    # model_configs/deepseek-v2-lite: MLA without q_lora, 64 routed + 2 shared experts (1408), layer 0 dense
    (_m("deepseek-v2-lite", "deepseek-ai/DeepSeek-V2-Lite", "DeepseekV2ForCausalLM", 27, 2048, 16, 16, 1408,
        102400, 163840, experts=64, per_tok=6, head_dim=192, kv_lora_rank=512, qk_nope_head_dim=128,
        qk_rope_head_dim=64, v_head_dim=128, num_dense_layers=1, dense_intermediate_size=10944,
        shared_expert_intermediate_size=2 * 1408), ("deepseek-ai/DeepSeek-V2-Lite-Chat",)),
    # model_configs/llama-4-scout-17b-16e-instruct-fp8-dynamic (text_config): 16 experts top-1 + one shared
    # expert (8192) on every layer, chunked local attention (8192) on 36 of 48 layers; bf16 checkpoint.
    (_m("llama-4-scout", "meta-llama/Llama-4-Scout-17B-16E-Instruct", "Llama4ForConditionalGeneration", 48,
        5120, 40, 8, 8192, 202048, 10485760, experts=16, per_tok=1, qk_norm=True,
        shared_expert_intermediate_size=8192, sliding_window=8192, num_window_layers=36, window_kind="chunked"),
     ("llama-4-scout-17b-16e",)),
    # --- not in shared/data: figures from the HuggingFace model cards / config.json of each repository ---
    # openai/gpt-oss-120b config.json: 36 layers alternating sliding (128) / full attention, hidden 2880,
    # 64 heads x 64, 8 KV heads, q/k/v/o bias, learned attention sinks, 128 experts top-4 of width 2880,
    # vocab 201088, 131072 positions; quantization_config mxfp4 on the experts only (attention, router,
    # embeddings and LM head bf16). Model card: 116.8B total, 5.1B active.
    (_m("gpt-oss-120b", "openai/gpt-oss-120b", "GptOssForCausalLM", 36, 2880, 64, 8, 2880, 201088, 131072,
        experts=128, per_tok=4, head_dim=64, bias=True, sliding_window=128, num_window_layers=18,
        attention_sinks=True, expert_dtype="mxfp4", quant_method="mxfp4"), ()),
    # openai/gpt-oss-20b config.json: as 120b with 24 layers and 32 experts (model card: 20.9B total).
    (_m("gpt-oss-20b", "openai/gpt-oss-20b", "GptOssForCausalLM", 24, 2880, 64, 8, 2880, 201088, 131072,
        experts=32, per_tok=4, head_dim=64, bias=True, sliding_window=128, num_window_layers=12,
        attention_sinks=True, expert_dtype="mxfp4", quant_method="mxfp4"), ()),
    # Qwen/Qwen3-235B-A22B config.json: 94 layers, hidden 4096, 64 heads, 4 KV heads, head_dim 128, 128 experts
    # top-8 of width 1536 (moe_intermediate_size), vocab 151936, 40960 positions. Model card: 235B / 22B active.
    (_m("qwen3-235b-a22b", "Qwen/Qwen3-235B-A22B", "Qwen3MoeForCausalLM", 94, 4096, 64, 4, 1536, 151936, 40960,
        experts=128, per_tok=8, qk_norm=True), ("Qwen/Qwen3-235B-A22B-Instruct-2507",)),
    # Qwen/Qwen3-235B-A22B-FP8: the same with fp8 128x128-block weights (quantization_config quant_method fp8).
    (_m("qwen3-235b-a22b-fp8", "Qwen/Qwen3-235B-A22B-FP8", "Qwen3MoeForCausalLM", 94, 4096, 64, 4, 1536, 151936,
        40960, experts=128, per_tok=8, qk_norm=True, **_FP8), ("Qwen/Qwen3-235B-A22B-Instruct-2507-FP8",)),
    # Qwen/Qwen3-32B-FP8: Qwen3-32B with fp8 128x128-block weights.
    (_m("qwen3-32b-fp8", "Qwen/Qwen3-32B-FP8", _Q3, 64, 5120, 64, 8, 25600, 151936, 40960, qk_norm=True, **_FP8),
     ()),
    # MiniMaxAI/MiniMax-M2.5 config.json (same architecture as MiniMax-M2): 62 layers, hidden 3072, 48 heads,
    # 8 KV heads, head_dim 128, QK norm, 256 experts top-8 of width 1536, no shared expert, vocab 200064,
    # 196608 positions, fp8 128x128-block weights. Model card: 230B total, 10B active.
    (_m("minimax-m2.5", "MiniMaxAI/MiniMax-M2.5", "MiniMaxM2ForCausalLM", 62, 3072, 48, 8, 1536, 200064, 196608,
        experts=256, per_tok=8, qk_norm=True, **_FP8), ("MiniMaxAI/MiniMax-M2", "minimax-m2")),
    # deepseek-ai/DeepSeek-V3 config.json: 61 layers, hidden 7168, 128 heads, MLA (q_lora 1536, kv_lora 512,
    # nope 128, rope 64, v 128), 256 routed experts top-8 of width 2048 + 1 shared, first 3 layers dense
    # (18432), vocab 129280, 163840 positions, fp8 128x128-block weights. 671B total, 37B active (paper).
    (_m("deepseek-v3", "deepseek-ai/DeepSeek-V3", _DSV3, 61, 7168, 128, 128, 2048, 129280, 163840, experts=256,
        per_tok=8, head_dim=192, num_dense_layers=3, dense_intermediate_size=18432,
        shared_expert_intermediate_size=2048, **_MLA_V3, **_FP8),
     ("deepseek-ai/DeepSeek-V3-0324", "deepseek-ai/DeepSeek-R1", "deepseek-ai/DeepSeek-R1-0528")),
    # moonshotai/Kimi-K2.5 config.json (text_config, DeepSeek-V3 architecture): 61 layers, hidden 7168,
    # 64 heads, MLA as DeepSeek-V3, 384 experts top-8 of width 2048 + 1 shared, first layer dense (18432),
    # vocab 163840, 262144 positions; compressed-tensors INT4 (W4A16, group 32) routed experts, the rest
    # bf16 (blis counts INT4 at group 128: 4.125 bits instead of 4.5). Model card: 1T total, 32B active.
    (_m("kimi-k2.5", "moonshotai/Kimi-K2.5", "KimiK25ForConditionalGeneration", 61, 7168, 64, 64, 2048, 163840,
        262144, experts=384, per_tok=8, head_dim=192, num_dense_layers=1, dense_intermediate_size=18432,
        shared_expert_intermediate_size=2048, expert_dtype="int4", quant_method="int4", **_MLA_V3),
     ("moonshotai/Kimi-K2-Thinking",)),
)

_BY_KEY: dict[str, ModelSpec] = {}
for _spec, _aliases in _BUILTIN:
    for _key in (_spec.name, _spec.hf_id, _spec.hf_id.split("/")[-1], *_aliases):
        _BY_KEY[_key.lower()] = _spec


def available_models() -> list[str]:
    """Short names of the built-in models."""
    return [spec.name for spec, _ in _BUILTIN]


def get_model(name_or_hf_id: str | ModelSpec) -> ModelSpec:
    """Built-in model by short name or HuggingFace id (case-insensitive)."""
    if isinstance(name_or_hf_id, ModelSpec):
        return name_or_hf_id
    key = str(name_or_hf_id).strip().lower()
    spec = _BY_KEY.get(key)
    if spec is None:
        raise BlisInputError(
            f"model: unknown {name_or_hf_id!r}; built-in: {', '.join(available_models())} "
            "(or give a HuggingFace config.json with --model-config)"
        )
    return spec


def resolve_model(model: str, model_config_path: str | None = None) -> ModelSpec:
    """The model of a SimConfig: the config.json when given (named after its folder), else the built-in
    entry for ``model``."""
    if model_config_path:
        from blis.physics.hf_config import load_hf_config

        return load_hf_config(model_config_path)
    return get_model(model)


def model_for_config(config) -> ModelSpec:
    """The model of a SimConfig as deployed: ``resolve_model`` then its ``quantization`` and
    ``kv_cache_dtype`` (fields absent on older configs count as the checkpoint's / 'auto')."""
    from blis.physics.model_spec import check_ep

    spec = resolve_model(config.model, config.model_config_path)
    spec = spec.with_precision(getattr(config, "quantization", None), getattr(config, "kv_cache_dtype", "auto"))
    check_ep(spec, config.tp, getattr(config, "ep", 1))
    return spec
