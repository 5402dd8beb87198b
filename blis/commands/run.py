"""`python -m blis run`: simulate a workload on one instance (or a cluster) and print the summary."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from blis.errors import BlisInputError

DEFAULTS = {"model": "llama-2-7b", "hardware": "H100", "tp": 1, "workload": "chatbot"}


def _coeffs(label: str):
    def parse(text: str) -> tuple[float, float, float]:
        try:
            values = tuple(float(x) for x in text.split(","))
        except ValueError:
            values = ()
        if len(values) != 3:
            raise argparse.ArgumentTypeError(f"{label}: expected 3 comma-separated numbers (microseconds)")
        return values  # type: ignore[return-value]

    return parse


def register(sub) -> None:
    p = sub.add_parser(
        "run",
        help="simulate a workload and print metrics",
        description="Simulate serving a workload on a vLLM-V1-style instance (or a cluster) and print TTFT, "
        "ITL, TPOT and E2E statistics (milliseconds), throughput and KV utilisation. "
        "JSON goes to stdout; messages and the progress bar go to stderr.",
    )
    g = p.add_argument_group("model and hardware")
    g.add_argument("--model", help=f"model registry name or HuggingFace id (default {DEFAULTS['model']})")
    g.add_argument("--model-config", metavar="PATH", help="HuggingFace config.json to read the model from")
    g.add_argument("--hardware", help=f"GPU name, e.g. H100, H200, A100-80GB (default {DEFAULTS['hardware']})")
    g.add_argument("--hardware-file", metavar="PATH", help="JSON/YAML file adding or overriding hardware")
    g.add_argument("--tp", type=int, help=f"tensor-parallel degree, >= 1 (default {DEFAULTS['tp']})")
    g = p.add_argument_group("latency model")
    g.add_argument("--latency-model", metavar="NAME",
                   help="blackbox, roofline or roofline-v2 (default: chosen automatically, see stderr)")
    g.add_argument("--alpha-coeffs", type=_coeffs("alpha_coeffs"), metavar="A0,A1,A2",
                   help="blackbox queueing delay: a0 microseconds + a1 microseconds per input token; a2 microseconds "
                   "added per output token")
    g.add_argument("--beta-coeffs", type=_coeffs("beta_coeffs"), metavar="B0,B1,B2",
                   help="blackbox step time: b0 microseconds + b1 per prefill token + b2 per decode token")
    g.add_argument("--bench-data-path", metavar="DIR", help="kernel benchmark tables for roofline-v2")
    g.add_argument("--calibration", metavar="auto|generic|PATH",
                   help="auto: a shipped refit validated on runs of this setup, else the per-GPU physics (default); "
                   "generic: per-GPU physics only; PATH: a file written by `blis calibrate`")
    g.add_argument("--calibration-file", metavar="PATH", help="older name for --calibration PATH")
    g = p.add_argument_group("workload")
    g.add_argument("--workload", metavar="NAME|PATH",
                   help="preset (chatbot, contentgen, summarization, multidoc) or a workload YAML file "
                   f"(default {DEFAULTS['workload']})")
    g.add_argument("--trace", metavar="CSV", help="replay arrival_time_us,input_tokens,output_tokens[,prefix_group]")
    g.add_argument("--rate", type=float, help="arrival rate, requests per second (> 0; default 1)")
    g.add_argument("--num-requests", type=int, help="number of requests (>= 1; default 100)")
    g.add_argument("--arrival", help="arrival process: constant, poisson, gamma, weibull (default constant)")
    g.add_argument("--cv", type=float, help="coefficient of variation of gamma/weibull inter-arrival times (> 0)")
    g.add_argument("--seed", type=int, help="random seed of the workload (default 42)")
    g = p.add_argument_group("engine (vLLM scheduler and KV cache)")
    g.add_argument("--max-num-seqs", type=int, help="most running requests per step (default 256)")
    g.add_argument("--max-num-batched-tokens", type=int, help="token budget per step (default 2048)")
    g.add_argument("--long-prefill-token-threshold", type=int,
                   help="cap on one request's prefill chunk per step, tokens; 0 = off (default 0)")
    g.add_argument("--block-size", type=int, help="tokens per KV block (default 16)")
    g.add_argument("--total-kv-blocks", type=int,
                   help="KV blocks per instance (default: derived from model, hardware and TP)")
    g.add_argument("--gpu-memory-utilization", type=float, help="fraction of GPU memory vLLM may use (default 0.9)")
    g.add_argument("--max-model-len", type=int, help="longest prompt+output, tokens; longer prompts are rejected")
    g.add_argument("--no-prefix-caching", action="store_true", help="turn automatic prefix caching off")
    g.add_argument("--async-scheduling", action=argparse.BooleanOptionalAction, default=None,
                   help="vLLM async scheduling: the next step is scheduled while the current one runs, so an "
                   "arrival joins one step later (default: on, as vLLM >= 0.14)")
    g.add_argument("--horizon-s", type=float,
                   help="stop at this simulated time, seconds; unfinished requests are reported")
    g = p.add_argument_group("output")
    g.add_argument("--output", choices=("json", "table"), default="json", help="summary format on stdout")
    g.add_argument("--requests-out", metavar="PATH", help="write the per-request table (.csv, or .parquet)")
    g.add_argument("--steps-out", metavar="PATH", help="write the per-step table as CSV")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    try:
        from blis.cluster.cli_args import add_cluster_arguments
    except ModuleNotFoundError:
        add_cluster_arguments = None
    if add_cluster_arguments is not None:
        add_cluster_arguments(p)
    p.set_defaults(handler=run)


def build_config(args):
    """SimConfig from parsed arguments; returns (config, notes about defaults used)."""
    from blis.config import EngineConfig, SimConfig
    from blis.workload.spec import Workload

    notes = []
    for field in ("model", "hardware", "tp"):
        if getattr(args, field) is None and not (field == "model" and args.model_config):
            notes.append(f"{field}={DEFAULTS[field]}")
    if args.trace:
        workload = Workload.from_trace_csv(args.trace)
        if args.num_requests is not None:
            workload = workload.with_overrides(num_requests=args.num_requests)
    else:
        name = args.workload or DEFAULTS["workload"]
        if args.workload is None:
            notes.append(f"workload={name}")
        if name.endswith((".yaml", ".yml")) or Path(name).is_file():
            workload = Workload.from_yaml(name)
        else:
            workload = Workload.preset(name)
        workload = workload.with_overrides(rate=args.rate, num_requests=args.num_requests, seed=args.seed,
                                           arrival=args.arrival, cv=args.cv)
    engine_fields = {
        "max_num_seqs": args.max_num_seqs,
        "max_num_batched_tokens": args.max_num_batched_tokens,
        "long_prefill_token_threshold": args.long_prefill_token_threshold,
        "block_size": args.block_size,
        "total_kv_blocks": args.total_kv_blocks,
        "gpu_memory_utilization": args.gpu_memory_utilization,
        "max_model_len": args.max_model_len,
        "async_scheduling": args.async_scheduling,
    }
    engine = EngineConfig(**{k: v for k, v in engine_fields.items() if v is not None},
                          enable_prefix_caching=not args.no_prefix_caching)
    fields = {
        "model": args.model or (Path(args.model_config).parent.name if args.model_config else DEFAULTS["model"]),
        "hardware": args.hardware or DEFAULTS["hardware"],
        "tp": args.tp if args.tp is not None else DEFAULTS["tp"],
        "latency_model": args.latency_model,
        "alpha_coeffs": args.alpha_coeffs,
        "beta_coeffs": args.beta_coeffs,
        "model_config_path": args.model_config,
        "hardware_file": args.hardware_file,
        "bench_data_path": args.bench_data_path,
        "calibration_file": args.calibration_file,
        **({"calibration": args.calibration} if args.calibration else {}),
        "engine": engine,
        "workload": workload,
        "horizon_us": None if args.horizon_s is None else max(1, int(args.horizon_s * 1e6)),
    }
    if args.horizon_s is not None and args.horizon_s <= 0:
        raise BlisInputError("horizon_s: must be > 0 seconds")
    return SimConfig(**fields), notes


class _Progress:
    """A rich progress bar on stderr, shown only for runs that last more than a second on a terminal."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self.start = time.monotonic()
        self.bar = None
        self.task = None

    def __call__(self, fraction: float) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            if time.monotonic() - self.start < 1.0:
                return
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(TextColumn("simulating"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                                TimeElapsedColumn(), console=Console(stderr=True), transient=True)
            self.bar.start()
            self.task = self.bar.add_task("sim", total=1.0)
        self.bar.update(self.task, completed=fraction)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def run(args) -> int:
    from blis.simulate import choose_latency_model, simulate

    config, notes = build_config(args)
    name, reason = choose_latency_model(config)
    msg = f"blis: latency model {name} ({reason})"
    if notes:
        msg = f"blis: defaults used: {', '.join(notes)}; latency model {name} ({reason})"
    sys.stderr.write(msg + "\n")
    progress = _Progress(not args.no_progress)
    try:
        result = None
        try:
            from blis.cluster.cli_args import maybe_simulate_cluster
        except ModuleNotFoundError:
            maybe_simulate_cluster = None
        if maybe_simulate_cluster is not None:
            result = maybe_simulate_cluster(args, config, progress)
        if result is None:
            result = simulate(config, progress=progress)
    finally:
        progress.close()
    _say_fidelity(result.summary)
    if args.requests_out:
        result.write_requests(args.requests_out)
    if args.steps_out:
        result.steps.to_csv(args.steps_out, index=False)
    if args.output == "json":
        sys.stdout.write(result.to_json() + "\n")
    else:
        print_table(result.summary)
    return 0


def _say_fidelity(summary: dict) -> None:
    """The fidelity statement (and an overload warning) in one line each on stderr (issue #10)."""
    from blis.latency.fidelity import one_line

    if summary.get("fidelity"):
        sys.stderr.write(one_line(summary["fidelity"]) + "\n")
    if summary.get("overloaded"):
        sys.stderr.write(f"blis: overloaded: arrivals {summary.get('arrival_rate_rps'):.2f} req/s, the server "
                         f"sustained {summary.get('sustained_rate_rps'):.2f} req/s (the queue grew through the run)\n")


def print_table(summary: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"blis: {summary.get('model')} on {summary.get('hardware')} x TP{summary.get('tp')} "
                  f"({summary.get('latency_model')})")
    table.add_column("metric")
    for col in ("mean", "p50", "p90", "p95", "p99"):
        table.add_column(col, justify="right")
    for metric in ("ttft", "itl", "tpot", "e2e"):
        row = [f"{metric.upper()} (ms)"]
        for col in ("mean", "p50", "p90", "p95", "p99"):
            v = summary.get(f"{metric}_{col}_ms")
            row.append("-" if v is None else f"{v:,.2f}")
        table.add_row(*row)
    console = Console()
    console.print(table)
    rest = Table(show_header=False)
    for key in ("completed_requests", "rejected_requests", "unfinished_requests", "preemption_count",
                "tokens_per_sec", "responses_per_sec", "kv_util_mean", "kv_util_max", "prefix_cache_hit_rate",
                "total_kv_blocks", "sim_duration_s", "overloaded", "arrival_rate_rps", "sustained_rate_rps"):
        if key in summary:
            v = summary[key]
            rest.add_row(key, f"{v:,.3f}" if isinstance(v, float) else str(v))
    fid = summary.get("fidelity") or {}
    if fid:
        exp = fid.get("expected_error_pct") or {}
        rest.add_row("fidelity basis", str(fid.get("basis")))
        rest.add_row("expected error %", ", ".join(f"{k} {'-' if v is None else v}" for k, v in exp.items()))
        rest.add_row("evidence", str(fid.get("evidence")))
    console.print(rest)
