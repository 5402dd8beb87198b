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
    p.add_argument("--trace", required=True, metavar="RUN",
                   help="run folder (requests.csv + meta.json), folder with an OTLP traces.json, or a "
                   "`vllm bench serve` result JSON")
    _flags.add_latency_model_flag(p)
    p.add_argument("--calibration-file", metavar="PATH", help="coefficients YAML written by `blis calibrate`")
    _flags.add_output_flag(p, "--requests-out", (".csv", ".parquet"),
                           "write one row per request: measured and simulated TTFT/E2E (ms), failures")
    p.set_defaults(handler=run)


def run(args) -> int:
    from blis.traces import load_run
    from blis.traces.replay import replay
    from blis.validate import compare

    if args.calibration_file:
        from blis.commands.run import latency_model_for_calibration

        args.latency_model = latency_model_for_calibration(args.calibration_file, args.latency_model)
    measured = load_run(args.trace)
    for note in measured.notes:
        sys.stderr.write(f"note: {note}\n")
    result = replay(measured, args.latency_model, calibration_file=args.calibration_file)
    report = compare(result)
    out = {"experiment": report.to_json(), "overloaded": report.overloaded, "simulation": result.summary}
    sys.stdout.write(json.dumps(out, indent=2, allow_nan=False) + "\n")
    sys.stdout.flush()
    if args.requests_out:
        from blis.commands.run import write_table

        write_table(result.per_request(), args.requests_out, "requests_out")
        sys.stderr.write(f"wrote {args.requests_out}\n")
    return 0
