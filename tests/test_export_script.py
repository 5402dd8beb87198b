"""The exported standalone benchmark script: torch-only imports, --help without torch, the CLI, and (with
torch) a real CPU run of a tiny shape whose JSON /api/validate accepts."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from kernels_bench.__main__ import main as kb_main
from kernels_bench.export_script import VALIDATION_SHAPES, parse_shape, render_script

ALLOWED_IMPORTS = {"argparse", "json", "statistics", "sys", "time", "os", "torch"}


def _imports(text: str) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            names.add((node.module or "").split(".")[0])
    return names


def test_script_imports_torch_and_stdlib_only():
    text = render_script("gb10")
    assert _imports(text) <= ALLOWED_IMPORTS
    assert "blis" not in _imports(text)


def test_default_shapes_follow_the_hardware():
    gb10 = json.loads(render_script("gb10").split('CONFIG = json.loads(r"""')[1].split('""")')[0])
    assert [tuple(s) for s in gb10["shapes"]] == [(k, list(s), p) for k, s, p in VALIDATION_SHAPES]
    assert gb10["peaks_tflops"]["fp8"] == 250
    a100 = json.loads(render_script("A100").split('CONFIG = json.loads(r"""')[1].split('""")')[0])
    assert all(p != "fp8" for _, _, p in a100["shapes"])  # A100 has no FP8


def test_help_works_without_torch(tmp_path):
    script = tmp_path / "bench.py"
    script.write_text(render_script("gb10"))
    blocker = tmp_path / "block" / "torch"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('torch blocked by the test')\n")
    env = {"PYTHONPATH": str(tmp_path / "block"), "PATH": "/usr/bin:/bin"}
    r = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, env=env)
    assert r.returncode == 0 and "--device" in r.stdout and "not GPU data" in r.stdout
    r = subprocess.run([sys.executable, str(script), "--device", "cpu"], capture_output=True, text=True, env=env)
    assert r.returncode != 0 and "needs torch" in r.stderr


def test_cli_writes_the_script(tmp_path, capsys):
    out = tmp_path / "bench_gb10.py"
    assert kb_main(["export-script", "--hardware", "gb10", "--out", str(out)]) == 0
    assert out.read_text() == render_script("gb10")
    assert kb_main(["export-script", "--hardware", "tpu9", "--out", str(out)]) == 2
    assert "unknown 'tpu9'" in capsys.readouterr().err
    assert kb_main(["export-script", "--hardware", "h100", "--out", str(out), "--shape", "gemm:1x2:fp16"]) == 2


def test_parse_shape():
    assert parse_shape("gemm:64x32x16:FP16") == ("gemm", (64, 32, 16), "fp16")
    for bad in ("gemm:64x32:fp16", "conv:1x1:fp16", "gemm:1x1x1:fp7", "attention:1x1x1x1x1x1:fp8", "x"):
        with pytest.raises(ValueError):
            parse_shape(bad)


def _run_cpu(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    script = tmp_path / "bench.py"
    script.write_text(render_script("gb10"))
    cmd = [sys.executable, str(script), "--device", "cpu", "--warmup", "1", "--reps", "3",
           "--shape", "gemm:32x32x32:fp32", "--shape", "gemv:64x64:bf16", *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def test_cpu_run_posts_to_validate(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from blis.web.app import create_app

    r = _run_cpu(tmp_path, "--out", str(tmp_path / "out.json"))
    assert r.returncode == 0, r.stderr
    body = json.loads((tmp_path / "out.json").read_text())
    assert body["not_gpu_data"] is True and "NOT GPU DATA" in body["device"]
    assert body["hardware_key"] == "gb10" and body["cache"] == "cold"
    assert [b["kernel_type"] for b in body["benchmarks"]] == ["gemm", "gemv"]
    assert all(b["measured_time_us"] > 0 for b in body["benchmarks"])
    res = TestClient(create_app()).post("/api/validate", json=body)
    assert res.status_code == 200, res.text
    rows = res.json()["results"]
    assert [r["precision"] for r in rows] == ["FP32", "BF16"]
    assert rows[0]["measured_time_us"] == body["benchmarks"][0]["measured_time_us"]


def test_cpu_run_writes_bench_data_csv(tmp_path):
    pytest.importorskip("torch")
    out = tmp_path / "tables"
    r = _run_cpu(tmp_path, "--output", "csv", "--out-dir", str(out))
    assert r.returncode == 0, r.stderr
    assert (out / "gemm_fp32.csv").read_text().splitlines()[0] == "m,k,n,latency_us,mfu"
    assert (out / "gemm_bf16.csv").read_text().splitlines()[1].startswith("1,64,64,")  # a GEMV is m = 1
    prov = json.loads((out / "provenance.json").read_text())
    assert any("NOT GPU DATA" in n for n in prov["notes"])
