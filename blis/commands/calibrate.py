"""`python -m blis calibrate`: fit a latency model's parameters to real runs."""

from __future__ import annotations

import shlex
import sys

from blis.commands import _flags


def register(sub) -> None:
    p = sub.add_parser(
        "calibrate",
        help="fit a latency model's parameters to real runs",
        description="Fit the free parameters of a latency model by simulating real runs: blackbox alpha/beta "
        "per (model, hardware, TP), or the roofline's overheads and efficiencies for the hardware. The loss is "
        "the relative error of mean and p90 TTFT and E2E (plus completed requests for overloaded runs) on "
        "training blocks of each run; odd blocks are held back and their error is reported. Writes the "
        "coefficients YAML to --out; progress and errors go to stderr.",
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
                   help="simulator evaluations of the Nelder-Mead search per fitted group (default 60)")
    p.add_argument("--overloaded-weight", type=_flags.float_type("overloaded_weight"), default=0.0, metavar="W",
                   help="loss weight of overloaded runs fitted together with runs that are not overloaded "
                   "(default 0; a fit on overloaded runs only weighs them 1)")
    p.set_defaults(handler=run)


def run(args) -> int:
    from blis.calibrate import CalibrationSettings, calibrate
    from blis.traces import find_runs, load_run

    settings = CalibrationSettings(block_s=args.block_seconds, windows_per_run=args.windows_per_run,
                                   max_evals=args.max_evals, overloaded_weight=args.overloaded_weight)
    runs = [load_run(p) for p in find_runs(args.traces)]
    result = calibrate(runs, args.latency_model, settings, progress=lambda m: sys.stderr.write(m + "\n"))
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
    sys.stderr.write(f"wrote {args.out}\n")
    return 0
