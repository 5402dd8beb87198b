"""Mixture-of-experts routing under tensor and expert parallelism: experts hit, the busiest GPU's load,
the all-to-all traffic.

Routing is modelled as uniform: each token picks ``k`` distinct experts of ``E`` at random (a balanced
router, which is what auxiliary-loss / bias balancing aims for; real routers are more skewed, so the
imbalance below is a lower bound).

Expert parallelism (``ep``): the ``E`` experts are split evenly over ``ep`` GPUs (E/ep each). A token's k
picks land on GPU g with the hypergeometric law (k draws, E/ep of E marked), so over T tokens the rows GPU
g computes have mean mu = T k / ep and variance sigma^2 = T k (1/ep) (1 - 1/ep) (E - k) / (E - 1). The
step waits for the busiest GPU, so the expert GEMMs are costed at the expected maximum over the ep GPUs,
E[max] ~= mu + sigma * z(ep), z(ep) = expected maximum of ep independent standard normals (Gaussian
approximation; z(2) = 0.564, z(4) = 1.029, z(8) = 1.424, z(16) = 1.766, z(32) = 2.070, z(64) = 2.335), capped
at T * min(k, E/ep). The mean (mu) would hide the imbalance that grows as T k / ep falls.

All-to-all (DeepEP-style dispatch and combine, one each per MoE layer): tokens are split over the ep
GPUs (T/ep each); each sends the hidden vector of each of its T/ep x k routed copies whose expert lives
elsewhere ((ep - 1)/ep of them) and receives the same back on combine: per GPU and per direction
T/ep x k x (ep - 1)/ep x hidden x activation bytes.
"""

from __future__ import annotations

import math
from statistics import NormalDist

# E[max of n iid N(0,1)], exact values for powers of two (order-statistics tables)
_Z_MAX = {1: 0.0, 2: 0.5642, 3: 0.8463, 4: 1.0294, 5: 1.1630, 6: 1.2672, 7: 1.3522, 8: 1.4236, 16: 1.7660,
          32: 2.0697, 64: 2.3344}


def expected_max_normal(n: int) -> float:
    """Expected maximum of ``n`` independent standard normal variables (tabulated for n <= 8 and powers
    of two; Blom's approximation Phi^-1((n - 0.375) / (n + 0.25)) otherwise, within 1 % for n >= 9)."""
    if n in _Z_MAX:
        return _Z_MAX[n]
    return NormalDist().inv_cdf((n - 0.375) / (n + 0.25))


def expected_active_experts(tokens: float, num_experts: int, experts_per_token: int) -> float:
    """Expected distinct experts hit when ``tokens`` tokens each pick ``experts_per_token`` of
    ``num_experts`` uniformly: E * (1 - (1 - k/E) ** T). 0 for no tokens or a dense model."""
    if tokens <= 0 or num_experts <= 0:
        return 0.0
    return num_experts * (1.0 - (1.0 - experts_per_token / num_experts) ** tokens)


def expert_rows_busiest_gpu(tokens: float, num_experts: int, k: int, ep: int) -> float:
    """Expected (token, expert) rows on the busiest of ``ep`` GPUs (module docstring); T k when ep = 1."""
    if tokens <= 0:
        return 0.0
    if ep <= 1:
        return tokens * k
    mu = tokens * k / ep
    var = tokens * k * (1.0 / ep) * (1.0 - 1.0 / ep) * (num_experts - k) / max(1, num_experts - 1)
    cap = tokens * min(k, num_experts // ep)
    return min(cap, mu + math.sqrt(var) * expected_max_normal(ep))


def all_to_all_bytes_per_layer(tokens: float, hidden: int, k: int, ep: int, act_bytes: float = 2.0) -> float:
    """Bytes one GPU sends in one MoE layer's dispatch plus combine (module docstring)."""
    if ep <= 1 or tokens <= 0:
        return 0.0
    return 2.0 * (tokens / ep) * k * (ep - 1) / ep * hidden * act_bytes
