"""Admission control at the cluster's front door: which arriving requests are served at all.

A policy sees each request once, in arrival order, and answers admit or reject. Rejected requests are
recorded (``rejected`` column, ``admission_rejected_requests`` in the summary), never dropped silently.
Policies here depend only on the arrival stream (times and sizes), not on instance state, so the cluster
decides every request up front.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np

from blis.errors import BlisInputError


class AdmissionPolicy(Protocol):
    name: str

    def admit(self, arrival_us: int, input_tokens: int) -> bool: ...


class AlwaysAdmit:
    name = "always-admit"

    def admit(self, arrival_us: int, input_tokens: int) -> bool:
        return True


class TokenBucket:
    """A bucket of ``capacity`` tokens, refilled at ``rate`` tokens/s, full at time 0; a request costs its
    prompt tokens and is rejected when the bucket holds fewer (a prompt larger than the bucket never fits)."""

    name = "token-bucket"

    def __init__(self, capacity: float, rate: float) -> None:
        if not capacity > 0:
            raise BlisInputError(f"token_bucket_capacity: must be > 0 tokens (got {capacity})")
        if not rate >= 0:
            raise BlisInputError(f"token_bucket_rate: must be >= 0 tokens/s (got {rate})")
        self.capacity = float(capacity)
        self.rate_per_us = float(rate) / 1e6
        self.level = float(capacity)
        self.last_us = 0

    def admit(self, arrival_us: int, input_tokens: int) -> bool:
        level = min(self.capacity, self.level + (arrival_us - self.last_us) * self.rate_per_us)
        self.last_us = arrival_us
        if level >= input_tokens:
            self.level = level - input_tokens
            return True
        self.level = level
        return False


_POLICIES: dict[str, Callable[..., AdmissionPolicy]] = {
    "always-admit": lambda cfg: AlwaysAdmit(),
    "token-bucket": lambda cfg: TokenBucket(cfg.token_bucket_capacity, cfg.token_bucket_rate),
}


def available_admission_policies() -> list[str]:
    return sorted(_POLICIES)


def register_admission_policy(name: str, factory: Callable[..., AdmissionPolicy]) -> None:
    """Make ``factory(cluster_config) -> AdmissionPolicy`` available as ``--admission name``."""
    _POLICIES[name] = factory


def create_admission_policy(name: str, config) -> AdmissionPolicy:
    if name not in _POLICIES:
        raise BlisInputError(f"admission: unknown policy {name!r}; available: "
                             f"{', '.join(available_admission_policies())}")
    return _POLICIES[name](config)


def admission_mask(policy: AdmissionPolicy, arrival_us: np.ndarray, input_tokens: np.ndarray) -> np.ndarray:
    """Admit (True) or reject each request, asked in arrival order."""
    if isinstance(policy, AlwaysAdmit):
        return np.ones(len(arrival_us), dtype=bool)
    admit = policy.admit
    return np.fromiter((admit(t, n) for t, n in zip(arrival_us.tolist(), input_tokens.tolist())),
                       dtype=bool, count=len(arrival_us))
