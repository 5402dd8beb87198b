"""`python -m blis kernels validate`: measured kernel latencies (a bench_data GPU folder) against the
kernel roofline, ideal and with one fitted efficiency per kernel kind.

For every row: the ideal roofline time (`blis.physics.kernel_roofline` at the datasheet peaks), the
roofline scaled by the group's fitted factor, the measurement, and the fitted prediction's error. A group
is one table kind and dtype (``gemm bf16``, ``gemm fp8``, ``attention_prefill bf16``, ``attention_decode
bf16/fp8`` ...); its factor is the median of measured / ideal over its rows, i.e. its fitted efficiency
is 1 / that median. Errors are (predicted - measured) / measured in percent.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from blis.errors import BlisInputError

NAME = "kernels"
GREEN_BELOW_PCT = 10.0
YELLOW_BELOW_PCT = 25.0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        NAME,
        help="compare measured kernel tables with the kernel roofline",
        description="Kernel-level tools over bench_data tables (measured by `python -m kernels_bench`).",
    )
    sub = p.add_subparsers(dest="kernels_command", metavar="ACTION", parser_class=type(p))
    sub.required = True
    v = sub.add_parser(
        "validate",
        help="predicted (roofline, ideal and fitted) versus measured latency for every row",
        description="For every measured row print the ideal roofline latency, the roofline with one fitted "
        "efficiency per table kind and dtype (1 / median of measured/ideal), the measured latency "
        "(microseconds) and the fitted error in percent (green < 10, yellow 10-25, red > 25), then a "
        "summary with median and p90 absolute errors. Tables go to stderr; --json writes JSON to stdout.",
    )
    v.add_argument("--bench-data", metavar="DIR",
                   help="one bench_data GPU folder (or a root holding exactly one), e.g. bench_data/h100")
    # v2 block: roofline v1's kernel terms per family and size range, optionally with efficiencies fitted elsewhere
    v.add_argument("--bench-data-path", metavar="SRC",
                   help="score roofline v1's kernel model (shipped calibration of --hardware) per kernel family "
                        "and size range against SRC: a bench_data folder or aiconfigurator[:system/backend/version]")
    v.add_argument("--fit-on", metavar="SRC",
                   help="with --bench-data-path: also fit v1's efficiencies and launch floors to SRC (another "
                        "system's tables) and score the fitted model on --bench-data-path")
    v.add_argument("--fit-hardware", metavar="NAME", help="hardware of --fit-on (default: --hardware)")
    v.add_argument("--hardware", default=None,
                   help="hardware name for the roofline (default: the provenance's gpu)")
    v.add_argument("--summary-only", action="store_true", help="print only the per-kind summary")
    v.add_argument("--json", action="store_true", help="print rows and summary as JSON on stdout")
    v.set_defaults(handler=_validate)


@dataclass
class RowResult:
    """One measured row against the roofline (times in microseconds, errors in percent)."""

    group: str
    table: str
    shape: str
    measured_us: float
    ideal_us: float
    fitted_us: float
    ideal_error_pct: float
    fitted_error_pct: float
    bottleneck: str


def group_rows(data: Any, hardware: Any) -> dict[str, list[dict[str, Any]]]:
    """Rows of every table with their ideal roofline time, grouped by kind and dtype."""
    from blis.physics.kernel_roofline import predict_attention, predict_gemm

    groups: dict[str, list[dict[str, Any]]] = {}

    def add(group: str, table: str, shape: str, measured: float, pred: Any) -> None:
        groups.setdefault(group, []).append({
            "table": table, "shape": shape, "measured_us": measured,
            "ideal_us": pred.predicted_time_us, "bottleneck": pred.bottleneck,
        })

    for dtype, rows in sorted(data.gemm.items()):
        for m, k, n, lat, _ in rows:
            add(f"gemm {dtype}", f"gemm_{dtype}.csv", f"m={m} k={k} n={n}", lat,
                predict_gemm(int(m), int(n), int(k), dtype, hardware=hardware))
    for (h, kvh, d), rows in sorted(data.prefill.items()):
        for dtype, b, s, lat, _ in rows:
            add(f"attention_prefill {dtype}", f"attention_prefill/{h}-{kvh}-{d}.csv", f"b={b} s={s}", lat,
                predict_attention(int(b), h, kvh, int(s), int(s), d, True, dtype, hardware=hardware))
    for (h, kvh, d), rows in sorted(data.decode.items()):
        for dtype, kv_dtype, b, kv_len, lat, _ in rows:
            # one new token sees every cached one; the bytes (the bound) are those of the KV cache dtype
            add(f"attention_decode {dtype}/{kv_dtype}", f"attention_decode/{h}-{kvh}-{d}.csv",
                f"b={b} L={kv_len}", lat,
                predict_attention(int(b), h, kvh, 1, int(kv_len), d, False, kv_dtype, hardware=hardware))
    return groups


def error_pct(predicted: float, measured: float) -> float:
    """(predicted - measured) / measured, in percent."""
    return 100.0 * (predicted - measured) / measured


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100), linear between order statistics."""
    xs = sorted(values)
    if not xs:
        return math.nan
    pos = (len(xs) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def fit_and_score(groups: dict[str, list[dict[str, Any]]]) -> tuple[list[RowResult], dict[str, dict]]:
    """Fit each group's factor (median measured/ideal) and score ideal and fitted predictions."""
    results: list[RowResult] = []
    summary: dict[str, dict] = {}
    for group, rows in groups.items():
        factor = statistics.median(r["measured_us"] / r["ideal_us"] for r in rows)
        ideal_errs, fitted_errs = [], []
        for r in rows:
            fitted = r["ideal_us"] * factor
            res = RowResult(group, r["table"], r["shape"], r["measured_us"], r["ideal_us"], fitted,
                            error_pct(r["ideal_us"], r["measured_us"]), error_pct(fitted, r["measured_us"]),
                            r["bottleneck"])
            results.append(res)
            ideal_errs.append(abs(res.ideal_error_pct))
            fitted_errs.append(abs(res.fitted_error_pct))
        summary[group] = _stats(len(rows), ideal_errs, fitted_errs) | {
            "median_measured_over_ideal": factor,
            "fitted_efficiency": 1.0 / factor,
        }
    all_ideal = [abs(r.ideal_error_pct) for r in results]
    all_fitted = [abs(r.fitted_error_pct) for r in results]
    summary["all"] = _stats(len(results), all_ideal, all_fitted)
    return results, summary


def _stats(n: int, ideal: list[float], fitted: list[float]) -> dict[str, Any]:
    return {
        "n": n,
        "ideal_median_abs_error_pct": statistics.median(ideal) if ideal else math.nan,
        "ideal_p90_abs_error_pct": percentile(ideal, 90),
        "fitted_median_abs_error_pct": statistics.median(fitted) if fitted else math.nan,
        "fitted_p90_abs_error_pct": percentile(fitted, 90),
        "fitted_within_10pct": sum(e < GREEN_BELOW_PCT for e in fitted),
        "fitted_within_25pct": sum(e <= YELLOW_BELOW_PCT for e in fitted),
    }


def colour(err_pct: float) -> str:
    """rich style of an error: green under 10 %, yellow 10-25 %, red above."""
    a = abs(err_pct)
    if a < GREEN_BELOW_PCT:
        return "green"
    return "yellow" if a <= YELLOW_BELOW_PCT else "red"


def _load(path: str, hardware: str | None) -> tuple[Any, Any]:
    from blis.bench_data.format import gpu_folders, load_bench_dir
    from blis.physics.hardware import get_hardware

    folders = gpu_folders(path)
    if len(folders) != 1:
        raise BlisInputError(
            f"--bench-data: {path} must be one bench_data GPU folder or a root with exactly one "
            f"(found {len(folders)})"
        )
    data = load_bench_dir(folders[0])
    name = hardware or data.provenance.gpu
    try:
        hw = get_hardware(name)
    except (KeyError, ValueError) as exc:
        raise BlisInputError(f"--hardware: {exc}") from None
    return data, hw


def _render(results: list[RowResult], summary: dict[str, dict], folder: str, hw_name: str,
            summary_only: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(stderr=True)
    if not console.is_terminal:
        console = Console(stderr=True, width=140)
    if not summary_only:
        by_table: dict[str, list[RowResult]] = {}
        for r in results:
            by_table.setdefault(r.table, []).append(r)
        for table, rows in by_table.items():
            t = Table(title=f"{table} ({rows[0].group}; fitted factor "
                            f"{summary[rows[0].group]['median_measured_over_ideal']:.3g})")
            for col in ("shape", "ideal us", "fitted us", "measured us", "ideal err %", "fitted err %", "bound"):
                t.add_column(col, justify="left" if col in ("shape", "bound") else "right", no_wrap=True)
            for r in rows:
                t.add_row(r.shape, f"{r.ideal_us:.4g}", f"{r.fitted_us:.4g}", f"{r.measured_us:.4g}",
                          f"{r.ideal_error_pct:+.1f}",
                          f"[{colour(r.fitted_error_pct)}]{r.fitted_error_pct:+.1f}[/]", r.bottleneck)
            console.print(t)
    t = Table(title=f"{folder} against the {hw_name} kernel roofline: |error| %, one efficiency per kind "
                    "fitted as 1 / median(measured / ideal)")
    for col in ("kind", "rows", "fitted eff.", "ideal median", "ideal p90", "fitted median", "fitted p90",
                "<10 %", "<=25 %"):
        t.add_column(col, justify="left" if col == "kind" else "right", no_wrap=True)
    for group, s in summary.items():
        eff = s.get("fitted_efficiency")
        t.add_row(group, str(s["n"]), "-" if eff is None else f"{eff:.3f}",
                  f"{s['ideal_median_abs_error_pct']:.1f}", f"{s['ideal_p90_abs_error_pct']:.1f}",
                  f"[{colour(s['fitted_median_abs_error_pct'])}]{s['fitted_median_abs_error_pct']:.1f}[/]",
                  f"[{colour(s['fitted_p90_abs_error_pct'])}]{s['fitted_p90_abs_error_pct']:.1f}[/]",
                  str(s["fitted_within_10pct"]), str(s["fitted_within_25pct"]))
    console.print(t)


def _tables(src: str, hardware: str | None):
    from blis.bench_data import aiconfigurator as aic
    from blis.bench_data.format import gpu_folders, load_bench_dir
    from blis.physics.hardware import get_hardware

    if aic.is_spec(src):
        if hardware is None:
            raise BlisInputError("hardware: --hardware is required with an aiconfigurator source")
        return aic.load(src, hardware).bench, get_hardware(hardware)
    folders = gpu_folders(src)
    if len(folders) != 1:
        raise BlisInputError(f"bench_data_path: {src} must be one bench_data GPU folder (found {len(folders)})")
    bench = load_bench_dir(folders[0])
    return bench, get_hardware(hardware or bench.provenance.gpu)


def _validate_v1(args: argparse.Namespace) -> int:
    """Roofline v1's kernel terms against the tables, per family and size range (before / after a fit)."""
    from blis.latency import kernel_validation as kv

    bench, hw = _tables(args.bench_data_path, args.hardware)
    fams = kv.families(bench)
    if not fams:
        raise BlisInputError(f"bench_data_path: {args.bench_data_path} has no bf16 GEMM or attention rows")
    shipped = kv.shipped_kernel_params(hw)
    out = {"bench_data_path": args.bench_data_path, "hardware": hw.name, "method": kv.__doc__.strip(),
           "shipped": {"params": shipped, "score": kv.score(fams, shipped, hw.peak("bf16"), hw.memory_bandwidth_Bps)}}
    if args.fit_on:
        fbench, fhw = _tables(args.fit_on, args.fit_hardware or args.hardware)
        fitted = kv.fit_kernel_params(kv.families(fbench), shipped, fhw.peak("bf16"), fhw.memory_bandwidth_Bps)
        out["fitted"] = {"on": args.fit_on, "hardware": fhw.name, "params": fitted,
                         "score": kv.score(fams, fitted, hw.peak("bf16"), hw.memory_bandwidth_Bps)}
    if args.json:
        sys.stdout.write(json.dumps(out, indent=1) + "\n")
        return 0
    for key in ("shipped", "fitted"):
        if key not in out:
            continue
        sec = out[key]
        where = f"fitted on {sec['on']} ({sec['hardware']})" if key == "fitted" else f"shipped {hw.name} calibration"
        sys.stderr.write(f"roofline v1 kernel model, {where}, against {args.bench_data_path}: "
                         f"|v1 - measured| / measured, %\n  params: "
                         + ", ".join(f"{k}={v:g}" for k, v in sec["params"].items()) + "\n")
        sys.stderr.write(f"  {'family':<18} {'range':<30} {'rows':>6} {'median':>7} {'p90':>7} {'bias':>7}\n")
        for r in sec["score"]:
            sys.stderr.write(f"  {r['family']:<18} {r['range']:<30} {r['n']:>6} {r['median_pct']:>7.1f} "
                             f"{r['p90_pct']:>7.1f} {r['bias_pct']:>+7.1f}\n")
    return 0


def _validate(args: argparse.Namespace) -> int:
    if args.bench_data_path:
        if args.bench_data:
            raise BlisInputError("bench_data: give --bench-data or --bench-data-path, not both")
        return _validate_v1(args)
    if args.fit_on or args.fit_hardware:
        raise BlisInputError("fit_on: applies only with --bench-data-path")
    if not args.bench_data:
        raise BlisInputError("bench_data: give --bench-data DIR or --bench-data-path SRC")
    data, hw = _load(args.bench_data, args.hardware)
    groups = group_rows(data, hw)
    if not groups:
        raise BlisInputError(f"--bench-data: {args.bench_data} holds no rows")
    results, summary = fit_and_score(groups)
    if args.json:
        out = {
            "bench_data": str(Path(data.folder)),
            "hardware": hw.name,
            "method": "fitted = ideal roofline x median(measured / ideal) per kind; error = (predicted - "
                      "measured) / measured in percent",
            "summary": summary,
            "rows": [asdict(r) for r in results],
        }
        sys.stdout.write(json.dumps(out, indent=1) + "\n")
        return 0
    _render(results, summary, str(data.folder), hw.name, args.summary_only)
    return 0
