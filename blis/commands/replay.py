"""`python -m blis replay`: simulate one real run with its real arrivals and server settings."""

from __future__ import annotations

import json
import sys


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
    p.add_argument("--latency-model", metavar="NAME",
                   help="blackbox, roofline or roofline-v2 (default: chosen automatically)")
    from blis.commands.validate import add_simulation_flags

    add_simulation_flags(p)
    p.add_argument("--requests-out", metavar="PATH",
                   help="write one CSV row per request: measured and simulated TTFT/E2E (ms), failures")
    p.set_defaults(handler=run)


def run(args) -> int:
    from blis.commands.validate import simulation_kwargs
    from blis.traces import load_run
    from blis.traces.replay import replay
    from blis.validate import compare

    kw = simulation_kwargs(args)
    measured = load_run(args.trace)
    for note in measured.notes:
        sys.stderr.write(f"note: {note}\n")
    result = replay(measured, args.latency_model, **kw)
    report = compare(result)
    if args.requests_out:
        result.per_request().to_csv(args.requests_out, index=False)
        sys.stderr.write(f"wrote {args.requests_out}\n")
    out = {"experiment": report.to_json(), "overloaded": report.overloaded, "simulation": result.summary}
    from blis.latency.fidelity import one_line

    if result.summary.get("fidelity"):
        sys.stderr.write(one_line(result.summary["fidelity"]) + "\n")
    sys.stdout.write(json.dumps(out, indent=2, allow_nan=False) + "\n")
    return 0
