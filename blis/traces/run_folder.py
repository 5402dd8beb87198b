"""Read an inference-perf run folder: ``requests.csv``, ``meta.json``, ``exp-config.yaml``,
``profile.yaml`` and, when present, ``results/config.yaml`` (the config the load generator parsed).

What the folder says is not always what ran (see shared/docs/inference-perf-workloads.md); this reader
rebuilds what actually ran:
- prompts: a fixed set of P prompts reused cyclically, request n of a stage using prompt n mod P
  (P = num_groups x num_prompts_per_group of the effective config, 100 in the shared runs); neighbouring
  requests sent a few microseconds apart can be recorded swapped, so a request whose prompt length does
  not fit its slot takes the neighbour slot (up to 2 away) whose length it has;
- output length: the profile's ``output_len`` (the server ignored EOS), not the client's re-tokenised
  ``output_tokens``;
- failed requests (``has_error=1``, 0 tokens recorded) were still sent: their prompt length comes from
  their prompt slot;
- the client timeout: ``load.request_timeout``, or aiohttp's 300 s default when unset.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

import numpy as np

from blis._files import as_int, get_path, read_json, read_text, read_yaml
from blis.errors import BlisInputError
from blis.traces.measured import MeasuredRun, ServerSettings
from blis.workload.request_table import RequestTable

REQUEST_COLUMNS = (
    "index",
    "arrival_time_us",
    "input_tokens",
    "output_tokens",
    "prefix_group",
    "has_error",
    "e2e_s",
    "ttft_s",
)
AIOHTTP_DEFAULT_TIMEOUT_S = 300.0
OCT25_DEFAULT_PROMPTS = 100  # inference-perf's default 10 groups x 10 prompts per group
_NEIGHBOUR_OFFSETS = (-1, 1, -2, 2)


def is_run_folder(path: Path) -> bool:
    return (path / "requests.csv").is_file() and (path / "meta.json").is_file()


def read_requests_csv(path: Path) -> dict[str, np.ndarray]:
    """Parse ``requests.csv`` into arrays (``ttft_s``/``e2e_s`` NaN where empty).

    Raises BlisInputError ``<file>:<line>: <column>: <problem>`` on the first malformed value.
    """
    handle = io.StringIO(read_text(path), newline="")
    with handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            raise BlisInputError(f"{path}:1: empty file; expected header {','.join(REQUEST_COLUMNS)}")
        header = [h.strip() for h in header]
        missing = [c for c in REQUEST_COLUMNS if c not in header]
        if missing:
            raise BlisInputError(f"{path}:1: missing column(s) {', '.join(missing)}")
        col = {c: header.index(c) for c in REQUEST_COLUMNS}
        rows: dict[str, list] = {c: [] for c in REQUEST_COLUMNS}
        for row in reader:
            line = reader.line_num
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) != len(header):
                raise BlisInputError(f"{path}:{line}: expected {len(header)} fields, got {len(row)}")
            _parse_row(row, col, rows, path, line)
    if not rows["index"]:
        raise BlisInputError(f"{path}: no requests")
    out = {
        "index": np.asarray(rows["index"], dtype=np.int64),
        "arrival_us": np.asarray(rows["arrival_time_us"], dtype=np.int64),
        "input_tokens": np.asarray(rows["input_tokens"], dtype=np.int64),
        "output_tokens": np.asarray(rows["output_tokens"], dtype=np.int64),
        "has_error": np.asarray(rows["has_error"], dtype=bool),
        "e2e_s": np.asarray(rows["e2e_s"], dtype=np.float64),
        "ttft_s": np.asarray(rows["ttft_s"], dtype=np.float64),
    }
    return out


def _parse_row(row: list[str], col: dict[str, int], rows: dict[str, list], path: Path, line: int) -> None:
    def field(name: str) -> str:
        return row[col[name]].strip()

    def integer(name: str) -> int:
        text = field(name)
        try:
            value = float(text)
        except ValueError:
            raise BlisInputError(f"{path}:{line}: {name}: expected an integer, got {text!r}") from None
        if not value.is_integer() or value < 0:
            raise BlisInputError(f"{path}:{line}: {name}: expected an integer >= 0, got {text!r}")
        return int(value)

    def seconds(name: str) -> float:
        text = field(name)
        if text == "" or text.lower() == "nan":
            return math.nan
        try:
            value = float(text)
        except ValueError:
            raise BlisInputError(f"{path}:{line}: {name}: expected seconds, got {text!r}") from None
        if not (value >= 0.0) or math.isinf(value):
            raise BlisInputError(f"{path}:{line}: {name}: must be finite and >= 0 seconds, got {text!r}")
        return value

    for name in ("index", "arrival_time_us", "input_tokens", "output_tokens"):
        rows[name].append(integer(name))
    err = field("has_error").lower()
    if err not in ("0", "1", "true", "false"):
        raise BlisInputError(f"{path}:{line}: has_error: expected 0 or 1, got {field('has_error')!r}")
    failed = err in ("1", "true")
    rows["has_error"].append(failed)
    e2e, ttft = seconds("e2e_s"), seconds("ttft_s")
    if not failed:
        if math.isnan(e2e) or math.isnan(ttft):
            raise BlisInputError(f"{path}:{line}: e2e_s/ttft_s: required for a request without error")
        if ttft > e2e:
            raise BlisInputError(f"{path}:{line}: ttft_s: {ttft} exceeds e2e_s {e2e}")
        if rows["input_tokens"][-1] < 1:
            raise BlisInputError(f"{path}:{line}: input_tokens: must be >= 1 for a request without error")
    rows["e2e_s"].append(e2e)
    rows["ttft_s"].append(ttft)
    rows["prefix_group"].append(field("prefix_group"))


def load_run_folder(folder: Path) -> MeasuredRun:
    """Read one inference-perf run folder into a `MeasuredRun` (see the module docstring)."""
    folder = Path(folder)
    notes: list[str] = []
    meta_path = folder / "meta.json"
    meta = read_json(meta_path)
    if not isinstance(meta, dict):
        raise BlisInputError(f"{meta_path}: expected a JSON object")
    exp_path = folder / "exp-config.yaml"
    exp = read_yaml(exp_path) if exp_path.is_file() else {}
    exp = exp if isinstance(exp, dict) else {}
    profile_path = folder / "profile.yaml"
    profile = read_yaml(profile_path) if profile_path.is_file() else {}
    profile = profile if isinstance(profile, dict) else {}
    effective_path = folder / "results" / "config.yaml"
    effective = read_yaml(effective_path) if effective_path.is_file() else None
    if effective is not None and not isinstance(effective, dict):
        raise BlisInputError(f"{effective_path}: expected a mapping")

    server = _server_settings(meta, meta_path, exp, exp_path)
    data = read_requests_csv(folder / "requests.csv")
    n = len(data["index"])
    arrival = data["arrival_us"]
    if (np.diff(arrival) < 0).any():
        bad = int(np.argmax(np.diff(arrival) < 0)) + 1
        raise BlisInputError(
            f"{folder / 'requests.csv'}:{bad + 2}: arrival_time_us: not sorted (earlier than the row before)"
        )
    arrival = arrival - arrival[0]
    failed = data["has_error"]
    if failed.all():
        raise BlisInputError(f"{folder / 'requests.csv'}: every request failed; nothing to compare")

    # The effective config (results/config.yaml) wins over the requested profile.
    load_cfg = (effective or profile).get("load") or {}
    stage = _stages(arrival, load_cfg, notes)
    period = _prompt_period(effective, profile, data["input_tokens"], failed, stage, notes)
    prompt_id, input_tokens = _assign_prompts(data["input_tokens"], failed, stage, period, notes)

    output_len = get_path(effective or profile, "data.shared_prefix.output_len", profile_path, required=False)
    if output_len is None:
        output_len = get_path(profile, "data.shared_prefix.output_len", profile_path, required=False)
    if output_len is not None:
        output = np.full(n, as_int(output_len, "data.shared_prefix.output_len", profile_path, minimum=1))
    else:
        output = data["output_tokens"].copy()
        ok_out = output[~failed & (output > 0)]
        fill = int(np.median(ok_out)) if len(ok_out) else 1
        output[output < 1] = fill
        notes.append("no output_len in the profile: using the client's re-tokenised output_tokens")

    timeout = get_path(load_cfg, "request_timeout", profile_path, required=False)
    client_timeout = float(timeout) if timeout is not None else AIOHTTP_DEFAULT_TIMEOUT_S

    requests = RequestTable(
        arrival_us=arrival,
        input_tokens=input_tokens,
        output_tokens=output,
        prompt_id=prompt_id,
    )
    ttft_ms = np.where(failed, np.nan, data["ttft_s"] * 1e3)
    e2e_ms = np.where(failed, np.nan, data["e2e_s"] * 1e3)
    return MeasuredRun(
        name=str(meta.get("experiment") or folder.name),
        path=folder,
        kind="inference-perf",
        server=server,
        requests=requests,
        failed=failed,
        ttft_ms=ttft_ms,
        e2e_ms=e2e_ms,
        stage=stage,
        client_timeout_s=client_timeout,
        measured_at="client",
        notes=notes,
    )


def _server_settings(meta: dict, meta_path: Path, exp: dict, exp_path: Path) -> ServerSettings:
    model = meta.get("model_id") or exp.get("model")
    if not isinstance(model, str) or not model:
        raise BlisInputError(f"{meta_path}: missing field 'model_id'")
    cfg = get_path(meta, "config", meta_path)
    if not isinstance(cfg, dict):
        raise BlisInputError(f"{meta_path}: config: expected an object")

    def field(name: str, minimum: int = 1) -> int | None:
        value = cfg.get(name)
        return None if value is None else as_int(value, f"config.{name}", meta_path, minimum=minimum)

    tp = field("tensor_parallelism") or as_int(
        exp.get("tensor_parallelism", 1), "tensor_parallelism", exp_path, minimum=1
    )
    exp_tp = exp.get("tensor_parallelism")
    if exp_tp is not None and as_int(exp_tp, "tensor_parallelism", exp_path, minimum=1) != tp:
        raise BlisInputError(
            f"{exp_path}: tensor_parallelism {exp_tp} disagrees with {meta_path.name} config.tensor_parallelism {tp}"
        )
    max_model_len = exp.get("max_model_len")
    return ServerSettings(
        model=model,
        tp=tp,
        hardware=str(meta.get("hardware") or "H100"),
        max_num_seqs=field("max_num_seqs")
        or _opt_int(exp.get("max_num_seqs"), "max_num_seqs", exp_path),
        max_num_batched_tokens=field("max_num_batched_tokens")
        or _opt_int(exp.get("max_num_batched_tokens"), "max_num_batched_tokens", exp_path),
        total_kv_blocks=field("kv_blocks_total_gpu"),
        block_size=field("block_size"),
        max_model_len=_opt_int(max_model_len, "max_model_len", exp_path),
    )


def _opt_int(value: Any, what: str, path: Path) -> int | None:
    return None if value is None else as_int(value, what, path, minimum=1)


def _stages(arrival_us: np.ndarray, load_cfg: dict, notes: list[str]) -> np.ndarray:
    """Stage of each request: from the profile's stage sizes (int(rate x duration) each) when they add
    up to the number of requests, else from the idle gaps between stages."""
    n = len(arrival_us)
    sizes = []
    for st in load_cfg.get("stages") or []:
        try:
            sizes.append(int(float(st["rate"]) * float(st["duration"])))
        except (KeyError, TypeError, ValueError):
            sizes = []
            break
    if sizes and sum(sizes) == n:
        return np.repeat(np.arange(len(sizes)), sizes)
    gaps = np.diff(arrival_us)
    stage = np.zeros(n, dtype=np.int64)
    if len(gaps):
        threshold = max(3e6, 25.0 * float(np.median(gaps)))
        stage[1:] = np.cumsum(gaps > threshold)
    if sizes:
        notes.append(f"profile stage sizes {sizes} do not add up to {n} requests: stages found from arrival gaps")
    return stage


def _lag_match(x: np.ndarray, ok: np.ndarray, stage: np.ndarray, lag: int) -> float:
    if lag <= 0 or lag >= len(x):
        return 0.0
    both = ok[:-lag] & ok[lag:] & (stage[:-lag] == stage[lag:])
    return float((x[:-lag][both] == x[lag:][both]).mean()) if both.any() else 0.0


def _prompt_period(
    effective: dict | None, profile: dict, x: np.ndarray, failed: np.ndarray, stage: np.ndarray, notes: list[str]
) -> int:
    """Number of distinct prompts reused cyclically, or 0 when the data show no cyclic reuse."""
    candidates = []
    for doc in (effective, profile):
        sp = get_path(doc or {}, "data.shared_prefix", Path("."), required=False) or {}
        groups = sp.get("num_groups")
        per_group = sp.get("num_prompts_per_group")
        if groups and per_group:
            candidates.append(int(groups) * int(per_group))
    if effective is None:
        # Older inference-perf builds ignored the v0.4 alias names and used their defaults (10 x 10).
        candidates.append(OCT25_DEFAULT_PROMPTS)
        sp = get_path(profile, "data.shared_prefix", Path("."), required=False) or {}
        if sp.get("num_unique_system_prompts") and sp.get("num_users_per_system_prompt"):
            candidates.append(int(sp["num_unique_system_prompts"]) * int(sp["num_users_per_system_prompt"]))
    if not candidates:
        return 0
    ok = ~failed
    scored = sorted({(_lag_match(x, ok, stage, p), p) for p in candidates}, reverse=True)
    match, period = scored[0]
    if match < 0.5:
        notes.append(f"no cyclic prompt reuse found (best lag {period}: {match:.0%} equal lengths): prompts unique")
        return 0
    notes.append(f"prompts reused cyclically with period {period} ({match:.1%} of lag-{period} pairs equal)")
    return period


def _assign_prompts(
    x: np.ndarray, failed: np.ndarray, stage: np.ndarray, period: int, notes: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """prompt_id and prompt length of every request (failed ones take their slot's length)."""
    n = len(x)
    ok = ~failed
    if period == 0:
        fill = int(np.median(x[ok]))
        return np.arange(n, dtype=np.int64), np.where(failed | (x < 1), fill, x)
    pos = np.zeros(n, dtype=np.int64)
    for s in np.unique(stage):
        idx = np.flatnonzero(stage == s)
        pos[idx] = np.arange(len(idx))
    slot = pos % period
    canon = np.full(period, -1, dtype=np.int64)
    for k in range(period):
        values = x[(slot == k) & ok]
        if len(values):
            canon[k] = np.bincount(values).argmax()
    prompt = slot.copy()
    tokens = x.copy()
    moved = unique = 0
    for i in np.flatnonzero(ok & (x != canon[slot])):
        for d in _NEIGHBOUR_OFFSETS:
            k = (slot[i] + d) % period
            if canon[k] == x[i]:
                prompt[i] = k
                moved += 1
                break
        else:
            prompt[i] = period + i  # a prompt seen nowhere else: no sharing
            unique += 1
    fallback = int(np.median(x[ok]))
    for i in np.flatnonzero(failed):
        if canon[slot[i]] > 0:
            tokens[i] = canon[slot[i]]
        else:
            tokens[i] = fallback
            prompt[i] = period + i
            unique += 1
    if moved or unique:
        notes.append(
            f"{moved} requests recorded out of order took a neighbouring prompt slot; {unique} given a unique prompt"
        )
    return prompt, tokens
