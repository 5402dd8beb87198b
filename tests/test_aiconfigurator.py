"""aiconfigurator tables: read in place with their units (ms, elements) converted and checked; the real
package where installed (required under CI=true)."""

from __future__ import annotations

import math
import os
import sys
import warnings

import pytest

pytest.importorskip("pyarrow")  # writes the parquet files; comes with the aic extra

from aic_layout import decode_ms, gemm_ms, prefill_ms, write_system  # noqa: E402

from blis.bench_data import aiconfigurator as aic  # noqa: E402
from blis.bench_data import format as bdf  # noqa: E402
from blis.bench_data.lookup import MfuDatabase  # noqa: E402
from blis.errors import BlisInputError  # noqa: E402


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "systems" / "data"
    write_system(r, version="0.9.0")
    write_system(r, version="0.10.0", shapes=((32, 8, 128), (8, 8, 128)))
    aic._CACHE.clear()
    return r


def test_resolve_picks_newest_vllm_version_numerically(root):
    ref = aic.resolve("aiconfigurator", "H100", root)
    assert (ref.system, ref.backend, ref.version) == ("h100_sxm", "vllm", "0.10.0")
    assert aic.resolve("aiconfigurator:h100_sxm/vllm/0.9.0", "H100", root).version == "0.9.0"
    with pytest.raises(BlisInputError, match="versions: 0.9.0, 0.10.0"):
        aic.resolve("aiconfigurator:h100_sxm/vllm/0.8.0", "H100", root)
    with pytest.raises(BlisInputError, match="no aiconfigurator system for hardware"):
        aic.resolve("aiconfigurator", "A100", root)
    with pytest.raises(BlisInputError, match="must be 'aiconfigurator'"):
        aic.resolve("aiconfigurator:h100_sxm/vllm", "H100", root)


def test_units_are_converted(root):
    t = aic.load("aiconfigurator", "H100", root)
    assert t.report.ok
    rows = {(m, k, n): lat for m, k, n, lat, _ in t.bench.gemm["bf16"]}
    assert rows[(512, 4096, 4096)] == pytest.approx(gemm_ms(512, 4096, 4096) * 1000)  # ms -> us
    dec = {(b, L): lat for _, _, b, L, lat, _ in t.bench.decode[(32, 8, 128)]}
    assert dec[(8, 1024)] == pytest.approx(decode_ms(8, 1024, 8, 128) * 1000)  # kv_len = isl + step
    pre = {(b, s): lat for _, b, s, lat, _ in t.bench.prefill[(32, 8, 128)]}
    assert pre[(4, 1024)] == pytest.approx(prefill_ms(4, 1024, 32, 128) * 1000)
    ar = {(g, nbytes): lat for _, g, nbytes, lat in t.allreduce}
    assert ar[(2, 2 * 65536)] == pytest.approx((5e-6 + 2 * 65536 / 200e9) * 1e6)  # elements -> bf16 bytes


def test_written_folder_passes_our_check_and_looks_up_the_same(root, tmp_path):
    t = aic.load("aiconfigurator", "H100", root)
    folder = aic.write_folder(t, tmp_path / "out")
    assert bdf.check_bench_dir(folder).ok
    a = MfuDatabase.load(folder)
    b = MfuDatabase.from_bench(t.bench, allreduce_rows=t.allreduce)
    for m in (1, 3, 100, 4096, 9000):
        assert a.gemm["bf16"].lookup(m, 4096, 4096).latency_us == pytest.approx(
            b.gemm["bf16"].lookup(m, 4096, 4096).latency_us, rel=1e-5)
    assert a.allreduce.curve_for(2, True)(1e6)[0] == pytest.approx(b.allreduce.curve_for(2, True)(1e6)[0], rel=1e-5)


