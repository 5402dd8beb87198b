"""`python -m blis replay`: simulate one real run with its real arrivals and server settings."""

from __future__ import annotations

import json
import sys

from blis.commands import _flags


def register(sub) -> None:
    p = sub.add_parser(
        "replay",
        help="replay a real run (its arrivals, prompts, server settings) and compare",
        description="Replay a measured run through the simulator: the real arrival times and token counts, "
        "prompt repeats, the server's max_num_seqs, max_num_batched_tokens, KV blocks, block size and "
        "max_model_len, and the client's timeout. Prints measured and simulated TTFT/E2E/TPOT (ms) as JSON on "
        "stdout; notes on how the run was read go to stderr.",
    )
    p.add_argument("--trace", metavar="RUN",
                   help="run folder (requests.csv + meta.json), folder with an OTLP traces.json, or a "
                   "`vllm bench serve` result JSON")
    _flags.add_latency_model_flag(p)
    from blis.commands.validate import add_simulation_flags

    add_simulation_flags(p)  # --calibration, --calibration-file, --model-config, --bench-data-path
    # benchmark files: rebuild the load they describe (not the per-request arrivals) and compare per point
    p.add_argument("--benchmark", metavar="FILE",
                   help="instead of --trace: a `vllm bench serve --save-result` JSON or a GuideLLM report "
                   "(JSON/YAML, or a folder with guidellm_benchmarks.csv); rebuilds its load (rate, concurrency, "
                   "lengths, number of prompts, burstiness, seed) and prints measured beside simulated per point")
    p.add_argument("--hardware", help="with --benchmark: GPU the benchmark ran on (default: recorded, else H100)")
    p.add_argument("--nominal-load", action="store_true",
                   help="with --benchmark: send rate-driven points at their nominal rate, not at the send times "
                   "the client recorded")
    _flags.add_output_flag(p, "--requests-out", (".csv", ".parquet"),
                           "write one row per request: measured and simulated TTFT/E2E (ms), failures")
    p.set_defaults(handler=run)


def run(args) -> int:
    from blis.errors import BlisInputError

    if (args.benchmark is None) == (args.trace is None):
        raise BlisInputError("trace: give exactly one of --trace and --benchmark")
    if args.benchmark is not None:
        if args.requests_out:
            raise BlisInputError("requests_out: only with --trace")
        from blis.traces.benchmark import benchmark_report

        report = benchmark_report(args.benchmark, args.latency_model, hardware=args.hardware,
                                  calibration_file=args.calibration_file, recorded_times=not args.nominal_load)
        for note in report["notes"]:
            sys.stderr.write(f"note: {note}\n")
        sys.stdout.write(json.dumps(report, indent=2, allow_nan=False) + "\n")
        return 0
    if args.hardware is not None:
        raise BlisInputError("hardware: only with --benchmark (a run folder records its hardware)")
    if args.nominal_load:
        raise BlisInputError("nominal_load: only with --benchmark (--trace replays the recorded arrivals)")
    from blis.commands.validate import simulation_kwargs
    from blis.traces import load_run
    from blis.traces.replay import replay
    from blis.validate import compare

    if args.calibration_file:
        from blis.commands.run import latency_model_for_calibration

        args.latency_model = latency_model_for_calibration(args.calibration_file, args.latency_model)
    kw = simulation_kwargs(args)
    measured = load_run(args.trace)
    for note in measured.notes:
        sys.stderr.write(f"note: {note}\n")
    result = replay(measured, args.latency_model, **kw)
    report = compare(result)
    out = {"experiment": report.to_json(), "overloaded": report.overloaded, "simulation": result.summary}
    from blis.latency.fidelity import one_line

    if result.summary.get("fidelity"):
        sys.stderr.write(one_line(result.summary["fidelity"]) + "\n")
    sys.stdout.write(json.dumps(out, indent=2, allow_nan=False) + "\n")
    sys.stdout.flush()
    if args.requests_out:
        from blis.commands.run import write_table

        write_table(result.per_request(), args.requests_out, "requests_out")
        sys.stderr.write(f"wrote {args.requests_out}\n")
    return 0
