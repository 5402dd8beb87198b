"""Clusters: many serving instances on one simulated clock, with routing, admission control and
prefill/decode disaggregation.

    from blis.cluster import ClusterConfig, simulate_cluster
    cfg = ClusterConfig(num_instances=4, routing="least-loaded",
                        workload=blis.Workload.preset("chatbot", rate=160, num_requests=2000))
    res = simulate_cluster(cfg)
    res.summary, res.requests, res.instances
"""

from blis.cluster.admission import available_admission_policies, register_admission_policy
from blis.cluster.cluster import simulate_cluster
from blis.cluster.config import ClusterConfig, PoolConfig, load_cluster_file
from blis.cluster.routing import available_routers, available_scorers, register_router, register_scorer

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
