"""Importers on the real third-party tables (shared data): the result passes the check."""

from __future__ import annotations

import csv
import json

import pytest

from blis.bench_data import format as bdf
from blis.bench_data.format import package_bench_data_dir
from blis.bench_data.importers import choose_gemm_dtype, import_tables
from blis.errors import BlisInputError


@pytest.fixture(scope="module")
def h100_import(shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("h100-blis")
    result = import_tables(shared_data / "kernels" / "h100-blis", "h100-blis", out)
    return out, result


def _rows(path):
    with open(path) as fh:
        return list(csv.DictReader(fh))


def test_h100_blis_import_passes_check(h100_import):
    out, result = h100_import
    assert [f.name for f in result.folders] == ["h100"]
    report = bdf.check_bench_dir(out)
    assert report.ok, report.problems[:5]
    kinds = {t.kind for t in report.tables}
    assert kinds == {bdf.GEMM, bdf.PREFILL, bdf.DECODE}
    data = bdf.load_bench_dir(out / "h100")
    assert len(data.prefill) == 6 and len(data.decode) == 16


def test_h100_blis_gemm_is_fp8(h100_import, shared_data):
    """The source GEMM rows beat the bf16 dense peak (989.5 TFLOP/s): they can only be fp8."""
    out, _ = h100_import
    assert (out / "h100" / "gemm_fp8.csv").is_file() and not (out / "h100" / "gemm_bf16.csv").exists()
    src = _rows(shared_data / "kernels" / "h100-blis" / "gemm" / "h100" / "data.csv")
    best = max(2 * int(r["m"]) * int(r["k"]) * int(r["n"]) / (float(r["latency_us"]) * 1e-6) for r in src)
    assert best > 989.5e12
    prov = json.loads((out / "h100" / "provenance.json").read_text())
    assert any("not bf16" in n for n in prov["notes"])
    # latencies are carried over unchanged
    ours = _rows(out / "h100" / "gemm_fp8.csv")
    assert [float(r["latency_us"]) for r in ours] == [float(r["latency_us"]) for r in src]


def test_h100_blis_forced_bf16_is_refused(shared_data, tmp_path):
    import_tables(shared_data / "kernels" / "h100-blis", "h100-blis", tmp_path, gemm_dtype="bf16")
    report = bdf.check_table(tmp_path / "h100" / "gemm_bf16.csv", bdf.GEMM)
    assert not report.ok
    assert any("must be within (0, 1]" in p for p in report.problems)
    with pytest.raises(BlisInputError, match="fails the check"):
        bdf.load_bench_dir(tmp_path / "h100")


def test_h100_blis_prefill_batch_one_and_decode_heads_per_gpu(h100_import, shared_data):
    out, _ = h100_import
    pre = _rows(out / "h100" / "attention_prefill" / "32-8-128.csv")
    assert {r["batch_size"] for r in pre} == {"1"} and len(pre) == 5
    # 64-8-128 at TP 4 is 16 heads and 2 KV heads per GPU; its rows arrive unchanged
    src = _rows(shared_data / "kernels" / "h100-blis" / "mha" / "decode" / "h100" / "64-8-128-tp4.csv")
    dec = _rows(out / "h100" / "attention_decode" / "16-2-128.csv")
    assert [(r["batch_size"], r["kv_len"], float(r["latency_us"])) for r in dec] == sorted(
        ((r["batch_size"], r["kv_len"], float(r["latency_us"])) for r in src),
        key=lambda t: (int(t[0]), int(t[1])),
    )
    # 28-4-128 at TP 1 and 56-8-128 at TP 2 are the same per-GPU kernel: merged
    merged = _rows(out / "h100" / "attention_decode" / "28-4-128.csv")
    assert len(merged) == len({(r["batch_size"], r["kv_len"]) for r in merged}) == 55


def test_infersim_import_passes_check(shared_data, tmp_path):
    result = import_tables(shared_data / "kernels" / "infersim", "infersim", tmp_path)
    assert [f.name for f in result.folders] == ["h800"]
    assert bdf.check_bench_dir(tmp_path).ok
    assert any("dsa, grouped_gemm, mla" in n for n in result.notes)


def test_choose_gemm_dtype_from_physics():
    peaks = {"bf16": 1000.0, "fp8": 2000.0}
    slow = [(4096, 4096, 4096, 2 * 4096**3 / 800e12 * 1e6)]  # 800 TFLOP/s: fine in bf16
    assert choose_gemm_dtype(slow, peaks, 3000.0)[0] == "bf16"
    fast = [(4096, 4096, 4096, 2 * 4096**3 / 1500e12 * 1e6)]  # 1500 TFLOP/s: only fp8
    assert choose_gemm_dtype(fast, peaks, 3000.0)[0] == "fp8"
    with pytest.raises(BlisInputError, match="impossible"):
        choose_gemm_dtype([(4096, 4096, 4096, 0.01)], peaks, 3000.0)


def test_import_refuses_package_bench_data_and_bad_layout(shared_data, tmp_path):
    with pytest.raises(BlisInputError, match="only our own measurements"):
        import_tables(shared_data / "kernels" / "h100-blis", "h100-blis", package_bench_data_dir())
    with pytest.raises(BlisInputError, match="layout"):
        import_tables(shared_data / "kernels" / "h100-blis", "vidur", tmp_path)


def test_cli_import_then_loo(shared_data, tmp_path, capsys):
    from blis.cli import main

    src = shared_data / "kernels" / "h100-blis"
    assert main(["bench-data", "import", "--from", str(src), "--layout", "h100-blis", "--out", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "not bf16" in err and "OK" in err
    # a second import into the same folder needs --force
    assert main(["bench-data", "import", "--from", str(src), "--layout", "h100-blis", "--out", str(tmp_path)]) == 2
    capsys.readouterr()
    assert main(["bench-data", "loo", str(tmp_path), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert set(res) == {"gemm", "attention_prefill", "attention_decode"}
    gemm = res["gemm"]
    assert gemm["interior"]["n"] + gemm["edge"]["n"] == 112  # every GEMM row held back once
    assert gemm["interior"]["median_pct"] < gemm["interior"]["p90_pct"]
