"""bench_data format: the checker refuses bad rows by file:line, and loading refuses a failing folder."""

from __future__ import annotations

import json

import pytest
from test_bench_data_helpers import (
    GEMM_MS,
    decode_latency_us,
    gemm_latency_us,
    write_decode,
    write_gemm,
    write_provenance,
    write_synthetic,
)

from blis.bench_data import format as bdf
from blis.errors import BlisInputError


def _replace_line(path, line_no: int, text: str) -> None:
    lines = path.read_text().splitlines()
    lines[line_no - 1] = text
    path.write_text("\n".join(lines) + "\n")


def test_synthetic_folder_passes_with_summary(tmp_path):
    folder = write_synthetic(tmp_path / "testgpu")
    report = bdf.check_bench_dir(tmp_path)  # the root: finds the GPU folder
    assert report.ok, report.problems
    assert len(report.tables) == 3
    gemm = next(t for t in report.tables if t.kind == bdf.GEMM)
    assert gemm.rows == 18 and gemm.grid["kn_pairs"] == 3
    assert 0 < gemm.mfu_min < gemm.mfu_max <= 1
    data = bdf.load_bench_dir(folder)
    assert set(data.gemm) == {"bf16"} and set(data.decode) == {(32, 8, 128)}


@pytest.mark.parametrize(
    "bad_value, words",
    [("1.2", "mfu 1.2 must be within (0, 1]"), ("0", "mfu 0 must be within (0, 1]"),
     ("nan", "mfu is nan (must be finite)")],
)
def test_bad_mfu_refused_with_file_and_line(tmp_path, bad_value, words):
    folder = write_synthetic(tmp_path / "g")
    path = folder / "gemm_bf16.csv"
    _replace_line(path, 4, f"128,4096,4096,30.0,{bad_value}")
    report = bdf.check_table(path, bdf.GEMM)
    assert not report.ok
    assert f"{path}:4: {words}" in report.problems
    with pytest.raises(BlisInputError, match=f"{path}:4"):
        bdf.load_bench_dir(folder)


@pytest.mark.parametrize("latency", ["0", "-3.5", "NaN", "inf", "abc"])
def test_bad_latency_refused(tmp_path, latency):
    folder = write_synthetic(tmp_path / "g")
    path = folder / "attention_decode" / "32-8-128.csv"
    _replace_line(path, 3, f"bf16,bf16,1,1024,{latency},0.001")
    report = bdf.check_table(path, bdf.DECODE)
    assert any(p.startswith(f"{path}:3: latency_us") for p in report.problems), report.problems


def test_duplicate_key_names_both_lines(tmp_path):
    folder = write_synthetic(tmp_path / "g")
    path = folder / "gemm_bf16.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines + [lines[2]]) + "\n")
    report = bdf.check_table(path, bdf.GEMM)
    n = len(lines) + 1
    assert report.problems == [f"{path}:{n}: duplicate key (32, 4096, 4096) (first at line 3)"]


def test_latency_in_milliseconds_caught_by_unit_check(tmp_path):
    folder = tmp_path / "g"
    write_provenance(folder)
    rows = [(m, 4096, 4096, gemm_latency_us(m, 4096, 4096)) for m in GEMM_MS]
    path = write_gemm(folder, rows)
    text = path.read_text().splitlines()
    m, k, n, lat, mfu = text[5].split(",")
    text[5] = ",".join([m, k, n, f"{float(lat) / 1000:.6g}", mfu])  # latency written in ms, MFU kept
    path.write_text("\n".join(text) + "\n")
    report = bdf.check_table(path, bdf.GEMM)
    assert report.problems and all(p.startswith(f"{path}:6: ") for p in report.problems)
    assert any("TFLOP/s exceeds the bf16 peak" in p for p in report.problems)
    # an MFU column 30 % off the latency (e.g. another peak): the unit check catches it
    _replace_line(path, 6, ",".join([m, k, n, lat, f"{0.7 * float(mfu):.6g}"]))
    report = bdf.check_table(path, bdf.GEMM)
    assert len(report.problems) == 1 and report.problems[0].startswith(f"{path}:6: mfu ")
    assert "disagrees with FLOPs/(latency x peak)" in report.problems[0]


def test_decode_faster_than_bandwidth_refused(tmp_path):
    folder = tmp_path / "g"
    write_provenance(folder)
    rows = [(b, L, decode_latency_us(b, L, 8, 128)) for b in (1, 64) for L in (1024, 65536)]
    rows[-1] = (64, 65536, rows[-1][2] / 3)  # three times the HBM bandwidth
    path = write_decode(folder, (32, 8, 128), rows)
    report = bdf.check_table(path, bdf.DECODE)
    assert len(report.problems) == 1
    assert report.problems[0].startswith(f"{path}:5: moves at least")


