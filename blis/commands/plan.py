"""`python -m blis plan`: the cheapest deployments that meet latency SLOs (the capacity planner)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from blis.errors import BlisInputError


def _positive(kind, label: str, upper: float):
    def parse(text: str):
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{label}: expected a number, got {text!r}") from None
        if not (0 < v <= upper):
            raise argparse.ArgumentTypeError(f"{label}: must be > 0 and <= {upper:g}, got {text}")
        return v

    return parse


def register(sub) -> None:
    p = sub.add_parser(
        "plan",
        help="find the cheapest deployments meeting latency SLOs",
        description="Capacity planner. Without --rate: each candidate's maximum sustainable rate per instance "
        "(requests/s) meeting the SLOs. With --rate R (or a trace, whose load is fixed): the fewest GPUs "
        "(replicas x TP) and the lowest cost per hour meeting them at R. Candidates are every combination of "
        "the comma-separated axes. Rows are sorted by cost; JSON on stdout, progress on stderr. "
        "The stability rule a probe is judged by is printed with --explain.",
    )
    g = p.add_argument_group("what to deploy (comma-separated lists are candidate axes)")
    g.add_argument("--model", default="llama-2-7b", help="model registry name(s) (default llama-2-7b)")
    g.add_argument("--hardware", default="H100", help="GPU name(s), e.g. H100,H200,A100 (default H100)")
    g.add_argument("--tp", default="1", help="tensor-parallel degree(s), e.g. 1,2,4,8 (default 1)")
    g.add_argument("--max-num-seqs", help="most running requests per step, e.g. 128,256 (default 256)")
    g.add_argument("--max-num-batched-tokens", help="token budget per step, e.g. 2048,8192 (default 2048)")
    g.add_argument("--pd-split", metavar="P:D,...",
                   help="prefill/decode disaggregation: P prefill + D decode instances per serving unit; "
                   "'none' = plain instances (default none)")
    g.add_argument("--routing", help="router policy for replicas (with --rate or --pd-split; default least-loaded)")
    g.add_argument("--latency-model", metavar="NAME", help="blackbox, roofline or roofline-v2 (default: automatic)")
    g.add_argument("--hardware-file", metavar="PATH", help="JSON/YAML file adding or overriding hardware")
    g.add_argument("--calibration-file", metavar="PATH", help="coefficients YAML written by `blis calibrate`")
    g = p.add_argument_group("workload and load")
    g.add_argument("--workload", metavar="NAME|PATH",
                   help="preset (chatbot, contentgen, summarization, multidoc) or a workload YAML (default chatbot)")
    g.add_argument("--trace", metavar="CSV", help="replay a CSV trace (its own load: sizes replicas for it)")
    g.add_argument("--rate", type=_positive(float, "rate", 1e7),
                   help="requests/s to serve: find the fewest GPUs and lowest cost per hour at this rate")
    g.add_argument("--arrival", help="arrival process of the probes: constant, poisson, gamma, weibull "
                   "(default: the workload's; presets use poisson here)")
    g.add_argument("--cv", type=float, help="coefficient of variation of gamma/weibull inter-arrival times")
    g = p.add_argument_group("SLOs (at least one limit; milliseconds, 99th percentile)")
    g.add_argument("--slo-ttft-p99-ms", type=_positive(float, "slo_ttft_p99_ms", 1e7), help="P99 TTFT limit, ms")
    g.add_argument("--slo-tpot-p99-ms", type=_positive(float, "slo_tpot_p99_ms", 1e7), help="P99 TPOT limit, ms")
    g.add_argument("--slo-e2e-p99-ms", type=_positive(float, "slo_e2e_p99_ms", 1e8), help="P99 E2E limit, ms")
    g.add_argument("--slo-goodput", type=_positive(float, "slo_goodput", 1.0),
                   help="instead of p99 limits: this fraction of requests (0-1] must meet every limit")
    g = p.add_argument_group("search")
    g.add_argument("--seeds", type=int, help="workload seeds per probe (default 3)")
    g.add_argument("--seed", type=int, help="first seed (default 42)")
    g.add_argument("--probe-seconds", type=float, help="simulated seconds of arrivals per probe (default 40)")
    g.add_argument("--rate-tolerance", type=float, help="relative precision of the max rate (default 0.02)")
    g.add_argument("--no-bracket-reuse", action="store_true",
                   help="search every candidate from scratch (default: start from the smaller-TP neighbour)")
    g.add_argument("--workers", type=int, help="local processes running probes (default: CPUs; 1 = in-process)")
    g.add_argument("--ray-address", metavar="auto|ray://HOST:PORT",
                   help="run the probes as Ray tasks on this Ray cluster (needs the dist extra)")
    g = p.add_argument_group("output")
    g.add_argument("--prices", metavar="PATH", help="YAML GPU price table replacing/adding to the shipped one")
    g.add_argument("--output", choices=("json", "table", "csv"), default="json", help="format on stdout")
    g.add_argument("--plot", metavar="PNG", help="write a Pareto plot (throughput per GPU vs P99 latency)")
    g.add_argument("--explain", action="store_true", help="print the stability rule to stderr")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(handler=run)


def build_workload(args):
    from blis.workload.spec import Workload

    if args.trace:
        if args.workload:
            raise BlisInputError("workload: give --workload or --trace, not both")
        if args.arrival or args.cv is not None:
            raise BlisInputError("arrival: a trace has its own arrival times; --arrival/--cv do not apply")
        return Workload.from_trace_csv(args.trace)
    name = args.workload or "chatbot"
    if name.endswith((".yaml", ".yml")) or Path(name).is_file():
        workload = Workload.from_yaml(name)
        return workload.with_overrides(arrival=args.arrival, cv=args.cv) if (args.arrival or args.cv) else workload
    return Workload.preset(name).with_overrides(arrival=args.arrival or "poisson", cv=args.cv)


def run(args) -> int:
    from blis.plan.planner import plan
    from blis.plan.report import STABILITY_RULE, plot_pareto, to_json_dict

    if args.workers is not None and args.ray_address:
        raise BlisInputError("workers: not used with --ray-address (Ray schedules the probes)")
    if args.workers is not None and not (1 <= args.workers <= 1024):
        raise BlisInputError(f"workers: must be in 1..1024, got {args.workers}")
    settings = {"seeds": args.seeds, "seed": args.seed, "probe_seconds": args.probe_seconds,
                "rate_tolerance": args.rate_tolerance}
    settings = {k: v for k, v in settings.items() if v is not None}
    if args.no_bracket_reuse:
        settings["reuse_brackets"] = False
    if args.explain:
        sys.stderr.write(f"blis plan: stability rule: {STABILITY_RULE}\n")
    df = plan(model=args.model, hardware=args.hardware, tp=args.tp, workload=build_workload(args),
              rate=args.rate, ttft_p99_ms=args.slo_ttft_p99_ms, tpot_p99_ms=args.slo_tpot_p99_ms,
              e2e_p99_ms=args.slo_e2e_p99_ms, goodput=args.slo_goodput, max_num_seqs=args.max_num_seqs,
              max_num_batched_tokens=args.max_num_batched_tokens, pd=args.pd_split, routing=args.routing,
              latency_model=args.latency_model, hardware_file=args.hardware_file,
              calibration_file=args.calibration_file, prices=args.prices, workers=args.workers,
              ray_address=args.ray_address, progress=None if not args.no_progress else False,
              settings=settings)
    meta = df.attrs["plan"]
    missing = sorted({r for r, p in zip(df["hardware"], df["usd_per_gpu_hour"]) if p is None or p != p})
    if missing:
        sys.stderr.write(f"blis plan: no price for {', '.join(missing)} (cost left empty; add it with --prices)\n")
    sys.stderr.write(f"blis plan: {len(df)} candidates, {meta['probes']} probes, {meta['wall_s']:.1f} s "
                     f"({meta['backend']}, {meta['workers']} workers); prices: {meta['prices']['source']} "
                     f"({meta['prices']['date']})\n")
    if args.plot:
        plot_pareto(df, args.plot)
    if args.output == "json":
        sys.stdout.write(json.dumps(to_json_dict(df), indent=2, allow_nan=False) + "\n")
    elif args.output == "csv":
        sys.stdout.write(df.to_csv(index=False))
    else:
        print_table(df, meta)
    return 0


HEADERS = {"model": "model", "hardware": "GPU", "tp": "TP", "max_num_seqs": "seqs", "max_num_batched_tokens":
           "batch tok", "pd_split": "P:D", "max_rate_per_instance": "max req/s", "replicas": "replicas",
           "gpus": "GPUs", "cost_per_hour": "$/hour", "cost_per_million_output_tokens": "$/M out tok",
           "ttft_p99_ms": "TTFT p99", "tpot_p99_ms": "TPOT p99", "e2e_p99_ms": "E2E p99",
           "fidelity_basis": "fidelity basis"}


def print_table(df, meta: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    q2 = meta["question"] != "max_rate_per_instance"
    title = (f"blis plan: fewest GPUs at {meta['target_rate']} req/s" if q2 and meta["target_rate"] else
             "blis plan: fewest GPUs at the workload's load" if q2 else "blis plan: max sustainable rate per instance")
    slo = ", ".join(f"{k}={v:g}" for k, v in meta["slo"].items())
    table = Table(title=f"{title} ({meta['workload']}; {slo}; latencies in ms)")
    cols = [c for c in HEADERS if c in df.columns]
    if df["model"].nunique() == 1:
        cols.remove("model")
    for c in ("pd_split", "max_num_batched_tokens", "max_num_seqs"):
        if df[c].nunique(dropna=False) <= 1:
            cols.remove(c)
    bases = df["fidelity_basis"].dropna().unique()
    if len(bases) <= 1:
        cols.remove("fidelity_basis")
    for c in cols:
        table.add_column(HEADERS[c], justify="left" if c in ("model", "hardware", "fidelity_basis") else "right")
    for _, row in df.iterrows():
        cells = []
        for c in cols:
            v = row[c]
            if v is None or (isinstance(v, float) and v != v):
                cells.append("-")
            elif isinstance(v, float):
                cells.append(f"{v:,.4g}" if abs(v) < 1000 else f"{v:,.0f}")
            else:
                cells.append(str(v))
        table.add_row(*cells)
    console = Console(width=None if sys.stdout.isatty() else 160)
    console.print(table)
    if len(bases) == 1:
        console.print(f"fidelity basis: {bases[0]}")
