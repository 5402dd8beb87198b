"""`python -m blis calibrate`: fit a latency model's parameters to real runs and cross-validate them."""

from __future__ import annotations

import shlex
import sys

from blis.commands import _flags


def register(sub) -> None:
    p = sub.add_parser(
        "calibrate",
        help="fit a latency model's parameters to real runs, validated across runs",
        description="Fit the free parameters of a latency model by simulating real runs: blackbox alpha/beta "
        "per (model, hardware, TP), or the roofline's overheads and efficiencies per setup and per GPU, pulled "
        "toward the per-GPU physics (penalty chosen by cross-validation) and kept inside physical ranges. "
        "Validation holds back whole runs: leave-one-run-out per setup, leave-one-model-out for the per-GPU "
        "fit; their errors are printed beside the generic physics' errors on the same runs, with the verdict "
        "(a refit is validated only when it beats the generic physics on every held-back run). Writes the "
        "coefficients YAML to --out (usable with --calibration PATH); progress goes to stderr.",
    )
    p.add_argument("--traces", required=True, nargs="+", metavar="DIR",
                   help="run folders, or folders whose sub-folders are runs")
    _flags.add_latency_model_flag(p, required=True)
    _flags.add_output_flag(p, "--out", (".yaml", ".yml"), "coefficients YAML to write (checked before fitting)",
                           required=True)
    p.add_argument("--block-seconds", type=_flags.float_type("block_s"), default=60.0, metavar="S",
                   help="seconds of arrivals per train/held-back block (default 60)")
    p.add_argument("--windows-per-run", type=int, default=3, metavar="N",
                   help="training blocks simulated per run that is not overloaded (default 3)")
    p.add_argument("--max-evals", type=int, default=60, metavar="N",
                   help="simulator evaluations of the Nelder-Mead search per fit (default 60)")
    p.add_argument("--overloaded-weight", type=_flags.float_type("overloaded_weight"), default=1.0, metavar="W",
                   help="loss weight of overloaded runs fitted together with runs that are not overloaded "
                   "(default 1)")
    p.add_argument("--penalty", default="0.03,0.3,3", metavar="W,...",
                   help="weights of the pull toward the per-GPU physics to choose from by cross-validation "
                   "(default 0.03,0.3,3)")
    p.add_argument("--no-cross-validation", action="store_true",
                   help="skip leave-one-run-out / leave-one-model-out (nothing is marked validated)")
    p.add_argument("--workers", type=int, default=1, metavar="N", help="processes for the cross-validation")
    p.add_argument("--calibration", metavar="auto|generic|PATH",
                   help="accepted for symmetry with run/replay/validate: calibrate always starts from the "
                   "per-GPU physics (generic); any other value is an error")
    p.add_argument("--model-config", metavar="PATH",
                   help="HuggingFace config.json of the runs' model (for a model the registry does not know)")
    p.add_argument("--bench-data-path", metavar="DIR", help="bench_data folder for --latency-model roofline-v2")
    p.set_defaults(handler=run)


def _penalties(text: str) -> list[float]:
    from blis.errors import BlisInputError

    try:
        vals = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise BlisInputError(f"--penalty: {text!r}: expected comma-separated numbers >= 0") from None
    if not vals or any(not (v >= 0) or v == float("inf") for v in vals):
        raise BlisInputError(f"--penalty: {text!r}: expected comma-separated finite numbers >= 0")
    return vals


def run(args) -> int:
    from blis.calibrate import CalibrationSettings, calibrate
    from blis.calibrate.crossval import table
    from blis.errors import BlisInputError
    from blis.traces import find_runs, load_run

    if args.calibration not in (None, "generic"):
        raise BlisInputError("--calibration: calibrate always fits from the per-GPU physics; only 'generic' "
                             "applies here")
    if args.bench_data_path and args.latency_model != "roofline-v2":
        raise BlisInputError("--bench-data-path: applies only with --latency-model roofline-v2")
    if args.workers < 1:
        raise BlisInputError(f"--workers: must be >= 1, got {args.workers}")
    settings = CalibrationSettings(block_s=args.block_seconds, windows_per_run=args.windows_per_run,
                                   max_evals=args.max_evals, overloaded_weight=args.overloaded_weight)
    runs = [load_run(p) for p in find_runs(args.traces)]
    for r in runs:  # read by blis.traces.replay.sim_config for every simulation of the fit
        r.model_config_path, r.bench_data_path = args.model_config, args.bench_data_path
    result = calibrate(runs, args.latency_model, settings, progress=lambda m: sys.stderr.write(m + "\n"),
                       cross_validation=not args.no_cross_validation, penalties=_penalties(args.penalty),
                       workers=args.workers)
    result.command = "python -m blis calibrate " + " ".join(shlex.quote(a) for a in sys.argv[2:]) \
        if len(sys.argv) > 2 else "python -m blis calibrate"
    try:
        with open(args.out, "w") as fh:
            fh.write(result.to_yaml())
    except OSError as exc:
        from blis.errors import BlisInputError

        raise BlisInputError(f"out: cannot write {args.out} ({exc.strerror or exc})") from None
    for e in result.errors:
        t = e.test
        sys.stderr.write(
            f"held back {e.name}{' (overloaded)' if e.overloaded else ''}: TTFT mean {t['ttft_mean_ms']:.1f}%, "
            f"E2E mean {t['e2e_mean_ms']:.1f}%, TPOT mean {t['tpot_mean_ms']:.1f}%, completed {t['completed']:.1f}%\n"
        )
    for line in table(result.loro + result.lomo):
        sys.stderr.write(line + "\n")
    for g in result.groups:
        who = f"{g.model} tp{g.tp}" if g.model != "*" else f"{g.hardware} per-GPU parameters"
        verdict = "would ship (validated)" if result.validated(g) else "would NOT ship (generic physics kept)"
        sys.stderr.write(f"{who}: {verdict}\n")
    sys.stderr.write(f"wrote {args.out}\n")
    return 0
