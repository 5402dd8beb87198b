"""Architecture figures of a transformer model: from a HuggingFace ``config.json`` or a built-in table.

Supported families: Llama (Llama-2/3, CodeLlama, Yi), Mistral, Qwen2/2.5, Qwen3, and the mixture-of-experts
Mixtral and Qwen3-MoE. Everything the roofline needs is here: layer count, widths, attention heads (GQA),
experts, vocabulary, and bytes per weight / KV element.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from blis._files import read_json
from blis.errors import BlisInputError


@dataclass(frozen=True)
class ModelSpec:
    """Figures of one decoder-only model.

    intermediate_size: FFN width of a dense layer; for MoE the width of one expert.
    num_experts / experts_per_token: 0 for dense models.
    weight_bytes_per_param: bytes per stored weight (2.0 for bf16/fp16, 1.0 for fp8).
    kv_bytes_per_element: bytes per cached K or V element (2.0 for bf16/fp16).
    attention_bias: q/k/v projections have a bias (Qwen2); adds a few parameters.
    """

    name: str
    hf_id: str
    architecture: str
    num_layers: int
    hidden_size: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int
    vocab_size: int
    num_experts: int = 0
    experts_per_token: int = 0
    tie_word_embeddings: bool = False
    weight_bytes_per_param: float = 2.0
    kv_bytes_per_element: float = 2.0
    max_position_embeddings: int = 4096
    attention_bias: bool = False
    qk_norm: bool = False
    dtype: str = "bfloat16"

    def __post_init__(self) -> None:
        for fname in ("num_layers", "hidden_size", "num_heads", "num_kv_heads", "head_dim",
                      "intermediate_size", "vocab_size", "max_position_embeddings"):  # fmt: skip
            v = getattr(self, fname)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise BlisInputError(f"model {self.name}: {fname} must be an integer >= 1, got {v!r}")
        if self.num_heads % self.num_kv_heads:
            raise BlisInputError(
                f"model {self.name}: num_attention_heads ({self.num_heads}) must be a multiple of "
                f"num_key_value_heads ({self.num_kv_heads})"
            )
        if self.num_experts < 0 or self.experts_per_token < 0:
            raise BlisInputError(f"model {self.name}: num_experts and experts_per_token must be >= 0")
        if (self.num_experts == 0) != (self.experts_per_token == 0) or self.experts_per_token > self.num_experts:
            raise BlisInputError(
                f"model {self.name}: experts_per_token ({self.experts_per_token}) must be in 1..num_experts "
                f"({self.num_experts}) for MoE, and both 0 for dense models"
            )
        for fname in ("weight_bytes_per_param", "kv_bytes_per_element"):
            v = getattr(self, fname)
            if not (isinstance(v, (int, float)) and 0 < v <= 8):
                raise BlisInputError(f"model {self.name}: {fname} must be in (0, 8] bytes, got {v!r}")

    @property
    def is_moe(self) -> bool:
        return self.num_experts > 0

    @property
    def q_size(self) -> int:
        """Width of the query projection output (num_heads x head_dim)."""
        return self.num_heads * self.head_dim

    @property
    def kv_size(self) -> int:
        """Width of the key (or value) projection output (num_kv_heads x head_dim)."""
        return self.num_kv_heads * self.head_dim

    def attention_params_per_layer(self) -> int:
        h = self.hidden_size
        p = h * (self.q_size + 2 * self.kv_size) + self.q_size * h
        if self.attention_bias:
            p += self.q_size + 2 * self.kv_size
        if self.qk_norm:
            p += 2 * self.head_dim
        return p

    def ffn_params_per_layer(self) -> int:
        """All FFN parameters of one layer (every expert for MoE, plus the router)."""
        per_ffn = 3 * self.hidden_size * self.intermediate_size  # gate, up, down (SwiGLU)
        if self.is_moe:
            return self.num_experts * per_ffn + self.hidden_size * self.num_experts
        return per_ffn

    def param_count(self) -> int:
        """Total parameters: embeddings, layers (with norms), final norm, LM head unless tied."""
        per_layer = self.attention_params_per_layer() + self.ffn_params_per_layer() + 2 * self.hidden_size
        embed = self.vocab_size * self.hidden_size
        head = 0 if self.tie_word_embeddings else embed
        return self.num_layers * per_layer + embed + head + self.hidden_size

    def active_param_count(self) -> int:
        """Parameters one token touches (experts_per_token experts instead of all of them)."""
        if not self.is_moe:
            return self.param_count()
        unused = (self.num_experts - self.experts_per_token) * 3 * self.hidden_size * self.intermediate_size
        return self.param_count() - self.num_layers * unused

    def weight_bytes(self) -> float:
        """Bytes of all weights (whole model, all GPUs together)."""
        return self.param_count() * self.weight_bytes_per_param

    def kv_heads_per_gpu(self, tp: int = 1) -> int:
        """KV heads stored on one GPU: sharded across TP ranks, replicated when kv_heads < tp (as vLLM)."""
        check_tp(self, tp)
        return max(1, self.num_kv_heads // tp)

    def kv_bytes_per_token(self, tp: int = 1) -> float:
        """KV-cache bytes one token occupies on one GPU (K and V, every layer)."""
        return 2.0 * self.num_layers * self.kv_heads_per_gpu(tp) * self.head_dim * self.kv_bytes_per_element


def check_tp(model: ModelSpec, tp: int) -> None:
    """vLLM's tensor-parallel constraints: heads split evenly; KV heads split or replicated evenly."""
    if not isinstance(tp, int) or isinstance(tp, bool) or tp < 1:
        raise BlisInputError(f"tp: must be an integer >= 1, got {tp!r}")
    if model.num_heads % tp:
        raise BlisInputError(f"tp: {tp} does not divide num_attention_heads={model.num_heads} of {model.name}")
    kv = model.num_kv_heads
    if kv % tp and tp % kv:
        raise BlisInputError(f"tp: {tp} neither divides nor is a multiple of num_key_value_heads={kv} of {model.name}")


