"""blis: simulate LLM inference serving (vLLM-V1-style instances, pluggable latency models).

    import blis
    cfg = blis.SimConfig(model="llama-2-7b", hardware="H100", tp=1,
                         workload=blis.Workload.preset("chatbot", rate=10, num_requests=500, seed=42))
    res = blis.simulate(cfg)
    res.summary, res.requests, res.steps, res.instances

`simulate` also runs a `ClusterConfig` (the same as `simulate_cluster`). The code is laid out in
docs/architecture.md: `blis.run` (resolve, build, run) and `blis.report` (summary and tables) serve both.

Every name here is imported on first use (PEP 562), and so are the submodules (``blis.config`` ...): ``import
blis`` loads neither numpy nor pydantic, so the CLI can start fast and configure the process first.
"""

import importlib
from typing import TYPE_CHECKING

from blis.simulate import simulate  # light (imports on call); bound here, so `blis.simulate` is the function

if TYPE_CHECKING:  # pragma: no cover
    from blis import plan
    from blis.cluster import ClusterConfig, PoolConfig, simulate_cluster
    from blis.config import EngineConfig, SimConfig
    from blis.result import SimResult
    from blis.sweep import SweepResult, sweep
    from blis.workload.request_table import RequestTable
    from blis.workload.spec import Workload

_LAZY = {"EngineConfig": "blis.config", "SimConfig": "blis.config", "SimResult": "blis.result",
         "RequestTable": "blis.workload.request_table", "Workload": "blis.workload.spec",
         "ClusterConfig": "blis.cluster", "PoolConfig": "blis.cluster", "simulate_cluster": "blis.cluster",
         "SweepResult": "blis.sweep", "sweep": "blis.sweep", "plan": None}


def __getattr__(name: str):
    if name in _LAZY:
        module = _LAZY[name]
        value = importlib.import_module("blis.plan") if module is None else getattr(importlib.import_module(module),
                                                                                       name)
        globals()[name] = value
        return value
    if not name.startswith("__"):  # a submodule, as `import blis` loaded them all before it was lazy
        try:
            return importlib.import_module(f"blis.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"blis.{name}":
                raise
    raise AttributeError(f"module 'blis' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = ["ClusterConfig", "EngineConfig", "PoolConfig", "RequestTable", "SimConfig", "SimResult", "SweepResult",
           "Workload", "plan", "simulate", "simulate_cluster", "sweep"]
__version__ = "0.1.0"
