"""Attention variants: how many (query, key) pairs and cached tokens a windowed layer touches, and the
FLOPs and bytes of multi-head latent attention (MLA).

Windowed layers (``ModelSpec.sliding_window`` = W on ``num_window_layers`` layers):
- sliding (Mistral, gpt-oss): the query at position p (1-based) sees keys max(1, p - W + 1) .. p, i.e.
  min(p, W) keys. A prefill chunk of n new tokens after c cached ones scores sum_{p=c+1}^{c+n} min(p, W)
  pairs and reads keys from max(1, c + 2 - W) to c + n: min(c + n, n + W - 1) tokens.
- chunked (Llama-4 local layers): the query at p sees the keys of its own W-token chunk up to itself,
  ((p - 1) mod W) + 1 keys; the chunk reads keys from the start of the chunk holding position c + 1.
- decode: the step only carries the decoding requests' summed context, so each request is costed at the
  mean context cbar = sum_context / D: min(cbar + 1, W) keys (sliding; exact when every context is on the
  same side of W) or (cbar mod W) + 1 (chunked; its mean over positions for long contexts).

MLA (DeepSeek-V2/V3, Kimi-K2): the cache holds one latent of kv_lora_rank + qk_rope_head_dim elements per
token per layer, shared by all heads and replicated on every TP rank (vLLM).
- prefill (vLLM computes it as ordinary multi-head attention): K/V are up-projected from the latents of
  the whole context (the ``kv_b`` GEMM over c + n rows) and written/read once in 16 bits; per pair and
  head 2 (nope + rope) FLOPs for QK^T and 2 v_head_dim for PV.
- decode (absorbed weights): q_nope is multiplied into W_UK and the output through W_UV (the ``kv_b`` GEMM
  over D rows), so attention is multi-query over the latent: per key and head 2 (kv_lora + rope) FLOPs for
  the scores and 2 kv_lora for the weighted sum; each key's latent is read once for all heads.
"""

from __future__ import annotations

from collections.abc import Iterable

ACT_BYTES = 2.0


def window_pairs(n: int, c: int, w: int, kind: str = "sliding") -> float:
    """(query, key) pairs of a chunk of ``n`` new tokens after ``c`` cached ones in a windowed layer."""
    if w <= 0:
        return n * c + n * (n + 1) / 2.0
    if kind == "chunked":
        total = 0.0
        p = c + 1
        end = c + n
        while p <= end:  # one run per W-chunk: positions p..q with in-chunk offsets a..b
            a = (p - 1) % w + 1
            q = min(end, p + (w - a))
            b = a + (q - p)
            total += (a + b) * (b - a + 1) / 2.0
            p = q + 1
        return total
    a = max(0, min(n, w - c))  # new positions still inside the first W tokens: p <= W
    return a * c + a * (a + 1) / 2.0 + (n - a) * w


