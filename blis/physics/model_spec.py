"""Architecture figures of a transformer model (``ModelSpec``) and the deployment settings that change
them (quantisation, KV-cache dtype).

Attention: grouped-query (GQA/MHA) or multi-head latent (MLA: DeepSeek-V2/V3, Kimi), optionally with
sliding-window (or chunked-local) layers and attention sinks. FFN: dense SwiGLU, or mixture-of-experts with
top-k routing, shared experts and dense first layers. The readers live in ``blis.physics.hf_config``
(``config.json``) and ``blis.physics.model_registry`` (built-in table); both are re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from blis.errors import BlisInputError


@dataclass(frozen=True)
class ModelSpec:
    """Figures of one decoder-only model.

    intermediate_size: FFN width of a dense layer; for MoE the width of one routed expert.
    num_experts / experts_per_token: 0 for dense models.
    weight_bytes_per_param: bytes per stored weight of the 16-bit parts (embeddings, LM head, norms) and,
        unless the ``*_dtype`` fields say otherwise, of every GEMM (2.0 for bf16/fp16, 1.0 for fp8).
    kv_bytes_per_element: bytes per cached K or V element (2.0 for bf16/fp16, 1.0 for an fp8 KV cache).
    attention_bias: q/k/v projections have a bias (Qwen2); adds a few parameters.
    attn_dtype / mlp_dtype / expert_dtype: weight format of the attention projections, of the dense FFN
        layers and shared experts, and of the routed experts ('' = from weight_bytes_per_param); names of
        ``blis.physics.precision.QUANTIZATIONS``. quant_method: the checkpoint's quantisation ('' = none).
    MLA (kv_lora_rank > 0): q_lora_rank (0 = plain q projection), qk_nope_head_dim, qk_rope_head_dim,
        v_head_dim; the cache holds kv_lora_rank + qk_rope_head_dim elements per token per layer.
    sliding_window (tokens, 0 = none) applies to num_window_layers of the layers; window_kind 'sliding'
        (each query sees the last W keys) or 'chunked' (Llama-4: keys of its own W-token chunk).
    attention_sinks: learned per-head sink logits (gpt-oss): a few parameters, no cache.
    num_dense_layers: layers of an MoE model with a dense FFN of dense_intermediate_size (DeepSeek's
        first_k_dense_replace, moe_layer_freq); shared_expert_intermediate_size: summed width of the shared
        experts of an MoE layer (0 = none).
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
    attn_dtype: str = ""
    mlp_dtype: str = ""
    expert_dtype: str = ""
    quant_method: str = ""
    kv_cache_dtype: str = "auto"
    kv_lora_rank: int = 0
    q_lora_rank: int = 0
    qk_nope_head_dim: int = 0
    qk_rope_head_dim: int = 0
    v_head_dim: int = 0
    sliding_window: int = 0
    num_window_layers: int = 0
    window_kind: str = "sliding"
    attention_sinks: bool = False
    num_dense_layers: int = 0
    dense_intermediate_size: int = 0
    shared_expert_intermediate_size: int = 0
    index_topk: int = 0
    index_n_heads: int = 0
    index_head_dim: int = 0
    source: str = ""

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
        for fname in ("kv_lora_rank", "q_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim",
                      "sliding_window", "num_window_layers", "num_dense_layers", "dense_intermediate_size",
                      "shared_expert_intermediate_size", "index_topk", "index_n_heads", "index_head_dim"):  # fmt: skip
            v = getattr(self, fname)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise BlisInputError(f"model {self.name}: {fname} must be an integer >= 0, got {v!r}")
        if self.kv_lora_rank and not (self.qk_rope_head_dim and self.qk_nope_head_dim and self.v_head_dim):
            raise BlisInputError(f"model {self.name}: MLA (kv_lora_rank > 0) needs qk_nope_head_dim, "
                                 "qk_rope_head_dim and v_head_dim >= 1")
        if self.index_topk and not (self.kv_lora_rank and self.index_n_heads and self.index_head_dim):
            raise BlisInputError(f"model {self.name}: sparse attention (index_topk) is modelled on MLA models "
                                 "only and needs index_n_heads and index_head_dim >= 1")
        if self.num_window_layers > self.num_layers or (self.num_window_layers and not self.sliding_window):
            raise BlisInputError(f"model {self.name}: num_window_layers must be in 0..num_layers and needs "
                                 "sliding_window >= 1")
        if self.window_kind not in ("sliding", "chunked"):
            raise BlisInputError(f"model {self.name}: window_kind must be 'sliding' or 'chunked'")
        if self.num_dense_layers > self.num_layers or (self.num_dense_layers and not self.is_moe):
            raise BlisInputError(f"model {self.name}: num_dense_layers must be in 0..num_layers of an MoE model")
        if self.num_dense_layers and not self.dense_intermediate_size:
            raise BlisInputError(f"model {self.name}: dense layers need dense_intermediate_size >= 1")
        from blis.physics.precision import KV_CACHE_DTYPES, WEIGHT_BYTES

        for fname in ("attn_dtype", "mlp_dtype", "expert_dtype"):
            v = getattr(self, fname)
            if v and v not in WEIGHT_BYTES:
                raise BlisInputError(f"model {self.name}: {fname} {v!r} unknown; allowed: {', '.join(WEIGHT_BYTES)}")
        if self.kv_cache_dtype not in KV_CACHE_DTYPES:
            raise BlisInputError(f"kv_cache_dtype: unknown {self.kv_cache_dtype!r}; allowed: "
                                 f"{', '.join(KV_CACHE_DTYPES)}")

    # --- structure ---------------------------------------------------------------------------------
    @property
    def is_moe(self) -> bool:
        return self.num_experts > 0

    @property
    def is_mla(self) -> bool:
        return self.kv_lora_rank > 0

    @property
    def num_moe_layers(self) -> int:
        return self.num_layers - self.num_dense_layers if self.is_moe else 0

    @property
    def num_full_layers(self) -> int:
        """Layers with full (unwindowed) attention."""
        return self.num_layers - self.num_window_layers

    @property
    def q_size(self) -> int:
        """Width of the query projection output (num_heads x head_dim; MLA: x (nope + rope) dims)."""
        if self.is_mla:
            return self.num_heads * (self.qk_nope_head_dim + self.qk_rope_head_dim)
        return self.num_heads * self.head_dim

    @property
    def kv_size(self) -> int:
        """Width of the key (or value) projection output (num_kv_heads x head_dim)."""
        return self.num_kv_heads * self.head_dim

    def base_dtype(self) -> str:
        """Short name of the 16-bit (or stored) dtype from weight_bytes_per_param."""
        wb = self.weight_bytes_per_param
        return "fp8" if wb <= 1.0 else ("fp32" if wb >= 4.0 else ("fp16" if self.dtype in ("float16", "fp16")
                                                                    else "bf16"))

    def weight_format(self, group: str) -> str:
        """Weight format of 'attn', 'mlp', 'experts' (routed) or 'embed' (embeddings and LM head)."""
        if group == "embed":
            from blis.physics.precision import dtype_name

            return dtype_name(self.dtype) if (self.attn_dtype or self.expert_dtype) else self.base_dtype()
        v = {"attn": self.attn_dtype, "mlp": self.mlp_dtype, "experts": self.expert_dtype}[group]
        return v or self.base_dtype()

    def weight_bytes_of(self, group: str) -> float:
        from blis.physics.precision import weight_bytes

        if group == "embed" and not (self.attn_dtype or self.expert_dtype):
            return self.weight_bytes_per_param
        return weight_bytes(self.weight_format(group))

    @property
    def layer_format(self) -> str | None:
        """The one weight format of every decoder-layer GEMM, or None when groups differ."""
        groups = {self.weight_format("attn")}
        if not self.is_moe or self.num_dense_layers or self.shared_expert_intermediate_size:
            groups.add(self.weight_format("mlp"))
        if self.is_moe:
            groups.add(self.weight_format("experts"))
        return groups.pop() if len(groups) == 1 else None

    @property
    def is_uniform(self) -> bool:
        """One GEMM structure and precision roofline v1's fast path covers: GQA attention with no windowed
        layers, dense or all-MoE layers without shared experts, one weight format for every GEMM."""
        groups = {self.weight_bytes_of(g) for g in ("attn", "mlp", "experts", "embed")}
        return (not self.is_mla and not self.num_window_layers and not self.num_dense_layers
                and not self.shared_expert_intermediate_size and len(groups) == 1)

    # --- parameters ----------------------------------------------------------------------------
    def attention_params_per_layer(self) -> int:
        h = self.hidden_size
        if self.is_mla:
            H, qk = self.num_heads, self.qk_nope_head_dim + self.qk_rope_head_dim
            q = (h * self.q_lora_rank + self.q_lora_rank + self.q_lora_rank * H * qk) if self.q_lora_rank \
                else h * H * qk
            kv = h * (self.kv_lora_rank + self.qk_rope_head_dim) + self.kv_lora_rank \
                + self.kv_lora_rank * H * (self.qk_nope_head_dim + self.v_head_dim)
            idx = 0
            if self.index_topk:  # indexer: wq_b, wk (+ its norm), weights_proj
                idx = ((self.q_lora_rank or h) * self.index_n_heads * self.index_head_dim
                       + h * self.index_head_dim + 2 * self.index_head_dim + h * self.index_n_heads)
            return q + kv + H * self.v_head_dim * h + idx
        p = h * (self.q_size + 2 * self.kv_size) + self.q_size * h
        if self.attention_bias:
            p += self.q_size + 2 * self.kv_size
        if self.qk_norm:
            p += 2 * self.head_dim
        if self.attention_sinks:
            p += self.num_heads
        return p

    def _moe_layer_params(self) -> int:
        h = self.hidden_size
        return (self.num_experts * 3 * h * self.intermediate_size + h * self.num_experts
                + 3 * h * self.shared_expert_intermediate_size)

    def ffn_params_per_layer(self) -> int:
        """FFN parameters of one MoE layer (every expert, shared experts, the router) or dense layer."""
        if self.is_moe:
            return self._moe_layer_params()
        return 3 * self.hidden_size * self.intermediate_size  # gate, up, down (SwiGLU)

    def _ffn_params_all_layers(self) -> int:
        if not self.is_moe:
            return self.num_layers * self.ffn_params_per_layer()
        dense = 3 * self.hidden_size * self.dense_intermediate_size
        return self.num_moe_layers * self._moe_layer_params() + self.num_dense_layers * dense

    def param_count(self) -> int:
        """Total parameters: embeddings, layers (with norms), final norm, LM head unless tied."""
        per_layer = self.attention_params_per_layer() + 2 * self.hidden_size
        embed = self.vocab_size * self.hidden_size
        head = 0 if self.tie_word_embeddings else embed
        return self.num_layers * per_layer + self._ffn_params_all_layers() + embed + head + self.hidden_size

    def active_param_count(self) -> int:
        """Parameters one token touches (experts_per_token routed experts instead of all of them)."""
        if not self.is_moe:
            return self.param_count()
        unused = (self.num_experts - self.experts_per_token) * 3 * self.hidden_size * self.intermediate_size
        return self.param_count() - self.num_moe_layers * unused

    def weight_bytes(self) -> float:
        """Bytes of all weights (whole model, all GPUs together), each group in its own format."""
        if self.is_uniform:
            return self.param_count() * self.weight_bytes_per_param
        h = self.hidden_size
        attn = self.num_layers * self.attention_params_per_layer()
        routed = self.num_moe_layers * self.num_experts * 3 * h * self.intermediate_size
        mlp = self._ffn_params_all_layers() - routed
        rest = self.param_count() - attn - self._ffn_params_all_layers()
        return (attn * self.weight_bytes_of("attn") + mlp * self.weight_bytes_of("mlp")
                + routed * self.weight_bytes_of("experts") + rest * self.weight_bytes_of("embed"))

    # --- KV cache ------------------------------------------------------------------------------
    def kv_heads_per_gpu(self, tp: int = 1) -> int:
        """KV heads stored on one GPU: sharded across TP ranks, replicated when kv_heads < tp (as vLLM)."""
        check_tp(self, tp)
        return max(1, self.num_kv_heads // tp)

    def kv_elements_per_token_layer(self, tp: int = 1) -> int:
        """Cached elements of one token in one layer on one GPU. MLA: the latent (kv_lora_rank + rope
        dims), replicated on every TP rank as vLLM does; else K and V of the KV heads on the GPU."""
        if self.is_mla:
            check_tp(self, tp)
            return self.kv_lora_rank + self.qk_rope_head_dim
        return 2 * self.kv_heads_per_gpu(tp) * self.head_dim

    def indexer_bytes_per_token_layer(self) -> float:
        """DSA indexer cache per token and layer: index_head_dim fp8 elements + one fp32 scale (vLLM's
        DeepSeek-V3.2 layout), whatever the KV-cache dtype; 0 without sparse attention."""
        return self.index_head_dim * 1.0 + 4.0 if self.index_topk else 0.0

    def kv_token_layer_bytes(self, tp: int = 1) -> float:
        """Cache bytes of one token in one layer on one GPU (K/V or latent, plus a DSA indexer key)."""
        return self.kv_elements_per_token_layer(tp) * self.kv_bytes_per_element + self.indexer_bytes_per_token_layer()

    def kv_bytes_per_token(self, tp: int = 1) -> float:
        """KV-cache bytes one token occupies on one GPU in every layer (K and V)."""
        return self.num_layers * self.kv_token_layer_bytes(tp)

    # --- deployment ----------------------------------------------------------------------------
    def with_precision(self, quantization: str | None = None, kv_cache_dtype: str = "auto") -> ModelSpec:
        """This model as deployed with vLLM's ``--quantization`` and ``--kv-cache-dtype``; unchanged
        (the same object) for None / 'auto'. See ``blis.physics.precision.apply_quantization``."""
        from blis.physics.precision import apply_quantization, kv_element_bytes

        spec = self
        if quantization is not None:
            have = {"attn": self.weight_format("attn"), "mlp": self.weight_format("mlp"),
                    "experts": self.weight_format("experts"), "method": self.quant_method or self.base_dtype()}
            f = apply_quantization(have, quantization, self.is_moe, self.name)
            if f != have:
                embed = max(2.0, self.weight_bytes_of("embed"))  # embeddings and LM head stay 16-bit
                spec = replace(spec, attn_dtype=f["attn"], mlp_dtype=f["mlp"], expert_dtype=f["experts"],
                               quant_method=f["method"] if f["method"] not in ("bf16", "fp16") else "",
                               weight_bytes_per_param=embed)
        if kv_cache_dtype != "auto":
            spec = replace(spec, kv_cache_dtype=kv_cache_dtype,
                           kv_bytes_per_element=kv_element_bytes(kv_cache_dtype, spec.kv_bytes_per_element))
        return spec


def check_tp(model: ModelSpec, tp: int) -> None:
    """vLLM's tensor-parallel constraints: heads split evenly; KV heads split or replicated evenly."""
    if not isinstance(tp, int) or isinstance(tp, bool) or tp < 1:
        raise BlisInputError(f"tp: must be an integer >= 1, got {tp!r}")
    if model.num_heads % tp:
        raise BlisInputError(f"tp: {tp} does not divide num_attention_heads={model.num_heads} of {model.name}")
    kv = model.num_kv_heads
    if kv % tp and tp % kv:
        raise BlisInputError(f"tp: {tp} neither divides nor is a multiple of num_key_value_heads={kv} of {model.name}")


def check_ep(model: ModelSpec, tp: int, ep: int) -> None:
    """Expert parallelism: ``ep`` GPUs of the TP group each hold num_experts / ep whole experts (each
    sharded tp / ep ways); vLLM's --enable-expert-parallel without data parallelism is ep = tp."""
    if not isinstance(ep, int) or isinstance(ep, bool) or ep < 1:
        raise BlisInputError(f"ep: must be an integer >= 1, got {ep!r}")
    if ep == 1:
        return
    if not model.is_moe:
        raise BlisInputError(f"ep: {ep} > 1 needs a mixture-of-experts model; {model.name} is dense")
    if tp % ep:
        raise BlisInputError(f"ep: {ep} must divide tp={tp} (experts are spread over the GPUs of the instance)")
    if model.num_experts % ep:
        raise BlisInputError(f"ep: {ep} does not divide num_experts={model.num_experts} of {model.name}")


_REEXPORTS = {"load_hf_config": "hf_config", "spec_from_hf_config": "hf_config", "available_models": "model_registry",
              "get_model": "model_registry", "resolve_model": "model_registry", "model_for_config": "model_registry"}


def __getattr__(name: str):
    """The readers live in their own modules (imported lazily: they import this one)."""
    if name in _REEXPORTS:
        import importlib

        return getattr(importlib.import_module(f"blis.physics.{_REEXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ModelSpec", "check_ep", "check_tp", *_REEXPORTS]
