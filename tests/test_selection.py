"""Automatic latency-model selection: explicit choice, measured tables, known physics, else blackbox."""

from __future__ import annotations

import json

import pytest
from test_bench_data_helpers import write_synthetic

from blis.config import SimConfig
from blis.errors import BlisInputError
from blis.latency import selection
from blis.latency.selection import choose_latency_model, find_bench_folder


@pytest.fixture
def no_package_tables(monkeypatch, tmp_path):
    """An empty stand-in for the repository's bench_data/ (today it holds no GPU either)."""
    empty = tmp_path / "pkg_bench_data"
    empty.mkdir()
    monkeypatch.setattr(selection, "package_bench_data_dir", lambda: empty)
    return empty


def test_explicit_choice_wins(tmp_path, no_package_tables):
    folder = write_synthetic(tmp_path / "h100", gpu="h100")
    cfg = SimConfig(latency_model="blackbox", bench_data_path=str(folder))
    assert choose_latency_model(cfg) == ("blackbox", "chosen by --latency-model")


def test_bench_data_path_selects_v2(tmp_path, no_package_tables):
    write_synthetic(tmp_path / "root" / "h100", gpu="h100")
    write_synthetic(tmp_path / "root" / "a100", gpu="a100")
    for path in (tmp_path / "root", tmp_path / "root" / "h100"):
        name, reason = choose_latency_model(SimConfig(hardware="H100-SXM", bench_data_path=str(path)))
        assert name == "roofline-v2"
        assert str(tmp_path / "root" / "h100") in reason
    # the A100 folder is found under its alias too
    cfg = SimConfig(hardware="A100-80GB", bench_data_path=str(tmp_path / "root"))
    assert find_bench_folder(cfg) == tmp_path / "root" / "a100"


def test_bench_data_path_for_another_gpu_is_an_error(tmp_path, no_package_tables):
    folder = write_synthetic(tmp_path / "h800", gpu="h800")
    with pytest.raises(BlisInputError, match="tables for h800, not for hardware H100"):
        choose_latency_model(SimConfig(hardware="H100", bench_data_path=str(folder)))
    with pytest.raises(BlisInputError, match="is not a folder"):
        choose_latency_model(SimConfig(bench_data_path=str(tmp_path / "missing")))


def test_package_bench_data_is_used_when_it_has_the_gpu(monkeypatch, tmp_path):
    pkg = tmp_path / "pkg"
    write_synthetic(pkg / "h100", gpu="h100")
    monkeypatch.setattr(selection, "package_bench_data_dir", lambda: pkg)
    assert choose_latency_model(SimConfig(hardware="H100"))[0] == "roofline-v2"
    assert choose_latency_model(SimConfig(hardware="A100"))[0] == "roofline"


def test_repository_bench_data_holds_no_measured_gpu_yet():
    assert selection.gpu_folders(selection.package_bench_data_dir()) == []


def test_known_physics_selects_v1(no_package_tables):
    name, reason = choose_latency_model(SimConfig(model="llama-2-7b", hardware="H100"))
    assert name == "roofline" and "model registry" in reason


def test_roofline_uses_the_per_setup_refit_when_shipped(tmp_path, monkeypatch):
    import yaml

    import blis.latency.calibration as cal
    from blis.latency.base import create_latency_model

    # the shipped table holds only refits that passed validation (none today): ship one here
    (tmp_path / "roofline_models.yaml").write_text(yaml.safe_dump(
        [{"model": "meta-llama/llama-2-70b-hf", "hardware": "H100", "tp": 4, "params": {"step_overhead_us": 1.0}}]))
    monkeypatch.setattr(cal, "COEFF_DIR", tmp_path)
    tuned = create_latency_model("roofline", SimConfig(model="llama-2-70b", hardware="H100", tp=4))
    generic = create_latency_model("roofline", SimConfig(model="llama-2-70b", hardware="H100", tp=8))
    assert "roofline_models.yaml" in tuned.describe()["source"]
    assert "roofline_models.yaml" not in generic.describe()["source"]


def test_model_config_path_counts_as_known_physics(no_package_tables, shared_data):
    cfg_path = shared_data / "model_configs" / "qwen2.5-7b-instruct" / "config.json"
    name, reason = choose_latency_model(SimConfig(model="my-private-model", model_config_path=str(cfg_path)))
    assert name == "roofline" and str(cfg_path) in reason


def test_unknown_model_or_hardware_falls_back_to_blackbox(no_package_tables, tmp_path):
    name, reason = choose_latency_model(SimConfig(model="my-private-model", hardware="H100"))
    assert name == "blackbox" and "my-private-model" in reason
    name, reason = choose_latency_model(SimConfig(model="llama-2-7b", hardware="TPU-v5"))
    assert name == "blackbox" and "TPU-v5" in reason
    hw = tmp_path / "hw.json"
    hw.write_text(json.dumps({"name": "TPU-v5", "base": "H100"}))
    assert choose_latency_model(SimConfig(model="llama-2-7b", hardware="TPU-v5",
                                          hardware_file=str(hw)))[0] == "roofline"
