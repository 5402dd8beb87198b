"""Read a GuideLLM run and rebuild the load of each of its benchmarks (``blis.traces.benchmark``).

Two forms are read:
- GuideLLM's own report (``benchmarks.json`` / ``.yaml``): ``{"benchmarks": [...]}``, each benchmark with its
  strategy in ``config.strategy`` (v0.4) or ``args.strategy`` (v0.3): ``type_`` synchronous, concurrent
  (``streams``), throughput (``max_concurrency``), constant or poisson (``rate``); metrics in
  ``metrics.<name>.successful.{mean, median, percentiles.p99}`` (``time_to_first_token_ms``,
  ``inter_token_latency_ms``, ``time_per_output_token_ms``, ``request_latency`` in seconds,
  ``requests_per_second``, ``output_tokens_per_second``) and the requests in ``requests.successful`` /
  ``errored`` / ``incomplete`` (``prompt_tokens``, ``output_tokens``, ``request_start_time``).
- the flattened CSVs of the shared data (``guidellm_benchmarks.csv``: one row per benchmark with
  ``strategy, target_rate, max_concurrency, n_successful, ..., ttft_ms_mean, itl_ms_mean, tpot_ms_mean,
  e2e_s_mean, achieved_rps``; ``guidellm_requests.csv``: one row per request), with ``exp-config.yaml``
  (server) and ``profile.yaml`` (the data config and ``random-seed``) beside them.

The load of a benchmark: synchronous = 1 user; concurrent = ``streams`` users; throughput = every request at
once (up to ``max_concurrency`` in flight); constant = evenly spaced at ``rate`` (first at 0) and poisson =
exponential gaps, both capped at ``max_concurrency`` when recorded. Lengths are the recorded ones in send
order when the requests are listed, else drawn from the data config (clamped Gaussians plus a shared
``prefix_tokens`` prefix). GuideLLM's ITL per request is vLLM's TPOT; GuideLLM's TPOT includes the TTFT.
"""

from __future__ import annotations

import ast
import csv
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from blis._files import read_json, read_yaml
from blis.errors import BlisInputError
from blis.traces.benchmark import Benchmark, BenchmarkPoint
from blis.traces.measured import ServerSettings
from blis.workload.spec import Workload

PROFILES = ("synchronous", "concurrent", "throughput", "constant", "poisson")
BENCH_CSV = "guidellm_benchmarks.csv"
REQUESTS_CSV = "guidellm_requests.csv"


def looks_like_guidellm(path: Path) -> bool:
    if path.is_dir():
        return (path / BENCH_CSV).is_file()
    if path.name in (BENCH_CSV, REQUESTS_CSV):
        return True
    if path.suffix.lower() in (".json", ".yaml", ".yml"):
        try:
            doc = read_json(path) if path.suffix.lower() == ".json" else read_yaml(path)
        except BlisInputError:
            return False
        return isinstance(doc, dict) and isinstance(doc.get("benchmarks"), list)
    return False


def read_guidellm(path: str | Path) -> Benchmark:
    """A GuideLLM report file, or a folder (or file) of the flattened CSVs."""
    path = Path(path)
    if path.is_dir() or path.name in (BENCH_CSV, REQUESTS_CSV):
        return _read_csv_folder(path if path.is_dir() else path.parent)
    doc = read_json(path) if path.suffix.lower() == ".json" else read_yaml(path)
    return _read_report(doc, path)


# ------------------------------------------------------------------------------------------ the load
def _load(profile: str, n: int, rate: float | None, streams: int | None, max_concurrency: int | None,
          lengths: dict, seed: int, where: str) -> Workload:
    common = {"num_requests": n, "seed": seed, **lengths}
    if profile == "synchronous":
        return Workload.model_validate({**common, "concurrency": 1})
    if profile == "concurrent":
        if not streams:
            raise BlisInputError(f"{where}: concurrent benchmark without its number of streams")
        return Workload.model_validate({**common, "concurrency": int(streams)})
    if profile == "throughput":
        return Workload.model_validate({**common, "concurrency": int(min(max_concurrency or n, n))})
    if profile in ("constant", "poisson"):
        if not rate or not rate > 0:
            raise BlisInputError(f"{where}: {profile} benchmark without a rate > 0")
        cap = {"concurrency": int(max_concurrency)} if max_concurrency else {}
        return Workload.model_validate({**common, "rate": float(rate), "arrival": profile, **cap})
    raise BlisInputError(f"{where}: strategy {profile!r} unknown; known: {', '.join(PROFILES)}")


