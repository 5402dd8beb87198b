"""A benchmark run rebuilt from its own result files, simulated, and set beside what it measured.

Readers (`vllm bench serve` result JSON: ``blis.traces.vllm_bench.read_vllm_bench_load``; GuideLLM reports:
``blis.traces.guidellm.read_guidellm``) turn a file into a ``Benchmark``: the server settings and one
``BenchmarkPoint`` per measured load (a GuideLLM sweep has several). A point holds the rebuilt ``Workload``
(rate, concurrency, burstiness, number of prompts, seed) and, when the file lists them, the real prompt and
output lengths in send order. ``run_benchmark`` simulates every point and returns one row per point with the
measured and simulated metrics side by side.

Metric names (milliseconds, requests/s, output tokens/s): ``ttft_mean_ms``, ``ttft_p50_ms``, ``ttft_p99_ms``,
``tpot_mean_ms`` (vLLM's TPOT = (E2E - TTFT) / (output tokens - 1) per request, averaged; GuideLLM calls this
``inter_token_latency``), ``e2e_mean_ms``, ``responses_per_sec``, ``tokens_per_sec``, and for GuideLLM also
``guidellm_tpot_mean_ms`` (its own TPOT: E2E / output tokens, TTFT included).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from blis.errors import BlisInputError
from blis.traces.measured import ServerSettings
from blis.workload.request_table import RequestTable
from blis.workload.spec import Workload

COMPARED = ("ttft_mean_ms", "ttft_p50_ms", "ttft_p99_ms", "tpot_mean_ms", "e2e_mean_ms", "responses_per_sec",
            "tokens_per_sec", "guidellm_tpot_mean_ms")


@dataclass
class BenchmarkPoint:
    """One measured load: ``profile`` (synchronous, concurrent, throughput, constant, poisson, or vllm-bench),
    the rebuilt ``workload``, the real lengths in send order (``input_tokens``/``output_tokens``, or None to
    draw them from the workload) and the ``measured`` metrics (names of ``COMPARED``; missing = not recorded)."""

    label: str
    profile: str
    workload: Workload
    measured: dict
    input_tokens: np.ndarray | None = None
    output_tokens: np.ndarray | None = None
    prefix_len: int = 0
    sent_us: np.ndarray | None = None  # recorded send times (us from the first) of a rate-driven point
    notes: list[str] = field(default_factory=list)

    def requests(self, recorded_times: bool = True) -> RequestTable:
        """The requests to simulate: the workload's schedule (or, with ``recorded_times``, the send times the
        client recorded for a rate-driven point), with the real lengths when the file had them."""
        table = self.workload.generate()
        if recorded_times and self.sent_us is not None and len(self.sent_us) == len(table):
            table.arrival_us = np.asarray(self.sent_us, dtype=np.int64)
        if self.input_tokens is None or self.output_tokens is None:
            return table
        n = len(table)
        if len(self.input_tokens) != n or len(self.output_tokens) != n:
            raise BlisInputError(f"{self.label}: {len(self.input_tokens)} recorded lengths for {n} requests")
        inp = np.maximum(np.asarray(self.input_tokens, dtype=np.int64), 1)
        prefix = np.minimum(self.prefix_len, inp)
        return RequestTable(table.arrival_us, inp, np.maximum(np.asarray(self.output_tokens, dtype=np.int64), 1),
                            prefix_group=np.where(prefix > 0, 0, -1), prefix_len=prefix,
                            client_names=table.client_names)


@dataclass
class Benchmark:
    """A benchmark file read: where it came from, the server it measured and its points."""

    path: Path
    kind: str  # "vllm-bench" or "guidellm"
    server: ServerSettings
    points: list[BenchmarkPoint]
    notes: list[str] = field(default_factory=list)


def simulated_metrics(result) -> dict:
    """The ``COMPARED`` metrics of a SimResult."""
    s = result.summary
    req = result.request_columns
    done = np.asarray(req["finished"], dtype=bool)
    e2e = np.asarray(req["e2e_ms"], dtype=np.float64)[done]
    out = np.asarray(req["output_tokens"], dtype=np.float64)[done]
    return {
        "ttft_mean_ms": s.get("ttft_mean_ms"),
        "ttft_p50_ms": s.get("ttft_p50_ms"),
        "ttft_p99_ms": s.get("ttft_p99_ms"),
        "tpot_mean_ms": s.get("tpot_mean_ms"),
        "e2e_mean_ms": s.get("e2e_mean_ms"),
        "responses_per_sec": s.get("responses_per_sec"),
        "tokens_per_sec": s.get("tokens_per_sec"),
        "guidellm_tpot_mean_ms": round(float((e2e / out).mean()), 6) if len(e2e) else None,
    }


def sim_config_for(bench: Benchmark, latency_model: str | None = None, *, hardware: str | None = None,
                   calibration_file: str | None = None):
    """The SimConfig of the benchmark's server (the workload is set per point)."""
    from blis.config import EngineConfig, SimConfig

    s = bench.server
    engine_kw = {"enable_prefix_caching": s.enable_prefix_caching}
    for name in ("max_num_seqs", "max_num_batched_tokens", "block_size", "total_kv_blocks", "max_model_len"):
        value = getattr(s, name)
        if value is not None:
            engine_kw[name] = value
    return SimConfig(model=s.model, hardware=hardware or s.hardware, tp=s.tp, latency_model=latency_model,
                     calibration_file=calibration_file, engine=EngineConfig(**engine_kw))