def _gemm_rows(lat_ms_at_1: float):
    common = {"framework": "VLLM", "version": "0.10.0", "device": "x", "op_name": "gemm", "kernel_source": "t",
              "gemm_dtype": "bfloat16", "n": 4096, "k": 4096}
    return [{**common, "m": 1, "latency": lat_ms_at_1}, {**common, "m": 64, "latency": gemm_ms(64, 4096, 4096)}]


def test_l2_resident_kernel_is_a_warning_beyond_l2_a_problem(tmp_path):
    r = tmp_path / "data"
    nbytes = 2 * (4096 * 4096 + 2 * 4096)  # 33.6 MB: fits the H100's 50 MB L2
    write_system(r, gemm_rows=_gemm_rows(nbytes / 5e12 * 1e3))  # 5 TB/s: above DRAM, below the L2 bound
    t = aic.read(aic.resolve("aiconfigurator", "H100", r), "h100-sxm")
    assert t.report.ok and any("L2-resident" in w for w in t.report.warnings)
    write_system(r, gemm_rows=_gemm_rows(nbytes / 20e12 * 1e3))  # 20 TB/s: above any L2
    t = aic.read(aic.resolve("aiconfigurator", "H100", r), "h100-sxm")
    assert not t.report.ok and "L2 bound" in t.report.problems[0]


@pytest.mark.parametrize("bad", [float("nan"), -0.01, 0.0])
def test_impossible_latency_is_refused(tmp_path, bad):
    r = tmp_path / "data"
    write_system(r, gemm_rows=_gemm_rows(bad))
    aic._CACHE.clear()
    with pytest.raises(BlisInputError, match="must be finite and > 0"):
        aic.load("aiconfigurator", "H100", r)


def test_layout_change_is_named(tmp_path):
    r = tmp_path / "data"
    rows = [{k: v for k, v in row.items() if k != "m"} for row in _gemm_rows(0.02)]
    write_system(r, gemm_rows=rows)
    with pytest.raises(BlisInputError, match="columns m missing"):
        aic.read(aic.resolve("aiconfigurator", "H100", r), "h100-sxm")


