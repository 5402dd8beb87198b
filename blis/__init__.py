"""blis: simulate LLM inference serving (vLLM-V1-style instances, pluggable latency models).

    import blis
    cfg = blis.SimConfig(model="llama-2-7b", hardware="H100", tp=1,
                         workload=blis.Workload.preset("chatbot", rate=10, num_requests=500, seed=42))
    res = blis.simulate(cfg)
    res.summary, res.requests, res.steps, res.instances

`simulate` also runs a `ClusterConfig` (the same as `simulate_cluster`). The code is laid out in
docs/architecture.md: `blis.run` (resolve, build, run) and `blis.report` (summary and tables) serve both.
"""

from typing import TYPE_CHECKING

from blis.config import EngineConfig, SimConfig
from blis.result import SimResult
from blis.simulate import simulate
from blis.workload.request_table import RequestTable
from blis.workload.spec import Workload

if TYPE_CHECKING:  # pragma: no cover
    from blis import plan
    from blis.cluster import ClusterConfig, PoolConfig, simulate_cluster
    from blis.sweep import SweepResult, sweep

# imported on first use (PEP 562), so that a single-instance run does not pay for them at start-up
_LAZY = {"ClusterConfig": "blis.cluster", "PoolConfig": "blis.cluster", "simulate_cluster": "blis.cluster",
         "SweepResult": "blis.sweep", "sweep": "blis.sweep", "plan": None}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'blis' has no attribute {name!r}")
    import importlib

    module = _LAZY[name]
    value = importlib.import_module("blis.plan") if module is None else getattr(importlib.import_module(module),
                                                                                   name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = ["ClusterConfig", "EngineConfig", "PoolConfig", "RequestTable", "SimConfig", "SimResult", "SweepResult",
           "Workload", "plan", "simulate", "simulate_cluster", "sweep"]
__version__ = "0.1.0"
