"""`python -m blis run`: simulate a workload on one instance (or a cluster) and print the summary.

The model, hardware, engine, workload and cluster flags are generated from the config fields
(``blis/commands/_flags.py`` says how to add one). Everything is checked before the simulation starts: the
flags, the files they name, the output paths, and which flags apply together; the "defaults used" line is
printed only once the run has started, and the summary is written before the output files.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from blis.commands import _flags
from blis.errors import BlisInputError

TABLE_SUFFIXES = (".csv", ".parquet")
# Workload fields that still apply to a --trace (its arrivals and lengths come from the file)
TRACE_FIELDS = ("num_requests",)


def register(sub) -> None:
    from blis.config import EngineConfig, SimConfig
    from blis.workload.presets import available_presets
    from blis.workload.spec import Workload

    p = sub.add_parser(
        "run",
        help="simulate a workload and print metrics",
        description="Simulate serving a workload on a vLLM-V1-style instance (or a cluster) and print TTFT, "
        "ITL, TPOT and E2E statistics (milliseconds), throughput and KV utilisation. "
        "JSON goes to stdout; messages and the progress bar go to stderr. Flags that do not apply together "
        "are refused.",
    )
    flags: list[_flags.Flag] = []
    g = p.add_argument_group("model, hardware and latency model")
    flags += _flags.add_model_flags(g, SimConfig)
    g = p.add_argument_group("workload")
    g.add_argument("--workload", metavar="NAME|PATH", type=_flags.text_type("workload"),
                   help=f"length preset ({', '.join(available_presets())}) or a workload YAML file "
                   "(default chatbot)")
    g.add_argument("--trace", metavar="CSV", type=_flags.text_type("trace"),
                   help="replay a CSV trace: arrival_time_us (microseconds),input_tokens,output_tokens"
                   "[,prefix_group,prefix_len] (only --num-requests applies with it)")
    from blis.commands import workload_args  # --rate lists, closed loop, fixed lengths, sweeps, --emit

    workload_args.add_arguments(p, g)  # defined by hand: the generator skips these fields
    flags += _flags.add_model_flags(g, Workload, defaults={"num_requests": "default 100, or every trace row"})
    g = p.add_argument_group("engine (vLLM scheduler and KV cache)")
    flags += _flags.add_model_flags(g, EngineConfig)
    g = p.add_argument_group("output")
    g.add_argument("--output", choices=("json", "table"), default="json", help="summary format on stdout")
    _flags.add_output_flag(g, "--requests-out", TABLE_SUFFIXES,
                           "write the per-request table (times in ms; Parquet needs pyarrow)")
    _flags.add_output_flag(g, "--steps-out", TABLE_SUFFIXES, "write the per-step table (times in microseconds)")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    from blis.cluster.cli_args import add_cluster_arguments

    flags += add_cluster_arguments(p)
    p.set_defaults(handler=run, flags=flags)


# --- configuration from the flags ------------------------------------------------------------------
def _model_name_from_config(path: str) -> str:
    """A --model-config's model name: its folder's name (the file may sit in the current folder)."""
    p = Path(path).resolve()
    return p.name if p.is_dir() else (p.parent.name or "custom")


def _workload(args, flags, notes: list[str]):
    from blis.workload.spec import DEFAULT_NUM_REQUESTS, Workload

    wl = _flags.given(args, flags, Workload)
    if args.rate is not None:  # a sweep starts at its first point
        wl["rate"] = args.rate[0] if isinstance(args.rate, list) else args.rate
    if args.trace:
        if args.workload:
            raise BlisInputError("workload: --workload and --trace both give the requests; choose one")
        if "rate" in wl:
            raise BlisInputError("rate: --rate does not apply with --trace (the trace has its own arrival times)")
        extra = [f for f in wl if f not in TRACE_FIELDS]
        if extra:
            raise BlisInputError(f"{extra[0]}: {_flags.option_of(flags, extra[0])} does not apply with --trace "
                                 "(the trace has its own arrival times and lengths)")
        return Workload.from_trace_csv(args.trace, num_requests=wl.get("num_requests"))
    name = args.workload or "chatbot"
    if args.workload is None:
        notes.append(f"workload={name}")
    if name.endswith((".yaml", ".yml", ".json")) or Path(name).exists():
        workload = Workload.from_yaml(name)
    else:
        workload = Workload.preset(name)
    if wl:
        import inspect

        known = set(inspect.signature(workload.with_overrides).parameters)
        workload = workload.with_overrides(**{k: v for k, v in wl.items() if k in known})
        rest = {k: v for k, v in wl.items() if k not in known}
        if rest:
            workload = type(workload).model_validate({**workload.model_dump(), **rest})
    if "stage_gap_s" in wl and not workload.stages:
        raise BlisInputError("stage_gap_s: --stage-gap-s applies only to a workload with load stages")
    _check_span(workload)
    if not workload.stages and not workload.clients and "rate" not in wl and workload.rate is not None:
        notes.append(f"rate={workload.rate:g} req/s")
    if "num_requests" not in wl:
        notes.append(f"num_requests={workload.num_requests or DEFAULT_NUM_REQUESTS}")
    if "seed" not in wl:
        notes.append(f"seed={workload.seed}")
    return workload


def _check_span(workload) -> None:
    """Arrivals must fit the simulated clock (int64 microseconds): refuse a rate so low they would not."""
    from blis.config import MAX_TIME_US
    from blis.workload.spec import DEFAULT_NUM_REQUESTS

    if workload.stages or workload.trace_path is not None or workload.rate is None:
        return  # stage durations are bounded by their fields; a trace's times by its reader; a closed loop's
        # by its completions
    n = workload.num_requests or DEFAULT_NUM_REQUESTS
    span_s = n / workload.rate * (1 + 10 * workload.cv)  # generous for bursty gaps
    if span_s * 1e6 > MAX_TIME_US:
        raise BlisInputError(f"rate: {n} requests at {workload.rate:g} requests per second would span about "
                             f"{span_s:.3g} s, beyond the simulated clock ({MAX_TIME_US / 1e6:g} s); raise the rate")


def latency_model_for_calibration(path: str, chosen: str | None) -> str | None:
    """The latency model a calibration file implies: 'blackbox' for blackbox entries; roofline parameters serve
    roofline and roofline-v2 (None keeps the automatic choice). A file for another model is refused."""
    from blis.latency.calibration import file_kind

    kind = file_kind(path, "calibration_file", strict=True)
    serves = ("blackbox",) if kind == "blackbox" else ("roofline", "roofline-v2")
    if chosen is not None and chosen not in serves:
        raise BlisInputError(f"calibration_file: {path} holds {kind} parameters; the latency model is {chosen}")
    return "blackbox" if kind == "blackbox" else chosen


def _latency_model(sim: dict, flags) -> str | None:
    """The latency model the flags imply; conflicting flags are refused."""
    chosen = sim.get("latency_model")
    coeffs = [f for f in ("alpha_coeffs", "beta_coeffs") if f in sim]
    if coeffs:
        if chosen not in (None, "blackbox"):
            raise BlisInputError(f"{coeffs[0]}: {_flags.option_of(flags, coeffs[0])} is for the blackbox latency "
                                 f"model, not {chosen}")
        chosen = "blackbox"
    if sim.get("calibration_file"):
        chosen = latency_model_for_calibration(sim["calibration_file"], chosen)
    if sim.get("bench_data_path") and chosen not in (None, "roofline-v2"):
        raise BlisInputError(f"bench_data_path: --bench-data-path is for the roofline-v2 latency model, "
                             f"not {chosen}")
    return chosen


def _check_names(config) -> None:
    """Model and hardware names that nothing knows are refused with the known ones listed."""
    from blis.latency.blackbox import canonical_model_name, load_coefficient_table
    from blis.physics.hardware import available_hardware, get_hardware, load_hardware_file
    from blis.physics.model_spec import available_models, get_model, load_hf_config

    extra = load_hardware_file(config.hardware_file) if config.hardware_file else None
    table = None
    if config.model_config_path:
        load_hf_config(config.model_config_path, name=config.model)
    else:
        try:
            get_model(config.model)
        except BlisInputError:
            table = load_coefficient_table()
            if canonical_model_name(config.model) not in {canonical_model_name(e["model"]) for e in table}:
                raise BlisInputError(f"model: unknown model {config.model!r}; known: "
                                     f"{', '.join(available_models())} (or give --model-config)") from None
    try:
        get_hardware(config.hardware, extra)
    except BlisInputError:
        table = table if table is not None else load_coefficient_table()
        if config.hardware.upper() not in {str(e["hardware"]).upper() for e in table}:
            raise BlisInputError(f"hardware: unknown hardware {config.hardware!r}; known: "
                                 f"{', '.join(available_hardware(extra))} (or give --hardware-file)") from None


def build_config(args):
    """SimConfig from parsed arguments; returns (config, notes about defaults used)."""
    from blis.config import EngineConfig, SimConfig

    flags = args.flags
    sim = _flags.given(args, flags, SimConfig)
    notes = [f"{f}={SimConfig.model_fields[f].default}" for f in ("model", "hardware", "tp")
             if f not in sim and not (f == "model" and "model_config_path" in sim)]
    if "model_config_path" in sim and "model" not in sim:
        sim["model"] = _model_name_from_config(sim["model_config_path"])
    latency_model = _latency_model(sim, flags)
    if latency_model is not None:
        sim["latency_model"] = latency_model
    workload = _workload(args, flags, notes)
    from blis.commands import workload_args

    workload = workload_args.apply(args, workload, notes)
    if workload.rate is None:  # a closed loop without a cap: no rate was used
        notes[:] = [n for n in notes if not n.startswith("rate=")]
    engine = EngineConfig(**_flags.given(args, flags, EngineConfig))
    config = SimConfig(**sim, engine=engine, workload=workload)
    _check_names(config)
    return config, notes


def write_table(df, path: str, what: str) -> None:
    """A DataFrame to CSV or Parquet (by extension; the path was checked when the flags were parsed)."""
    try:
        if str(path).lower().endswith(".parquet"):
            df.to_parquet(path, index=False)
        else:
            df.to_csv(path, index=False)
    except OSError as exc:
        raise BlisInputError(f"{what}: cannot write {path} ({exc.strerror or exc})") from None


# --- progress ----------------------------------------------------------------------------------------
def _eta_column():
    from rich.progress import ProgressColumn
    from rich.text import Text

    class ETA(ProgressColumn):
        """Estimated wall time left, from the finished fraction and the time so far."""

        def render(self, task) -> Text:
            done = task.completed / task.total if task.total else 0.0
            if done <= 0.0 or task.elapsed is None:
                return Text("ETA -:--")
            left = int(task.elapsed * (1.0 - done) / done)
            return Text(f"ETA {left // 60}:{left % 60:02d}")

    return ETA()


class _Progress:
    """Writes ``header`` to stderr when the simulation has started (all input checked), then a rich progress
    bar with the elapsed time and an ETA, shown only for runs lasting over a second on a terminal."""

    def __init__(self, enabled: bool, header: str = "") -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self.header = header
        self.start = time.monotonic()
        self.bar = None
        self.task = None

    def started(self) -> None:
        if self.header:
            sys.stderr.write(self.header + "\n")
            sys.stderr.flush()
            self.header = ""

    def __call__(self, fraction: float) -> None:
        self.started()
        if not self.enabled:
            return
        if self.bar is None:
            if time.monotonic() - self.start < 1.0:
                return
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(TextColumn("simulating"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                                TimeElapsedColumn(), _eta_column(), console=Console(stderr=True), transient=True)
            self.bar.start()
            self.task = self.bar.add_task("sim", total=1.0)
        self.bar.update(self.task, completed=fraction)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def run(args) -> int:
    from blis.cluster.cli_args import cluster_config
    from blis.simulate import choose_latency_model, simulate

    config, notes = build_config(args)  # output paths were checked when the flags were parsed
    cluster = cluster_config(args, config)
    name, reason = choose_latency_model(config)
    msg = f"blis: latency model {name} ({reason})"
    if notes:
        msg = f"blis: defaults used: {', '.join(notes)}; latency model {name} ({reason})"
    from blis.commands import workload_args

    def run_one(cfg):  # one sweep point: the cluster the flags describe, or one instance
        c = cluster_config(args, cfg)
        if c is not None:
            from blis.cluster.cluster import simulate_cluster

            return simulate_cluster(c)
        return simulate(cfg)

    if workload_args.maybe_sweep(args, config, run_one, header=msg):
        return 0
    progress = _Progress(not args.no_progress, msg)
    try:
        if cluster is not None:
            from blis.cluster.cluster import simulate_cluster

            result = simulate_cluster(cluster, progress=progress)
        else:
            result = simulate(config, progress=progress)
        progress.started()
    finally:
        progress.close()
    _say_fidelity(result.summary)
    if workload_args.emit(args, result):
        pass
    elif args.output == "json":
        sys.stdout.write(result.to_json() + "\n")
    else:
        print_table(result.summary)
    sys.stdout.flush()
    if args.requests_out:
        write_table(result.requests, args.requests_out, "requests_out")
    if args.steps_out:
        write_table(result.steps, args.steps_out, "steps_out")
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