def test_missing_package_is_a_one_line_error(monkeypatch):
    monkeypatch.setattr(aic.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(BlisInputError, match=r"pip install 'blis\[aic\]'"):
        aic.data_root()


# ---- the real package --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real():
    if not aic.installed():
        if os.environ.get("CI", "").lower() == "true" and sys.version_info >= (3, 11):
            pytest.fail("aiconfigurator-core is not installed under CI=true (.ci/run installs the aic extra)")
        pytest.skip("aiconfigurator-core not installed (pip install 'blis[aic]')")
    return aic.load("aiconfigurator", "H100")


def test_real_h100_tables_pass_the_check(real):
    assert real.report.ok, real.report.problems[:3]
    assert real.ref.system == "h100_sxm" and real.ref.backend == "vllm"
    assert {"bf16", "fp8"} <= set(real.bench.gemm)
    assert (32, 8, 128) in real.bench.decode and (32, 32, 128) in real.bench.prefill
    assert {g for _, g, _, _ in real.allreduce} >= {2, 4, 8}
    # physical ranges: a 4096x4096 bf16 GEMM at m=1 reads 32 MB in 5..50 us; 8k^3 runs at 30..100 % of peak
    db = MfuDatabase.from_bench(real.bench)
    lat = db.gemm["bf16"].lookup(1, 4096, 4096).latency_us
    assert 5 < lat < 50
    lat = db.gemm["bf16"].lookup(8192, 8192, 8192).latency_us
    assert 0.3 < 2 * 8192**3 / (lat * 1e-6) / 989.5e12 <= 1.0


def test_real_tables_drive_roofline_v2(real):
    from blis.config import SimConfig
    from blis.latency.base import StepBatch, create_latency_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = create_latency_model("roofline-v2", SimConfig(model="llama-2-70b", hardware="H100", tp=4,
                                                          bench_data_path="aiconfigurator"))
    assert m.measured_families == ["GEMMs", "prefill attention", "decode attention", "all-reduce"]
    t = m.step_time_us(StepBatch(num_decode_tokens=32, sum_decode_context=32 * 1000, num_sampled=32))
    assert 5_000 < t < 60_000 and math.isfinite(t)
    cov = m.describe()["lookup_coverage"]
    assert cov["lookups"] >= 7 and cov["v1_fallback"] == 0


# ---- commands and selection over tables in the aiconfigurator layout -----------------------------------


def test_import_check_and_loo_commands(root, tmp_path, monkeypatch, capsys):
    from blis.cli import main

    monkeypatch.setattr(aic, "data_root", lambda: root)
    assert main(["bench-data", "check", "aiconfigurator"]) == 0
    out = tmp_path / "imported"
    assert main(["bench-data", "import", "--from", "aiconfigurator:h100_sxm/vllm/0.9.0", "--out", str(out)]) == 0
    folder = out / "h100-sxm"
    prov = bdf.read_provenance(folder / bdf.PROVENANCE_FILE)
    assert prov.source.startswith("aiconfigurator:h100_sxm/vllm/0.9.0") and prov.gpu == "h100-sxm"
    assert (folder / "comm" / "allreduce_bf16.csv").is_file() and bdf.check_bench_dir(folder).ok
    assert main(["bench-data", "loo", "aiconfigurator", "--json"]) == 0
    assert '"gemm"' in capsys.readouterr().out
    assert main(["bench-data", "import", "--from", "aiconfigurator", "--layout", "infersim", "--out", str(out)]) == 2
    assert "layout: does not apply" in capsys.readouterr().err


def test_selection_uses_aiconfigurator_only_when_asked(root, monkeypatch):
    from blis.config import SimConfig
    from blis.latency.selection import choose_latency_model

    monkeypatch.setattr(aic, "data_root", lambda: root)
    name, reason = choose_latency_model(SimConfig(model="llama-2-7b", hardware="H100",
                                                  bench_data_path="aiconfigurator"))
    assert name == "roofline-v2" and "aiconfigurator:h100_sxm/vllm/0.10.0" in reason
    assert choose_latency_model(SimConfig(model="llama-2-7b", hardware="H100"))[0] == "roofline"
    with pytest.raises(BlisInputError, match="no aiconfigurator system for hardware"):
        choose_latency_model(SimConfig(model="llama-2-7b", hardware="A100", bench_data_path="aiconfigurator"))


def test_measured_allreduce_replaces_v1s(root, monkeypatch):
    """Under TP the all-reduce comes from the table: 2 per layer x the measured latency of tokens x hidden
    x 2 bytes (CUDA-graph rows), and v1's fixed all-reduce latency is not added."""
    from blis.config import SimConfig
    from blis.latency.base import create_latency_model

    monkeypatch.setattr(aic, "data_root", lambda: root)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = create_latency_model("roofline-v2", SimConfig(model="llama-2-70b", hardware="H100", tp=4,
                                                          bench_data_path="aiconfigurator"))
    assert "all-reduce" in m.measured_families
    elements = 8 * 8192  # 8 tokens x hidden: a grid point of the table (65536 elements)
    expected = 2 * 80 * (5e-6 + 2 * elements / 200e9) * 1e6
    assert m.allreduce_us(8) == pytest.approx(expected, rel=1e-9)
    assert m.describe()["lookup_coverage"]["exact"] == 1


def test_validate_and_replay_take_bench_data_path(shared_data, tmp_path, capsys):
    from blis.cli import main

    run = shared_data / "traces" / "h100-vllm-v1" / "20260217-155451-llama-2-7b-tp1-codegen"
    missing = str(tmp_path / "nowhere")
    assert main(["replay", "--trace", str(run), "--bench-data-path", missing]) == 2
    assert "bench_data_path" in capsys.readouterr().err
    assert main(["validate", "--traces", str(run), "--bench-data-path", "aiconfigurator:nosuch/vllm/1"]) == 2
    assert "bench_data_path" in capsys.readouterr().err
