"""Physically meaningful ranges of every fitted parameter, and the search space built on them.

A fit never leaves these ranges (the search clips to them), and a penalty pulls each parameter toward its
prior (the per-GPU physics) by the squared log-ratio, capped at 1 (a factor of e) so that a parameter whose
true value is near 0 is not held at its prior at any cost: ``penalty = weight x mean_i min(log(p_i /
prior_i)^2, 1)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

# name: (low, high, why). Efficiencies are fractions of the datasheet peak; overheads are microseconds.
ROOFLINE_RANGES: dict[str, tuple[float, float, str]] = {
    "queueing_base_us": (0.0, 50_000.0, "API-server time before the engine sees a request: under 50 ms"),
    "step_overhead_us": (0.0, 5_000.0, "CPU scheduling and launch per engine step: under 5 ms"),
    "layer_overhead_us": (0.0, 100.0, "launch gaps per layer and step: under 100 us"),
    "bw_efficiency": (0.5, 1.0, "fraction of datasheet HBM bandwidth for weights; below 0.5 means a missing term"),
    "bw_efficiency_attention": (0.3, 1.0, "fraction of datasheet HBM bandwidth for KV-cache reads"),
    "mfu_decode": (0.3, 1.0, "fraction of peak tensor FLOP/s for decode GEMMs"),
}

# blackbox (a0, a1, b0, b1, b2); a2 stays 0 (see blis.calibrate.blackbox_fit)
BLACKBOX_NAMES = ("a0", "a1", "b0", "b1", "b2")
BLACKBOX_RANGES: dict[str, tuple[float, float, str]] = {
    "a0": (0.0, 50_000.0, "API-server delay per request (us): under 50 ms"),
    "a1": (0.0, 20.0, "API-server delay per prompt token (us/token): tokenising is ~1 us/token"),
    "b0": (0.0, 50_000.0, "fixed step time (us): under 50 ms"),
    "b1": (0.0, 1_000.0, "step time per prefill token (us/token)"),
    "b2": (0.0, 2_000.0, "step time per decode token (us/token)"),
}


@dataclass(frozen=True)
class Space:
    """Search coordinates x = log(p / prior) (x = 0 is the prior), clipped to the ranges.

    A prior of 0 is replaced by ``floor`` (so a parameter whose prior is 0 can still move)."""

    names: tuple[str, ...]
    prior: np.ndarray
    low: np.ndarray
    high: np.ndarray

    @classmethod
    def build(cls, names: Sequence[str], prior: Mapping[str, float], ranges: Mapping[str, tuple]) -> Space:
        lo = np.array([ranges[n][0] for n in names], dtype=np.float64)
        hi = np.array([ranges[n][1] for n in names], dtype=np.float64)
        floor = np.maximum(lo, hi * 1e-3)
        p = np.array([max(float(prior[n]), f) for n, f in zip(names, floor)], dtype=np.float64)
        return cls(tuple(names), np.clip(p, np.maximum(lo, 1e-12), hi), lo, hi)

    def params(self, x: np.ndarray) -> dict[str, float]:
        v = np.clip(self.prior * np.exp(np.clip(x, -30, 30)), self.low, self.high)
        return {n: float(a) for n, a in zip(self.names, v)}

    def coords(self, params: Mapping[str, float]) -> np.ndarray:
        v = np.array([max(float(params[n]), 1e-12) for n in self.names], dtype=np.float64)
        return np.log(np.clip(v, np.maximum(self.low, 1e-12), self.high) / self.prior)

    def penalty(self, x: np.ndarray, weight: float) -> float:
        if weight == 0:
            return 0.0
        p = np.array(list(self.params(x).values()))
        return float(weight * np.mean(np.minimum(np.log(p / self.prior) ** 2, 1.0)))


def in_range(params: Mapping[str, float], ranges: Mapping[str, tuple]) -> list[str]:
    """Parameters outside their range, as 'name=value not in [lo, hi]' (empty when all are inside)."""
    bad = []
    for k, v in params.items():
        if k in ranges:
            lo, hi, _ = ranges[k]
            if not (math.isfinite(v) and lo <= v <= hi):
                bad.append(f"{k}={v:g} not in [{lo:g}, {hi:g}]")
    return bad
