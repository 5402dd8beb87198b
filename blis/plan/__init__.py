"""Capacity planner: the cheapest deployment that meets the SLOs (`blis plan`, `blis.plan(...)`).

    import blis
    df = blis.plan(model="llama-3.1-8b", hardware=["H100", "A100"], tp=[1, 2, 4, 8],
                   workload=blis.Workload.preset("chatbot"), ttft_p99_ms=200, tpot_p99_ms=50)

The module itself is callable: ``blis.plan(...)`` is ``blis.plan.plan(...)``. Pieces: `spec` (SLO, search
settings, candidates), `stability` (the rule a probe is judged by), `probe` (one simulation), `search`
(bisection and replica search), `runner` (serial, process pool, Ray), `pricing`, `report` (rows, plot).
"""

from __future__ import annotations

import sys
import types

from blis.plan.spec import SLO, Candidate, SearchSettings

__all__ = ["SLO", "Candidate", "SearchSettings", "plan", "plot_pareto", "load_prices", "STABILITY_RULE"]


def plan(*args, **kwargs):
    from blis.plan.planner import plan as _plan

    return _plan(*args, **kwargs)


plan.__doc__ = "See blis.plan.planner.plan."


def plot_pareto(df, path=None, **kwargs):
    """Pareto plot of a plan (throughput per GPU against P99 latency); needs matplotlib."""
    from blis.plan.report import plot_pareto as _plot

    return _plot(df, path, **kwargs)


def load_prices(path=None):
    from blis.plan.pricing import load_prices as _load

    return _load(path)


def __getattr__(name):
    if name == "STABILITY_RULE":
        from blis.plan.report import STABILITY_RULE

        return STABILITY_RULE
    raise AttributeError(name)


class _CallableModule(types.ModuleType):
    def __call__(self, *args, **kwargs):
        return plan(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
