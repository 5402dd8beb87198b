"""Real serving runs as ground truth: readers for run folders (inference-perf), vLLM OTLP traces and
`vllm bench serve` JSON, all producing a `MeasuredRun`, and their replay through the simulator."""

from __future__ import annotations

from pathlib import Path

from blis.errors import BlisInputError
from blis.traces.measured import MeasuredRun, ServerSettings

__all__ = ["MeasuredRun", "ServerSettings", "find_runs", "load_run"]


def _kind(path: Path) -> str | None:
    from blis.traces.otel import is_otel_folder
    from blis.traces.run_folder import is_run_folder
    from blis.traces.vllm_bench import find_bench_json

    if path.is_file():
        return "vllm-bench" if path.suffix == ".json" else None
    if is_run_folder(path):
        return "inference-perf"
    if is_otel_folder(path):
        return "otel"
    if find_bench_json(path) is not None:
        return "vllm-bench"
    return None


def load_run(path: str | Path) -> MeasuredRun:
    """Read one run: a run folder (requests.csv + meta.json), a folder with an OTLP ``traces.json``,
    or a `vllm bench serve` result JSON (the file, or a folder holding one)."""
    path = Path(path)
    if not path.exists():
        raise BlisInputError(f"{path}: no such file or folder")
    kind = _kind(path)
    if kind == "inference-perf":
        from blis.traces.run_folder import load_run_folder

        return load_run_folder(path)
    if kind == "otel":
        from blis.traces.otel import load_otel_folder

        return load_otel_folder(path)
    if kind == "vllm-bench":
        from blis.traces.vllm_bench import find_bench_json, load_vllm_bench

        return load_vllm_bench(path if path.is_file() else find_bench_json(path))
    raise BlisInputError(
        f"{path}: not a run (expected requests.csv + meta.json, traces.json, or a vllm bench result JSON)"
    )


def find_runs(paths: list[str | Path]) -> list[Path]:
    """Expand each path: a run itself, or a folder whose immediate sub-folders are runs (sorted)."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise BlisInputError(f"{path}: no such file or folder")
        if _kind(path) is not None:
            found.append(path)
            continue
        subs = [p for p in sorted(path.iterdir()) if p.is_dir() and _kind(p) is not None] if path.is_dir() else []
        if not subs:
            raise BlisInputError(f"{path}: neither a run nor a folder of runs")
        found.extend(subs)
    return found
