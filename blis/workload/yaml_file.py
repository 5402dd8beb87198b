"""Workload YAML files and inference-perf profiles -> the keyword dict that ``Workload`` validates.

A workload file holds the ``Workload`` fields. One source of requests::

    preset: chatbot          # or input: {mean, std, min, max} + output: {...}, or shared_prefix: {...},
    rate: 10                 # or trace: requests.csv (relative to this file)
    num_requests: 500
    arrival: gamma
    cv: 2.0

or several clients merged in time (``rate`` is the aggregate; each client has a ``rate_fraction`` share, or
every client has an absolute ``rate`` in requests/s and the aggregate is their sum)::

    rate: 20
    clients:
      - {name: chat, rate_fraction: 0.7, lengths: chatbot}
      - name: docs
        rate_fraction: 0.3
        arrival: poisson
        lengths:
          input: {mean: 4096, std: 500, min: 100, max: 8192}
          output: {mean: 512, std: 150, min: 10, max: 2048}
      - {name: agents, rate_fraction: 0.1, shared_prefix: {num_groups: 4, prompts_per_group: 8,
         system_prompt_len: 1000, question_len: 200, output_len: 300}}

``stages: [{rate: 5, duration: 600}, ...]`` (seconds) replaces rate and num_requests. ``concurrency: N`` (with
``think_time_ms``, ``ramp_s``; on the workload or per client) makes the users closed-loop, the rate then a cap
(``docs/workload.md``). A file with top-level ``load`` and ``data`` keys is read as an inference-perf profile.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from blis.errors import BlisInputError

# How inference-perf's OCT25 client turned nominal prompt lengths into server prompt lengths (it decodes
# random token ids to text and tokenizes again; the Llama tokenizers add a BOS token). Measured on the five
# "train" runs of shared/data/traces/h100-vllm-v1 (codegen, roleplay, 7B/70B/CodeLlama-34B general), from the
# median length of each of the 100 cycled prompts: (mean - 1) / (system_prompt_len + question_len) =
# 1.0435, 1.0465, 1.0492, 1.0502, 1.0480 (mean 1.047); std of the 100 lengths / sqrt(nominal) = 0.234, 0.290,
# 0.272, 0.301, 0.254 tokens (mean 0.27).
OCT25_TOKEN_INFLATION = 1.047
OCT25_TOKEN_NOISE = 0.27
OCT25_BOS_TOKENS = 1
# Idle time between stages: inference-perf waits for the stage to drain, polls every 1 s, sleeps 1 s and
# starts the next stage 1 s later. Measured last-to-first arrival between stages, minus the next stage's first
# gap, in the same runs: 4.13 s (7B codegen), 4.16 s (7B general), 6.03 s (CodeLlama-34B general), 6.89 s
# (70B general). The drain depends on the server; 4.1 s fits the Llama-2-7B runs.
OCT25_STAGE_GAP_S = 4.1

CLIENT_VERSIONS = ("oct25", "v0.4")
_LOAD_TYPES = {"constant": "inference-perf-constant", "poisson": "inference-perf-poisson"}


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML (or JSON) file whose top level is a mapping."""
    from blis._files import read_mapping

    return read_mapping(path, "workload")


def load_workload_yaml(path: str | Path) -> dict[str, Any]:
    """Fields of the ``Workload`` described by a workload file (trace paths resolved next to the file)."""
    path = Path(path)
    data = read_yaml(path)
    if set(data) == {"workload"} and isinstance(data["workload"], dict):
        data = dict(data["workload"])
    if "load" in data and "data" in data:
        return inference_perf_profile_spec(data, seed=42, source=path)
    for key in ("trace", "trace_path"):
        if isinstance(data.get(key), str):
            trace = Path(data[key])
            data[key] = str(trace if trace.is_absolute() else (path.parent / trace).resolve())
    if "name" not in data:
        data["name"] = path.stem
    return data


def inference_perf_profile_spec(
    profile: dict[str, Any],
    seed: int = 42,
    source: str | Path | None = None,
    client_version: str = "oct25",
    stage_gap_s: float = OCT25_STAGE_GAP_S,
    token_inflation: float = OCT25_TOKEN_INFLATION,
    token_noise: float = OCT25_TOKEN_NOISE,
    bos_tokens: int = OCT25_BOS_TOKENS,
) -> dict[str, Any]:
    """``Workload`` fields that regenerate an inference-perf ``shared_prefix`` load.

    ``client_version="oct25"`` reproduces the client build of the shared H100 runs: it ignored
    ``num_unique_system_prompts``, ``num_users_per_system_prompt`` and ``enable_multi_turn_chat`` (10 x 10
    prompts, single-turn, cycled per stage). ``"v0.4"`` honours them (multi-turn conversations grow).
    Stage gaps in seconds; prompt lengths modelled with the token_* options (tokens).
    """
    where = str(source) if source is not None else "profile"
    if client_version not in CLIENT_VERSIONS:
        raise BlisInputError(f"client_version: {client_version!r} is not one of {', '.join(CLIENT_VERSIONS)}")
    data = profile.get("data") or {}
    if data.get("type") != "shared_prefix" or not isinstance(data.get("shared_prefix"), dict):
        raise BlisInputError(f"{where}: data.type must be shared_prefix (got {data.get('type')!r})")
    sp = data["shared_prefix"]
    groups = sp.get("num_groups", 10)
    per_group = sp.get("num_prompts_per_group", 10)
    multi_turn = False
    if client_version == "v0.4":
        groups = sp.get("num_unique_system_prompts", groups)
        per_group = sp.get("num_users_per_system_prompt", per_group)
        multi_turn = bool(sp.get("enable_multi_turn_chat", False))
    load = profile.get("load") or {}
    load_type = load.get("type", "constant")
    if load_type not in _LOAD_TYPES:
        raise BlisInputError(
            f"{where}: load.type must be one of {', '.join(_LOAD_TYPES)} (got {load_type!r})"
        )
    stages = load.get("stages")
    if not isinstance(stages, list) or not stages:
        raise BlisInputError(f"{where}: load.stages must be a non-empty list of {{rate, duration}}")
    for i, st in enumerate(stages):
        if not isinstance(st, dict) or "rate" not in st or "duration" not in st:
            raise BlisInputError(f"{where}: load.stages[{i}] needs rate (req/s) and duration (s)")
    name = Path(source).parent.name if source is not None else "inference-perf"
    if Path(name).name == "results" and source is not None:
        name = Path(source).parent.parent.name
    return {
        "name": name,
        "shared_prefix_spec": {
            "num_groups": groups,
            "prompts_per_group": per_group,
            "system_prompt_len": sp.get("system_prompt_len", 100),
            "question_len": sp.get("question_len", 50),
            "output_len": sp.get("output_len", 50),
            "multi_turn": multi_turn,
            "shuffle": True,
            "token_inflation": token_inflation,
            "token_noise": token_noise,
            "bos_tokens": bos_tokens,
        },
        "arrival": _LOAD_TYPES[load_type],
        "stages": [{"rate": st["rate"], "duration_s": st["duration"]} for st in stages],
        "stage_gap_s": stage_gap_s,
        "seed": seed,
    }
