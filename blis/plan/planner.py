"""`plan(...)`: the cheapest deployments meeting the SLOs, as a DataFrame (one row per candidate)."""

from __future__ import annotations

import time
from itertools import product
from typing import Any, Iterable, Optional, Union

from blis.errors import BlisInputError
from blis.plan.pricing import load_prices
from blis.plan.probe import Load
from blis.plan.progress import PlanProgress
from blis.plan.report import STABILITY_RULE, build_rows
from blis.plan.runner import drive, make_backend
from blis.plan.search import Context, chain_search
from blis.plan.spec import SLO, Candidate, SearchSettings

Axis = Union[None, Any, Iterable[Any]]


def _axis(value: Axis, name: str, kind=None) -> list:
    if value is None:
        return [None]
    if isinstance(value, str):
        items = [v.strip() for v in value.split(",") if v.strip()]
    elif isinstance(value, (list, tuple)) and not (name == "pd" and len(value) == 2 and
                                                     all(isinstance(v, int) for v in value)):
        items = list(value)
    else:
        items = [value]
    if not items:
        raise BlisInputError(f"{name}: give at least one value")
    out = []
    for item in items:
        if kind is not None:
            try:
                item = kind(item)
            except (TypeError, ValueError):
                allowed = getattr(kind, "allowed", None)
                raise BlisInputError(f"{name}: {item!r} is not valid" + (f" (allowed: {allowed})" if allowed else "")) \
                    from None
        if item in out:
            raise BlisInputError(f"{name}: {item!r} given twice")
        out.append(item)
    return out


def _pd(value) -> Optional[tuple[int, int]]:
    """'P:D' (prefill:decode instances per unit), a (P, D) pair, or 'none'."""
    if value is None or (isinstance(value, str) and value.lower() in ("none", "0", "")):
        return None
    if isinstance(value, str):
        p, sep, d = value.partition(":")
        if not sep:
            raise ValueError(value)
        value = (int(p), int(d))
    p, d = (int(x) for x in value)
    if not (1 <= p <= 64 and 1 <= d <= 64):
        raise ValueError(value)
    return (p, d)


def _positive_int(lo: int, hi: int):
    def conv(v):
        if isinstance(v, bool):
            raise ValueError(v)
        n = int(v)
        if n != float(v) or not (lo <= n <= hi):
            raise ValueError(v)
        return n

    conv.allowed = f"an integer >= {lo} and <= {hi}"
    return conv


def expand_candidates(model, hardware, tp, max_num_seqs=None, max_num_batched_tokens=None, pd=None,
                      routing=None) -> list[Candidate]:
    models = _axis(model, "model", str)
    hws = _axis(hardware, "hardware", str)
    tps = _axis(tp, "tp", _positive_int(1, 64))
    seqs = _axis(max_num_seqs, "max_num_seqs", _positive_int(1, 65536))
    btoks = _axis(max_num_batched_tokens, "max_num_batched_tokens", _positive_int(1, 1_048_576))
    pds = _axis(pd, "pd", _pd)
    routes = _axis(routing, "routing", str)
    if None in models or None in hws or None in tps:
        raise BlisInputError("model/hardware/tp: give at least one value each")
    out = []
    for m, h, s, b, p, r in product(models, hws, seqs, btoks, pds, routes):
        for t in sorted(tps):
            out.append(Candidate(m, h, t, s, b, p, r or "least-loaded"))
    return out


def _check_candidate(cand: Candidate, base: dict, load: Load) -> None:
    """Fail fast with the candidate named (unknown GPU, TP not dividing the heads, KV cache too small, ...):
    build its configuration and, for a rate-scalable workload, run 200 requests at 1 request/s."""
    from blis.plan.probe import ProbeTask, build_config, simulate_task

    task = ProbeTask(cand, base, load, SLO(ttft_p99_ms=1.0), SearchSettings(min_requests=200),
                     1.0 if load.scalable else None, 0)
    try:
        if load.scalable:
            simulate_task(task)
        else:
            build_config(task)
    except ValueError as exc:  # BlisInputError and pydantic's ValidationError
        msg = str(exc)
        if hasattr(exc, "errors"):
            err = exc.errors()[0]
            msg = f"{'.'.join(str(p) for p in err['loc'])}: {str(err['msg']).removeprefix('Value error, ')}"
        raise BlisInputError(f"candidate {cand.label()}: {msg}") from None


