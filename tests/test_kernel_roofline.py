"""Kernel roofline calculator: hand arithmetic for GEMV/GEMM/attention, efficiency factors, the CLI."""

from __future__ import annotations

import json

import pytest

from blis.cli import main
from blis.errors import BlisInputError
from blis.physics.kernel_roofline import attention_pairs, predict_attention, predict_gemm, predict_gemv


def test_gb10_gemv_fp16_by_hand():
    r = predict_gemv(4096, 4096, "fp16", hardware="GB10")
    # 4096 x 4096 weights x 2 bytes = 33.55 MB, plus two 8 KB vectors
    assert r.bytes == pytest.approx(33.6e6, abs=0.05e6)
    assert r.memory_time_us == pytest.approx(33.57e6 / 287e9 * 1e6, rel=1e-3)  # ~117 us
    assert 116 < r.predicted_time_us < 118
    assert r.bottleneck == "memory"
    assert r.flops == 2 * 4096 * 4096
    assert r.arithmetic_intensity == pytest.approx(1.0, abs=0.01)  # 2 FLOPs per 2-byte weight


def test_gb10_gemv_fp8_half_nvfp4_quarter():
    fp16 = predict_gemv(4096, 4096, "fp16", hardware="GB10").predicted_time_us
    fp8 = predict_gemv(4096, 4096, "fp8", hardware="GB10").predicted_time_us
    nvfp4 = predict_gemv(4096, 4096, "nvfp4", hardware="GB10").predicted_time_us
    assert fp8 / fp16 == pytest.approx(0.5, abs=0.01)
    # 4.53 bits instead of 16: 0.283 of the FP16 time ("about a quarter", block scales included)
    assert nvfp4 / fp16 == pytest.approx(4.53125 / 16, abs=0.005)


def test_gemm_by_hand_on_h100():
    r = predict_gemm(4096, 4096, 4096, "bf16", hardware="H100")
    assert r.flops == 2 * 4096**3
    assert r.bytes == 3 * 4096 * 4096 * 2
    assert r.compute_time_us == pytest.approx(2 * 4096**3 / 989.5e12 * 1e6)
    assert r.bottleneck == "compute" and r.predicted_time_us == r.compute_time_us
    assert r.critical_intensity == pytest.approx(989.5 / 3.35)
    small = predict_gemm(8, 4096, 4096, "bf16", hardware="H100")
    assert small.bottleneck == "memory"
    assert small.arithmetic_intensity < small.critical_intensity


def test_low_precision_output_is_16_bit():
    r = predict_gemm(16, 1024, 1024, "fp8", hardware="H100")
    assert r.bytes == (16 * 1024 + 1024 * 1024) * 1 + 16 * 1024 * 2


def test_efficiency_scales_and_is_bounded():
    ideal = predict_gemm(1024, 1024, 1024, "bf16", hardware="H100")
    half = predict_gemm(1024, 1024, 1024, "bf16", hardware="H100", efficiency=0.5)
    assert half.predicted_time_us == pytest.approx(2 * ideal.predicted_time_us)
    assert half.efficiency == 0.5
    with pytest.raises(BlisInputError, match="a fraction of peak cannot exceed 1"):
        predict_gemm(1024, 1024, 1024, "bf16", hardware="H100", efficiency=1.2)
    for bad in (0.0, -0.3, float("nan")):
        with pytest.raises(BlisInputError, match=r"efficiency: must be in \(0, 1\]"):
            predict_gemv(64, 64, efficiency=bad)


def test_efficiency_table_per_kernel_and_precision():
    table = {"gemm": {"bf16": 0.8, "fp8": 0.6}, "attention": {"bf16": 0.4}}
    ideal = predict_gemm(2048, 2048, 2048, "fp8", hardware="H100")
    r = predict_gemm(2048, 2048, 2048, "fp8", hardware="H100", efficiencies=table)
    assert r.efficiency == 0.6 and r.predicted_time_us == pytest.approx(ideal.predicted_time_us / 0.6)
    assert predict_gemv(64, 64, "bf16", efficiencies=table).efficiency == 1.0  # no gemv entry
    with pytest.raises(BlisInputError, match="efficiencies.gemm.bf16: 1.5 > 1 refused"):
        predict_gemm(8, 8, 8, "bf16", efficiencies={"gemm": {"bf16": 1.5}})


