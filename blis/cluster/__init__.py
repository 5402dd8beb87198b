"""Clusters: many serving instances on one simulated clock, with routing, admission control and
prefill/decode disaggregation.

    from blis.cluster import ClusterConfig, simulate_cluster
    cfg = ClusterConfig(num_instances=4, routing="least-loaded",
                        workload=blis.Workload.preset("chatbot", rate=160, num_requests=2000))
    res = simulate_cluster(cfg)
    res.summary, res.requests, res.instances
"""

from typing import TYPE_CHECKING

from blis.cluster.config import ClusterConfig, PoolConfig, load_cluster_file

if TYPE_CHECKING:  # pragma: no cover
    from blis.cluster.admission import available_admission_policies, register_admission_policy
    from blis.cluster.cluster import simulate_cluster
    from blis.cluster.routing import available_routers, available_scorers, register_router, register_scorer

# imported on first use (PEP 562): the CLI builds its cluster flags from the config alone (fast start)
_LAZY = {"available_admission_policies": "admission", "register_admission_policy": "admission",
         "simulate_cluster": "cluster", "available_routers": "routing", "available_scorers": "routing",
         "register_router": "routing", "register_scorer": "routing"}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'blis.cluster' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"blis.cluster.{_LAZY[name]}"), name)
    globals()[name] = value
    return value


__all__ = [
    "ClusterConfig",
    "PoolConfig",
    "available_admission_policies",
    "available_routers",
    "available_scorers",
    "load_cluster_file",
    "register_admission_policy",
    "register_router",
    "register_scorer",
    "simulate_cluster",
]