def plan(model: Axis = "llama-2-7b", hardware: Axis = "H100", tp: Axis = 1, workload=None, *,
         rate: Optional[float] = None, slo: Union[SLO, dict, None] = None, ttft_p99_ms: Optional[float] = None,
         tpot_p99_ms: Optional[float] = None, e2e_p99_ms: Optional[float] = None, goodput: Optional[float] = None,
         max_num_seqs: Axis = None, max_num_batched_tokens: Axis = None, pd: Axis = None, routing: Axis = None,
         latency_model: Optional[str] = None, hardware_file: Optional[str] = None,
         calibration_file: Optional[str] = None, engine=None, prices=None, workers: Optional[int] = None,
         ray_address: Optional[str] = None, progress: Optional[bool] = False,
         settings: Union[SearchSettings, dict, None] = None, details: bool = False):
    """Search deployments of ``model`` on ``hardware`` x ``tp`` (x engine limits, P/D split, routing) that meet
    the SLOs for ``workload`` (any blis.Workload; default the chatbot preset).

    Without ``rate``: each candidate's maximum sustainable rate per instance (requests/s) meeting the SLOs.
    With ``rate`` (requests/s), or a workload whose load is fixed (a trace, load stages, a closed loop): the
    fewest replicas (and GPUs) and the cost per hour that meet the SLOs at that load.

    SLOs: ``slo=blis.plan.SLO(...)`` or a dict, or ``ttft_p99_ms``/``tpot_p99_ms``/``e2e_p99_ms`` (ms) and
    ``goodput`` (fraction of requests meeting every limit). Axes accept one value, a list, or a comma string.
    ``pd``: "P:D" prefill:decode instances per serving unit. ``prices``: a YAML price file overriding the
    shipped table. ``workers``: local processes (None = CPUs; 1 = in this process); ``ray_address``: run the
    probes as Ray tasks instead. Returns a DataFrame sorted by cost (see ``blis.plan.report.COLUMNS``);
    ``df.attrs["plan"]`` holds the question, the stability rule, the price source and timings. With
    ``details=True`` returns (DataFrame, outcomes) where outcomes hold every probe's trail.
    """
    import blis

    t_start = time.monotonic()
    if slo is None:
        slo = SLO(ttft_p99_ms=ttft_p99_ms, tpot_p99_ms=tpot_p99_ms, e2e_p99_ms=e2e_p99_ms, goodput=goodput)
    elif isinstance(slo, dict):
        slo = SLO(**slo)
    elif any(v is not None for v in (ttft_p99_ms, tpot_p99_ms, e2e_p99_ms, goodput)):
        raise BlisInputError("slo: give either slo=... or the *_p99_ms/goodput limits, not both")
    if settings is None:
        settings = SearchSettings()
    elif isinstance(settings, dict):
        settings = SearchSettings(**settings)
    if workload is None:
        workload = blis.Workload.preset("chatbot")
    if not isinstance(workload, blis.Workload):
        raise BlisInputError(f"workload: expected a blis.Workload, got {type(workload).__name__}")
    load = Load.of(workload)
    if rate is not None:
        if not (isinstance(rate, (int, float)) and 0 < rate <= 1e7):
            raise BlisInputError(f"rate: must be a number in (0, 1e7] requests/s, got {rate!r}")
        if not load.scalable:
            raise BlisInputError("rate: this workload's arrivals are fixed (trace, load stages or closed loop); "
                                 "the planner sizes for its own load, so --rate does not apply")
    fixed_load = not load.scalable
    if not fixed_load and rate is None and routing is not None and pd is None:
        raise BlisInputError("routing: only used with --rate (replicas behind a router) or a P/D split")
    candidates = expand_candidates(model, hardware, tp, max_num_seqs, max_num_batched_tokens, pd, routing)
    base: dict = {"latency_model": latency_model, "hardware_file": hardware_file,
                  "calibration_file": calibration_file,
                  "engine": (engine.model_dump() if engine is not None else {})}
    base = {k: v for k, v in base.items() if v is not None}
    price_table = load_prices(prices)
    for cand in candidates:
        _check_candidate(cand, base, load)
    target = rate if rate is not None else (load.native_rate if fixed_load else None)  # a trace's own rate
    ctx = Context(base=base, load=load, slo=slo, settings=settings, target_rate=target, fixed_load=fixed_load)
    chains: dict = {}
    for cand in candidates:
        key = cand.chain_key if settings.reuse_brackets else (cand,)
        chains.setdefault(key, []).append(cand)
    backend = make_backend(workers, ray_address)
    bar = PlanProgress(len(candidates), progress, backend.name)
    try:
        searches = [chain_search(ctx, chain, bar.candidate_done) for chain in chains.values()]
        results = drive(backend, searches, bar.probes)
    finally:
        bar.close()
        backend.close()
    outcomes = [o for chain in results for o in chain]
    df = build_rows(outcomes, ctx, price_table)
    question = "max_rate_per_instance" if rate is None and not fixed_load else "fewest_gpus_at_rate"
    df.attrs["plan"] = {
        "question": question,
        "target_rate": None if target is None else round(target, 3),
        "slo": slo.model_dump(exclude_none=True),
        "workload": workload.label,
        "stability_rule": STABILITY_RULE,
        "settings": settings.model_dump(),
        "prices": {"source": price_table.source, "date": price_table.date},
        "backend": backend.name,
        "workers": backend.workers,
        "probes": sum(o.probes for o in outcomes),
        "wall_s": round(time.monotonic() - t_start, 3),
    }
    return (df, outcomes) if details else df
