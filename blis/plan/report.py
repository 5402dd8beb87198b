"""Rows of a plan (one per candidate, sorted by cost), the table, and the Pareto plot."""

from __future__ import annotations

import math
from typing import Optional

from blis.plan.stability import METRICS, Verdict

STABILITY_RULE = (
    "Each probe simulates the candidate at one rate with 3 workload seeds, each with at least 1,500 requests "
    "and 40 s of arrivals (longer when 8 full-batch request latencies are longer; at most 20,000 requests). "
    "Warm-up is discarded: the first 20% of the arrival span or 2 mean E2E latencies, whichever is longer; a "
    "run whose remaining window is shorter than 4 mean E2E latencies is too short to show a steady state and "
    "counts as unstable. In the window the backlog (requests arrived but not finished) must not grow: its "
    "mean over the window's last 10% may exceed its mean over the middle (45-55%) by at most "
    "3 x sqrt(mean backlog + 1) + 2% of the requests arriving in between, else the probe is unstable however "
    "good its percentiles look. The SLO metrics are the p99 of TTFT/TPOT/E2E over all seeds' measured "
    "requests (unfinished = infinitely slow), with a 95% confidence interval from the per-seed p99s. A probe "
    "stops after its first seed when clearly failing (backlog growth over 3x the threshold or a p99 over 1.5x "
    "its limit) or clearly fine (growth under half the threshold and every p99 under 0.7x its limit). The max "
    "rate is bisected to 2%."
)

COLUMNS = ("model", "hardware", "tp", "max_num_seqs", "max_num_batched_tokens", "pd_split", "routing",
           "max_rate_per_instance", "rate", "replicas", "gpus", "cost_per_hour", "cost_per_million_output_tokens",
           "ttft_p99_ms", "tpot_p99_ms", "e2e_p99_ms", "ttft_p99_ci_ms", "tpot_p99_ci_ms", "e2e_p99_ci_ms",
           "goodput", "output_tokens_per_s", "output_tokens_per_s_per_gpu", "feasible", "fidelity_basis",
           "latency_model", "usd_per_gpu_hour", "probes")


def _r(x: Optional[float], nd: int = 3) -> Optional[float]:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return None
    return round(float(x), nd)


def _row(out, ctx, prices) -> dict:
    from blis.config import EngineConfig

    cand = out.candidate
    engine = EngineConfig(**ctx.base.get("engine", {}))
    question2 = ctx.target_rate is not None or ctx.fixed_load
    verdict: Optional[Verdict] = out.at_target if question2 else out.at_max
    replicas = out.replicas if question2 else (1 if out.max_rate else None)
    feasible = verdict is not None and verdict.ok
    gpus = replicas * cand.gpus_per_unit if replicas else None
    price = prices.price(cand.hardware)
    cost = _r(gpus * price, 4) if (gpus and price is not None) else None
    tok_s = verdict.output_tokens_per_s if verdict is not None else None  # of all replicas together
    row = {
        "model": cand.model,
        "hardware": cand.hardware,
        "tp": cand.tp,
        "max_num_seqs": cand.max_num_seqs or engine.max_num_seqs,
        "max_num_batched_tokens": cand.max_num_batched_tokens or engine.max_num_batched_tokens,
        "pd_split": None if cand.pd is None else f"{cand.pd[0]}:{cand.pd[1]}",
        "routing": cand.routing if (question2 or cand.pd is not None) else None,
        "max_rate_per_instance": _r(out.max_rate),
        "rate": _r(ctx.target_rate if question2 else out.max_rate),
        "replicas": replicas if feasible else None,
        "gpus": gpus if feasible else None,
        "cost_per_hour": cost if feasible else None,
        "cost_per_million_output_tokens": (_r(cost / (tok_s * 3600 / 1e6), 4)
                                           if feasible and cost is not None and tok_s else None),
        "goodput": _r(verdict.goodput, 4) if verdict else None,
        "output_tokens_per_s": _r(tok_s, 1) if verdict else None,
        "output_tokens_per_s_per_gpu": _r(tok_s / gpus, 1) if (verdict and gpus) else None,
        "feasible": feasible,
        "fidelity_basis": verdict.fidelity_basis if verdict else None,
        "latency_model": verdict.latency_model if verdict else None,
        "usd_per_gpu_hour": price,
        "probes": out.probes,
    }
    for m in METRICS:
        row[f"{m}_p99_ms"] = _r(verdict.p99[m]) if verdict else None
        ci = verdict.p99_ci[m] if verdict else None
        row[f"{m}_p99_ci_ms"] = list(ci) if ci else None
    return {k: row[k] for k in COLUMNS}


