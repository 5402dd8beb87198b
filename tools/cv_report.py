"""Markdown tables of the cross-validated errors recorded in blis/latency/coefficients/cross_validation.yaml.

    python -m tools.cv_report [--record PATH]

Per cross-validation (LORO roofline, LORO blackbox, LOMO roofline): each held-back run's generic and refit
errors (mean TTFT / mean E2E / mean TPOT, %), then median and worst over runs; and the default (auto: the
shipped refit where one passed, else the generic physics) against the targets of issue #10.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import yaml

from blis.latency.fidelity import CV_FILE

KEYS = ("ttft_mean_ms", "e2e_mean_ms", "tpot_mean_ms")
TARGET_MEDIAN = {"ttft_mean_ms": 10.0, "e2e_mean_ms": 5.0, "tpot_mean_ms": 5.0}
TARGET_WORST = {"ttft_mean_ms": 20.0, "e2e_mean_ms": 10.0, "tpot_mean_ms": 10.0}


def _f(x) -> str:
    return "-" if x is None else f"{x:.1f}"


def summary(rows: list[dict], side: str) -> str:
    cells = []
    for k in KEYS:
        vals = [r[side][k] for r in rows if r.get(side) and r[side].get(k) is not None]
        if not vals:
            cells.append("-")
            continue
        cells.append(f"{statistics.median(vals):.1f} / {max(vals):.1f}")
    return " | ".join(cells)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--record", default=str(CV_FILE))
    doc = yaml.safe_load(Path(ap.parse_args().record).read_text())
    recs = doc["results"]
    print(f"Source: {doc['source_runs']}; command: `{doc['command']}`\n")
    for kind, lm in (("loro", "roofline"), ("loro", "blackbox"), ("lomo", "roofline")):
        sel = [r for r in recs if r["kind"] == kind and r["latency_model"] == lm]
        if not sel:
            continue
        print(f"**{kind.upper()} {lm}** (error %, TTFT / E2E / TPOT mean; generic = per-GPU physics)\n")
        print("| setup | held-back run | generic | refit | penalty | verdict |\n|---|---|---|---|---|---|")
        rows = []
        for r in sel:
            for h in r["held_out"]:
                g = " / ".join(_f(h["generic"][k]) for k in KEYS)
                f = " / ".join(_f(h["refit"][k]) for k in KEYS) if h.get("refit") else "-"
                ovl = " (overloaded)" if h["overloaded"] else ""
                print(f"| {r['model'].split('/')[-1]} tp{r['tp'] or '*'} | {h['run'][16:]}{ovl} | {g} | {f} | "
                      f"{r['penalty'] if r['penalty'] is not None else '-'} | {r['verdict']} |")
                rows.append(h)
        fitted = [h for h in rows if h.get("refit")]
        print(f"| **median / worst** | {len(rows)} runs (refit: {len(fitted)}) | {summary(rows, 'generic')} | "
              f"{summary(fitted, 'refit')} | | |\n")
    # the default: per run, the shipped roofline refit's LORO error where it ships, else the generic
    default = {}
    for r in recs:
        if r["kind"] == "loro" and r["latency_model"] == "roofline":
            for h in r["held_out"]:
                default[h["run"]] = {"run": h["run"], "overloaded": h["overloaded"],
                                     "d": h["refit"] if r["ships"] else h["generic"]}
    if default:
        print("**Default (`--calibration auto`), cross-validated**: median / worst over runs\n")
        print("| runs | TTFT mean | E2E mean | TPOT mean |\n|---|---|---|---|")
        for label, rows in (("all 9", list(default.values())),
                            ("bounded", [d for d in default.values() if not d["overloaded"]]),
                            ("overloaded", [d for d in default.values() if d["overloaded"]])):
            print(f"| {label} | " + summary(rows, "d") + " |")
        print("\nTargets: median TTFT <= 10, E2E <= 5, TPOT <= 5; worst TTFT <= 20, E2E <= 10, TPOT <= 10 (%).")


if __name__ == "__main__":
    main()
