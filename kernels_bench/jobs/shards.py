"""Split a sweep into shards of similar expected duration, and find a shard's points again in a pod.

A shard plan is a JSON document (it travels to the pods in a ConfigMap) holding the sweep's own command
line (``sweep_argv``: the arguments of ``python -m kernels_bench <sweep> ...``), the shard count, and per
shard the keys of the points it measures, table by table. A pod rebuilds the sweep's plan from
``sweep_argv`` exactly as a single-machine run would and keeps the points listed for its index; nothing
about shapes is re-derived differently on the cluster.

Expected durations come from the FLOP/byte model, not from measurements: a point's kernel time is its
roofline time on the datasheet peaks (plus a launch floor), and the timing protocol of `kernels_bench.timing`
(warm-up, probe, repetitions filling ``target_ms``, an L2 flush before each timed call) turns that into
wall seconds. Only the ratios between points matter for balancing.
"""

from __future__ import annotations

import hashlib
import heapq
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kernels_bench.sweep import Point
from kernels_bench.timing import repetitions_for

PLAN_VERSION = 1
LAUNCH_FLOOR_US = 5.0  # no kernel call is shorter than a launch, whatever its FLOPs
SETUP_S = 0.01  # allocating and filling one point's inputs, outside the timing
FLUSH_BYTES = 256 * 2**20  # the timer's L2 flush buffer, overwritten before each timed call
CONFIGMAP_LIMIT = 1_000_000  # bytes a ConfigMap may hold (Kubernetes refuses objects over 1 MiB)


@dataclass(frozen=True)
class Timing:
    """The timing protocol of a sweep (its --warmup/--min-reps/--max-reps/--target-ms)."""

    warmup: int = 3
    min_reps: int = 10
    max_reps: int = 100
    target_ms: float = 100.0


def kernel_estimate_us(point: Point, peak_flops: Mapping[str, float], bandwidth_Bps: float) -> float:
    """Roofline time of one call of the point's kernel on the datasheet peaks, microseconds."""
    peak = peak_flops.get(point.precision) or peak_flops["bf16"]
    compute = point.flops / peak
    memory = point.nbytes / bandwidth_Bps
    return max(compute, memory) * 1e6 + LAUNCH_FLOOR_US


def point_seconds(point: Point, peak_flops: Mapping[str, float], bandwidth_Bps: float, timing: Timing) -> float:
    """Expected wall seconds to measure one point: setup, warm-up and probe calls, then the timed
    repetitions, each preceded by the flush (one write of the flush buffer)."""
    kernel_us = kernel_estimate_us(point, peak_flops, bandwidth_Bps)
    reps = repetitions_for(kernel_us, timing.target_ms, timing.min_reps, timing.max_reps)
    flush_us = FLUSH_BYTES / bandwidth_Bps * 1e6
    calls = timing.warmup + 1 + reps
    return SETUP_S + (calls * kernel_us + reps * flush_us) / 1e6


def split(durations: Sequence[float], shards: int) -> list[list[int]]:
    """Indices of ``durations`` in ``shards`` groups of similar total: longest first, each to the
    currently lightest group (ties to the lowest group index), then each group back in input order.
    Deterministic. Raises ValueError if there are fewer items than shards."""
    if shards < 1:
        raise ValueError(f"--shards must be >= 1, got {shards}")
    if len(durations) < shards:
        raise ValueError(f"--shards {shards} is more than the {len(durations)} points of the sweep")
    heap = [(0.0, g) for g in range(shards)]
    groups: list[list[int]] = [[] for _ in range(shards)]
    for i in sorted(range(len(durations)), key=lambda i: (-durations[i], i)):
        total, g = heapq.heappop(heap)
        groups[g].append(i)
        heapq.heappush(heap, (total + durations[i], g))
    return [sorted(g) for g in groups]


def point_id(point: Point) -> tuple[str, tuple[str, ...]]:
    """A point's identity across machines: its table and the text of its key columns, in column order."""
    return point.table.relpath, tuple(str(point.key[c]) for c in point.table.key_columns)


def build_plan(sweep_argv: Sequence[str], points: Sequence[Point], shards: int, peak_flops: Mapping[str, float],
               bandwidth_Bps: float, timing: Timing, gpu: str) -> dict[str, Any]:
    """The shard plan document for ``points`` (in measurement order) split into ``shards``."""
    secs = [point_seconds(p, peak_flops, bandwidth_Bps, timing) for p in points]
    groups = split(secs, shards)
    out_shards = []
    for index, members in enumerate(groups):
        tables: dict[str, dict[str, Any]] = {}
        for i in members:
            p = points[i]
            rel, key = point_id(p)
            t = tables.setdefault(rel, {"key_columns": list(p.table.key_columns), "keys": []})
            t["keys"].append(list(key))
        out_shards.append({"index": index, "points": len(members),
                           "expected_seconds": round(sum(secs[i] for i in members), 1), "tables": tables})
    plan = {"version": PLAN_VERSION, "gpu": gpu, "sweep_argv": list(sweep_argv), "shards": out_shards,
            "points": len(points), "expected_seconds": round(sum(secs), 1)}
    plan["digest"] = digest(plan)
    return plan


def digest(plan: Mapping[str, Any]) -> str:
    """sha256 of the plan's content (without its own digest), to tell plans apart in pods and folders."""
    body = {k: v for k, v in plan.items() if k != "digest"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def dumps(plan: Mapping[str, Any]) -> str:
    """Compact JSON text of a plan; ValueError when it would not fit in a ConfigMap."""
    text = json.dumps(plan, separators=(",", ":"), sort_keys=True)
    if len(text.encode()) > CONFIGMAP_LIMIT:
        raise ValueError(f"the shard plan is {len(text.encode())} bytes, over the {CONFIGMAP_LIMIT}-byte ConfigMap "
                         "limit: plan fewer models/TP degrees per Job")
    return text


def loads(text: str, source: str = "plan") -> dict[str, Any]:
    """Parse and check a plan document (ValueError naming ``source`` on anything wrong)."""
    try:
        plan = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{source}: not JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(plan, dict) or plan.get("version") != PLAN_VERSION:
        raise ValueError(f"{source}: not a kernels_bench shard plan (version {PLAN_VERSION})")
    for key in ("sweep_argv", "shards", "digest", "gpu"):
        if key not in plan:
            raise ValueError(f"{source}: missing {key!r}")
    if plan["digest"] != digest(plan):
        raise ValueError(f"{source}: digest mismatch (the plan was edited after it was made)")
    return plan


def shard_ids(plan: Mapping[str, Any], index: int) -> set[tuple[str, tuple[str, ...]]]:
    """The point identities of shard ``index`` (ValueError when out of range)."""
    n = len(plan["shards"])
    if not 0 <= index < n:
        raise ValueError(f"shard index {index} is outside 0..{n - 1}")
    return {(rel, tuple(k)) for rel, t in plan["shards"][index]["tables"].items() for k in t["keys"]}


def planned_rows(plan: Mapping[str, Any]) -> dict[str, int]:
    """Points per table over all shards."""
    out: dict[str, int] = {}
    for s in plan["shards"]:
        for rel, t in s["tables"].items():
            out[rel] = out.get(rel, 0) + len(t["keys"])
    return dict(sorted(out.items()))


def key_columns(plan: Mapping[str, Any]) -> dict[str, list[str]]:
    """Key columns per table, as the plan recorded them."""
    out: dict[str, list[str]] = {}
    for s in plan["shards"]:
        for rel, t in s["tables"].items():
            out[rel] = t["key_columns"]
    return out
