"""The package boundaries of docs/architecture.md, checked by reading the source tree (AST, no imports).

1. Outside blis/engine/ nothing imports an engine submodule (only `blis.engine` itself) and nothing touches
   an instance's scheduler or block pool (attributes named below).
2. The lower layers (physics, bench_data, workload, latency, engine) never import the layers built on them
   (run path, report, cluster, CLI, planner, web app).
3. No source file in the package is over 500 lines.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("blis", "bench", "tools", "kernels_bench", "examples")
ENGINE = ROOT / "blis" / "engine"
# attributes that only the engine may read: the scheduler, its block pool, the instance's private state
ENGINE_PRIVATE = {"scheduler", "pool", "_pool", "bk", "_keys", "_enter_us", "kv_preloaded", "_input"}
LOWER = ("blis.physics", "blis.bench_data", "blis.workload", "blis.latency", "blis.engine")
UPPER = ("blis.run", "blis.report", "blis.simulate", "blis.cluster", "blis.commands", "blis.cli", "blis.plan",
         "blis.web")


def _sources(top: Path = ROOT) -> list[Path]:
    files: list[Path] = []
    for name in SCANNED:
        base = top / name
        if base.is_dir():
            files.extend(p for p in sorted(base.rglob("*.py")) if "__pycache__" not in p.parts)
    return files


def _engine_submodules() -> set[str]:
    return {p.stem for p in ENGINE.glob("*.py") if p.stem != "__init__"}


def _imported(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, dotted name) of everything imported, including ``from pkg import submodule``."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend((node.lineno, a.name) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
            out.extend((node.lineno, f"{node.module}.{a.name}") for a in node.names)
    return out


def engine_violations(path: Path, source: str) -> list[str]:
    """Why ``source`` (a module outside blis/engine) breaks the engine boundary; empty when it does not."""
    tree = ast.parse(source, filename=str(path))
    subs = _engine_submodules()
    bad: dict[str, None] = {}  # ordered set
    for line, name in _imported(tree):
        parts = name.split(".")
        if parts[:2] == ["blis", "engine"] and len(parts) > 2 and parts[2] in subs:
            bad[f"{path}:{line}: imports engine submodule {'.'.join(parts[:3])}"] = None
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ENGINE_PRIVATE:
            bad[f"{path}:{node.lineno}: touches .{node.attr} (engine state)"] = None
    return list(bad)


def test_the_checker_catches_reach_ins():
    bad = ("from blis.engine.scheduler import Scheduler\nimport blis.engine.kv_cache\n"
           "from blis.engine import instance\nx = inst.scheduler.pool.num_free\ny = inst._enter_us\n")
    found = engine_violations(Path("bad.py"), bad)
    assert len(found) == 6, found  # three imports; .scheduler, .pool, ._enter_us
    good = "from blis.engine import Instance, LoadProbe\nx = inst.load().kv_blocks_used\n"
    assert engine_violations(Path("good.py"), good) == []


def test_nothing_outside_the_engine_reaches_into_it():
    bad = []
    for path in _sources():
        if ENGINE in path.parents:
            continue
        bad.extend(engine_violations(path.relative_to(ROOT), path.read_text()))
    assert not bad, "engine boundary broken (use blis.engine's read-only surface):\n" + "\n".join(bad)


def test_lower_layers_do_not_import_upper_layers():
    bad = []
    for path in _sources():
        rel = path.relative_to(ROOT)
        module = ".".join(rel.with_suffix("").parts)
        if not module.startswith(LOWER):
            continue
        for line, name in _imported(ast.parse(path.read_text())):
            if name.startswith(UPPER) and not any(name.startswith(low) for low in LOWER):
                bad.append(f"{rel}:{line}: {module} imports {name}")
    assert not bad, "layering broken (see docs/architecture.md):\n" + "\n".join(bad)


@pytest.mark.parametrize("package", ["blis"])
def test_no_source_file_over_500_lines(package):
    long = [f"{p.relative_to(ROOT)}: {n} lines" for p in sorted((ROOT / package).rglob("*.py"))
            if (n := len(p.read_text().splitlines())) > 500]
    assert not long, "split these modules:\n" + "\n".join(long)
