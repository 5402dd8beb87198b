"""Generated input files, valid and broken, must either run or fail cleanly (exit 2, one line, no traceback);
a bounded fuzz of the file readers: they return or raise BlisInputError, nothing else (issue #19)."""

from __future__ import annotations

import json
import math

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from blis import _files
from blis.cli import main
from blis.errors import BlisInputError

FAST = settings(max_examples=40, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
BAD_NUMBERS = st.sampled_from([0, -1, -0.5, math.nan, math.inf, 1e300, 10**30, "x", "", None, True, [1], {"a": 1}])


def _check(capsys, code: int) -> None:
    out, err = capsys.readouterr()
    if code == 0:
        assert json.loads(out)["total_requests"] >= 1
    else:
        assert code == 2, err
        assert out == ""
        lines = err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("blis: error: "), err


def _length():
    return st.fixed_dictionaries({"mean": st.integers(1, 500), "max": st.integers(1, 800)},
                                 optional={"std": st.integers(0, 100), "min": st.integers(1, 50)})


def _field(valid) -> st.SearchStrategy:
    return st.one_of(valid, BAD_NUMBERS)


workload_docs = st.fixed_dictionaries({}, optional={
    "preset": _field(st.sampled_from(["chatbot", "contentgen", "summarization", "nosuch"])),
    "rate": _field(st.floats(0.5, 500)),
    "num_requests": _field(st.integers(1, 40)),
    "seed": _field(st.integers(0, 2**40)),
    "arrival": _field(st.sampled_from(["constant", "poisson", "gamma", "weibull", "uniform"])),
    "cv": _field(st.floats(0.1, 5)),
    "input": _field(_length()),
    "output": _field(_length()),
    "prefix_tokens": _field(st.integers(0, 300)),
    "stages": _field(st.lists(st.fixed_dictionaries({"rate": _field(st.floats(1, 20)),
                                                      "duration": _field(st.floats(0.1, 2))}), max_size=3)),
    "clients": _field(st.lists(st.fixed_dictionaries({"name": st.sampled_from(["a", "b", ""]),
                                                       "preset": st.sampled_from(["chatbot", "nosuch"])}),
                               max_size=3)),
    "shared_prefix": _field(st.fixed_dictionaries({}, optional={"num_groups": _field(st.integers(1, 4)),
                                                                "system_prompt_len": _field(st.integers(0, 200))})),
    "ratee": st.integers(0, 5),  # a misspelt key
    "lengths": st.one_of(st.sampled_from(["chatbot", "nosuch"]), st.integers()),
})


@FAST
@given(doc=st.one_of(workload_docs, st.lists(st.integers()), st.text(max_size=40)))
def test_generated_workload_yaml_runs_or_fails_cleanly(doc, tmp_path, capsys):
    path = tmp_path / "w.yaml"
    path.write_text(yaml.safe_dump(doc) if not isinstance(doc, str) else doc)
    code = main(["run", "--workload", str(path), "--latency-model", "blackbox", "--total-kv-blocks", "20000",
                 "--no-progress"])
    _check(capsys, code)


CELLS = st.one_of(st.integers(0, 5000).map(str), st.sampled_from(["-1", "0", "1.5", "nan", "inf", "1e20", "abc", "",
                                                                  "99999999999999999999999", " 7 "]))
COLUMNS = ["arrival_time_us", "input_tokens", "output_tokens", "prefix_group", "prefix_len", "parent", "x"]


@FAST
@given(header=st.lists(st.sampled_from(COLUMNS), min_size=0, max_size=6, unique=True),
       rows=st.lists(st.lists(CELLS, min_size=0, max_size=7), max_size=12),
       sort=st.booleans())
def test_generated_trace_csv_runs_or_fails_cleanly(header, rows, sort, tmp_path, capsys):
    if sort:  # mostly-valid files: the required columns first
        header = [c for c in COLUMNS[:3] if c not in header] + header
    path = tmp_path / "t.csv"
    path.write_text("\n".join([",".join(header)] + [",".join(r) for r in rows]) + "\n")
    code = main(["run", "--trace", str(path), "--latency-model", "blackbox", "--total-kv-blocks", "20000",
                 "--no-progress"])
    _check(capsys, code)


JSONISH = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                       lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                    max_size=4), max_leaves=12)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.one_of(st.binary(max_size=200), st.text(max_size=200).map(str.encode),
                         JSONISH.map(lambda d: json.dumps(d).encode())),
       suffix=st.sampled_from([".json", ".yaml", ".csv", ".txt"]))
def test_file_readers_return_or_raise_one_line(content, suffix, tmp_path):
    path = tmp_path / f"f{suffix}"
    path.write_bytes(content)
    for reader in (_files.read_text, _files.read_json, _files.read_yaml, _files.read_structured,
                   _files.read_mapping, _files.read_csv):
        try:
            reader(path, "field")
        except BlisInputError as exc:
            assert "\n" not in str(exc) and str(exc).startswith(f"field: {path}")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=JSONISH)
def test_structured_file_loaders_refuse_bad_documents_cleanly(doc, tmp_path):
    from blis.cluster.config import load_cluster_file
    from blis.physics.hardware import load_hardware_file
    from blis.physics.model_spec import load_hf_config
    from blis.workload.spec import Workload

    path = tmp_path / "doc.json"
    path.write_text(json.dumps(doc))
    for load in (load_hf_config, load_hardware_file, load_cluster_file, Workload.from_yaml):
        try:
            load(path)
        except ValueError as exc:  # BlisInputError and pydantic's ValidationError
            assert str(exc)
