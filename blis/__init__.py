"""blis: simulate LLM inference serving (vLLM-V1-style instances, pluggable latency models).

    import blis
    cfg = blis.SimConfig(model="llama-2-7b", hardware="H100", tp=1,
                         workload=blis.Workload.preset("chatbot", rate=10, num_requests=500, seed=42))
    res = blis.simulate(cfg)
    res.summary, res.requests, res.steps, res.instances

`simulate` also runs a `ClusterConfig` (the same as `simulate_cluster`). The code is laid out in
docs/architecture.md: `blis.run` (resolve, build, run) and `blis.report` (summary and tables) serve both.
"""

from blis import plan  # noqa: E402  the capacity planner; the module is callable: blis.plan(...)
from blis.cluster import ClusterConfig, PoolConfig, simulate_cluster
from blis.config import EngineConfig, SimConfig
from blis.result import SimResult
from blis.simulate import simulate
from blis.sweep import SweepResult, sweep
from blis.workload.request_table import RequestTable
from blis.workload.spec import Workload

__all__ = ["ClusterConfig", "EngineConfig", "PoolConfig", "RequestTable", "SimConfig", "SimResult", "SweepResult",
           "Workload", "plan", "simulate", "simulate_cluster", "sweep"]
__version__ = "0.1.0"
