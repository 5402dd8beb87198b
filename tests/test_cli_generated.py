"""The run flags come from the config fields and the registries; what the CLI does with good input that used to
go wrong (issue #19): config.json in the current folder, calibration files, the stderr line, output order."""

from __future__ import annotations

import argparse
import json
from typing import Literal, Optional

import pytest
from pydantic import BaseModel, Field

from blis.cli import build_parser, main
from blis.commands import _flags

SMALL = ["--num-requests", "10", "--no-progress"]


def _run_parser() -> argparse.ArgumentParser:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["run"]


def test_every_scalar_config_field_is_a_run_flag():
    import typing

    from blis.config import EngineConfig, SimConfig
    from blis.workload.spec import Workload

    def scalar(annotation) -> bool:
        kind = _flags._unwrap(annotation)
        args = typing.get_args(kind)
        return kind in (int, float, str, bool) or typing.get_origin(kind) is Literal or (
            typing.get_origin(kind) is tuple and bool(args) and all(a is float for a in args))

    parser = _run_parser()
    flags = {(f.model, f.field) for f in parser.get_default("flags")}
    # defined by hand in blis/commands/workload_args.py: they take lists (sweeps) or drive the closed loop
    by_hand = {"rate", "concurrency", "think_time_ms", "ramp_s"}
    checked = 0
    for model in (SimConfig, EngineConfig, Workload):
        for name, info in model.model_fields.items():
            if name not in _flags.SKIP and scalar(info.annotation):
                if model is Workload and name in by_hand:
                    assert "--" + name.replace("_", "-") in parser._option_string_actions, name
                else:
                    assert (model, name) in flags, f"{model.__name__}.{name} has no flag"
                checked += 1
    assert checked >= 25
    cluster = {f.field for f in _run_parser().get_default("cluster_flags")}
    assert {"num_instances", "routing", "routing_scorers", "admission", "pd_transfer_bandwidth"} <= cluster
    assert not cluster & set(SimConfig.model_fields)


def test_a_new_field_with_a_description_is_a_flag_with_help_range_and_choices():
    class Toy(BaseModel):
        concurrency: Optional[int] = Field(None, ge=1, le=512, description="clients in flight, requests")
        kv_cache_dtype: Literal["auto", "fp8"] = Field("auto", description="KV cache element type")
        warmup_s: float = Field(0.0, ge=0, description="seconds of warm-up excluded from metrics")

    parser = argparse.ArgumentParser()
    flags = _flags.add_model_flags(parser, Toy)
    assert [f.option for f in flags] == ["--concurrency", "--kv-cache-dtype", "--warmup-s"]
    help_text = parser.format_help()
    assert "clients in flight, requests" in help_text and ">= 1 and <= 512" in help_text
    assert "one of auto, fp8" in help_text and "default auto" in help_text
    args = parser.parse_args(["--concurrency", "8", "--kv-cache-dtype", "fp8"])
    assert _flags.given(args, flags) == {"concurrency": 8, "kv_cache_dtype": "fp8"}
    with pytest.raises(SystemExit):
        parser.parse_args(["--kv-cache-dtype", "int3"])


def test_latency_model_names_come_from_the_registry(capsys):
    from blis.latency import base

    base.register_latency_model("toy-model")(lambda config: None)
    try:
        for cmd in (["run"], ["replay", "--trace", "x"], ["validate", "--traces", "x"]):
            assert "toy-model" in vars(build_parser().parse_args(cmd + ["--latency-model", "toy-model"])).values()
        assert main(["list", "latency-models"]) == 0
        assert "toy-model" in capsys.readouterr().out.split()
    finally:
        base._FACTORIES.pop("toy-model")


