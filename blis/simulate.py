"""The public entry point `simulate(config)`: one instance (`SimConfig`) or a cluster (`ClusterConfig`).

The work happens in `blis.run` (resolve, build instances, run) and `blis.report` (summary and tables);
`blis.cluster` adds routing, admission and P/D around the same path. Pure: no global state and no files;
the same config and seed give the same result, byte for byte.
"""

from __future__ import annotations

from typing import Optional, Union

from blis.config import SimConfig
from blis.result import SimResult
from blis.run import ProgressFn, choose_latency_model, run_single
from blis.workload.request_table import RequestTable

__all__ = ["ProgressFn", "choose_latency_model", "simulate"]


def simulate(config: Union[SimConfig, "ClusterConfig"], requests: Optional[RequestTable] = None,  # noqa: F821
             progress: Optional[ProgressFn] = None) -> SimResult:
    """Simulate ``config``: one serving instance, or a cluster when it is a `blis.ClusterConfig`
    (``requests`` replaces ``config.workload``; ``progress(fraction)`` is called as the run advances)."""
    from blis.cluster.config import ClusterConfig

    if isinstance(config, ClusterConfig):
        from blis.cluster.cluster import simulate_cluster  # not imported by a single-instance run

        return simulate_cluster(config, requests, progress)
    if not isinstance(config, SimConfig):
        raise TypeError(f"simulate needs a blis.SimConfig or blis.ClusterConfig, not {type(config).__name__}")
    return run_single(config, requests, progress)
