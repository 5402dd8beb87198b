"""`python -m blis validate`: replay real runs and compare; exit code 1 when a tolerance is exceeded."""

from __future__ import annotations

import json
import math
import sys

from blis.commands import _flags


def add_simulation_flags(p) -> None:
    """--calibration, --calibration-file (older name), --model-config, --bench-data-path (issue #10)."""
    p.add_argument("--calibration", metavar="auto|generic|PATH", default="auto",
                   help="auto: a shipped refit validated on runs of the setup, else the per-GPU physics (default); "
                   "generic: per-GPU physics only; PATH: a file written by `blis calibrate`")
    p.add_argument("--calibration-file", metavar="PATH", help="older name for --calibration PATH")
    p.add_argument("--model-config", metavar="PATH", help="HuggingFace config.json for the runs' model")
    p.add_argument("--bench-data-path", metavar="SRC",
                   help="kernel tables for roofline-v2: a bench_data folder, 'aiconfigurator' or "
                        "'aiconfigurator:<system>/<backend>/<version>' (pip install 'blis[aic]')")


def simulation_kwargs(args) -> dict:
    """replay() keywords from the flags of `add_simulation_flags` (a bad --calibration fails here, once)."""
    from blis.errors import BlisInputError
    from blis.latency.calibration import check_choice

    try:
        check_choice(args.calibration)
    except ValueError as exc:
        raise BlisInputError(f"--calibration: {exc}") from None
    kw = {"calibration": args.calibration, "model_config_path": args.model_config,
          "bench_data_path": args.bench_data_path}
    if args.calibration_file:
        kw["calibration_file"] = args.calibration_file
    return kw


def register(sub) -> None:
    p = sub.add_parser(
        "validate",
        help="replay real runs and report the simulator's error (CI gate)",
        description="Replay every run under --traces and compare measured with simulated TTFT and E2E "
        "(mean, p90, p99, ms) and TPOT mean; error = 100 x |simulated - measured| / measured, and its median, "
        "mean and worst run over runs. Exit code 1 when a --tolerance is exceeded, else 0. A table goes to "
        "stderr; --json prints JSON on stdout.",
    )
    p.add_argument("--traces", required=True, nargs="+", metavar="DIR",
                   help="run folders, or folders whose sub-folders are runs")
    _flags.add_latency_model_flag(p, default_text="chosen automatically per run")
    add_simulation_flags(p)
    p.add_argument("--tolerance", metavar="METRIC[:STAT]=PCT,...",
                   help="largest allowed error in percent of the median over runs, or with :mean or :worst of "
                   "the mean or the worst run, e.g. ttft_mean=15,e2e_mean:worst=10 (metrics: ttft_mean, "
                   "ttft_p90, ttft_p99, e2e_mean, e2e_p90, e2e_p99, tpot_mean)")
    p.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    p.set_defaults(handler=run)


def run(args) -> int:
    from blis.validate import parse_tolerances, tolerance_violations, validate

    tolerances = parse_tolerances(args.tolerance)  # bad input fails before any simulation
    if args.calibration_file:
        from blis.commands.run import latency_model_for_calibration

        args.latency_model = latency_model_for_calibration(args.calibration_file, args.latency_model)
    report = validate(args.traces, args.latency_model, **simulation_kwargs(args))
    if args.json:
        sys.stdout.write(json.dumps(report.to_json(), indent=2, allow_nan=False) + "\n")
    else:
        print_table(report)
    bad = tolerance_violations(report, tolerances)
    for line in bad:
        sys.stderr.write(f"tolerance exceeded: {line}\n")
    return 1 if bad else 0


def _f(x: float, digits: int = 1) -> str:
    return "-" if not math.isfinite(x) else f"{x:,.{digits}f}"


def _ms(x: float) -> str:
    """Milliseconds, compact: seconds above 1000 ms."""
    if not math.isfinite(x):
        return "-"
    return f"{x:.1f}" if abs(x) < 1000 else f"{x / 1000:.2f}s" if abs(x) < 100_000 else f"{x / 1000:.0f}s"


def _short(model: str) -> str:
    try:
        from blis.physics.model_spec import get_model

        return get_model(model).name
    except Exception:  # a name the registry does not know is shown as given
        return model


def print_table(report) -> None:
    from rich.console import Console
    from rich.table import Table

    from blis.validate import METRICS

    console = Console(stderr=True, width=max(160, Console(stderr=True).width))
    table = Table(title="measured/simulated (ms, or s), error %", show_lines=True)
    table.add_column("run", overflow="fold", max_width=34)
    table.add_column("model", overflow="fold")
    table.add_column("completed\nmeas/sim", justify="right")
    for m in METRICS:
        table.add_column(m[:-3].replace("_", " "), justify="right")
    for e in report.experiments:
        name = e.name + (" [overloaded]" if e.overloaded else "")
        cells = [f"{_ms(e.metrics[m].measured)}/{_ms(e.metrics[m].simulated)}\n{_f(e.metrics[m].error_pct)}%"
                 for m in METRICS]
        table.add_row(name, f"{_short(e.model)} tp{e.tp}\n{e.latency_model}",
                      f"{e.completed_measured}/{e.completed_simulated}", *cells)
    medians = report.median_error_pct()
    table.add_row("median error, all runs", "", "", *[f"{_f(medians[m])}%" for m in METRICS], style="bold")
    means = report.mean_error_pct()
    table.add_row("mean error, all runs", "", "", *[f"{_f(means[m])}%" for m in METRICS])
    worst = report.worst_error_pct()
    table.add_row("worst run", "", "", *[f"{_f(worst[m][0])}%\n{worst[m][1][:16]}" for m in METRICS])
    kinds = {e.overloaded for e in report.experiments}
    if len(kinds) == 2:
        for flag, label in ((False, "not overloaded"), (True, "overloaded")):
            med = report.median_error_pct(flag)
            table.add_row(f"median error, {label}", "", "", *[f"{_f(med[m])}%" for m in METRICS])
    console.print(table)