def _lengths_from_data(data: dict, where: str) -> tuple[dict, int]:
    """Workload length fields from GuideLLM's synthetic data config, and the shared prefix (tokens)."""
    def num(key: str, default: float | None = None) -> float | None:
        v = data.get(key, default)
        return None if v is None else float(v)

    p, o = num("prompt_tokens"), num("output_tokens")
    if p is None or o is None:
        raise BlisInputError(f"{where}: data config needs prompt_tokens and output_tokens")

    def dist(prefix: str, mean: float) -> dict:
        std = num(f"{prefix}_stdev", 0.0) or 0.0
        lo = int(num(f"{prefix}_min", 1) or 1)
        hi = int(num(f"{prefix}_max", mean if not std else mean + 10 * std) or mean)
        return {"mean": mean, "std": std, "min": max(1, lo), "max": max(1, lo, hi)}

    prefix = int(num("prefix_tokens", 0) or 0)
    return {"input": dist("prompt_tokens", p), "output": dist("output_tokens", o), "prefix_tokens": prefix}, prefix


def _parse_data(value: Any) -> dict:
    """GuideLLM's data argument: a mapping, a JSON string, ``"k=v,k=v"``, or a list holding one of those."""
    if isinstance(value, list) and value:
        return _parse_data(value[0])
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                return _parse_data(ast.literal_eval(text))
            except (ValueError, SyntaxError):
                return {}
        try:
            doc = json.loads(text)
            return doc if isinstance(doc, dict) else {}
        except json.JSONDecodeError:
            pairs = [kv.split("=", 1) for kv in text.split(",") if "=" in kv]
            return {k.strip(): _number(v.strip()) for k, v in pairs}
    return {}


def _number(text: str) -> Any:
    try:
        return float(text) if "." in text else int(text)
    except ValueError:
        return text


# ------------------------------------------------------------------------------------ flattened CSVs
def _read_csv_folder(folder: Path) -> Benchmark:
    bench_path = folder / BENCH_CSV
    if not bench_path.is_file():
        raise BlisInputError(f"{folder}: {BENCH_CSV} not found")
    rows = _csv_rows(bench_path)
    req_path = folder / REQUESTS_CSV
    requests = _csv_rows(req_path) if req_path.is_file() else []
    profile_doc = read_yaml(folder / "profile.yaml") if (folder / "profile.yaml").is_file() else {}
    data = profile_doc.get("data") if isinstance(profile_doc, dict) else None
    seed = int(profile_doc.get("random-seed", 42)) if isinstance(profile_doc, dict) else 42
    lengths, prefix = _lengths_from_data(data, f"{folder}/profile.yaml") if isinstance(data, dict) else ({}, 0)
    notes = [] if data else [f"{folder}: no profile.yaml data config: lengths only from the request rows"]
    points = []
    for i, r in enumerate(rows):
        where = f"{bench_path}: row {i + 1}"
        profile = str(r.get("strategy", "")).strip()
        idx = r.get("benchmark_index", str(i))
        mine = sorted((q for q in requests if q.get("benchmark_index") == idx and q.get("status") != "incomplete"),
                      key=lambda q: (_float(q.get("request_start_time")) or 0.0))
        n = sum(int(_float(r.get(k)) or 0) for k in ("n_successful", "n_errored", "n_incomplete"))
        n = n or len(mine)
        if n < 1:
            raise BlisInputError(f"{where}: no requests")
        rate = _float(r.get("target_rate"))
        conc = _float(r.get("max_concurrency"))
        if not mine and not lengths:
            raise BlisInputError(f"{where}: neither request rows nor a data config: the lengths are unknown")
        wl_lengths = lengths or _mean_lengths(r)
        wl = _load(profile, n, rate, int(conc) if profile == "concurrent" and conc else None,
                   int(conc) if conc else None, wl_lengths, seed, where)
        measured = {
            "ttft_mean_ms": _float(r.get("ttft_ms_mean")),
            "ttft_p50_ms": _float(r.get("ttft_ms_median")),
            "ttft_p99_ms": _float(r.get("ttft_ms_p99")),
            "tpot_mean_ms": _float(r.get("itl_ms_mean")),
            "guidellm_tpot_mean_ms": _float(r.get("tpot_ms_mean")),
            "e2e_mean_ms": _scaled(r.get("e2e_s_mean"), 1000.0),
            "responses_per_sec": _float(r.get("achieved_rps")),
        }
        label = profile if profile in ("synchronous", "throughput") else \
            f"{profile}@{rate:.3g}/s" if rate else f"{profile}@{int(conc or 0)}"
        point = BenchmarkPoint(label=label, profile=profile, workload=wl, measured=measured, prefix_len=prefix)
        if len(mine) == n:
            point.input_tokens = np.array([int(_float(q["prompt_tokens"]) or 1) for q in mine])
            point.output_tokens = np.array([int(_float(q["output_tokens"]) or 1) for q in mine])
            point.sent_us = _sent_us(profile, [_float(q.get("request_start_time")) for q in mine])
        else:
            point.notes.append(f"{label}: {len(mine)} request rows for {n} requests: lengths drawn from the data "
                               "config")
        points.append(point)
    server = _server(folder)
    notes.append("hardware not recorded: H100 assumed (give --hardware to change)")
    return Benchmark(path=folder, kind="guidellm", server=server, points=points, notes=notes)


