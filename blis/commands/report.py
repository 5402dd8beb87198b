"""``blis report --html out.html``: the simulation page's charts for a finished run, as one static HTML file.

The run is what ``blis run`` wrote: ``--requests-out`` (CSV) and optionally ``--steps-out`` (CSV) and the
summary JSON it printed (``blis run ... > summary.json``). plotly.js is embedded: the file works offline.
"""

from __future__ import annotations

import json
from pathlib import Path

from blis.errors import BlisInputError


def register(sub) -> None:
    p = sub.add_parser("report", help="write a finished run's charts as one HTML file",
                       description="Charts of a finished `blis run` (TTFT/E2E CDFs, per-step batch and KV "
                       "timeline) as one self-contained HTML file. Needs the 'web' extra (plotly).")
    p.add_argument("--html", required=True, metavar="OUT", help="HTML file to write")
    p.add_argument("--requests", required=True, metavar="CSV", help="per-request table (blis run --requests-out)")
    p.add_argument("--steps", metavar="CSV", help="per-step table (blis run --steps-out)")
    p.add_argument("--summary", metavar="JSON", help="summary JSON printed by blis run")
    p.set_defaults(handler=report)


def _read_csv(path: str, need: tuple[str, ...], flag: str) -> dict:
    import pandas as pd

    if not Path(path).is_file():
        raise BlisInputError(f"{flag}: {path} does not exist")
    df = pd.read_csv(path)
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise BlisInputError(f"{flag}: {path} lacks column(s) {', '.join(missing)} (write it with blis run "
                             f"{'--requests-out' if flag == 'requests' else '--steps-out'})")
    return {c: df[c].to_numpy() for c in df.columns}


def report(args) -> int:
    from blis.web.report_html import render_report

    req = _read_csv(args.requests, ("finished", "ttft_ms", "e2e_ms"), "requests")
    steps = _read_csv(args.steps, ("start_us", "num_requests", "kv_blocks_used", "num_waiting"), "steps") \
        if args.steps else None
    summary = {}
    if args.summary:
        p = Path(args.summary)
        if not p.is_file():
            raise BlisInputError(f"summary: {args.summary} does not exist")
        try:
            summary = json.loads(p.read_text())
        except json.JSONDecodeError as exc:
            raise BlisInputError(f"summary: {args.summary} is not JSON ({exc.msg} at line {exc.lineno})") from None
    Path(args.html).write_text(render_report(summary, req, steps))
    return 0