def run_benchmark(bench: Benchmark, latency_model: str | None = None, *, hardware: str | None = None,
                  calibration_file: str | None = None, recorded_times: bool = True) -> list[dict]:
    """Simulate every point of ``bench``; one row per point: label, profile, the load, and for each compared
    metric ``measured_<m>``, ``sim_<m>`` and ``err_<m>`` (relative error, simulated / measured - 1).

    ``recorded_times``: a rate-driven point (constant, poisson, vllm bench with a finite rate) whose file lists
    the send times is sent at those times (the offered load as it really was); False: at the nominal rate."""
    from blis.simulate import simulate

    base = sim_config_for(bench, latency_model, hardware=hardware, calibration_file=calibration_file)
    rows = []
    for p in bench.points:
        cfg = base.model_copy(update={"workload": p.workload})
        res = simulate(cfg, requests=p.requests(recorded_times))
        sim = simulated_metrics(res)
        wl = p.workload
        row: dict = {"point": p.label, "profile": p.profile, "num_requests": wl.num_requests,
                     "concurrency": wl.concurrency, "rate": wl.rate,
                     "send_times": "recorded" if recorded_times and p.sent_us is not None else "rebuilt",
                     "latency_model": res.summary["latency_model"]}
        for m in COMPARED:
            meas = p.measured.get(m)
            row[f"measured_{m}"] = meas
            row[f"sim_{m}"] = sim[m]
            row[f"err_{m}"] = (round(sim[m] / meas - 1.0, 6)
                               if meas not in (None, 0) and sim[m] is not None else None)
        rows.append(row)
    return rows


def median_errors(rows: list[dict], metrics: tuple[str, ...] = ("ttft_mean_ms", "tpot_mean_ms")) -> dict:
    """Per profile: median and worst absolute relative error of each metric over the points."""
    out: dict = {}
    for profile in sorted({r["profile"] for r in rows}):
        entry: dict = {"points": sum(r["profile"] == profile for r in rows)}
        for m in metrics:
            errs = [abs(r[f"err_{m}"]) for r in rows if r["profile"] == profile and r.get(f"err_{m}") is not None]
            entry[f"{m}_median_abs_err"] = round(float(np.median(errs)), 4) if errs else None
            entry[f"{m}_worst_abs_err"] = round(float(np.max(errs)), 4) if errs else None
        out[profile] = entry
    return out


def read_benchmark(path: str | Path) -> Benchmark:
    """A `vllm bench serve` result JSON, a GuideLLM report (JSON/YAML), or a folder holding GuideLLM's
    flattened CSVs (``guidellm_benchmarks.csv`` [+ ``guidellm_requests.csv``]) or one of those files."""
    from blis.traces.guidellm import looks_like_guidellm, read_guidellm
    from blis.traces.vllm_bench import read_vllm_bench_load

    path = Path(path)
    if not path.exists():
        raise BlisInputError(f"{path}: no such file or folder")
    if looks_like_guidellm(path):
        return read_guidellm(path)
    if path.is_file() and path.suffix == ".json":
        return read_vllm_bench_load(path)
    raise BlisInputError(f"{path}: not a benchmark result (expected a vllm bench serve JSON, a GuideLLM report "
                         "JSON/YAML, or a folder with guidellm_benchmarks.csv)")


def benchmark_report(path: str | Path, latency_model: str | None = None, *, hardware: str | None = None,
                     calibration_file: str | None = None, recorded_times: bool = True) -> dict:
    """Read, rebuild and simulate a benchmark file: ``{"benchmark", "kind", "model", "notes", "points",
    "median_errors"}`` (points: the rows of ``run_benchmark``)."""
    bench = read_benchmark(path)
    rows = run_benchmark(bench, latency_model, hardware=hardware, calibration_file=calibration_file,
                         recorded_times=recorded_times)
    notes = list(bench.notes) + [n for p in bench.points for n in p.notes]
    return {"benchmark": str(bench.path), "kind": bench.kind, "model": bench.server.model,
            "hardware": hardware or bench.server.hardware, "tp": bench.server.tp, "notes": notes,
            "points": rows, "median_errors": median_errors(rows)}