def _sent_us(profile: str, starts: list) -> np.ndarray | None:
    """Recorded send times (us from the first, sorted input) of a rate-driven benchmark; None otherwise."""
    if profile not in ("constant", "poisson") or not starts or any(t is None for t in starts):
        return None
    t = np.asarray(starts, dtype=np.float64)
    return np.round((t - t[0]) * 1e6).astype(np.int64)


def _mean_lengths(row: dict) -> dict:
    p = max(1, round(_float(row.get("prompt_tokens_mean")) or 1))
    o = max(1, round(_float(row.get("output_tokens_mean")) or 1))
    return {"input": {"mean": p, "min": p, "max": p}, "output": {"mean": o, "min": o, "max": o}}


def _server(folder: Path) -> ServerSettings:
    from blis._files import as_int

    exp_path = folder / "exp-config.yaml"
    if not exp_path.is_file():
        raise BlisInputError(f"{folder}: exp-config.yaml (model, tensor_parallelism, engine limits) not found")
    exp = read_yaml(exp_path)
    if not isinstance(exp, dict) or not exp.get("model"):
        raise BlisInputError(f"{exp_path}: field 'model' missing")

    def opt(name: str) -> int | None:
        v = exp.get(name)
        return None if v is None else as_int(v, name, exp_path, minimum=1)

    return ServerSettings(model=str(exp["model"]), tp=opt("tensor_parallelism") or 1,
                          hardware=str(exp.get("hardware") or "H100"), max_num_seqs=opt("max_num_seqs"),
                          max_num_batched_tokens=opt("max_num_batched_tokens"), block_size=opt("block_size"),
                          total_kv_blocks=opt("kv_blocks_total_gpu"), max_model_len=opt("max_model_len"))


