"""`python -m blis kernels validate`: fitted efficiency and errors on a hand-made folder, colours, and a
run over the real imported H100 tables."""

from __future__ import annotations

import csv
import json

import pytest

from blis.cli import main as blis_main
from blis.commands import kernels as kcmd
from blis.physics.kernel_roofline import predict_gemm
from kernels_bench import provenance

# (m, k, n, measured / ideal): distinct (k, n) so the checker's per-pair MFU trend does not apply.
ROWS = [(4096, 4096, 4096, 1.5), (2048, 8192, 8192, 2.0), (1024, 4096, 14336, 4.0)]


@pytest.fixture()
def folder(tmp_path):
    sheet = provenance.datasheet("h100")
    device = {"device": "NVIDIA H100 80GB HBM3", "detail": "test"}
    provenance.save(tmp_path, provenance.new_provenance("h100", sheet, device, "test"))
    peak = sheet.peak_flops["bf16"]
    with (tmp_path / "gemm_bf16.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["m", "k", "n", "latency_us", "mfu"])
        for m, k, n, ratio in ROWS:
            lat = ratio * predict_gemm(m, n, k, "bf16", hardware="h100").predicted_time_us
            w.writerow([m, k, n, f"{lat:.6g}", f"{2.0 * m * k * n / (lat * 1e-6 * peak):.6g}"])
    return tmp_path


def test_fit_is_the_median_ratio_and_errors_follow(folder, capsys):
    rc = blis_main(["kernels", "validate", "--bench-data", str(folder), "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    s = out["summary"]["gemm bf16"]
    assert s["n"] == 3
    assert s["median_measured_over_ideal"] == pytest.approx(2.0, rel=1e-5)
    assert s["fitted_efficiency"] == pytest.approx(0.5, rel=1e-5)
    fitted = [r["fitted_error_pct"] for r in out["rows"]]
    ideal = [r["ideal_error_pct"] for r in out["rows"]]
    # fitted = 2 x ideal: against 1.5x, 2x, 4x measurements: +33.3 %, 0 %, -50 %.
    assert fitted == pytest.approx([100 / 3, 0.0, -50.0], abs=1e-3)
    assert ideal == pytest.approx([-100 / 3, -50.0, -75.0], abs=1e-3)
    # |errors| 0, 33.3, 50: median 33.3; p90 interpolates 80 % of the way from 33.3 to 50.
    assert s["fitted_median_abs_error_pct"] == pytest.approx(100 / 3, abs=1e-3)
    assert s["fitted_p90_abs_error_pct"] == pytest.approx(100 / 3 + 0.8 * 50 / 3, abs=1e-3)
    assert s["fitted_within_10pct"] == 1 and s["fitted_within_25pct"] == 1


def test_table_output_goes_to_stderr(folder, capsys):
    rc = blis_main(["kernels", "validate", "--bench-data", str(folder)])
    cap = capsys.readouterr()
    assert rc == 0 and cap.out == ""
    assert "gemm_bf16.csv" in cap.err and "m=2048 k=8192 n=8192" in cap.err
    assert "fitted as 1 / median(measured / ideal)" in cap.err


def test_colour_thresholds():
    assert kcmd.colour(9.99) == "green"
    assert kcmd.colour(-10.0) == "yellow"
    assert kcmd.colour(25.0) == "yellow"
    assert kcmd.colour(-25.01) == "red"


def test_percentile_by_hand():
    assert kcmd.percentile([5.0, 1.0, 3.0, 2.0, 4.0], 90) == pytest.approx(4.6)
    assert kcmd.percentile([7.0], 90) == 7.0


def test_missing_folder_is_one_line_exit_2(tmp_path, capsys):
    rc = blis_main(["kernels", "validate", "--bench-data", str(tmp_path / "none")])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "--bench-data" in err


def test_imported_h100_tables(shared_data, tmp_path, capsys):
    """Real H100 tables (imported from another project): every row is scored, and no kind runs faster
    than its roofline on the median (fitted efficiency within (0, 1])."""
    from blis.bench_data.importers import import_tables

    import_tables(shared_data / "kernels" / "h100-blis", "h100-blis", tmp_path)
    rc = blis_main(["kernels", "validate", "--bench-data", str(tmp_path / "h100"), "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    n_rows = 0
    for path in (tmp_path / "h100").rglob("*.csv"):
        with path.open() as fh:
            n_rows += sum(1 for _ in fh) - 1
    assert len(out["rows"]) == n_rows == out["summary"]["all"]["n"]
    groups = [g for g in out["summary"] if g != "all"]
    assert set(groups) == {"gemm fp8", "attention_prefill bf16", "attention_decode bf16/bf16"}
    for g in groups:
        assert 0 < out["summary"][g]["fitted_efficiency"] <= 1.0, g
