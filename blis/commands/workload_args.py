"""`blis run` flags for closed-loop clients, vLLM-style fixed lengths, sweeps and benchmark-format output.

``add_arguments`` adds the flags; ``apply`` turns them into ``Workload`` fields; ``maybe_sweep`` runs a sweep
when ``--concurrency`` or ``--rate`` lists several points; ``emit`` writes the summary in a benchmark's names.
"""

from __future__ import annotations

import json
import sys

from blis.errors import BlisInputError

EMIT_FORMATS = ("vllm-bench",)


def add_arguments(p, workload_group=None) -> None:
    """Add the flags; ``--rate`` goes into ``workload_group`` (it takes a list here, so it is not generated)."""
    (workload_group or p).add_argument(
        "--rate", type=_rate_type, metavar="R[,R...]",
        help="arrival rate, requests per second (> 0; default: the preset's; closed loop: a cap, default none); "
        "a comma-separated list runs a sweep")
    g = p.add_argument_group("closed loop, fixed lengths, sweeps")
    g.add_argument("--concurrency", metavar="N[,N...]",
                   help="closed loop: N users, each sending its next request when its previous one finishes "
                   "(with --rate: at most N in flight, as vllm bench serve --max-concurrency); a list runs a sweep")
    g.add_argument("--think-time-ms", type=float, help="closed loop: a user's pause before its next request, ms")
    g.add_argument("--ramp-s", type=float, help="closed loop: users start evenly spread over this many seconds")
    g.add_argument("--input-len", type=int, help="prompt tokens, as vllm bench's --random-input-len (with "
                   "--range-ratio: uniform in [L(1-r), L(1+r)]); replaces the preset")
    g.add_argument("--output-len", type=int, help="output tokens, as vllm bench's --random-output-len")
    g.add_argument("--range-ratio", type=float, help="vllm bench's --random-range-ratio, in [0, 1) (default 0)")
    g.add_argument("--prefix-len", type=int, help="tokens of a prefix shared by every prompt (--random-prefix-len)")
    g.add_argument("--emit", choices=EMIT_FORMATS, help="print the summary under vllm bench serve's metric names")
    g.add_argument("--plot", metavar="PATH", help="sweep: write the throughput-latency curve (png/svg/pdf; "
                   "needs the plot extra)")


def _rate_type(text: str):
    import argparse

    try:
        return rate_points(text)
    except (ValueError, BlisInputError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def rate_points(text: str):
    """``--rate`` value: one number, or a comma-separated list (a sweep)."""
    from blis.sweep import parse_points

    values = parse_points(text, float, "rate")
    return values[0] if len(values) == 1 else values


def _concurrency_points(args) -> list[int] | None:
    if args.concurrency is None:
        return None
    from blis.sweep import parse_points

    return parse_points(args.concurrency, int, "concurrency")


def sweep_points(args) -> tuple[str, list] | None:
    """('concurrency'|'rate', values) when the flags ask for more than one point."""
    conc = _concurrency_points(args)
    rates = args.rate if isinstance(args.rate, list) else None
    if conc is not None and len(conc) > 1 and rates is not None:
        raise BlisInputError("concurrency: sweep one of --concurrency and --rate, not both")
    if conc is not None and len(conc) > 1:
        return "concurrency", conc
    if rates is not None:
        return "rate", rates
    return None


def apply(args, workload, notes: list[str]):
    """The workload with the closed-loop and fixed-length flags applied (sweeps: the first point)."""
    from blis.workload.spec import Workload

    fixed = [f for f in ("input_len", "output_len", "range_ratio", "prefix_len") if getattr(args, f) is not None]
    if fixed:
        if args.workload is not None or args.trace:
            raise BlisInputError(f"{fixed[0]}: not with --workload or --trace (fixed lengths replace the preset)")
        if "workload=chatbot" in notes:
            notes.remove("workload=chatbot")
        workload = Workload.random(
            input_len=args.input_len if args.input_len is not None else 1024,
            output_len=args.output_len if args.output_len is not None else 128,
            range_ratio=args.range_ratio or 0.0, prefix_len=args.prefix_len or 0,
            rate=workload.rate, num_requests=workload.num_requests or 100, seed=workload.seed,
            arrival=workload.arrival, cv=workload.cv)
    conc = _concurrency_points(args)
    if args.plot and sweep_points(args) is None:
        raise BlisInputError("plot: only for a sweep (--concurrency or --rate with several values)")
    if conc is None and (args.think_time_ms is not None or args.ramp_s is not None):
        if not workload.closed_loop:
            raise BlisInputError("think_time_ms: only with --concurrency (or a closed-loop workload file)")
    from pydantic import ValidationError

    try:
        return workload.with_overrides(concurrency=conc[0] if conc else None, think_time_ms=args.think_time_ms,
                                       ramp_s=args.ramp_s)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"]) or "workload"
        raise BlisInputError(f"{loc}: {str(err['msg']).removeprefix('Value error, ')}") from None


def maybe_sweep(args, config, run_one, header: str = "") -> bool:
    """Run the sweep the flags ask for (``run_one(config)`` simulates one point); False when there is none.
    ``header`` (the "defaults used / latency model" line) goes to stderr once the sweep starts."""
    points = sweep_points(args)
    if points is None:
        return False
    from blis.sweep import sweep

    if header:
        sys.stderr.write(header + "\n")
    parameter, values = points
    out = sweep(config, **{parameter: values}, simulate_fn=run_one)
    if args.plot:
        out.plot(args.plot)
        sys.stderr.write(f"wrote {args.plot}\n")
    if args.emit == "vllm-bench":
        from blis.traces.bench_format import vllm_bench_summary

        rows = [{parameter: v, **vllm_bench_summary(r)} for v, r in zip(values, out.results)]
    else:
        rows = out.rows()
    if args.output == "json":
        sys.stdout.write(json.dumps(rows, indent=2, allow_nan=False) + "\n")
    else:
        sys.stdout.write(out.table.to_string(index=False) + "\n")
    return True


def emit(args, result) -> bool:
    """Print the summary in the ``--emit`` format; False when no format was asked for."""
    if args.emit is None:
        return False
    from blis.traces.bench_format import vllm_bench_summary

    sys.stdout.write(json.dumps(vllm_bench_summary(result), indent=2, allow_nan=False) + "\n")
    return True
