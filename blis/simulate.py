"""The public entry point `simulate(config)`: one instance (`SimConfig`) or a cluster (`ClusterConfig`).

The work happens in `blis.run` (resolve, build instances, run) and `blis.report` (summary and tables);
`blis.cluster` adds routing, admission and P/D around the same path. Pure: no global state and no files;
the same config and seed give the same result, byte for byte. Imports nothing at module level, so that
``import blis`` stays light (the run path is loaded by the first call).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Optional, Union

if TYPE_CHECKING:  # pragma: no cover
    from blis.cluster.config import ClusterConfig
    from blis.config import ServingConfig, SimConfig
    from blis.result import SimResult
    from blis.workload.request_table import RequestTable

__all__ = ["ProgressFn", "choose_latency_model", "simulate"]

ProgressFn = Callable[[float], None]  # the same alias as blis.run's


def simulate(config: Union[SimConfig, ClusterConfig], requests: Optional[RequestTable] = None,
             progress: Optional[ProgressFn] = None) -> SimResult:
    """Simulate ``config``: one serving instance, or a cluster when it is a `blis.ClusterConfig`
    (``requests`` replaces ``config.workload``; ``progress(fraction)`` is called as the run advances)."""
    from blis.cluster.config import ClusterConfig
    from blis.config import SimConfig
    from blis.run import run_single

    if isinstance(config, ClusterConfig):
        from blis.cluster.cluster import simulate_cluster  # not imported by a single-instance run

        return simulate_cluster(config, requests, progress)
    if not isinstance(config, SimConfig):
        raise TypeError(f"simulate needs a blis.SimConfig or blis.ClusterConfig, not {type(config).__name__}")
    return run_single(config, requests, progress)


def choose_latency_model(config: ServingConfig) -> tuple[str, str]:
    """`blis.run.choose_latency_model`: the latency model's name and why it was chosen."""
    from blis.run import choose_latency_model as choose

    return choose(config)
