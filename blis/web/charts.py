"""Plotly figures (plain dicts: {"data": [...], "layout": {...}}) of a simulation, shared by the page
(`/api/simulate` returns them) and `blis report --html`. No plotly import: the dicts are plotly.js's JSON."""

from __future__ import annotations

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")


def _layout(title: str, xtitle: str, ytitle: str, **extra) -> dict:
    return {"title": {"text": title}, "xaxis": {"title": {"text": xtitle}}, "yaxis": {"title": {"text": ytitle}},
            "margin": {"l": 60, "r": 20, "t": 50, "b": 50}, "hovermode": "closest", **extra}


def cdf_figure(cdf: dict) -> dict:
    """TTFT and E2E empirical CDFs (milliseconds)."""
    data = []
    for (key, label), colour in zip((("ttft_ms", "TTFT"), ("e2e_ms", "E2E")), PALETTE):
        c = cdf.get(key) or {"x": [], "y": []}
        data.append({"type": "scatter", "mode": "lines", "name": label, "x": c["x"], "y": c["y"],
                     "line": {"shape": "hv", "color": colour},
                     "hovertemplate": f"{label} %{{x:.1f}} ms<br>fraction %{{y:.3f}}<extra></extra>"})
    return {"data": data, "layout": _layout("Latency CDFs", "milliseconds (log)", "fraction of requests",
                                            xaxis={"type": "log", "title": {"text": "milliseconds (log)"}})}


def timeline_figure(timeline: dict | None) -> dict:
    """Running batch size and KV blocks in use per engine step."""
    t = timeline or {"time_s": [], "batch": [], "kv_blocks_used": [], "waiting": []}
    data = [
        {"type": "scatter", "mode": "lines", "name": "batch (running requests)", "x": t["time_s"], "y": t["batch"],
         "line": {"color": PALETTE[0]}},
        {"type": "scatter", "mode": "lines", "name": "waiting requests", "x": t["time_s"], "y": t["waiting"],
         "line": {"color": PALETTE[3], "dash": "dot"}},
        {"type": "scatter", "mode": "lines", "name": "KV blocks used", "x": t["time_s"], "y": t["kv_blocks_used"],
         "yaxis": "y2", "line": {"color": PALETTE[2]}},
    ]
    layout = _layout("Per-step batch and KV cache", "simulated time (s)", "requests",
                     yaxis2={"title": {"text": "KV blocks"}, "overlaying": "y", "side": "right"},
                     legend={"orientation": "h", "y": -0.25})
    return {"data": data, "layout": layout}


def sweep_figure(sweep: list[dict] | None) -> dict:
    """Throughput-latency curve of a rate sweep (one point per rate)."""
    pts = sweep or []
    x = [p.get("tokens_per_sec") for p in pts]
    text = [f"rate {p['rate']:g}/s" for p in pts]
    data = [
        {"type": "scatter", "mode": "lines+markers", "name": "E2E p50", "x": x, "y": [p.get("e2e_p50_ms") for p in pts],
         "text": text, "line": {"color": PALETTE[0]}},
        {"type": "scatter", "mode": "lines+markers", "name": "E2E p99", "x": x, "y": [p.get("e2e_p99_ms") for p in pts],
         "text": text, "line": {"color": PALETTE[1], "dash": "dash"}},
        {"type": "scatter", "mode": "lines+markers", "name": "TTFT p99", "x": x,
         "y": [p.get("ttft_p99_ms") for p in pts], "text": text, "line": {"color": PALETTE[3], "dash": "dot"}},
    ]
    return {"data": data, "layout": _layout("Throughput vs latency (rate sweep)", "output tokens / s",
                                            "milliseconds")}


def run_figures(run: dict, sweep: list[dict] | None) -> dict:
    """Every chart of one run (and its sweep, when there is one)."""
    figs = {"cdf": cdf_figure(run["cdf"]), "timeline": timeline_figure(run.get("timeline"))}
    if sweep:
        figs["sweep"] = sweep_figure(sweep)
    return figs
