"""Token-length samplers (plain numpy functions; all lengths in tokens)."""

from __future__ import annotations

import numpy as np


def round_half_up(x: np.ndarray) -> np.ndarray:
    """Round non-negative values half away from zero (Go's math.Round), not numpy's half-to-even."""
    return np.floor(np.asarray(x, dtype=np.float64) + 0.5).astype(np.int64)


def clamped_gaussian(
    rng: np.random.Generator, n: int, mean: float, std: float, lo: int, hi: int
) -> np.ndarray:
    """``n`` lengths ``round(clamp(N(mean, std), lo, hi))`` as int64 tokens.

    Same rule as the reference simulator's length sampler: a single Gaussian draw per request, clamped to
    ``[lo, hi]`` and rounded half away from zero; ``lo == hi`` gives ``lo`` without drawing.
    """
    if lo == hi:
        return np.full(n, lo, dtype=np.int64)
    x = rng.normal(mean, std, n) if std > 0 else np.full(n, float(mean))
    return round_half_up(np.clip(x, lo, hi))


def retokenized_lengths(
    rng: np.random.Generator, n: int, nominal: int, inflation: float, noise: float
) -> np.ndarray:
    """Token counts of ``n`` texts built from ``nominal`` random token ids and tokenized again.

    Decoding random ids and re-tokenizing changes the count: the mean grows by ``inflation`` (a ratio) and
    the spread grows with the square root of the length (``noise`` tokens per sqrt(token)). With
    ``inflation == 1`` and ``noise == 0`` the count is exactly ``nominal``.
    """
    if inflation == 1.0 and noise == 0.0:
        return np.full(n, nominal, dtype=np.int64)
    x = nominal * inflation + noise * np.sqrt(nominal) * rng.standard_normal(n)
    return round_half_up(np.maximum(x, 0.0))