def test_list_commands(capsys):
    for kind, name in (("models", "llama-2-7b"), ("hardware", "H100-SXM"), ("presets", "chatbot"),
                       ("latency-models", "roofline"), ("routing", "round-robin"), ("admission", "token-bucket")):
        assert main(["list", kind]) == 0
        out, err = capsys.readouterr()
        assert name in out.split() and err == ""
    assert main(["list", "hardware", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert any("H100" in r["aliases"] for r in rows)


def test_defaults_line_is_one_complete_line_after_validation(capsys):
    assert main(["run", "--latency-model", "blackbox", *SMALL]) == 0
    err = capsys.readouterr().err.splitlines()
    # the defaults line, then the fidelity statement (issue 10: one line); nothing else
    assert len(err) == 2 and err[1].startswith("blis: fidelity: "), err
    for part in ("model=llama-2-7b", "hardware=H100", "tp=1", "workload=chatbot", "rate=1 req/s",
                 "seed=42", "latency model blackbox"):
        assert part in err[0], err
    assert main(["run", "--latency-model", "blackbox", "--no-progress"]) == 0
    assert "num_requests=100" in capsys.readouterr().err


def test_model_config_in_the_current_folder(tmp_path, monkeypatch, capsys):
    from tests.test_bad_input import HF_OK

    folder = tmp_path / "my-llama"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(HF_OK))
    monkeypatch.chdir(folder)
    assert main(["run", "--model-config", "config.json", "--latency-model", "roofline", *SMALL]) == 0
    out, err = capsys.readouterr()
    summary = json.loads(out)
    assert summary["model"] == "my-llama" and summary["completed_requests"] == 10


def test_blackbox_calibration_file_implies_blackbox(tmp_path, capsys):
    path = tmp_path / "bb.yaml"
    path.write_text("- {model: meta-llama/llama-2-7b-hf, hardware: H100, tp: 1, alpha: [1000, 0, 0], "
                    "beta: [5000, 1, 50], source: test}\n")
    assert main(["run", "--calibration-file", str(path), *SMALL]) == 0
    out, err = capsys.readouterr()
    summary = json.loads(out)
    assert summary["latency_model"] == "blackbox"
    assert main(["run", "--alpha-coeffs", "1000,0,0", "--beta-coeffs", "5000,1,50", *SMALL]) == 0
    assert json.loads(capsys.readouterr().out)["latency_model"] == "blackbox"


def test_summary_is_written_before_the_output_files(tmp_path, monkeypatch, capsys):
    from blis.commands import run as run_cmd
    from blis.errors import BlisInputError

    def fail(df, path, what):
        raise BlisInputError(f"{what}: cannot write {path} (disk full)")

    monkeypatch.setattr(run_cmd, "write_table", fail)
    assert main(["run", "--latency-model", "blackbox", "--requests-out", str(tmp_path / "r.csv"), *SMALL]) == 2
    out, err = capsys.readouterr()
    assert json.loads(out)["completed_requests"] == 10
    assert err.splitlines()[-1] == f"blis: error: requests_out: cannot write {tmp_path / 'r.csv'} (disk full)"


def test_steps_and_requests_out_csv_and_parquet(tmp_path, capsys):
    pytest.importorskip("pyarrow")
    import pandas as pd

    steps, reqs = tmp_path / "s.parquet", tmp_path / "r.csv"
    assert main(["run", "--latency-model", "blackbox", "--steps-out", str(steps), "--requests-out", str(reqs),
                 *SMALL]) == 0
    assert len(pd.read_csv(reqs)) == 10 and len(pd.read_parquet(steps)) > 0


def test_block_size_takes_vllm_values(capsys):
    assert main(["run", "--latency-model", "blackbox", "--block-size", "32", *SMALL]) == 0
    assert json.loads(capsys.readouterr().out)["completed_requests"] == 10


def test_roofline_prints_on_stdout(capsys):
    assert main(["roofline", "gemm", "-M", "16", "-N", "64", "-K", "64"]) == 0
    out, err = capsys.readouterr()
    assert "predicted" in out and err == ""


def test_progress_eta_column():
    from rich.progress import Progress

    from blis.commands.run import _eta_column

    column = _eta_column()
    with Progress(column, disable=True) as progress:
        task_id = progress.add_task("x", total=1.0)
        task = progress.tasks[0]
        assert column.render(task).plain == "ETA -:--"
        progress.update(task_id, completed=0.25)
        task.start_time -= 30  # 30 s elapsed for a quarter: 90 s left
        assert column.render(task).plain == "ETA 1:30"


def test_empty_shared_data_variable_means_unset(monkeypatch, tmp_path):
    from tests.conftest import PROJECT_ROOT, shared_data_dir

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BLIS_SHARED_DATA", "")
    default = PROJECT_ROOT.parent / "shared" / "data"
    assert shared_data_dir() == (default if default.is_dir() else None)


def test_blackbox_coefficients_in_the_api_select_blackbox_or_are_refused():
    from pydantic import ValidationError

    from blis.config import SimConfig
    from blis.errors import format_validation_error

    assert SimConfig(alpha_coeffs=(1.0, 0.0, 0.0)).latency_model == "blackbox"
    with pytest.raises(ValidationError) as exc:
        SimConfig(beta_coeffs=(1.0, 1.0, 1.0), latency_model="roofline")
    assert format_validation_error(exc.value) == \
        "beta_coeffs: blackbox coefficients do not apply to latency model 'roofline'"
