"""Read vLLM's OpenTelemetry export: ``traces.json`` holds one OTLP/JSON batch per line
(``{"resourceSpans": [{"scopeSpans": [{"spans": [...]}]}]}``); each ``llm_request`` span is one request,
started at the server's arrival time, with attributes ``gen_ai.latency.*`` (seconds) and
``gen_ai.usage.*`` (tokens). Latencies are measured inside the server, not at a client.

Server settings come from ``exp-config.yaml`` next to it (``model``, ``tensor_parallelism``,
``max_num_seqs``, ``max_num_batched_tokens``, ``max_model_len``); a GuideLLM ``profile.yaml`` with
``data.prefix_tokens`` makes every prompt share that many leading tokens.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from blis._files import as_int, read_text, read_yaml
from blis.errors import BlisInputError
from blis.traces.measured import MeasuredRun, ServerSettings
from blis.workload.request_table import RequestTable

SPAN_NAME = "llm_request"
_ATTR_TTFT = "gen_ai.latency.time_to_first_token"
_ATTR_E2E = "gen_ai.latency.e2e"
_ATTR_PROMPT = "gen_ai.usage.prompt_tokens"
_ATTR_COMPLETION = "gen_ai.usage.completion_tokens"
_ATTR_MAX_TOKENS = "gen_ai.request.max_tokens"


def is_otel_folder(path: Path) -> bool:
    return (path / "traces.json").is_file()


def _attr_value(value: Any) -> Any:
    """OTLP/JSON AnyValue -> Python (int64 values are JSON strings in OTLP/JSON)."""
    if not isinstance(value, dict):
        return None
    if "intValue" in value:
        return int(value["intValue"])
    if "doubleValue" in value:
        return float(value["doubleValue"])
    for key in ("stringValue", "boolValue"):
        if key in value:
            return value[key]
    return None


def read_otel_spans(path: Path) -> list[dict[str, Any]]:
    """Every ``llm_request`` span of an OTLP/JSON-lines file as ``{"start_ns", attributes...}``.

    Raises BlisInputError ``<file>:<line>: <problem>`` for a line that is not an OTLP batch or a span
    without the attributes a replay needs.
    """
    text = read_text(path)
    spans: list[dict[str, Any]] = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            batch = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BlisInputError(f"{path}:{line_no}: invalid JSON: {exc.msg}") from None
        if not isinstance(batch, dict) or not isinstance(batch.get("resourceSpans"), list):
            raise BlisInputError(f"{path}:{line_no}: not an OTLP/JSON batch (no 'resourceSpans' list)")
        try:
            for rs in batch["resourceSpans"]:
                for ss in rs.get("scopeSpans") or []:
                    for span in ss.get("spans") or []:
                        if span.get("name") == SPAN_NAME:
                            spans.append(_span_record(span, path, line_no))
        except (AttributeError, TypeError):
            raise BlisInputError(f"{path}:{line_no}: malformed OTLP batch structure") from None
    if not spans:
        raise BlisInputError(f"{path}: no '{SPAN_NAME}' spans found")
    return spans


def _span_record(span: dict, path: Path, line_no: int) -> dict[str, Any]:
    attrs = {a.get("key"): _attr_value(a.get("value")) for a in span.get("attributes") or []}
    try:
        start_ns = int(span["startTimeUnixNano"])
    except (KeyError, TypeError, ValueError):
        raise BlisInputError(f"{path}:{line_no}: span without a valid startTimeUnixNano") from None
    for key in (_ATTR_TTFT, _ATTR_E2E, _ATTR_PROMPT, _ATTR_COMPLETION):
        if not isinstance(attrs.get(key), (int, float)):
            raise BlisInputError(f"{path}:{line_no}: span attribute {key!r} missing or not a number")
    if attrs[_ATTR_TTFT] < 0 or attrs[_ATTR_E2E] < attrs[_ATTR_TTFT]:
        raise BlisInputError(
            f"{path}:{line_no}: impossible latencies: ttft {attrs[_ATTR_TTFT]} s, e2e {attrs[_ATTR_E2E]} s"
        )
    if attrs[_ATTR_PROMPT] < 1:
        raise BlisInputError(f"{path}:{line_no}: {_ATTR_PROMPT} must be >= 1")
    return {"start_ns": start_ns, **attrs}


def load_otel_folder(folder: Path) -> MeasuredRun:
    folder = Path(folder)
    spans = read_otel_spans(folder / "traces.json")
    spans.sort(key=lambda s: s["start_ns"])
    exp_path = folder / "exp-config.yaml"
    exp = read_yaml(exp_path) if exp_path.is_file() else {}
    exp = exp if isinstance(exp, dict) else {}
    model = exp.get("model")
    if not isinstance(model, str) or not model:
        raise BlisInputError(f"{exp_path}: missing field 'model' (needed to simulate an OTLP trace)")

    def opt(name: str) -> int | None:
        value = exp.get(name)
        return None if value is None else as_int(value, name, exp_path, minimum=1)

    server = ServerSettings(
        model=model,
        tp=opt("tensor_parallelism") or 1,
        hardware=str(exp.get("hardware") or "H100"),
        max_num_seqs=opt("max_num_seqs"),
        max_num_batched_tokens=opt("max_num_batched_tokens"),
        max_model_len=opt("max_model_len"),
    )
    start = np.array([s["start_ns"] for s in spans], dtype=np.int64)
    arrival_us = (start - start[0]) // 1000
    prompt = np.array([s[_ATTR_PROMPT] for s in spans], dtype=np.int64)
    completion = np.array([s[_ATTR_COMPLETION] for s in spans], dtype=np.int64)
    failed = completion < 1
    if failed.all():
        raise BlisInputError(f"{folder / 'traces.json'}: no span generated any token")
    max_tokens = np.array([s.get(_ATTR_MAX_TOKENS) or 0 for s in spans], dtype=np.int64)
    output = np.where(completion >= 1, completion, np.maximum(max_tokens, 1))

    notes: list[str] = []
    prefix = _guidellm_prefix_tokens(folder)
    if prefix:
        prefix_len = np.minimum(prefix, prompt - 1)
        group = np.zeros(len(spans), dtype=np.int64)
        notes.append(f"GuideLLM profile: every prompt starts with the same {prefix} tokens")
    else:
        prefix_len = np.zeros(len(spans), dtype=np.int64)
        group = np.full(len(spans), -1, dtype=np.int64)
    requests = RequestTable(
        arrival_us=arrival_us,
        input_tokens=prompt,
        output_tokens=output,
        prefix_group=group,
        prefix_len=prefix_len,
    )
    ttft = np.array([s[_ATTR_TTFT] for s in spans]) * 1e3
    e2e = np.array([s[_ATTR_E2E] for s in spans]) * 1e3
    return MeasuredRun(
        name=folder.name,
        path=folder,
        kind="otel",
        server=server,
        requests=requests,
        failed=failed,
        ttft_ms=np.where(failed, np.nan, ttft),
        e2e_ms=np.where(failed, np.nan, e2e),
        stage=np.zeros(len(spans), dtype=np.int64),
        client_timeout_s=None,
        measured_at="server",
        notes=notes,
    )


def _guidellm_prefix_tokens(folder: Path) -> int:
    path = folder / "profile.yaml"
    if not path.is_file():
        return 0
    profile = read_yaml(path)
    data = profile.get("data") if isinstance(profile, dict) else None
    if not isinstance(data, dict) or data.get("prefix_tokens") is None:
        return 0
    return as_int(data["prefix_tokens"], "data.prefix_tokens", path, minimum=0)
