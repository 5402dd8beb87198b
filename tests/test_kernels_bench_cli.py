"""`python -m kernels_bench`: bad arguments exit 2 with one line; --dry-run plans without a GPU."""

from __future__ import annotations

import subprocess
import sys

import pytest

from kernels_bench.__main__ import EXIT_INCOMPLETE, main

SWEEP = ["gemm", "--gpu", "h100", "--out", "OUT"]


def _run(argv, tmp_path, capsys):
    argv = [str(tmp_path / "out") if a == "OUT" else a for a in argv]
    rc = main(argv)
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (SWEEP + ["--tp", "3"], "--tp: TP degrees must be powers of two"),
        (SWEEP + ["--tp", "0,2"], "--tp: expected integers >= 1"),
        (SWEEP + ["--dtype", "int4"], "--dtype: dtypes must be among bf16, fp8"),
        (SWEEP + ["--max-seconds", "-5"], "--max-seconds: must be > 0"),
        (SWEEP + ["--decode-memory-fraction", "2"], "--decode-memory-fraction: must be in (0, 0.9]"),
        (SWEEP + ["--decode-backend", "xformers"], "--decode-backend: invalid choice"),
        (["gemm", "--gpu", "h100"], "the following arguments are required: --out"),
        (["bogus"], "invalid choice"),
        (["compare-attention", "--gpu", "h100", "--head-dims", "0"], "--head-dims: expected integers >= 1"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(argv, needle, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        _run(argv, tmp_path, capsys)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert needle in err


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (SWEEP + ["--models", "no-such-model"], "--models: unknown model 'no-such-model'"),
        (["gemm", "--gpu", "tpu-v9", "--out", "OUT"], "--gpu: unknown GPU 'tpu-v9'"),
        (SWEEP + ["--min-reps", "50", "--max-reps", "10"], "--min-reps 50 is above --max-reps 10"),
    ],
)
def test_bad_names_exit_2_with_one_line(argv, needle, tmp_path, capsys):
    pytest.importorskip("blis.physics.model_spec")
    rc, _, err = _run(argv, tmp_path, capsys)
    assert rc == 2
    assert len(err.strip().splitlines()) == 1, err
    assert needle in err
    assert not (tmp_path / "out").exists()


def test_dry_run_counts_points(tmp_path, capsys):
    pytest.importorskip("blis.physics.model_spec")
    rc, out, _ = _run(SWEEP + ["--models", "llama-2-7b", "--tp", "1", "--dtype", "bf16", "--dry-run"],
                      tmp_path, capsys)
    assert rc == 0
    lines = out.splitlines()
    # llama-2-7b at TP 1 has 5 distinct (k, n); m takes 15 powers of two (1..16384) plus 768, 1280, 1536
    # and 1792 from the 2048-token budget: 19 values.
    assert lines[0] == "gemm: 95 points in 1 tables"
    assert lines[1] == "  gemm_bf16.csv: 95"
    assert not (tmp_path / "out").exists()


def test_dry_run_all_lists_every_family(tmp_path, capsys):
    pytest.importorskip("blis.physics.model_spec")
    rc, out, _ = _run(["all", "--gpu", "h100", "--out", "OUT", "--quick", "--models", "llama-3.1-8b",
                       "--tp", "1,2", "--dry-run"], tmp_path, capsys)
    assert rc == 0
    assert "  gemm_bf16.csv: 50" in out  # 5 shapes x 2 TP degrees x 5 quick m values
    assert "  attention_prefill/32-8-128.csv: 6" in out and "  attention_prefill/16-4-128.csv: 6" in out
    # 3 batches x 3 kv_len x 2 kv dtypes, less batch 256 x 65536 tokens in bf16 at TP 1: its K and V
    # (256 * 65536 * 2 * 8 * 128 * 2 bytes = 64 GiB) exceed half of the H100's 79 GiB.
    assert "  attention_decode/32-8-128.csv: 17" in out
    assert "  attention_decode/16-4-128.csv: 18" in out
    assert "attention_decode: 1 points left out" in out
    assert "attention_prefill: bf16 only" in out


def test_sweep_without_gpu_fails_cleanly(tmp_path, capsys):
    pytest.importorskip("blis.physics.model_spec")
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None and torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    rc, _, err = _run(SWEEP + ["--models", "llama-2-7b", "--tp", "1"], tmp_path, capsys)
    assert rc == 1 and rc != EXIT_INCOMPLETE
    assert ("torch is not installed" in err) or ("no CUDA device" in err)
    assert not (tmp_path / "out").exists()


def test_module_entry_point_imports_without_torch():
    res = subprocess.run([sys.executable, "-m", "kernels_bench", "--help"], capture_output=True, text=True,
                         timeout=60, check=False)
    assert res.returncode == 0
    assert "compare-attention" in res.stdout
    code = "import sys, kernels_bench.__main__; print('torch' in sys.modules)"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert res.stdout.strip() == "False"
