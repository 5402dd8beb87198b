"""Merge shard folders into one GPU folder, and say how much of the plan it covers.

Each shard folder is a GPU folder of its own (``provenance.json`` and tables), written by one pod. Merging
appends every row whose key the target table does not hold yet (so merging again, or merging a shard that
arrives later, is idempotent), refuses shards measured on another device or with another kernel, and
sorts each table by its key. The merged provenance is the first shard's, with the device ceilings
(``measured_peak_tflops.*``, ``copy_bandwidth_GBps``) replaced by their median over the shards and each
shard's values kept in notes.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kernels_bench import provenance as prov_mod
from kernels_bench.writer import TableWriter, read_table, sort_table

CEILING_NOTES = ("measured_peak_tflops.bf16", "measured_peak_tflops.fp8", "copy_bandwidth_GBps")


@dataclass
class MergeResult:
    added: dict[str, int] = field(default_factory=dict)  # table -> rows added
    duplicates: dict[str, int] = field(default_factory=dict)  # table -> rows already present (skipped)
    shards: int = 0


def shard_tables(folder: Path) -> list[str]:
    """Relative paths of the CSV tables in a GPU folder, sorted."""
    return sorted(p.relative_to(folder).as_posix() for p in Path(folder).rglob("*.csv"))


def _number(value: str) -> float | None:
    try:
        return float(value.split()[0])
    except (ValueError, IndexError):
        return None


def merged_provenance(provs: Sequence[Mapping[str, Any]], plan_digest: str) -> dict[str, Any]:
    """The first shard's provenance with device ceilings as medians over shards (see module doc)."""
    first = dict(provs[0])
    for p in provs[1:]:
        prov_mod.check_same_device(first, str(p.get("gpu")), str(p.get("device")))
        for key, value in prov_mod.parse_notes(p.get("notes", [])).items():
            if key.startswith("kernel."):
                prov_mod.check_same_kernel(first, key, value)
    notes = list(first.get("notes", []))
    parsed = [prov_mod.parse_notes(p.get("notes", [])) for p in provs]
    for key in CEILING_NOTES:
        values = [v for v in (_number(n[key]) for n in parsed if key in n) if v is not None]
        if len(values) > 1:
            rest = prov_mod.parse_notes(notes)[key].split(" ", 1)
            tail = f" {rest[1]}" if len(rest) > 1 else ""
            notes = prov_mod.set_note(notes, key, f"{statistics.median(values):.1f}{tail}; median of {len(values)} "
                                      f"shards: {', '.join(f'{v:.1f}' for v in values)}")
    notes = prov_mod.set_note(notes, "shards", f"{len(provs)} (kernels_bench jobs plan {plan_digest})")
    return {**first, "notes": notes}


def merge(shard_dirs: Sequence[Path], out: Path, key_columns: Mapping[str, Sequence[str]],
          plan_digest: str) -> MergeResult:
    """Merge ``shard_dirs`` into the GPU folder ``out`` (created if needed). ``key_columns`` per table comes
    from the plan. ValueError when shards disagree on device or kernel, or a table is not in the plan."""
    res = MergeResult()
    provs = []
    for d in shard_dirs:
        p = prov_mod.load(d)
        if p is None:
            raise ValueError(f"{d}: no provenance.json (the shard did not start measuring)")
        provs.append(p)
    if not provs:
        return res
    existing = prov_mod.load(out)
    if existing is not None:
        prov_mod.check_same_device(existing, str(provs[0].get("gpu")), str(provs[0].get("device")))
    out.mkdir(parents=True, exist_ok=True)
    prov_mod.save(out, merged_provenance(provs, plan_digest))
    writers: dict[str, TableWriter] = {}
    try:
        for d in shard_dirs:
            for rel in shard_tables(d):
                if rel not in key_columns:
                    raise ValueError(f"{d / rel}: table not in the shard plan")
                rows = read_table(d / rel)
                if not rows:
                    continue
                if rel not in writers:
                    writers[rel] = TableWriter(out / rel, list(rows[0].keys()), key_columns[rel])
                w = writers[rel]
                for row in rows:
                    if w.has(row):
                        res.duplicates[rel] = res.duplicates.get(rel, 0) + 1
                        continue
                    w.append(row)
                    res.added[rel] = res.added.get(rel, 0) + 1
    finally:
        for w in writers.values():
            w.close()
    for rel, w in writers.items():
        sort_table(out / rel, w.key_columns)
    res.shards = len(shard_dirs)
    return res


def coverage(out: Path, planned: Mapping[str, int]) -> list[tuple[str, int, int]]:
    """(table, rows present, rows planned) for every planned table."""
    return [(rel, len(read_table(Path(out) / rel)), n) for rel, n in planned.items()]


def coverage_lines(rows: Sequence[tuple[str, int, int]]) -> list[str]:
    have = sum(r[1] for r in rows)
    want = sum(r[2] for r in rows)
    lines = [f"{rel}: {h}/{n} rows ({100 * h / n:.0f}%)" for rel, h, n in rows if n]
    lines.append(f"coverage: {have}/{want} planned rows ({100 * have / want if want else 0:.1f}%)")
    return lines
