"""One self-contained HTML file with a run's charts (the same figures as the simulation page)."""

from __future__ import annotations

import html
import json

from blis.web.charts import run_figures
from blis.web.sim import summarise_columns


def render_report(summary: dict, request_columns: dict, step_columns: dict | None, sweep: list | None = None) -> str:
    """HTML text: summary table, CDFs, timeline (and sweep); plotly.js inlined so it works offline."""
    from blis.web.app import plotly_js_path

    run = summarise_columns(summary, request_columns, step_columns)
    figs = run_figures(run, sweep)
    rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
                   for k, v in summary.items() if not isinstance(v, (dict, list)))
    divs = "".join(f'<div id="{name}" class="plot"></div>' for name in figs)
    script = "".join(f"Plotly.newPlot({json.dumps(name)}, FIGS[{json.dumps(name)}].data, "
                     f"FIGS[{json.dumps(name)}].layout);" for name in figs)
    title = html.escape(f"blis run: {summary.get('model', '')} on {summary.get('hardware', '')}".strip())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1100px;margin:auto}} .plot{{height:440px}}
table{{border-collapse:collapse;font-size:13px}} th,td{{border:1px solid #ccc;padding:2px 8px;text-align:left}}</style>
<script>{plotly_js_path().read_text()}</script></head>
<body><h1>{title}</h1>
<table>{rows}</table>
{divs}
<script>const FIGS = {json.dumps(figs, allow_nan=False)};
{script}</script>
</body></html>
"""