def test_gemm_mfu_falling_with_m(tmp_path):
    folder = tmp_path / "g"
    write_provenance(folder)
    rows = [(m, 4096, 4096, gemm_latency_us(m, 4096, 4096)) for m in GEMM_MS]
    rows[-1] = (8192, 4096, 4096, rows[-2][3] * 4 / 0.85)  # MFU 15 % below m=2048: warning only
    report = bdf.check_table(write_gemm(folder, rows), bdf.GEMM)
    assert report.ok and len(report.warnings) == 1 and "15% below" in report.warnings[0]
    rows[-1] = (8192, 4096, 4096, rows[-2][3] * 4 / 0.6)  # 40 % below: real tables do this; still a warning
    report = bdf.check_table(write_gemm(folder, rows), bdf.GEMM)
    assert report.ok and "40% below" in report.warnings[0]


def test_header_and_name_errors(tmp_path):
    folder = write_synthetic(tmp_path / "g")
    path = folder / "attention_prefill" / "32-8-128.csv"
    _replace_line(path, 1, "dtype,seq_len,latency_us,mfu")
    report = bdf.check_table(path, bdf.PREFILL)
    assert report.problems[0].startswith(f"{path}:1: header must be dtype,batch_size,seq_len")
    bad = folder / "attention_decode" / "32-7-128.csv"  # 32 heads do not group over 7 KV heads
    bad.write_text((folder / "attention_decode" / "32-8-128.csv").read_text())
    assert not bdf.check_bench_dir(folder).ok


def test_missing_peak_for_dtype_and_missing_provenance(tmp_path):
    folder = tmp_path / "g"
    write_provenance(folder, peak_tflops={"bf16": 1000.0})
    path = write_gemm(folder, [(m, 4096, 4096, gemm_latency_us(m, 4096, 4096, 1.0, 2000.0)) for m in GEMM_MS],
                      dtype="fp8")
    report = bdf.check_table(path, bdf.GEMM)
    assert report.problems == [f"{path}:2: provenance peak_tflops has no entry for dtype fp8"]
    (folder / "provenance.json").unlink()
    report = bdf.check_table(path, bdf.GEMM)
    assert report.ok and "unit and bandwidth checks skipped" in report.warnings[0]
    assert not bdf.check_bench_dir(folder).ok


def test_provenance_schema(tmp_path):
    folder = tmp_path / "g"
    write_provenance(folder, color="blue")
    with pytest.raises(BlisInputError, match="color"):
        bdf.read_provenance(folder / "provenance.json")
    write_provenance(folder, peak_tflops={"bf16": -1.0})
    with pytest.raises(BlisInputError, match="peak_tflops.bf16"):
        bdf.read_provenance(folder / "provenance.json")
    data = json.loads((folder / "provenance.json").read_text())
    del data["date"]
    (folder / "provenance.json").write_text(json.dumps(data))
    with pytest.raises(BlisInputError, match="date"):
        bdf.read_provenance(folder / "provenance.json")


def test_cli_check_exit_codes(tmp_path, capsys):
    from blis.cli import main

    folder = write_synthetic(tmp_path / "g")
    assert main(["bench-data", "check", str(folder), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] and len(out["tables"]) == 3
    _replace_line(folder / "gemm_bf16.csv", 2, "8,4096,4096,-1,0.5")
    assert main(["bench-data", "check", str(folder)]) == 1
    assert f"{folder / 'gemm_bf16.csv'}:2: latency_us -1 must be > 0" in capsys.readouterr().err
    assert main(["bench-data", "check", str(tmp_path / "nothing")]) == 1


def test_warm_up_outlier_is_a_warning(tmp_path):
    folder = tmp_path / "g"
    write_provenance(folder)
    rows = [(1, L, decode_latency_us(1, L, 8, 128)) for L in (1024, 4096, 16384)]
    rows[0] = (1, 1024, 2 * rows[1][2])  # first call twice as slow as a 4x larger one
    path = write_decode(folder, (32, 8, 128), rows)
    report = bdf.check_table(path, bdf.DECODE)
    assert report.ok
    assert len(report.warnings) == 1 and report.warnings[0].startswith(f"{path}:2: ")
    assert "warm-up or timing noise" in report.warnings[0]