def test_attention_pairs_by_hand():
    assert attention_pairs(4, 4, causal=True) == 10  # 1 + 2 + 3 + 4
    assert attention_pairs(4, 4, causal=False) == 16
    assert attention_pairs(2, 5, causal=True) == 4 + 5  # queries at positions 4 and 5
    assert attention_pairs(1, 1000, causal=True) == 1000  # decode sees the whole context


def test_attention_decode_is_memory_bound_by_kv():
    r = predict_attention(8, 32, 8, 1, 4096, 128, True, "bf16", hardware="H100")
    kv = 8 * 2 * 4096 * 8 * 128 * 2
    qo = 8 * 1 * 32 * 128 * 2 * 2
    assert r.bytes == kv + qo
    assert r.flops == 4 * 8 * 32 * 128 * 4096
    assert r.bottleneck == "memory"
    long = predict_attention(1, 32, 8, 8192, 8192, 128, True, "bf16", hardware="H100")
    assert long.bottleneck == "compute"
    with pytest.raises(BlisInputError, match="kv_len: must be >= q_len"):
        predict_attention(1, 32, 8, 10, 5, 128, True)
    with pytest.raises(BlisInputError, match="kv_heads"):
        predict_attention(1, 32, 5, 1, 5, 128, True)


def test_unsupported_precision_and_bad_shape():
    with pytest.raises(BlisInputError, match="nvfp4 is not supported on H100-SXM"):
        predict_gemv(4096, 4096, "nvfp4", hardware="H100")
    with pytest.raises(BlisInputError, match="M: must be an integer >= 1"):
        predict_gemm(0, 8, 8)


def test_cli_json_and_errors(capsys):
    assert main(["roofline", "gemv", "--n", "4096", "--k", "4096", "--hardware", "GB10", "--precision", "fp16",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert 116 < out["predicted_time_us"] < 118 and out["bottleneck"] == "memory"
    assert main(["roofline", "gemm", "-M", "16", "-N", "64", "-K", "64", "--efficiency", "1.5"]) == 2
    assert "cannot exceed 1" in capsys.readouterr().err
    assert main(["roofline", "attention", "--batch", "1", "--heads", "8", "--q-len", "1", "--kv-len", "64",
                 "--precision", "nvfp4"]) == 2
    assert "not supported on H100-SXM" in capsys.readouterr().err
    assert main(["roofline", "attention", "--batch", "2", "--heads", "8", "--kv-heads", "2", "--q-len", "16",
                 "--kv-len", "64"]) == 0
    out = capsys.readouterr().out  # the result goes to stdout (issue #19; it was on stderr)
    assert "attention" in out and "predicted" in out


def test_cli_efficiency_file(tmp_path, capsys):
    path = tmp_path / "eff.json"
    path.write_text(json.dumps({"gemm": {"bf16": 0.5}}))
    assert main(["roofline", "gemm", "-M", "4096", "-N", "4096", "-K", "4096", "--efficiency-file", str(path),
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["efficiency"] == 0.5


def test_warm_cache_reads_an_l2_sized_working_set_at_l2_speed():
    from blis.physics.l2cache import l2_figures

    l2 = l2_figures("H100")
    small_cold = predict_gemv(4096, 4096, "bf16", hardware="H100")  # 33.6 MB: fits the 50 MB L2
    small_warm = predict_gemv(4096, 4096, "bf16", hardware="H100", cache="warm")
    assert small_warm.memory_time_us == pytest.approx(small_cold.bytes / l2.bandwidth_Bps * 1e6)
    assert small_warm.memory_time_us < small_cold.memory_time_us
    big = dict(N=16384, K=8192, precision="bf16", hardware="H100")  # 268 MB: DRAM either way
    assert predict_gemv(**big, cache="warm").predicted_time_us == predict_gemv(**big).predicted_time_us
    with pytest.raises(BlisInputError, match="cache"):
        predict_gemv(4096, 4096, "bf16", hardware="H100", cache="hot")
