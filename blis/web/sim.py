"""Simulations for the HTTP API, bounded in size, time and memory.

Each run happens in a forked child process with an address-space limit; the parent waits at most
``time_limit_s`` and kills the child past it. Inside, the request count is checked after the workload is
generated. Files on the server are never read: config fields that name paths are refused.
"""

from __future__ import annotations

import multiprocessing as mp
import traceback
from dataclasses import dataclass

import numpy as np

from blis.config import SimConfig

PATH_FIELDS = ("model_config_path", "hardware_file", "bench_data_path", "calibration_file")


@dataclass(frozen=True)
class Limits:
    """max_requests: per simulation. max_sweep: rates per sweep. time_limit_s: wall seconds for one API call.
    memory_bytes: address-space limit of the child process."""

    max_requests: int = 2000
    max_sweep: int = 6
    time_limit_s: float = 30.0
    memory_bytes: int = 4 * 1024**3


class SimLimitError(Exception):
    """The run would exceed a limit (HTTP 413 or 408)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def check_config(config: SimConfig, limits: Limits) -> None:
    """Refuse server-side paths and obviously oversized workloads before anything runs."""
    for name in PATH_FIELDS:
        if getattr(config, name):
            raise ValueError(f"{name}: file paths are not accepted over HTTP (use the CLI for files)")
    wl = config.workload
    if wl.trace_path is not None:
        raise ValueError("workload.trace_path: file paths are not accepted over HTTP (use the CLI for traces)")
    n = wl.num_requests or 100
    if wl.stages:
        staged = sum(s.rate * s.duration_s for s in wl.stages)
        n = min(n, staged) if wl.num_requests else staged
    if n > limits.max_requests:
        raise SimLimitError(f"workload.num_requests: {int(n)} requests exceed this server's limit of "
                            f"{limits.max_requests}", 413)


def _downsample(x: np.ndarray, n: int) -> np.ndarray:
    if len(x) <= n:
        return x
    idx = np.linspace(0, len(x) - 1, n).round().astype(int)
    return x[idx]


def summarise(result, max_points: int = 600) -> dict:
    """The API's view of one SimResult: summary, percentiles, CDF points and the step timeline."""
    return summarise_columns(result.summary, result.request_columns, result.step_columns, max_points)


def summarise_columns(s: dict, req: dict, st: dict | None, max_points: int = 600) -> dict:
    """Same from plain columns (per-request: finished, ttft_ms, e2e_ms; per-step: start_us, num_requests,
    kv_blocks_used, num_waiting), e.g. the CSV files `blis run` writes."""
    pct = {}
    for m in ("ttft", "tpot", "itl", "e2e"):
        pct[m] = {k.split("_")[1]: s.get(k) for k in s if k.startswith(m + "_p") or k == f"{m}_mean_ms"}
    fin = np.asarray(req["finished"], dtype=bool)
    cdf = {}
    for m in ("ttft_ms", "e2e_ms"):
        v = np.sort(np.asarray(req[m], dtype=float)[fin])
        v = _downsample(v, max_points)
        cdf[m] = {"x": [round(float(a), 4) for a in v],
                  "y": [round((i + 1) / len(v), 5) for i in range(len(v))] if len(v) else []}
    timeline = None
    if st is not None:
        start = np.asarray(st["start_us"], dtype=float)
        order = _downsample(np.arange(len(start)), 2 * max_points)
        timeline = {
            "time_s": [round(float(start[i]) / 1e6, 6) for i in order],
            "batch": [int(st["num_requests"][i]) for i in order],
            "kv_blocks_used": [int(st["kv_blocks_used"][i]) for i in order],
            "waiting": [int(st["num_waiting"][i]) for i in order],
        }
    return {"summary": s, "percentiles": pct, "cdf": cdf, "timeline": timeline}


def _run(config_json: str, rates: list[float] | None, limits: Limits) -> dict:
    from blis.simulate import simulate
    from blis.web.charts import run_figures

    config = SimConfig.model_validate_json(config_json)
    n = len(config.workload.generate())
    if n > limits.max_requests:
        raise SimLimitError(f"workload: {n} requests exceed this server's limit of {limits.max_requests}", 413)
    if not rates:
        run = summarise(simulate(config))
        return {"run": run, "sweep": None, "figures": run_figures(run, None)}
    sweep = []
    first = None
    for rate in rates:
        cfg = config.model_copy(update={"workload": config.workload.with_overrides(rate=rate)})
        res = simulate(cfg)
        first = first or summarise(res)
        s = res.summary
        sweep.append({"rate": rate, "tokens_per_sec": s.get("tokens_per_sec"),
                      "responses_per_sec": s.get("responses_per_sec"), "ttft_p50_ms": s.get("ttft_p50_ms"),
                      "ttft_p99_ms": s.get("ttft_p99_ms"), "e2e_p50_ms": s.get("e2e_p50_ms"),
                      "e2e_p99_ms": s.get("e2e_p99_ms"), "tpot_p50_ms": s.get("tpot_p50_ms")})
    return {"run": first, "sweep": sweep, "figures": run_figures(first, sweep)}


def _child(conn, config_json: str, rates, limits: Limits) -> None:
    import resource

    try:
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
    except (ValueError, OSError):
        pass
    try:
        conn.send(("ok", _run(config_json, rates, limits)))
    except SimLimitError as exc:
        conn.send(("limit", (str(exc), exc.status)))
    except MemoryError:
        conn.send(("limit", (f"the simulation needs more than {limits.memory_bytes >> 20} MiB", 413)))
    except (ValueError, TypeError, KeyError) as exc:  # BlisInputError is a ValueError
        conn.send(("input", str(exc).splitlines()[0] if str(exc) else type(exc).__name__))
    except Exception:  # noqa: BLE001 - reported to the parent as a server error with its traceback
        conn.send(("error", traceback.format_exc(limit=5)))
    finally:
        conn.close()


def run_bounded(config: SimConfig, rates: list[float] | None, limits: Limits) -> dict:
    """Run ``config`` (or a sweep over ``rates``) in a child process within ``limits``.

    Raises SimLimitError (413 too large, 408 too slow), ValueError (bad input, 422) or RuntimeError."""
    check_config(config, limits)
    if rates is not None and len(rates) > limits.max_sweep:
        raise SimLimitError(f"sweep_rates: {len(rates)} rates exceed this server's limit of {limits.max_sweep}",
                            413)
    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(child, config.model_dump_json(), rates, limits), daemon=True)
    proc.start()
    child.close()
    try:
        if not parent.poll(limits.time_limit_s):
            raise SimLimitError(f"the simulation took longer than this server's limit of {limits.time_limit_s:g} s;"
                                " use fewer requests or the CLI", 408)
        try:
            kind, payload = parent.recv()
        except EOFError:
            raise SimLimitError("the simulation process ended without a result (memory limit?)", 413) from None
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join(5)
        parent.close()
    if kind == "ok":
        return payload
    if kind == "limit":
        raise SimLimitError(*payload)
    if kind == "input":
        raise ValueError(payload)
    raise RuntimeError(payload)
