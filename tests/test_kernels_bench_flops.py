"""kernels_bench FLOP and byte counts against hand-computed values, and the derived rates."""

from __future__ import annotations

import math

import pytest

from kernels_bench import flops as fl


def test_gemm_counts_by_hand():
    # [2, 3] @ [3, 4]: 2*3*4 multiply-adds = 48 FLOPs; A 6 + B 12 elements at 2 bytes, C 8 at 2 bytes.
    assert fl.gemm_flops(2, 3, 4) == 48.0
    assert fl.gemm_bytes(2, 3, 4, 2.0, 2.0) == 52.0
    # fp8 operands (1 byte), bf16 output: 18 + 16 bytes.
    assert fl.gemm_bytes(2, 3, 4, 1.0, 2.0) == 34.0


def test_prefill_flops_causal_is_half_of_the_square():
    # One sequence of 4 tokens, 2 heads, head_dim 8: QK^T 2*4*4*8 = 256 per head, PV the same -> 512 per
    # head, 1024 for two heads; causal keeps half: 512.
    assert fl.prefill_attention_flops([4], num_heads=2, head_dim=8, causal=False) == 1024.0
    assert fl.prefill_attention_flops([4], num_heads=2, head_dim=8, causal=True) == 512.0
    # A ragged batch adds per sequence: 4*(16 + 4)*8*2 = 1280 full, 640 causal.
    assert fl.prefill_attention_flops([4, 2], num_heads=2, head_dim=8, causal=True) == 640.0


def test_prefill_bytes_read_qkv_write_o_once():
    # 6 tokens, head_dim 8, bf16: Q and O at 2 heads, K and V at 1 KV head -> 6*8*2*(2+2+1+1) = 576.
    assert fl.prefill_attention_bytes([4, 2], num_heads=2, num_kv_heads=1, head_dim=8, elem_bytes=2.0) == 576.0


def test_decode_counts_by_hand():
    # batch 3, 4 query heads, 10 cached tokens, head_dim 8: 4*3*4*10*8 = 3840 FLOPs.
    assert fl.decode_attention_flops(3, 4, 10, 8) == 3840.0
    # fp8 K and V at 2 KV heads: 2*3*10*2*8*1 = 960 bytes; bf16 query in + output out: 2*3*4*8*2 = 384.
    assert fl.decode_attention_bytes(3, 4, 2, 10, 8, q_bytes=2.0, kv_bytes=1.0) == 1344.0


def test_mfu_and_bandwidth():
    # 2e9 FLOPs in 10 us is 2e14 FLOP/s; against a 989.5 TFLOP/s peak that is 0.20212...
    assert fl.mfu(2e9, 10.0, 989.5e12) == pytest.approx(2e14 / 989.5e12, rel=1e-12)
    assert fl.mfu(1e12, 1000.0, 1e15) == pytest.approx(1.0)
    # 3 MB in 1 us is 3 TB/s.
    assert fl.achieved_bandwidth(3e6, 1.0) == pytest.approx(3e12)


@pytest.mark.parametrize("latency", [0.0, -1.0])
def test_non_positive_latency_is_refused(latency):
    with pytest.raises(ValueError, match="latency_us"):
        fl.mfu(1e9, latency, 1e15)
    with pytest.raises(ValueError, match="latency_us"):
        fl.achieved_bandwidth(1e9, latency)


def test_counts_agree_with_the_bench_data_format():
    """The checker's FLOP conventions (written separately) give the same numbers as ours."""
    bdf = pytest.importorskip("blis.bench_data.format")
    for b, s, h, d in [(1, 128, 32, 128), (4, 4096, 8, 64), (2, 32768, 64, 128)]:
        assert fl.prefill_attention_flops([s] * b, h, d, causal=True) == pytest.approx(bdf.flops_prefill(b, s, h, d))
    for b, L, h, kvh, d in [(1, 128, 32, 8, 128), (512, 131072, 8, 1, 128)]:
        assert fl.decode_attention_flops(b, h, L, d) == pytest.approx(bdf.flops_decode(b, L, h, d))
        ours = fl.decode_attention_bytes(b, h, kvh, L, d, 2.0, 2.0)
        assert ours == pytest.approx(bdf.bytes_decode(b, L, h, kvh, d, "bf16", "bf16"))
    assert fl.gemm_flops(7, 4096, 12288) == bdf.flops_gemm(7, 4096, 12288)
    assert math.isclose(fl.gemm_bytes(7, 64, 32, 2.0, 2.0), bdf.bytes_gemm(7, 64, 32, "bf16"))
