"""Hardware registry: datasheet figures, aliases, precision support, user files."""

from __future__ import annotations

import json

import pytest

from blis.errors import BlisInputError
from blis.physics.hardware import (
    BYTES_PER_ELEMENT,
    PRECISIONS,
    available_hardware,
    get_hardware,
    load_hardware_file,
)


def test_h100_dense_is_half_the_sparse_datasheet_figures(shared_data):
    sheet = json.loads((shared_data / "reference" / "h100-sxm.json").read_text())
    assert sheet["compute"]["with_sparsity"] is True
    h = get_hardware("H100")
    c = sheet["compute"]
    assert h.peak("bf16") == pytest.approx(c["bf16_tensor_core"] / 2 * 1e12)
    assert h.peak("fp16") == pytest.approx(c["fp16_tensor_core"] / 2 * 1e12)
    assert h.peak("fp8") == pytest.approx(c["fp8_tensor_core"] / 2 * 1e12)
    assert h.peak("int8") == pytest.approx(c["int8_tensor_core"] / 2 * 1e12)
    assert h.peak("tf32") == pytest.approx(c["tf32_tensor_core"] / 2 * 1e12)
    assert h.memory_bandwidth_Bps == pytest.approx(sheet["memory"]["bandwidth_tb_s"] * 1e12)
    assert h.interconnect_bandwidth_Bps == pytest.approx(sheet["interconnect"]["nvlink_bandwidth_gb_s"] / 2 * 1e9)
    # CUDA-visible memory is a little below the marketed 80 GB (= 80 GiB of HBM)
    assert 0.97 * 80 * 2**30 < h.memory_bytes < 80 * 2**30


def test_registry_and_aliases():
    assert set(available_hardware()) == {"H100-SXM", "H200", "A100-80GB", "L40S", "B200", "GB10"}
    assert get_hardware("h100") is get_hardware("H100-SXM")
    assert get_hardware("dgx-spark") is get_hardware("GB10")
    with pytest.raises(BlisInputError, match="unknown 'TPU-v5'"):
        get_hardware("TPU-v5")


def test_every_entry_is_physical():
    for name in available_hardware():
        h = get_hardware(name)
        assert h.memory_bytes > 1e10 and h.memory_bandwidth_Bps > 1e11 and h.interconnect_bandwidth_Bps > 1e9
        assert set(h.peak_flops) <= set(PRECISIONS)
        assert h.peak("bf16") > 0 and h.source


def test_gb10_issue_figures():
    g = get_hardware("GB10")
    assert g.memory_bandwidth_Bps == pytest.approx(287e9)
    assert g.peak("bf16") == pytest.approx(62e12)


def test_precision_support_follows_the_generation():
    h100, b200, a100 = get_hardware("H100"), get_hardware("B200"), get_hardware("A100")
    for prec in ("nvfp4", "mxfp4", "mxfp8", "int4"):
        with pytest.raises(BlisInputError, match=f"{prec} is not supported on H100-SXM"):
            h100.peak(prec)
    with pytest.raises(BlisInputError, match="fp8 is not supported on A100-80GB"):
        a100.peak("fp8")
    assert b200.peak("nvfp4") == 2 * b200.peak("fp8") == 4 * b200.peak("bf16")
    assert a100.peak("int4") == 2 * a100.peak("int8")
    with pytest.raises(BlisInputError, match="unknown 'fp7'"):
        h100.peak("fp7")
    # nf4 is a storage format: its math runs in bf16
    assert h100.peak("nf4") == h100.peak("bf16")


def test_bytes_per_element_include_block_scales():
    assert BYTES_PER_ELEMENT["bf16"] == 2.0 and BYTES_PER_ELEMENT["fp8_e5m2"] == 1.0
    assert BYTES_PER_ELEMENT["mxfp4"] * 8 == pytest.approx(4.25)  # 4 bits + 8-bit scale / 32
    assert BYTES_PER_ELEMENT["nvfp4"] * 8 == pytest.approx(4.53, abs=0.005)  # + 8/16 + 32/1024 bits
    assert BYTES_PER_ELEMENT["nf4"] * 8 == pytest.approx(4.25)  # 4 bits + 16-bit scale / 64
    assert BYTES_PER_ELEMENT["mxfp8"] * 8 == pytest.approx(8.25)


def test_critical_intensity():
    h = get_hardware("H100")
    assert h.critical_intensity("bf16") == pytest.approx(989.5e12 / 3.35e12)


def test_user_file_adds_and_overrides(tmp_path):
    path = tmp_path / "hw.yaml"
    path.write_text(
        "hardware:\n"
        "  - name: MyGPU\n"
        "    base: H100\n"
        "    memory_bandwidth_tbps: 5.0\n"
        "    peak_tflops: {nvfp4: 3000}\n"
        "  - name: H200\n"
        "    memory_gib: 100\n"
    )
    extra = load_hardware_file(path)
    mine = get_hardware("mygpu", extra)
    assert mine.memory_bandwidth_Bps == 5e12
    assert mine.peak("nvfp4") == 3000e12 and mine.peak("bf16") == get_hardware("H100").peak("bf16")
    assert get_hardware("H200", extra).memory_bytes == 100 * 2**30
    assert get_hardware("H200").memory_bytes != 100 * 2**30  # the built-in table is untouched


def test_user_file_json_single_entry(tmp_path):
    path = tmp_path / "hw.json"
    path.write_text(json.dumps({"name": "Tiny", "memory_gb": 16, "memory_bandwidth_gbps": 500,
                                "interconnect_bandwidth_gbps": 16, "interconnect_latency_us": 8,
                                "peak_tflops": {"bf16": 100}}))
    tiny = load_hardware_file(path)["Tiny"]
    assert tiny.memory_bytes == 16e9 and tiny.peak("bf16") == 100e12
    with pytest.raises(BlisInputError, match="fp8 is not supported on Tiny"):
        tiny.peak("fp8")


@pytest.mark.parametrize("body,message", [
    ("- {name: X, base: H100, bogus: 1}", "unknown field"),
    ("- {base: H100}", "needs a 'name'"),
    ("- {name: X, memory_gb: 10}", "missing memory_bandwidth_Bps"),
    ("- {name: X, base: H100, memory_bandwidth_tbps: -1}", "memory_bandwidth_Bps must be"),
    ("- {name: X, base: H100, peak_tflops: {fp9: 1}}", "precision 'fp9' unknown"),
])
def test_user_file_errors(tmp_path, body, message):
    path = tmp_path / "hw.yaml"
    path.write_text(body)
    with pytest.raises(BlisInputError, match=message):
        load_hardware_file(path)
