"""Fast start (issue #17): what the README's first command and `import blis` load, the CLI's one-command parser,
the JSON copies of the shipped YAML files, and the percentiles and median computed without numpy.ma. Speed
itself is measured by bench/startup.py, not here."""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from blis._files import COMPACT_FILE, read_shipped_yaml
from blis.cli import build_parser
from blis.commands import COMMANDS
from blis.metrics import PERCENTILES, median, percentiles

ROOT = Path(__file__).resolve().parents[1]
COEFFS = ROOT / "blis" / "latency" / "coefficients"
# never needed by a single-instance run: optional extras, other subcommands, the cluster path, the YAML parser
NOT_ON_THE_RUN_PATH = ("yaml", "pandas", "rich", "scipy", "matplotlib", "plotly", "fastapi", "ray",
                       "blis.cluster.cluster", "blis.plan", "blis.web", "blis.traces", "blis.calibrate",
                       "blis.commands.plan", "blis.commands.roofline", "blis.commands.kernels", "kernels_bench")


def _modules_after(code: str) -> set[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys, json\nsys.__stdout__.write("
                          "'\\nMODULES ' + json.dumps(sorted(sys.modules)))"],
                         env=env, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return set(json.loads(out.rsplit("MODULES ", 1)[1]))


def _loaded(modules: set[str], names) -> list[str]:
    return [n for n in names if any(m == n or m.startswith(n + ".") for m in modules)]


def test_the_readme_command_loads_nothing_it_does_not_use():
    mods = _modules_after("from blis.cli import main\n"
                          "assert main(['run', '--workload', 'chatbot', '--rate', '10', '--num-requests', '5']) == 0")
    assert "blis.engine" in mods and "blis.latency.fidelity" in mods  # it did run, and said how far to trust it
    assert _loaded(mods, NOT_ON_THE_RUN_PATH) == []
    if "numpy.ma" not in _modules_after("import numpy"):  # numpy 2 loads it on first use only
        assert "numpy.ma" not in mods


def test_import_blis_loads_nothing_heavy_and_every_name_still_resolves():
    mods = _modules_after("import blis")
    assert _loaded(mods, NOT_ON_THE_RUN_PATH + ("numpy", "pydantic", "blis.config", "blis.cli", "blis.cluster")) == []
    names = _modules_after("import blis, json\nprint(json.dumps({n: type(getattr(blis, n)).__name__ "
                           "for n in blis.__all__}))\nimport blis.simulate, blis.config, blis.workload\n"
                           "assert callable(blis.simulate) and blis.config.SimConfig is blis.SimConfig\n"
                           "assert blis.workload.spec.Workload is blis.Workload")
    assert {"blis.config", "blis.cluster.config", "blis.sweep", "blis.plan"} <= names
    import blis

    assert blis.simulate.__module__ == "blis.simulate" and callable(blis.simulate)  # the function, not the module
    assert blis.ClusterConfig(num_instances=2).num_instances == 2  # its validator is built on first use
    with pytest.raises(AttributeError):
        blis.no_such_name  # noqa: B018


def test_the_command_asks_for_one_blas_thread_unless_told(monkeypatch):
    import types

    from blis import cli

    monkeypatch.setattr(cli, "main", lambda: 0)
    monkeypatch.setattr(cli, "sys", types.SimpleNamespace(modules={}))  # as in a fresh process: numpy not loaded
    for var in cli.BLAS_THREAD_VARIABLES:
        monkeypatch.delenv(var, raising=False)
    assert cli.console() == 0 and os.environ["OPENBLAS_NUM_THREADS"] == "1"
    monkeypatch.delenv("OPENBLAS_NUM_THREADS")
    monkeypatch.setenv("OMP_NUM_THREADS", "4")  # the user's choice stands
    assert cli.console() == 0 and "OPENBLAS_NUM_THREADS" not in os.environ


def _sub(parser: argparse.ArgumentParser) -> argparse._SubParsersAction:
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))


def test_the_command_table_matches_what_each_command_registers():
    full = _sub(build_parser())
    assert list(full.choices) == list(COMMANDS)
    assert {a.dest: a.help for a in full._choices_actions} == {name: h for name, (_, h) in COMMANDS.items()}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_one_command_parser_says_and_parses_the_same(command):
    full, one = build_parser(), build_parser(command)
    assert one.format_help() == full.format_help()  # `blis --help`'s listing
    assert _sub(one).choices[command].format_help() == _sub(full).choices[command].format_help()