def _sort_key(row: dict, question2: bool):
    inf = float("inf")
    if question2:
        return (not row["feasible"], row["cost_per_hour"] if row["cost_per_hour"] is not None else inf,
                row["gpus"] or inf, row["model"], row["hardware"], row["tp"])
    return (not row["feasible"],
            row["cost_per_million_output_tokens"] if row["cost_per_million_output_tokens"] is not None else inf,
            -(row["max_rate_per_instance"] or 0.0), row["model"], row["hardware"], row["tp"])


def build_rows(outcomes, ctx, prices):
    """DataFrame of the candidates, cheapest first: by cost per hour at the target rate (question 2), or by
    cost per million output tokens at each candidate's max rate (question 1); infeasible ones last."""
    import pandas as pd

    question2 = ctx.target_rate is not None or ctx.fixed_load
    rows = sorted((_row(o, ctx, prices) for o in outcomes), key=lambda r: _sort_key(r, question2))
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _jsonable(v):
    if v is None or isinstance(v, (str, bool, list)):
        return v
    if hasattr(v, "item"):  # numpy scalar
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def to_json_dict(df) -> dict:
    """``{"candidates": [...], "plan": {...}}`` (JSON-ready: NaN as null). Where and how fast it ran (backend,
    workers, wall time) is left out, so the same plan gives the same JSON on any backend."""
    rows = [{k: _jsonable(v) for k, v in rec.items()} for rec in df.astype(object).to_dict(orient="records")]
    meta = {k: v for k, v in df.attrs.get("plan", {}).items() if k not in ("backend", "workers", "wall_s")}
    return {"candidates": rows, "plan": meta}


def pareto_front(df, latency: str = "ttft_p99_ms", throughput: str = "output_tokens_per_s_per_gpu"):
    """Boolean Series: rows no other feasible row beats on both lower latency and higher throughput per GPU."""
    ok = df["feasible"] & df[latency].notna() & df[throughput].notna()
    front = ok.copy()
    for i in df.index[ok]:
        better = ok & (df[latency] <= df.at[i, latency]) & (df[throughput] >= df.at[i, throughput]) & \
            ((df[latency] < df.at[i, latency]) | (df[throughput] > df.at[i, throughput]))
        front[i] = not better.any()
    return front


def plot_pareto(df, path: Optional[str] = None, latency: str = "ttft_p99_ms",
                throughput: str = "output_tokens_per_s_per_gpu", ax=None):
    """Throughput per GPU against P99 latency, one point per feasible candidate, the Pareto front joined.
    Needs matplotlib (pip install 'blis[plot]'); writes ``path`` when given; returns the Axes."""
    try:
        import matplotlib

        if path is not None and ax is None:
            matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ValueError("plot: needs matplotlib (pip install 'blis[plot]')") from exc
    own = ax is None
    if own:
        fig, ax = plt.subplots(figsize=(6.4, 4.4))
    ok = df[df["feasible"] & df[latency].notna() & df[throughput].notna()]
    front = pareto_front(df, latency, throughput)
    for _, row in ok.iterrows():
        label = f"{row['hardware']} TP{row['tp']}" + (f" P/D {row['pd_split']}" if row["pd_split"] else "")
        ax.scatter(row[latency], row[throughput], color="C0" if front[_] else "C7", zorder=3)
        ax.annotate(label, (row[latency], row[throughput]), textcoords="offset points", xytext=(4, 4), fontsize=8)
    pf = ok[front[ok.index]].sort_values(latency)
    ax.plot(pf[latency], pf[throughput], color="C0", lw=1, zorder=2, label="Pareto front")
    metric, _, stat = latency.rpartition("_")[0].partition("_")
    ax.set_xlabel(f"{stat.upper()} {metric.upper()} (ms)")
    ax.set_ylabel("output tokens/s per GPU")
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    if own and path is not None:
        ax.figure.tight_layout()
        ax.figure.savefig(path, dpi=120)
        plt.close(ax.figure)
    return ax