def _csv_rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _float(value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(x) else x


def _scaled(value: Any, factor: float) -> float | None:
    x = _float(value)
    return None if x is None else x * factor


# ----------------------------------------------------------------------------------- GuideLLM report
def _read_report(doc: Any, path: Path) -> Benchmark:
    if not isinstance(doc, dict) or not isinstance(doc.get("benchmarks"), list) or not doc["benchmarks"]:
        raise BlisInputError(f"{path}: field 'benchmarks' missing or empty (not a GuideLLM report)")
    top_args = doc.get("args") if isinstance(doc.get("args"), dict) else {}
    points, notes, model = [], [], None
    for i, b in enumerate(doc["benchmarks"]):
        where = f"{path}: benchmarks[{i}]"
        if not isinstance(b, dict):
            raise BlisInputError(f"{where}: expected a mapping")
        config = b.get("config") if isinstance(b.get("config"), dict) else {}
        args = b.get("args") if isinstance(b.get("args"), dict) else {}
        strategy = config.get("strategy") or args.get("strategy") or {}
        profile = str(strategy.get("type_") or strategy.get("type") or "")
        rate = _float(strategy.get("rate"))
        streams = strategy.get("streams")
        max_conc = strategy.get("max_concurrency")
        reqs = b.get("requests") if isinstance(b.get("requests"), dict) else {}
        sent = [q for key in ("successful", "errored") for q in (reqs.get(key) or []) if isinstance(q, dict)]
        sent.sort(key=lambda q: _float(q.get("request_start_time", q.get("start_time"))) or 0.0)
        totals = (b.get("metrics") or {}).get("request_totals") or {}
        n = int(sum(_float(totals.get(k)) or 0 for k in ("successful", "errored"))) or len(sent)
        data = _parse_data((config.get("requests") or {}).get("data") if isinstance(config.get("requests"), dict)
                           else (b.get("request_loader") or {}).get("data") or top_args.get("data"))
        seed = int(_float(top_args.get("random_seed")) or _float(args.get("random_seed")) or 42)
        lengths, prefix = _lengths_from_data(data, where) if "prompt_tokens" in data else ({}, 0)
        if len(sent) != n and not lengths:
            raise BlisInputError(f"{where}: neither the requests nor a data config: the lengths are unknown")
        lengths = lengths or {"input": {"mean": 1, "min": 1, "max": 1}, "output": {"mean": 1, "min": 1, "max": 1}}
        if n < 1:
            raise BlisInputError(f"{where}: no requests")
        wl = _load(profile, n, rate, _int(streams), _int(max_conc), lengths, seed, where)
        m = b.get("metrics") or {}
        measured = {
            "ttft_mean_ms": _metric(m, "time_to_first_token_ms", "mean"),
            "ttft_p50_ms": _metric(m, "time_to_first_token_ms", "median"),
            "ttft_p99_ms": _metric(m, "time_to_first_token_ms", "p99"),
            "tpot_mean_ms": _metric(m, "inter_token_latency_ms", "mean"),
            "guidellm_tpot_mean_ms": _metric(m, "time_per_output_token_ms", "mean"),
            "e2e_mean_ms": _scaled(_metric(m, "request_latency", "mean"), 1000.0),
            "responses_per_sec": _metric(m, "requests_per_second", "mean"),
            "tokens_per_sec": _metric(m, "output_tokens_per_second", "mean"),
        }
        label = profile if profile in ("synchronous", "throughput") else \
            f"{profile}@{rate:.3g}/s" if rate else f"{profile}@{_int(streams) or 0}"
        point = BenchmarkPoint(label=label, profile=profile, workload=wl, measured=measured, prefix_len=prefix)
        if len(sent) == n:
            point.input_tokens = np.array([int(_float(q.get("prompt_tokens")) or 1) for q in sent])
            point.output_tokens = np.array([int(_float(q.get("output_tokens")) or 1) for q in sent])
            point.sent_us = _sent_us(profile, [_float(q.get("request_start_time", q.get("start_time")))
                                               for q in sent])
        points.append(point)
        backend = config.get("backend") if isinstance(config.get("backend"), dict) else {}
        model = model or backend.get("model") or top_args.get("model")
    server = _report_server(path, model)
    notes.append("hardware not recorded: H100 assumed (give --hardware to change)")
    return Benchmark(path=path, kind="guidellm", server=server, points=points, notes=notes)


def _metric(metrics: dict, name: str, stat: str) -> float | None:
    entry = metrics.get(name)
    if not isinstance(entry, dict):
        return None
    ok = entry.get("successful") if isinstance(entry.get("successful"), dict) else entry
    if stat.startswith("p") and stat[1:].isdigit():
        pct = ok.get("percentiles") if isinstance(ok.get("percentiles"), dict) else {}
        return _float(pct.get(stat))
    return _float(ok.get(stat))


def _int(value: Any) -> int | None:
    x = _float(value)
    return None if x is None else int(x)


def _report_server(path: Path, model: Any) -> ServerSettings:
    if (path.parent / "exp-config.yaml").is_file():
        return _server(path.parent)
    if not isinstance(model, str) or not model:
        raise BlisInputError(f"{path}: the model is not recorded (config.backend.model); add exp-config.yaml "
                             "with 'model' beside it")
    return ServerSettings(model=model)
