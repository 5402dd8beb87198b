"""The search: scipy's Nelder-Mead with a cache and an evaluation budget (scipy is an optional dependency)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from blis.errors import BlisInputError


@dataclass
class SearchTrace:
    evals: int = 0
    best: float = math.inf
    history: list[float] = field(default_factory=list)


def _scipy_optimize(*names: str):
    """scipy.optimize functions, or a one-line error saying how to install scipy (an optional dependency)."""
    try:
        import scipy.optimize as opt
    except ModuleNotFoundError as exc:
        raise BlisInputError("calibrate needs scipy: pip install 'blis[calibrate]'") from exc
    found = tuple(getattr(opt, n) for n in names)
    return found if len(found) > 1 else found[0]


def nelder_mead(loss: Callable[[np.ndarray], float], x0: np.ndarray, max_evals: int, step: float = 0.25,
                trace: SearchTrace | None = None) -> np.ndarray:
    """Minimise ``loss`` from ``x0`` (scipy's Nelder-Mead, at most ``max_evals`` calls; initial simplex
    moves each coordinate by ``step``; coordinates are log-ratios to the prior, see `blis.calibrate.ranges`)."""
    minimize = _scipy_optimize("minimize")

    trace = trace or SearchTrace()
    cache: dict[tuple, float] = {}

    def wrapped(x: np.ndarray) -> float:
        key = tuple(np.round(x, 10))
        if key not in cache:
            cache[key] = loss(x)
            trace.evals += 1
            trace.best = min(trace.best, cache[key])
            trace.history.append(cache[key])
        return cache[key]

    if max_evals <= 0:
        wrapped(x0)
        return x0
    n = len(x0)
    simplex = [x0]
    for i in range(n):
        x = x0.copy()
        x[i] = x[i] + step
        simplex.append(x)
    res = minimize(wrapped, x0, method="Nelder-Mead",
                   options={"maxfev": max_evals, "initial_simplex": np.array(simplex), "xatol": 1e-3,
                            "fatol": 1e-4})
    return np.asarray(res.x)

