"""Reading inference-perf run folders (requests.csv, meta.json, exp-config.yaml, profile.yaml)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from blis.errors import BlisInputError
from blis.traces import find_runs, load_run
from blis.traces.run_folder import load_run_folder, read_requests_csv

HEADER = "index,arrival_time_us,input_tokens,output_tokens,prefix_group,has_error,e2e_s,ttft_s"


def _write_run(folder: Path, rows: list[str], *, stages=((1.0, 6),), effective_prompts=(1, 3),
               output_len=5, meta_extra=None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "requests.csv").write_text("\n".join([HEADER, *rows]) + "\n")
    meta = {
        "experiment": "tiny",
        "model_id": "meta-llama/Llama-2-7b-hf",
        "config": {"tensor_parallelism": 1, "max_num_seqs": 8, "max_num_batched_tokens": 64,
                   "kv_blocks_total_gpu": 100, "block_size": 16},
    }
    meta.update(meta_extra or {})
    (folder / "meta.json").write_text(json.dumps(meta, indent=1))
    (folder / "exp-config.yaml").write_text(
        "model: meta-llama/Llama-2-7b-hf\ntensor_parallelism: 1\nmax_model_len: 4096\n"
    )
    profile = {
        "data": {"type": "shared_prefix", "shared_prefix": {"num_unique_system_prompts": 7,
                                                            "num_users_per_system_prompt": 3,
                                                            "output_len": output_len}},
        "load": {"type": "constant", "stages": [{"rate": r, "duration": d} for r, d in stages]},
    }
    (folder / "profile.yaml").write_text(json.dumps(profile))
    if effective_prompts is not None:
        (folder / "results").mkdir(exist_ok=True)
        g, p = effective_prompts
        (folder / "results" / "config.yaml").write_text(
            "data:\n  shared_prefix:\n"
            f"    num_groups: {g}\n    num_prompts_per_group: {p}\n    output_len: {output_len}\n"
            "load:\n  type: constant\n  request_timeout: null\n  stages:\n"
            + "".join(f"  - rate: {r}\n    duration: {d}\n" for r, d in stages)
        )
    return folder


def _row(i, t_us, inp, out=6, err=0, e2e=1.0, ttft=0.1):
    if err:
        return f"{i},{t_us},0,0,,1,300.2,"
    return f"{i},{t_us},{inp},{out},,0,{e2e},{ttft}"


def test_prompts_outputs_and_failures(tmp_path):
    # three prompts of lengths 10, 20, 30 reused cyclically; rows 3 and 4 recorded swapped; row 5 failed
    lengths = [10, 20, 30, 20, 10, 30] + [10, 20, 30] * 4
    rows = [_row(i, 1000 + 100 * i, n) for i, n in enumerate(lengths)]
    rows[5] = _row(5, 1500, 0, err=1)
    run = load_run_folder(_write_run(tmp_path / "run", rows, stages=((1.0, 18),)))
    assert run.requests.arrival_us.tolist()[:6] == [0, 100, 200, 300, 400, 500]
    assert run.requests.prompt_id.tolist() == [0, 1, 2, 1, 0, 2] + [0, 1, 2] * 4
    assert run.requests.input_tokens.tolist() == [10, 20, 30, 20, 10, 30] + [10, 20, 30] * 4
    assert run.requests.output_tokens.tolist() == [5] * 18  # the profile's output_len, not the CSV's 6
    assert run.failed.tolist() == [False] * 5 + [True] + [False] * 12
    assert np.isnan(run.ttft_ms[5]) and run.ttft_ms[0] == pytest.approx(100.0)
    assert run.e2e_ms[0] == pytest.approx(1000.0)
    assert run.client_timeout_s == 300.0  # request_timeout null -> aiohttp's default
    s = run.server
    assert (s.model, s.tp, s.max_num_seqs, s.max_num_batched_tokens, s.total_kv_blocks, s.block_size,
            s.max_model_len) == ("meta-llama/Llama-2-7b-hf", 1, 8, 64, 100, 16, 4096)


def test_stages_restart_the_prompt_cycle(tmp_path):
    # stage 0: 4 requests, stage 1: 3 requests (rate x duration); prompt slots restart at stage 1
    lengths = [10, 20, 30, 10, 10, 20, 30]
    t = [0, 10, 20, 30, 9_000_000, 9_000_010, 9_000_020]
    rows = [_row(i, t[i], n) for i, n in enumerate(lengths)]
    run = load_run_folder(_write_run(tmp_path / "run", rows, stages=((2.0, 2), (1.0, 3))))
    assert run.stage.tolist() == [0, 0, 0, 0, 1, 1, 1]
    assert run.requests.prompt_id.tolist() == [0, 1, 2, 0, 0, 1, 2]


def test_stages_from_gaps_when_profile_sizes_disagree(tmp_path):
    lengths = [10, 20, 30, 10, 10, 20]
    t = [0, 10, 20, 30, 9_000_000, 9_000_010]
    rows = [_row(i, t[i], n) for i, n in enumerate(lengths)]
    run = load_run_folder(_write_run(tmp_path / "run", rows, stages=((1.0, 100),)))
    assert run.stage.tolist() == [0, 0, 0, 0, 1, 1]
    assert any("do not add up" in n for n in run.notes)


def test_period_from_data_without_effective_config(tmp_path):
    # no results/config.yaml: candidates are the old default 100 and the alias product 7 x 3 = 21
    lengths = [100 + (i % 21) for i in range(63)]
    rows = [_row(i, 10 * i, n) for i, n in enumerate(lengths)]
    run = load_run_folder(_write_run(tmp_path / "run", rows, stages=((1.0, 63),), effective_prompts=None))
    assert run.requests.prompt_id.tolist() == [i % 21 for i in range(63)]


def test_malformed_value_names_file_line_and_column(tmp_path):
    rows = [_row(0, 0, 10), "1,abc,20,6,,0,1.0,0.1", _row(2, 20, 30)]
    folder = _write_run(tmp_path / "run", rows)
    with pytest.raises(BlisInputError, match=r"requests\.csv:3: arrival_time_us: expected an integer"):
        load_run_folder(folder)


@pytest.mark.parametrize(
    "row, pattern",
    [
        ("1,10,20,6,,0,-1.0,0.1", r":3: e2e_s: must be finite and >= 0"),
        ("1,10,20,6,,0,1.0,2.0", r":3: ttft_s: 2.0 exceeds e2e_s"),
        ("1,10,20,6,,2,1.0,0.1", r":3: has_error: expected 0 or 1"),
        ("1,10,20,6,,0,1.0", r":3: expected 8 fields, got 7"),
        ("1,10,20,6,,0,,", r":3: e2e_s/ttft_s: required"),
        ("1,5,20,6,,0,1.0,0.1", r":3: arrival_time_us: not sorted"),
    ],
)
def test_malformed_rows(tmp_path, row, pattern):
    folder = _write_run(tmp_path / "run", [_row(0, 7, 10), row])
    with pytest.raises(BlisInputError, match=pattern):
        load_run_folder(folder)


def test_missing_column_and_bad_json_yaml(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("index,arrival_time_us,input_tokens\n0,0,5\n")
    with pytest.raises(BlisInputError, match=r"r\.csv:1: missing column\(s\) output_tokens"):
        read_requests_csv(path)
    folder = _write_run(tmp_path / "run", [_row(0, 0, 10)])
    (folder / "meta.json").write_text('{\n "model_id": "x",\n "config": {,}\n}')
    with pytest.raises(BlisInputError, match=r"meta\.json:3: invalid JSON"):
        load_run_folder(folder)
    folder = _write_run(tmp_path / "run2", [_row(0, 0, 10)])
    (folder / "profile.yaml").write_text("data:\n  shared_prefix: [1, 2\n")
    with pytest.raises(BlisInputError, match=r"profile\.yaml:\d+: invalid YAML"):
        load_run_folder(folder)


def test_meta_missing_field_and_tp_mismatch(tmp_path):
    folder = _write_run(tmp_path / "run", [_row(0, 0, 10)])
    (folder / "meta.json").write_text(json.dumps({"model_id": "m"}))
    with pytest.raises(BlisInputError, match=r"meta\.json: missing field 'config'"):
        load_run_folder(folder)
    folder = _write_run(tmp_path / "run2", [_row(0, 0, 10)],
                        meta_extra={"config": {"tensor_parallelism": 1, "max_num_seqs": 0}})
    with pytest.raises(BlisInputError, match=r"config\.max_num_seqs: must be >= 1"):
        load_run_folder(folder)
    folder = _write_run(tmp_path / "run3", [_row(0, 0, 10)], meta_extra={"config": {"tensor_parallelism": 2}})
    with pytest.raises(BlisInputError, match="tensor_parallelism 1 disagrees"):
        load_run_folder(folder)


def test_all_failed_is_an_error(tmp_path):
    folder = _write_run(tmp_path / "run", [_row(0, 0, 0, err=1)])
    with pytest.raises(BlisInputError, match="every request failed"):
        load_run_folder(folder)


def test_find_runs(tmp_path):
    _write_run(tmp_path / "runs" / "a", [_row(0, 0, 10)])
    _write_run(tmp_path / "runs" / "b", [_row(0, 0, 10)])
    (tmp_path / "runs" / "notes").mkdir()
    assert [p.name for p in find_runs([tmp_path / "runs"])] == ["a", "b"]
    assert [p.name for p in find_runs([tmp_path / "runs" / "a"])] == ["a"]
    with pytest.raises(BlisInputError, match="neither a run nor a folder of runs"):
        find_runs([tmp_path / "runs" / "notes"])
    with pytest.raises(BlisInputError, match="no such file"):
        load_run(tmp_path / "nope")


# ------------------------------------------------------------------ the shared runs
def _shared_runs(shared_data):
    return sorted((shared_data / "traces" / "h100-vllm-v1").iterdir())


def test_shared_runs_read(shared_data):
    import pandas as pd

    for folder in _shared_runs(shared_data):
        run = load_run(folder)
        raw = pd.read_csv(folder / "requests.csv")
        assert len(run) == len(raw)
        assert run.failed.sum() == raw.has_error.sum()
        assert run.server.max_num_seqs == 128 and run.server.max_num_batched_tokens == 2048
        assert run.server.max_model_len == 4096
        ok = raw.has_error.to_numpy() == 0
        # successful requests keep their recorded prompt length
        assert (run.requests.input_tokens[ok] == raw.input_tokens.to_numpy()[ok]).all()
        # equal prompt ids always mean equal prompt lengths
        pid, inp = run.requests.prompt_id, run.requests.input_tokens
        for p in np.unique(pid):
            assert len(np.unique(inp[pid == p])) == 1
        assert (inp >= 1).all()
        # stage boundaries sit on the multi-second idle gaps between stages
        starts = np.flatnonzero(np.diff(run.stage)) + 1
        gaps = np.diff(run.requests.arrival_us)
        assert all(gaps[s - 1] > 3e6 for s in starts)
        assert (gaps > 3e6).sum() == len(starts)


def test_shared_run_output_len_from_profile(shared_data):
    folder = shared_data / "traces" / "h100-vllm-v1" / "20260217-155451-llama-2-7b-tp1-codegen"
    run = load_run(folder)
    assert set(run.requests.output_tokens.tolist()) == {247}
    assert np.bincount(run.stage).tolist() == [3000, 6000]
