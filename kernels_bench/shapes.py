"""Which shapes to measure: GEMM (k, n) pairs and attention head shapes of every registered model at each
tensor-parallel degree, and the grids of token counts, sequence lengths and batch sizes.

Models come from the blis registry (``blis.physics.model_spec``), read through the fields of its
``ModelSpec`` only: num_heads, num_kv_heads, head_dim, hidden_size, intermediate_size (per expert for MoE),
num_experts, experts_per_token, vocab_size. Anything with those attributes works, so tests can pass
their own specs.

Tensor parallelism follows vLLM's sharding: query heads split evenly (a TP degree that does not divide
them is skipped for that model), KV heads split when there are at least ``tp`` of them and are replicated
(one per GPU) otherwise, the FFN width splits by ``tp`` (each expert's, for MoE), the LM head splits the
vocabulary (rounded up). Shapes are per GPU.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

DTYPE_BYTES: dict[str, float] = {"bf16": 2.0, "fp16": 2.0, "fp8": 1.0}
TP_DEGREES: tuple[int, ...] = (1, 2, 4, 8)
DEFAULT_TOKEN_BUDGET = 2048


class ModelLike(Protocol):
    num_heads: int
    num_kv_heads: int
    head_dim: int
    hidden_size: int
    intermediate_size: int
    num_experts: int
    experts_per_token: int
    vocab_size: int


@dataclass(frozen=True)
class GemmShape:
    """One weight matrix of a linear layer as seen by one GPU: ``[m, k] @ [k, n]`` for any token count m.

    sources: which model/TP/layer produced it, e.g. ``llama-2-7b tp2 qkv`` (several after dedupe).
    """

    k: int
    n: int
    sources: tuple[str, ...]


@dataclass(frozen=True)
class AttentionShape:
    """Attention heads on one GPU after tensor parallelism."""

    num_heads: int
    num_kv_heads: int
    head_dim: int
    sources: tuple[str, ...]

    @property
    def file_stem(self) -> str:
        """Table file name without extension: ``<heads>-<kv_heads>-<head_dim>``."""
        return f"{self.num_heads}-{self.num_kv_heads}-{self.head_dim}"


def kv_heads_per_gpu(num_kv_heads: int, tp: int) -> int | None:
    """KV heads one GPU holds at TP degree ``tp`` (vLLM: split if there are at least tp, else replicate
    so each GPU keeps one). None when the split is impossible."""
    if num_kv_heads >= tp:
        return num_kv_heads // tp if num_kv_heads % tp == 0 else None
    return 1 if tp % num_kv_heads == 0 else None


def model_attention_shape(spec: ModelLike, tp: int) -> tuple[int, int, int] | None:
    """(heads, kv_heads, head_dim) per GPU, or None when the model cannot be split ``tp`` ways."""
    if tp < 1 or spec.num_heads % tp != 0:
        return None
    kv = kv_heads_per_gpu(spec.num_kv_heads, tp)
    if kv is None:
        return None
    return spec.num_heads // tp, kv, spec.head_dim


def model_gemm_shapes(spec: ModelLike, tp: int) -> list[tuple[str, int, int]]:
    """``(layer, k, n)`` of every linear layer of one decoder layer plus the LM head, per GPU at TP ``tp``.

    Layers: ``qkv`` (k=hidden, n=(heads + 2 kv_heads) head_dim), ``o`` (k=heads head_dim, n=hidden),
    ``gate_up`` (k=hidden, n=2 I), ``down`` (k=I, n=hidden), with I the FFN width per GPU (per expert for
    MoE, where the layers are named ``expert_gate_up``/``expert_down``), and ``lm_head`` (k=hidden,
    n=vocab). Empty when the model cannot be split ``tp`` ways.
    """
    attn = model_attention_shape(spec, tp)
    if attn is None or spec.intermediate_size % tp != 0:
        return []
    heads, kv, head_dim = attn
    hidden = spec.hidden_size
    inter = spec.intermediate_size // tp
    ffn = "expert_" if spec.num_experts > 0 else ""
    return [
        ("qkv", hidden, (heads + 2 * kv) * head_dim),
        ("o", heads * head_dim, hidden),
        (f"{ffn}gate_up", hidden, 2 * inter),
        (f"{ffn}down", inter, hidden),
        ("lm_head", hidden, math.ceil(spec.vocab_size / tp)),
    ]


def gemm_shapes(models: Iterable[tuple[str, ModelLike]], tps: Sequence[int] = TP_DEGREES) -> list[GemmShape]:
    """Distinct (k, n) over all models and TP degrees, sorted, each with the layers that produce it."""
    found: dict[tuple[int, int], list[str]] = {}
    for name, spec in models:
        for tp in tps:
            for layer, k, n in model_gemm_shapes(spec, tp):
                found.setdefault((k, n), []).append(f"{name} tp{tp} {layer}")
    return [GemmShape(k, n, tuple(src)) for (k, n), src in sorted(found.items())]


def attention_shapes(
    models: Iterable[tuple[str, ModelLike]], tps: Sequence[int] = TP_DEGREES
) -> list[AttentionShape]:
    """Distinct per-GPU (heads, kv_heads, head_dim) over all models and TP degrees, sorted."""
    found: dict[tuple[int, int, int], list[str]] = {}
    for name, spec in models:
        for tp in tps:
            shape = model_attention_shape(spec, tp)
            if shape is not None:
                found.setdefault(shape, []).append(f"{name} tp{tp}")
    return [AttentionShape(h, kv, d, tuple(src)) for (h, kv, d), src in sorted(found.items())]


def powers_of_two(lo: int, hi: int) -> list[int]:
    """Powers of two p with lo <= p <= hi."""
    out, p = [], 1
    while p <= hi:
        if p >= lo:
            out.append(p)
        p *= 2
    return out


def budget_token_counts(
    budget: int = DEFAULT_TOKEN_BUDGET, models: Iterable[tuple[str, ModelLike]] = ()
) -> list[int]:
    """Token counts (GEMM m) that steps under a ``budget``-token scheduler produce besides powers of two.

    A step's token count is its decodes plus its prefill chunk, filled up to the budget, so every count
    from 1 to the budget occurs; we add eighths of the budget (256, 512, ... 2048 at 2048) so that
    interpolation near the usual operating point uses close neighbours, and, per MoE model, the mean
    tokens one expert sees in a full step (``budget x experts_per_token / num_experts``, rounded up).
    """
    counts = {budget * i // 8 for i in range(1, 9)} - {0}
    for _, spec in models:
        if spec.num_experts > 0 and spec.experts_per_token > 0:
            counts.add(math.ceil(budget * spec.experts_per_token / spec.num_experts))
    return sorted(counts)


def gemm_m_values(
    models: Iterable[tuple[str, ModelLike]] = (),
    max_m: int = 16384,
    budget: int = DEFAULT_TOKEN_BUDGET,
    quick: bool = False,
) -> list[int]:
    """GEMM m values: powers of two from 1 to ``max_m`` plus :func:`budget_token_counts`.
    ``quick`` keeps 1, 16, 256, 2048 and 16384 (those not above ``max_m``) for a smoke run."""
    if quick:
        return [m for m in (1, 16, 256, 2048, 16384) if m <= max_m]
    return sorted(set(powers_of_two(1, max_m)) | {c for c in budget_token_counts(budget, models) if c <= max_m})


def prefill_points(quick: bool = False, max_tokens: int = 65536) -> list[tuple[int, int]]:
    """``(batch_size, seq_len)`` for prefill attention: seq_len powers of two 128..32768, batch powers of
    two 1..64, keeping ``batch x seq_len <= max_tokens``."""
    seqs = [128, 1024, 8192] if quick else powers_of_two(128, 32768)
    batches = [1, 4] if quick else powers_of_two(1, 64)
    return [(b, s) for s in seqs for b in batches if b * s <= max(max_tokens, s)]


def decode_points(quick: bool = False) -> list[tuple[int, int]]:
    """``(batch_size, kv_len)`` for decode attention: batch powers of two 1..512, kv_len 128..131072.
    Points too large for the GPU are dropped later (:func:`decode_kv_cache_bytes`)."""
    batches = [1, 16, 256] if quick else powers_of_two(1, 512)
    kvs = [128, 4096, 65536] if quick else powers_of_two(128, 131072)
    return [(b, kv) for b in batches for kv in kvs]


def decode_kv_cache_bytes(
    batch_size: int, kv_len: int, num_kv_heads: int, head_dim: int, kv_bytes: float, page_size: int = 16
) -> float:
    """Bytes of a paged K and V cache holding ``batch_size`` sequences of ``kv_len`` tokens."""
    pages = batch_size * math.ceil(kv_len / page_size)
    return 2.0 * pages * page_size * num_kv_heads * head_dim * kv_bytes


def load_models(names: Sequence[str] | None = None) -> list[tuple[str, Any]]:
    """``(name, ModelSpec)`` from the blis registry: the given names, or every registered model.

    Raises ValueError naming the unknown model and the known ones."""
    from blis.physics import model_spec  # lazy: the registry is only needed to enumerate shapes

    known = list(model_spec.available_models())
    wanted = list(names) if names else known
    out = []
    for name in wanted:
        try:
            out.append((name, model_spec.get_model(name)))
        except (KeyError, ValueError) as exc:
            raise ValueError(f"--models: unknown model {name!r}; known: {', '.join(known)}") from exc
    return out