def test_every_compact_copy_is_current():
    """The JSON copies must be regenerated when a shipped YAML changes: python -m tools.compact_yaml."""
    compact = json.loads((COEFFS / COMPACT_FILE).read_text())
    for path in sorted(COEFFS.glob("*.yaml")):
        assert path.name in compact, f"{path.name} has no copy; run python -m tools.compact_yaml"
        want = yaml.safe_load(path.read_text())
        assert read_shipped_yaml(path) == want, f"{path.name}: stale copy; run python -m tools.compact_yaml"
    from tools.compact_yaml import main

    assert main(["--check"]) == 0


def test_a_stale_or_missing_copy_falls_back_to_the_yaml(tmp_path):
    doc = tmp_path / "table.yaml"
    doc.write_text("# a comment\n- {model: m, cv_loss: {0.03: 1.5, 3.0: 2.5}}\n")
    want = [{"model": "m", "cv_loss": {0.03: 1.5, 3.0: 2.5}}]
    assert read_shipped_yaml(doc) == want  # no copy at all
    (tmp_path / COMPACT_FILE).write_text(json.dumps({"table.yaml": {"sha256": "0" * 64, "data": []}}))
    assert read_shipped_yaml(doc) == want  # a copy of another text
    (tmp_path / COMPACT_FILE).write_text("{not json")
    assert read_shipped_yaml(doc) == want


def test_a_current_copy_is_used_and_keeps_non_string_keys(tmp_path, monkeypatch):
    from tools import compact_yaml

    doc = tmp_path / "table.yaml"
    doc.write_text("- {model: m, cv_loss: {0.03: 1.5, 3.0: 2.5}, tp: 1}\n")
    monkeypatch.setattr(compact_yaml, "FOLDERS", (tmp_path,))
    assert compact_yaml.main([]) == 0
    assert compact_yaml.main(["--check"]) == 0
    monkeypatch.setitem(sys.modules, "yaml", None)  # the copy is read without the YAML parser
    assert read_shipped_yaml(doc) == [{"model": "m", "cv_loss": {0.03: 1.5, 3.0: 2.5}, "tp": 1}]


# --- percentiles and median without np.percentile / np.median (their numpy.ma import) -------------------------
_values = st.one_of(
    st.lists(st.integers(-10**9, 10**9), min_size=1, max_size=300).map(lambda v: np.array(v, dtype=np.int64)),
    st.lists(st.floats(-1e12, 1e12, allow_nan=False, allow_infinity=False), min_size=1, max_size=300)
    .map(np.array),
    st.lists(st.sampled_from([0.0, 1.5, 2.0, 1e6]), min_size=1, max_size=50).map(np.array),
)
_ps = st.lists(st.floats(0, 100, allow_nan=False), min_size=1, max_size=6).map(tuple)


@settings(max_examples=400, deadline=None)
@given(values=_values, ps=st.one_of(st.just(PERCENTILES), _ps))
def test_percentiles_are_numpys_to_the_bit(values, ps):
    assert percentiles(values, ps) == [float(x) for x in np.percentile(values, ps)]


@settings(max_examples=300, deadline=None)
@given(values=_values)
def test_median_is_numpys_to_the_bit(values):
    values = values.astype(np.float64)
    assert median(values) == float(np.median(values))


def test_percentiles_and_median_of_hand_cases():
    assert all(math.isnan(x) for x in percentiles(np.array([], dtype=np.int64)))
    assert percentiles(np.array([7])) == [7.0] * 4
    assert percentiles(np.array([0, 10]), (0, 50, 95, 100)) == [0.0, 5.0, 9.5, 10.0]
    assert percentiles(np.array([1, 2, 3, 4]), (50,)) == [2.5]  # index 1.5 between 2 and 3
    assert all(math.isnan(x) for x in percentiles(np.array([1.0, np.nan, 3.0])))
    assert median(np.array([3.0, 1.0, 2.0])) == 2.0 and median(np.array([4.0, 1.0, 2.0, 3.0])) == 2.5
    assert math.isnan(median(np.array([1.0, np.nan])))