# --- HuggingFace config.json -------------------------------------------------------------------
_DENSE_ARCHS = {
    "LlamaForCausalLM": "llama",
    "MistralForCausalLM": "mistral",
    "Qwen2ForCausalLM": "qwen2",
    "Qwen3ForCausalLM": "qwen3",
}
_MOE_ARCHS = {
    "MixtralForCausalLM": "mixtral",
    "Qwen3MoeForCausalLM": "qwen3_moe",
}
_DTYPE_BYTES = {"float16": 2.0, "bfloat16": 2.0, "float32": 4.0, "fp16": 2.0, "bf16": 2.0, "half": 2.0}


def _need(cfg: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in cfg or cfg[key] is None:
        raise BlisInputError(f"model config {where}: missing field '{key}'")
    return cfg[key]


def _int_field(cfg: Mapping[str, Any], key: str, where: str) -> int:
    v = _need(cfg, key, where)
    if not isinstance(v, int) or isinstance(v, bool) or v < 1:
        raise BlisInputError(f"model config {where}: field '{key}' must be an integer >= 1, got {v!r}")
    return v


def spec_from_hf_config(cfg: Mapping[str, Any], name: str = "custom", where: str = "config.json") -> ModelSpec:
    """Turn a parsed HuggingFace config dict into a ModelSpec (errors name the missing field)."""
    archs = cfg.get("architectures") or []
    arch = archs[0] if archs else None
    if arch is None:
        raise BlisInputError(f"model config {where}: missing field 'architectures'")
    if arch not in _DENSE_ARCHS and arch not in _MOE_ARCHS:
        supported = ", ".join(sorted({**_DENSE_ARCHS, **_MOE_ARCHS}))
        raise BlisInputError(f"model config {where}: architecture {arch!r} is not supported; supported: {supported}")
    hidden = _int_field(cfg, "hidden_size", where)
    heads = _int_field(cfg, "num_attention_heads", where)
    kv_heads = _int_field(cfg, "num_key_value_heads", where) if cfg.get("num_key_value_heads") is not None \
        else heads  # absent = multi-head attention (Llama-2-7B style); 0 is refused
    head_dim = cfg.get("head_dim") or (hidden // heads)
    if not cfg.get("head_dim") and hidden % heads:
        raise BlisInputError(
            f"model config {where}: hidden_size {hidden} is not a multiple of num_attention_heads {heads}; "
            "give 'head_dim'"
        )
    dtype = str(cfg.get("torch_dtype") or cfg.get("dtype") or "bfloat16")
    if dtype not in _DTYPE_BYTES:
        raise BlisInputError(
            f"model config {where}: field 'torch_dtype' {dtype!r} not supported; allowed: {', '.join(_DTYPE_BYTES)}"
        )
    weight_bytes = _DTYPE_BYTES[dtype]
    quant = cfg.get("quantization_config")
    if quant:
        method = str(quant.get("quant_method", "")).lower()
        if method == "fp8":
            weight_bytes = 1.0
        else:
            raise BlisInputError(
                f"model config {where}: quantization_config.quant_method {method!r} not supported (only fp8)"
            )
    experts = 0
    per_tok = 0
    inter_key = "intermediate_size"
    if arch in _MOE_ARCHS:
        experts = cfg.get("num_local_experts") or cfg.get("num_experts")
        if not experts:
            raise BlisInputError(f"model config {where}: missing field 'num_local_experts' (or 'num_experts')")
        per_tok = _int_field(cfg, "num_experts_per_tok", where)
        if arch == "Qwen3MoeForCausalLM":
            inter_key = "moe_intermediate_size"
            if cfg.get("mlp_only_layers") or cfg.get("decoder_sparse_step", 1) != 1:
                raise BlisInputError(
                    f"model config {where}: Qwen3-MoE with dense layers (mlp_only_layers / decoder_sparse_step != 1) "
                    "is not supported"
                )
    return ModelSpec(
        name=name,
        hf_id=str(cfg.get("_name_or_path") or name),
        architecture=arch,
        num_layers=_int_field(cfg, "num_hidden_layers", where),
        hidden_size=hidden,
        num_heads=heads,
        num_kv_heads=int(kv_heads),
        head_dim=int(head_dim),
        intermediate_size=_int_field(cfg, inter_key, where),
        vocab_size=_int_field(cfg, "vocab_size", where),
        num_experts=int(experts),
        experts_per_token=int(per_tok),
        tie_word_embeddings=bool(cfg.get("tie_word_embeddings", False)),
        weight_bytes_per_param=weight_bytes,
        kv_bytes_per_element=_DTYPE_BYTES[dtype] if dtype != "float32" else 4.0,
        max_position_embeddings=int(cfg.get("max_position_embeddings") or 4096),
        attention_bias=bool(cfg.get("attention_bias", arch == "Qwen2ForCausalLM")),
        qk_norm=arch in ("Qwen3ForCausalLM", "Qwen3MoeForCausalLM"),
        dtype=dtype,
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


# --- built-in registry -------------------------------------------------------------------------
# Figures typed from the HuggingFace config.json files in shared/data/model_configs/<dir> (named per
# entry). qwen3-32b is not there: its figures are the public Qwen/Qwen3-32B config values.
def _m(name: str, hf_id: str, arch: str, layers: int, hidden: int, heads: int, kv: int, inter: int, vocab: int,
       maxpos: int, dtype: str = "bfloat16", experts: int = 0, per_tok: int = 0, head_dim: int = 128,
       bias: bool = False, qk_norm: bool = False) -> ModelSpec:  # fmt: skip
    return ModelSpec(
        name=name, hf_id=hf_id, architecture=arch, num_layers=layers, hidden_size=hidden, num_heads=heads,
        num_kv_heads=kv, head_dim=head_dim, intermediate_size=inter, vocab_size=vocab, num_experts=experts,
        experts_per_token=per_tok, tie_word_embeddings=False, weight_bytes_per_param=2.0,
        kv_bytes_per_element=2.0, max_position_embeddings=maxpos, attention_bias=bias, qk_norm=qk_norm,
        dtype=dtype,
    )  # fmt: skip


_L, _MI, _Q2, _Q3 = "LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM"
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
        return load_hf_config(model_config_path)
    return get_model(model)
