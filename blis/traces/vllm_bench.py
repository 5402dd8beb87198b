"""Read the result JSON of ``vllm bench serve --save-result --save-detailed``.

Per-request lists, aligned by position: ``input_lens`` (prompt tokens), ``output_lens`` (generated
tokens, 0 for a failed request), ``ttfts`` (seconds), ``itls`` (one list of inter-token gaps per request,
seconds), ``errors`` ("" when the request succeeded), and in newer vLLM ``start_times`` (the client's
``perf_counter`` at send, seconds). E2E = TTFT + sum(ITLs) (the last token's arrival), unless the file
carries per-request ``e2els``/``latencies`` (seconds). Without ``start_times`` the arrivals are known only
for ``request_rate: inf`` (all at once); otherwise the file cannot be replayed.

Server settings: ``model_id`` from the JSON; TP and engine limits from an ``exp-config.yaml`` beside it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from blis._files import as_int, read_json, read_yaml
from blis.errors import BlisInputError
from blis.traces.measured import MeasuredRun, ServerSettings
from blis.workload.request_table import RequestTable

_REQUIRED = ("input_lens", "output_lens", "ttfts")


def looks_like_bench_json(doc: Any) -> bool:
    return isinstance(doc, dict) and all(k in doc for k in _REQUIRED)


def find_bench_json(folder: Path) -> Path | None:
    """The one ``*.json`` in ``folder`` that is a `vllm bench serve` result (None if there is none)."""
    found = []
    for path in sorted(folder.glob("*.json")):
        if path.name in ("meta.json", "vllm_logging.json"):
            continue
        try:
            doc = read_json(path)
        except BlisInputError:
            continue
        if looks_like_bench_json(doc):
            found.append(path)
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise BlisInputError(f"{folder}: several vllm bench result files ({names}); name one")
    return found[0] if found else None


def _is_inf(rate: Any) -> bool:
    if isinstance(rate, str):
        return rate.strip().lower() in ("inf", "infinity")
    return isinstance(rate, (int, float)) and math.isinf(rate)


def load_vllm_bench(path: Path) -> MeasuredRun:
    """Read a `vllm bench serve` result JSON (``path`` is the file)."""
    path = Path(path)
    doc = read_json(path)
    if not isinstance(doc, dict):
        raise BlisInputError(f"{path}: expected a JSON object")
    for key in _REQUIRED:
        if not isinstance(doc.get(key), list):
            raise BlisInputError(f"{path}: field {key!r} missing or not a list (save with --save-detailed)")
    n = len(doc["ttfts"])
    if n == 0:
        raise BlisInputError(f"{path}: no requests")
    lists = {k: doc[k] for k in ("input_lens", "output_lens", "ttfts", "itls", "errors", "start_times", "e2els",
                                 "latencies") if isinstance(doc.get(k), list)}
    for key, values in lists.items():
        if len(values) != n:
            raise BlisInputError(f"{path}: field {key!r} has {len(values)} entries, 'ttfts' has {n}")

    errors = lists.get("errors", [""] * n)
    failed = np.array([bool(e) for e in errors], dtype=bool)
    inputs = np.array([as_int(v, f"input_lens[{i}]", path, minimum=0) for i, v in enumerate(lists["input_lens"])])
    outputs = np.array([as_int(v, f"output_lens[{i}]", path, minimum=0) for i, v in enumerate(lists["output_lens"])])
    failed |= outputs < 1
    if failed.all():
        raise BlisInputError(f"{path}: every request failed; nothing to compare")
    if (inputs[~failed] < 1).any():
        raise BlisInputError(f"{path}: input_lens[{int(np.argmax(inputs < 1))}]: must be >= 1")
    ttft = np.array([_seconds(v, f"ttfts[{i}]", path, ok=not failed[i]) for i, v in enumerate(lists["ttfts"])])
    if "e2els" in lists or "latencies" in lists:
        key = "e2els" if "e2els" in lists else "latencies"
        e2e = np.array([_seconds(v, f"{key}[{i}]", path, ok=not failed[i]) for i, v in enumerate(lists[key])])
    elif "itls" in lists:
        e2e = ttft + np.array([_itl_sum(v, i, path, ok=not failed[i]) for i, v in enumerate(lists["itls"])])
    else:
        raise BlisInputError(f"{path}: neither 'itls' nor 'e2els' present: cannot compute E2E latency")
    bad = ~failed & (e2e < ttft)
    if bad.any():
        raise BlisInputError(f"{path}: request {int(np.argmax(bad))}: E2E shorter than TTFT")

    order = np.arange(n)
    if "start_times" in lists:
        start = np.array([_seconds(v, f"start_times[{i}]", path, ok=True) for i, v in enumerate(lists["start_times"])])
        order = np.argsort(start, kind="stable")
        arrival_us = np.round((start[order] - start[order][0]) * 1e6).astype(np.int64)
        notes = []
    elif _is_inf(doc.get("request_rate", "inf")):
        arrival_us = np.zeros(n, dtype=np.int64)
        notes = ["no start_times and request_rate inf: every request sent at time 0"]
    else:
        raise BlisInputError(
            f"{path}: field 'start_times' missing and request_rate is {doc.get('request_rate')!r}: "
            "the arrival times are unknown (use a vLLM version that saves start_times)"
        )
    if doc.get("max_concurrency") not in (None, "None"):
        notes.append(f"client max_concurrency {doc['max_concurrency']}: replayed open-loop at the recorded send times")

    ok_out = outputs[~failed]
    fill_out = int(np.median(ok_out))
    fill_in = int(np.median(inputs[~failed]))
    inputs = np.where(inputs < 1, fill_in, inputs)
    outputs = np.where(outputs < 1, fill_out, outputs)
    server = _server(doc, path)
    requests = RequestTable(arrival_us=arrival_us, input_tokens=inputs[order], output_tokens=outputs[order])
    f = failed[order]
    return MeasuredRun(
        name=path.stem,
        path=path,
        kind="vllm-bench",
        server=server,
        requests=requests,
        failed=f,
        ttft_ms=np.where(f, np.nan, ttft[order] * 1e3),
        e2e_ms=np.where(f, np.nan, e2e[order] * 1e3),
        stage=np.zeros(n, dtype=np.int64),
        client_timeout_s=None,
        measured_at="client",
        notes=notes,
    )


def _seconds(value: Any, what: str, path: Path, *, ok: bool) -> float:
    if value is None and not ok:
        return math.nan
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise BlisInputError(f"{path}: {what}: expected seconds, got {value!r}") from None
    if ok and (not (x >= 0.0) or math.isinf(x)):
        raise BlisInputError(f"{path}: {what}: must be finite and >= 0 seconds, got {value!r}")
    return x


def _itl_sum(value: Any, i: int, path: Path, *, ok: bool) -> float:
    if not ok:
        return math.nan
    if not isinstance(value, list):
        raise BlisInputError(f"{path}: itls[{i}]: expected a list of seconds")
    return sum(_seconds(v, f"itls[{i}]", path, ok=True) for v in value)


def _server(doc: dict, path: Path) -> ServerSettings:
    exp_path = path.parent / "exp-config.yaml"
    exp = read_yaml(exp_path) if exp_path.is_file() else {}
    exp = exp if isinstance(exp, dict) else {}
    model = exp.get("model") or doc.get("model_id")
    if not isinstance(model, str) or not model:
        raise BlisInputError(f"{path}: field 'model_id' missing (or add exp-config.yaml with 'model')")

    def opt(name: str) -> int | None:
        value = exp.get(name)
        return None if value is None else as_int(value, name, exp_path, minimum=1)

    return ServerSettings(
        model=model,
        tp=opt("tensor_parallelism") or 1,
        hardware=str(exp.get("hardware") or "H100"),
        max_num_seqs=opt("max_num_seqs"),
        max_num_batched_tokens=opt("max_num_batched_tokens"),
        total_kv_blocks=opt("kv_blocks_total_gpu"),
        block_size=opt("block_size"),
        max_model_len=opt("max_model_len"),
    )


# ------------------------------------------------------------------------------ the load it describes
def read_vllm_bench_load(path: Path):
    """The load a `vllm bench serve --save-result` JSON describes, as a one-point ``Benchmark``
    (``blis.traces.benchmark``): ``num_prompts`` requests at ``request_rate`` ("inf" = all at once) with
    gamma gaps of shape ``burstiness`` (1 = Poisson; coefficient of variation 1/sqrt(burstiness)), at most
    ``max_concurrency`` in flight, ``seed`` when recorded (``--metadata seed=N``). Lengths: ``input_lens`` /
    ``output_lens`` when saved (``--save-detailed``), else the mean lengths of the totals."""
    from blis.traces.benchmark import Benchmark, BenchmarkPoint
    from blis.workload.spec import Workload

    path = Path(path)
    doc = read_json(path)
    if not isinstance(doc, dict) or "request_rate" not in doc:
        raise BlisInputError(f"{path}: field 'request_rate' missing (not a vllm bench serve result)")
    notes: list[str] = []
    completed = doc.get("completed")
    n = doc.get("num_prompts") or completed
    n = as_int(n, "num_prompts", path, minimum=1) if n is not None else None
    inputs = doc.get("input_lens") if isinstance(doc.get("input_lens"), list) else None
    outputs = doc.get("output_lens") if isinstance(doc.get("output_lens"), list) else None
    if n is None and inputs is not None:
        n = len(inputs)
    if n is None:
        raise BlisInputError(f"{path}: field 'num_prompts' missing")
    if inputs is not None and outputs is not None and len(inputs) == len(outputs) == n:
        lengths = {"input": {"mean": 1, "min": 1, "max": 1}, "output": {"mean": 1, "min": 1, "max": 1}}
    else:
        inputs = outputs = None
        done = as_int(completed or n, "completed", path, minimum=1)
        mi = max(1, round(float(doc.get("total_input_tokens", 0)) / done))
        mo = max(1, round(float(doc.get("total_output_tokens", 0)) / done))
        if not doc.get("total_input_tokens") or not doc.get("total_output_tokens"):
            raise BlisInputError(f"{path}: neither input_lens/output_lens nor total_input_tokens/"
                                 "total_output_tokens: the lengths are unknown")
        lengths = {"input": {"mean": mi, "min": mi, "max": mi}, "output": {"mean": mo, "min": mo, "max": mo}}
        notes.append(f"no per-request lengths (save with --save-detailed): every request {mi} -> {mo} tokens")
    fields: dict = {"num_requests": n, **lengths}
    seed = doc.get("seed")
    if seed is not None:
        fields["seed"] = as_int(seed, "seed", path, minimum=0)
    rate = doc.get("request_rate")
    cap = doc.get("max_concurrency")
    if cap not in (None, "None"):
        fields["concurrency"] = as_int(cap, "max_concurrency", path, minimum=1)
    if not _is_inf(rate):
        try:
            fields["rate"] = float(rate)
        except (TypeError, ValueError):
            raise BlisInputError(f"{path}: request_rate: expected a number or 'inf', got {rate!r}") from None
        burst = doc.get("burstiness")
        burst = 1.0 if burst is None else float(burst)
        if not burst > 0:
            raise BlisInputError(f"{path}: burstiness: must be > 0, got {burst}")
        fields.update({"arrival": "poisson"} if burst == 1.0 else {"arrival": "gamma", "cv": 1 / math.sqrt(burst)})
    elif "concurrency" not in fields:
        fields["concurrency"] = n  # request_rate inf and no cap: every request in flight at once
    if doc.get("ramp_up_strategy"):
        notes.append(f"ramp_up_strategy {doc['ramp_up_strategy']!r} not reproduced: constant rate used")
    wl = Workload.model_validate(fields)
    measured = {
        "ttft_mean_ms": doc.get("mean_ttft_ms"),
        "ttft_p50_ms": doc.get("median_ttft_ms"),
        "ttft_p99_ms": doc.get("p99_ttft_ms"),
        "tpot_mean_ms": doc.get("mean_tpot_ms"),
        "e2e_mean_ms": doc.get("mean_e2el_ms"),
        "responses_per_sec": doc.get("request_throughput"),
        "tokens_per_sec": doc.get("output_throughput"),
    }
    label = f"rate={rate}" + (f",max_concurrency={cap}" if cap not in (None, "None") else "")
    point = BenchmarkPoint(label=label, profile="vllm-bench", workload=wl,
                           measured={k: (None if v is None else float(v)) for k, v in measured.items()})
    if inputs is not None and outputs is not None:
        point.input_tokens = np.array([as_int(v, f"input_lens[{i}]", path, minimum=1) for i, v in enumerate(inputs)])
        point.output_tokens = np.maximum(np.array([as_int(v, f"output_lens[{i}]", path, minimum=0)
                                                   for i, v in enumerate(outputs)]), 1)
        starts = doc.get("start_times")
        if not _is_inf(rate) and isinstance(starts, list) and len(starts) == n:
            t = np.array([_seconds(v, f"start_times[{i}]", path, ok=True) for i, v in enumerate(starts)])
            order = np.argsort(t, kind="stable")  # send order: lengths follow it
            point.input_tokens, point.output_tokens = point.input_tokens[order], point.output_tokens[order]
            point.sent_us = np.round((t[order] - t[order][0]) * 1e6).astype(np.int64)
    return Benchmark(path=path, kind="vllm-bench", server=_server(doc, path), points=[point], notes=notes)
