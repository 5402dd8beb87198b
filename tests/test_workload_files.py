"""CSV traces and YAML workload files."""

from __future__ import annotations

import numpy as np
import pytest

from blis.errors import BlisInputError
from blis.workload import Workload, read_trace_csv, write_trace_csv


def columns(t):
    return [
        t.arrival_us,
        t.input_tokens,
        t.output_tokens,
        t.prefix_group,
        t.prefix_len,
        t.prompt_id,
        t.parent,
        t.client,
    ]


def test_csv_round_trip(tmp_path):
    original = Workload.shared_prefix(
        num_groups=2, prompts_per_group=2, num_requests=30, multi_turn=True, arrival="poisson", rate=3
    ).generate()
    path = write_trace_csv(original, tmp_path / "t.csv")
    back = read_trace_csv(path)
    assert all(np.array_equal(a, b) for a, b in zip(columns(original), columns(back)))
    wl = Workload.from_trace_csv(path)
    assert wl.kind == "trace" and wl.label == "t"
    assert np.array_equal(wl.generate().input_tokens, original.input_tokens)
    assert len(Workload.from_trace_csv(path, num_requests=5).generate()) == 5


def test_csv_minimal_columns_extra_columns_and_blank_group(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text(
        "index,arrival_time_us,input_tokens,output_tokens,prefix_group,has_error\n"
        "0,0,591,140,,0\n1,53490,589,48,3,0\n2,20000,600,248,,0\n"
    )
    t = read_trace_csv(path)
    assert list(t.arrival_us) == [0, 20000, 53490]  # sorted by arrival
    assert list(t.input_tokens) == [591, 600, 589]
    assert list(t.prefix_group) == [-1, -1, 3] and (t.prefix_len == 0).all()


@pytest.mark.parametrize(
    "body, line, words",
    [
        ("0,10,5\n100,abc,5\n", 3, "input_tokens 'abc' is not a number"),
        ("0,10,5\n100,10,0\n", 3, "output_tokens is 0, must be >= 1"),
        ("0,10,5\n-5,10,5\n", 3, "arrival_time_us is -5"),
        ("0,10,5\n10,20\n", 3, "2 fields"),
        ("0,10,5\n10,2.5,4\n", 3, "not an integer"),
    ],
)
def test_csv_malformed_row_names_file_and_line(tmp_path, body, line, words):
    path = tmp_path / "bad.csv"
    path.write_text("arrival_time_us,input_tokens,output_tokens\n" + body)
    with pytest.raises(ValueError) as exc:
        read_trace_csv(path)
    msg = str(exc.value)
    assert str(path) in msg and f"line {line}" in msg and words in msg


def test_csv_missing_column_and_missing_file(tmp_path):
    path = tmp_path / "h.csv"
    path.write_text("arrival_time_us,input_tokens\n0,5\n")
    with pytest.raises(ValueError, match="missing column.*output_tokens"):
        read_trace_csv(path)
    with pytest.raises(FileNotFoundError):
        Workload.from_trace_csv(tmp_path / "nope.csv")


MIX = """
rate: 10
num_requests: 1000
seed: 5
clients:
  - name: chat
    rate_fraction: 0.7
    lengths: chatbot
  - name: docs
    rate_fraction: 0.3
    arrival: gamma
    cv: 2.0
    lengths:
      input: {mean: 4096, std: 500, min: 100, max: 8192}
      output: {mean: 512, std: 150, min: 10, max: 2048}
"""


def test_yaml_mix_of_two_clients(tmp_path):
    path = tmp_path / "mix.yaml"
    path.write_text(MIX)
    wl = Workload.from_yaml(path)
    assert wl.kind == "mix" and wl.label == "mix"
    t = wl.generate()
    t.validate()
    assert t.client_names == ["chat", "docs"]
    chat, docs = t.client == 0, t.client == 1
    assert chat.sum() == 700 and docs.sum() == 300
    assert t.input_tokens[chat].max() <= 800 and t.input_tokens[docs].min() >= 100
    assert abs(t.input_tokens[docs].mean() - 4096) < 100
    # chat: constant arrivals at 0.7 x 10 req/s
    assert (np.diff(t.arrival_us[chat]) == int(1e6 / 7)).all()
    g = np.diff(t.arrival_us[docs]) / 1e6
    assert g.mean() == pytest.approx(1 / 3, rel=0.25) and g.std() / g.mean() > 1.3
    assert np.unique(t.prompt_id).size == 1000
    assert wl.with_overrides(rate=20).generate().arrival_us[-1] < t.arrival_us[-1]


def test_yaml_absolute_client_rates_shared_prefix_and_trace(tmp_path):
    trace = tmp_path / "tr.csv"
    trace.write_text("arrival_time_us,input_tokens,output_tokens\n0,10,5\n7,12,6\n")
    (tmp_path / "trace.yaml").write_text("trace: tr.csv\n")
    assert list(Workload.from_yaml(tmp_path / "trace.yaml").generate().input_tokens) == [10, 12]
    (tmp_path / "abs.yaml").write_text(
        "num_requests: 200\nclients:\n"
        "  - {name: a, rate: 3, preset: summarization}\n"
        "  - name: b\n    rate: 1\n"
        "    shared_prefix: {num_groups: 2, prompts_per_group: 2, system_prompt_len: 64,"
        " question_len: 8, output_len: 4}\n"
    )
    wl = Workload.from_yaml(tmp_path / "abs.yaml")
    assert wl.rate == 4 and [c.rate_fraction for c in wl.clients] == [0.75, 0.25]
    t = wl.generate()
    b = t.client == 1
    assert b.sum() == 50 and (t.prefix_len[b] == 64).all() and (t.prefix_group[~b] == -1).all()
    assert np.unique(t.prefix_group[b]).size == 2


def test_yaml_errors(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("preset: chatbot\nrate: 0\n")
    with pytest.raises(BlisInputError) as exc:
        Workload.from_yaml(p)
    # the one formatter (blis/errors.py) adds the allowed range and the value given
    assert str(exc.value) == f"{p}: rate: Input should be greater than 0 (allowed > 0 and <= 1e+07; got 0)"
    p.write_text("clients:\n  - {name: a, preset: nope}\n")
    with pytest.raises(BlisInputError, match=r"clients\.0\.preset: .*known presets: chatbot"):
        Workload.from_yaml(p)
    p.write_text("rate: [1\n")
    with pytest.raises(ValueError, match="invalid YAML"):  # the one reader's wording (blis/_files.py)
        Workload.from_yaml(p)
    with pytest.raises(FileNotFoundError):
        Workload.from_yaml(tmp_path / "missing.yaml")


def test_example_files_load():
    from pathlib import Path

    examples = sorted((Path(__file__).resolve().parent.parent / "examples").glob("workload_*.yaml"))
    assert examples
    for path in examples:
        t = Workload.from_yaml(path).generate()
        assert len(t) > 0
