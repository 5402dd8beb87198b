"""The points a sweep measures: which tables, in which order, and what was left out (no GPU needed)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from kernels_bench import attention_decode, attention_prefill, gemm, shapes
from kernels_bench.sweep import Point

FAMILIES = {"gemm": ("gemm",), "attention-prefill": ("attention_prefill",),
            "attention-decode": ("attention_decode",), "all": ("gemm", "attention_prefill", "attention_decode")}


@dataclass
class Plan:
    """Points per family in measurement order, and lines saying what was left out and why."""

    points: dict[str, list[Point]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(len(v) for v in self.points.values())


def make_plan(args: argparse.Namespace, models: Sequence[tuple[str, Any]], memory_bytes: float,
              fp8_gemm: bool = True, fp8_kv: bool = True) -> Plan:
    """Enumerate the points of the requested families (pure: shapes from ``models``). ``fp8_gemm`` and
    ``fp8_kv`` say whether this GPU/software can run FP8 GEMMs and an FP8 KV cache."""
    plan = Plan()
    families = FAMILIES[args.command]
    if "gemm" in families:
        dtypes = [d for d in args.dtype if d != "fp8" or fp8_gemm]
        if len(dtypes) < len(args.dtype):
            plan.notes.append("gemm_fp8: not measured (no FP8 GEMM on this GPU/torch)")
        ms = shapes.gemm_m_values(models, args.max_m, args.token_budget, args.quick)
        gshapes = shapes.gemm_shapes(models, args.tp)
        pts, left_out = gemm.points(gshapes, ms, dtypes)
        plan.points["gemm"] = pts
        plan.notes += left_out
    ashapes = shapes.attention_shapes(models, args.tp)
    if "attention_prefill" in families:
        if "fp8" in args.dtype:
            plan.notes.append("attention_prefill: bf16 only (no fp8 prefill kernel measured)")
        grid = shapes.prefill_points(args.quick, args.max_prefill_tokens)
        plan.points["attention_prefill"] = attention_prefill.points(ashapes, grid)
    if "attention_decode" in families:
        limit = args.decode_memory_fraction * memory_bytes
        kv_dtypes = [d for d in args.dtype if d != "fp8" or fp8_kv]
        if len(kv_dtypes) < len(args.dtype):
            plan.notes.append("attention_decode: fp8 KV cache not measured (needs flashinfer)")
        pts, dropped = attention_decode.points(ashapes, shapes.decode_points(args.quick), kv_dtypes, limit)
        plan.points["attention_decode"] = pts
        if dropped:
            plan.notes.append(f"attention_decode: {dropped} points left out: KV cache above "
                              f"{limit / 2**30:.0f} GiB ({args.decode_memory_fraction:g} of GPU memory)")
    return plan


def describe_plan(plan: Plan) -> list[str]:
    lines = []
    for family, pts in plan.points.items():
        tables: dict[str, int] = {}
        for p in pts:
            tables[p.table.relpath] = tables.get(p.table.relpath, 0) + 1
        lines.append(f"{family}: {len(pts)} points in {len(tables)} tables")
        lines += [f"  {rel}: {n}" for rel, n in sorted(tables.items())]
    return lines + plan.notes


def restrict_plan(plan: Plan, only: set) -> Plan:
    """The plan's points whose identity (table path, key values as text) is in ``only``, order kept;
    a note counts the points of ``only`` that this plan does not have (e.g. fp8 on a GPU without it)."""
    from kernels_bench.jobs.shards import point_id

    out = Plan(notes=list(plan.notes))
    kept = 0
    for family, pts in plan.points.items():
        sel = [p for p in pts if point_id(p) in only]
        if sel:
            out.points[family] = sel
        kept += len(sel)
    if kept < len(only):
        out.notes.append(f"shard: {len(only) - kept} of its {len(only)} points are not in this device's plan")
    return out
