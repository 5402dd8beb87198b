"""A simulation's summary under the metric names of `vllm bench serve` (its ``--save-result`` JSON), so a
simulated run and a measured one can be diffed key by key.

vLLM's definitions (``vllm/benchmarks/serve.py``): TTFT and E2EL per request; TPOT per request with more than
one output token = (E2EL - TTFT) / (output tokens - 1); ITL = every gap between consecutive tokens;
``duration`` from the first send to the last response; throughputs are totals over completed requests divided
by ``duration``. Times in milliseconds (``duration`` in seconds), as vLLM writes them.
"""

from __future__ import annotations

import numpy as np

# vLLM's metric prefixes -> ours (per-request columns; ITL only in the summary)
_METRICS = {"ttft": "ttft_ms", "tpot": "tpot_ms", "e2el": "e2e_ms"}


def vllm_bench_summary(result, percentiles: tuple[float, ...] = (99.0,)) -> dict:
    """``result`` (a SimResult) as a `vllm bench serve` result dict: completed, totals, throughputs and
    mean/median/std/p99 of TTFT, TPOT, ITL and E2EL (ms). ITL has no std (blis keeps no per-token samples)."""
    req = result.request_columns
    s = result.summary
    done = np.asarray(req["finished"], dtype=bool)
    arrival = np.asarray(req["arrival_ms"], dtype=np.float64)
    finish = np.asarray(req["finish_ms"], dtype=np.float64)
    duration_s = (float(np.nanmax(finish[done])) - float(arrival.min())) / 1000.0 if done.any() else 0.0
    out_tokens = int(np.asarray(req["output_tokens"])[done].sum())
    in_tokens = int(np.asarray(req["input_tokens"])[done].sum())
    out: dict = {
        "duration": round(duration_s, 6),
        "completed": int(done.sum()),
        "failed": int(len(done) - done.sum()),
        "total_input_tokens": in_tokens,
        "total_output_tokens": out_tokens,
        "request_throughput": _rate(done.sum(), duration_s),
        "output_throughput": _rate(out_tokens, duration_s),
        "total_token_throughput": _rate(in_tokens + out_tokens, duration_s),
    }
    for name, col in _METRICS.items():
        values = np.asarray(req[col], dtype=np.float64)[done]
        values = values[~np.isnan(values)]
        out.update(_stats(name, values, percentiles))
    out["mean_itl_ms"] = s.get("itl_mean_ms")
    out["median_itl_ms"] = s.get("itl_p50_ms")
    out["std_itl_ms"] = None
    for p in percentiles:
        key = f"itl_p{p:g}_ms"
        out[f"p{p:g}_itl_ms"] = s.get(key)
    return out


def _rate(count: float, seconds: float) -> float | None:
    return round(float(count) / seconds, 6) if seconds > 0 else None


def _stats(name: str, values: np.ndarray, percentiles: tuple[float, ...]) -> dict:
    if len(values) == 0:
        empty: dict = {f"mean_{name}_ms": None, f"median_{name}_ms": None, f"std_{name}_ms": None}
        empty.update({f"p{p:g}_{name}_ms": None for p in percentiles})
        return empty
    out = {
        f"mean_{name}_ms": round(float(values.mean()), 6),
        f"median_{name}_ms": round(float(np.median(values)), 6),
        f"std_{name}_ms": round(float(values.std()), 6),
    }
    for p in percentiles:
        out[f"p{p:g}_{name}_ms"] = round(float(np.percentile(values, p)), 6)
    return out