def window_keys_read(n: int, c: int, w: int, kind: str = "sliding") -> int:
    """Cached plus new tokens whose K/V a windowed prefill chunk reads."""
    if w <= 0:
        return c + n
    if kind == "chunked":
        return c + n - (c // w) * w
    return min(c + n, n + w - 1)


def window_decode_keys(num_decode: int, sum_context: int, w: int, kind: str = "sliding") -> float:
    """Keys the ``num_decode`` decoding requests score in a windowed layer (each its own token too)."""
    if num_decode <= 0:
        return 0.0
    if w <= 0:
        return float(sum_context + num_decode)
    cbar = sum_context / num_decode
    if kind == "chunked":
        return num_decode * ((cbar % w) + 1.0)
    return num_decode * min(cbar + 1.0, float(w))


def gqa_window_prefill(model, tp: int, chunks: Iterable[tuple[int, int]], kv_token_bytes: float,
                       heads: int) -> tuple[float, float]:  # fmt: skip
    """(FLOPs, bytes) of one windowed GQA layer for prefill chunks, per GPU (4 head_dim FLOPs per pair and
    head; K,V of the keys in the window read, new K,V written, Q read and O written)."""
    w, kind, hd = model.sliding_window, model.window_kind, model.head_dim
    qo = 2.0 * heads * hd * ACT_BYTES
    pairs = 0.0
    nbytes = 0.0
    for n, c in chunks:
        pairs += window_pairs(n, c, w, kind)
        nbytes += window_keys_read(n, c, w, kind) * kv_token_bytes + n * (kv_token_bytes + qo)
    return 4.0 * heads * hd * pairs, nbytes


def gqa_window_decode(model, num_decode: int, sum_context: int, kv_token_bytes: float,
                      heads: int) -> tuple[float, float]:  # fmt: skip
    keys = window_decode_keys(num_decode, sum_context, model.sliding_window, model.window_kind)
    qo = 2.0 * heads * model.head_dim * ACT_BYTES
    return 4.0 * heads * model.head_dim * keys, keys * kv_token_bytes + num_decode * (kv_token_bytes + qo)


def mla_prefill(model, heads: int, chunks: Iterable[tuple[int, int]]) -> tuple[float, float]:
    """(FLOPs, bytes) of one MLA layer's prefill attention, per GPU with ``heads`` query heads (the kv_b
    up-projection is a separate GEMM)."""
    qk = model.qk_nope_head_dim + model.qk_rope_head_dim
    v = model.v_head_dim
    latent = (model.kv_lora_rank + model.qk_rope_head_dim) * model.kv_bytes_per_element
    kv_16 = heads * (qk + v) * ACT_BYTES  # one token's up-projected K and V
    qo = heads * (qk + v) * ACT_BYTES  # Q read, O written per new token
    pairs = 0.0
    nbytes = 0.0
    for n, c in chunks:
        pairs += n * c + n * (n + 1) / 2.0
        nbytes += (c + n) * (latent + 2.0 * kv_16) + n * (latent + qo)
    return 2.0 * heads * (qk + v) * pairs, nbytes


def mla_decode(model, heads: int, num_decode: int, sum_context: int) -> tuple[float, float]:
    """(FLOPs, bytes) of one MLA layer's absorbed decode attention, per GPU."""
    r, lora = model.qk_rope_head_dim, model.kv_lora_rank
    keys = sum_context + num_decode
    latent = (lora + r) * model.kv_bytes_per_element
    qo = heads * ((lora + r) + lora) * ACT_BYTES  # absorbed q (latent + rope) read, latent output written
    flops = heads * (2.0 * (lora + r) + 2.0 * lora) * keys
    return flops, keys * latent + num_decode * (latent + qo)


# --- DeepSeek sparse attention (DSA: DeepSeek-V3.2, GLM-5) on MLA layers --------------------------------
# A lightning indexer (index_n_heads x index_head_dim, FP8) scores every cached token for each query; the
# query then attends, in the absorbed (multi-query over the latent) form, to its top ``index_topk`` keys:
# min(p, topk) keys at position p, the same count as a sliding window of topk. Indexer keys are cached
# (``ModelSpec.indexer_bytes_per_token_layer``) and read once per step for the whole context.


def dsa_prefill(model, heads: int, chunks: Iterable[tuple[int, int]]) -> tuple[float, float, float, float]:
    """(attention FLOPs, attention bytes, indexer FLOPs, indexer bytes) of one DSA layer's prefill chunks."""
    r, lora, k = model.qk_rope_head_dim, model.kv_lora_rank, model.index_topk
    latent = (lora + r) * model.kv_bytes_per_element
    qo = heads * ((lora + r) + lora) * ACT_BYTES
    idx = model.indexer_bytes_per_token_layer()
    pairs = full = 0.0
    a_bytes = i_bytes = 0.0
    for n, c in chunks:
        pairs += window_pairs(n, c, k)
        full += n * c + n * (n + 1) / 2.0
        a_bytes += (c + n) * latent + n * (latent + qo)
        i_bytes += (c + n) * idx + n * idx
    a_flops = heads * (2.0 * (lora + r) + 2.0 * lora) * pairs
    return a_flops, a_bytes, 2.0 * model.index_n_heads * model.index_head_dim * full, i_bytes


def dsa_decode(model, heads: int, num_decode: int, sum_context: int) -> tuple[float, float, float, float]:
    """(attention FLOPs, attention bytes, indexer FLOPs, indexer bytes) of one DSA layer's decodes."""
    r, lora = model.qk_rope_head_dim, model.kv_lora_rank
    keys = window_decode_keys(num_decode, sum_context, model.index_topk)
    latent = (lora + r) * model.kv_bytes_per_element
    qo = heads * ((lora + r) + lora) * ACT_BYTES
    idx = model.indexer_bytes_per_token_layer()
    scored = sum_context + num_decode
    return (heads * (2.0 * (lora + r) + 2.0 * lora) * keys, keys * latent + num_decode * (latent + qo),
            2.0 * model.index_n_heads * model.index_head_dim * scored, scored * idx + num_decode * idx)
