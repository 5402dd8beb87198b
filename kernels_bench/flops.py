"""FLOP and byte counts of the measured kernels, and the derived rates (MFU, achieved bandwidth).

Conventions:
- One multiply-add is 2 FLOPs.
- Bytes are the fewest a kernel must move through device memory: each input read once, each output
  written once. Achieved bandwidth from them is a lower bound on what the kernel really moved, so a
  value above the memory's peak means the timing is wrong (or the data came from cache).
- Causal prefill attention counts half of the full ``seq_len x seq_len`` score square: the masked half
  is skipped by every kernel measured here.
"""

from __future__ import annotations

from collections.abc import Sequence


def gemm_flops(m: int, k: int, n: int) -> float:
    """FLOPs of ``[m, k] @ [k, n]``."""
    return 2.0 * m * k * n


def gemm_bytes(m: int, k: int, n: int, in_bytes: float, out_bytes: float) -> float:
    """Bytes of a GEMM: read A ``[m, k]`` and B ``[k, n]`` at ``in_bytes`` each, write C ``[m, n]``."""
    return (m * k + k * n) * in_bytes + m * n * out_bytes


def prefill_attention_flops(
    seq_lens: Sequence[int], num_heads: int, head_dim: int, causal: bool = True
) -> float:
    """FLOPs of prefill self-attention over a batch of sequences (query length == key length each).

    Per sequence of length S and per query head: ``Q K^T`` is ``2 S S D`` and ``P V`` another ``2 S S D``,
    so ``4 S^2 D``; causal masking halves it. Grouped-query attention does not change the count (the
    FLOPs follow the query heads).
    """
    full = sum(4.0 * s * s * head_dim * num_heads for s in seq_lens)
    return full / 2.0 if causal else full


def prefill_attention_bytes(
    seq_lens: Sequence[int], num_heads: int, num_kv_heads: int, head_dim: int, elem_bytes: float
) -> float:
    """Bytes of prefill attention: read Q, K, V and write O once (no score matrix in memory)."""
    tokens = sum(seq_lens)
    return tokens * head_dim * elem_bytes * (2 * num_heads + 2 * num_kv_heads)


def decode_attention_flops(batch_size: int, num_heads: int, kv_len: int, head_dim: int) -> float:
    """FLOPs of one decode step's attention: each of ``batch_size`` queries (one token) attends to
    ``kv_len`` cached tokens: ``4 kv_len D`` per query head."""
    return 4.0 * batch_size * num_heads * kv_len * head_dim


def decode_attention_bytes(
    batch_size: int,
    num_heads: int,
    num_kv_heads: int,
    kv_len: int,
    head_dim: int,
    q_bytes: float,
    kv_bytes: float,
) -> float:
    """Bytes of one decode step's attention: the K and V caches (``2 kv_len Hkv D`` elements per
    sequence) read once, plus the query read and the output written (``H D`` each)."""
    kv = 2.0 * batch_size * kv_len * num_kv_heads * head_dim * kv_bytes
    qo = 2.0 * batch_size * num_heads * head_dim * q_bytes
    return kv + qo


def achieved_flops(flops: float, latency_us: float) -> float:
    """FLOP/s achieved by ``flops`` in ``latency_us`` microseconds."""
    if latency_us <= 0:
        raise ValueError(f"latency_us must be > 0, got {latency_us}")
    return flops / (latency_us * 1e-6)


def mfu(flops: float, latency_us: float, peak_flops: float) -> float:
    """Model FLOPs utilisation: ``flops / (latency x peak)`` (latency in microseconds, peak in FLOP/s)."""
    if peak_flops <= 0:
        raise ValueError(f"peak_flops must be > 0, got {peak_flops}")
    return achieved_flops(flops, latency_us) / peak_flops


def achieved_bandwidth(nbytes: float, latency_us: float) -> float:
    """Bytes per second for ``nbytes`` moved in ``latency_us`` microseconds."""
    if latency_us <= 0:
        raise ValueError(f"latency_us must be > 0, got {latency_us}")
    return nbytes / (latency_us * 1e-6)
