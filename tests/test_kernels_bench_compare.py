"""compare-attention without a GPU: a rate above the peak is INVALID (not printed as a result), errors
above 1e-2 or NaN are FAIL, and the shapes it picks."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest

from kernels_bench import compare_attention as ca


def test_rate_above_peak_is_invalid():
    # 1e12 FLOPs in 1 us is 1e18 FLOP/s: a thousand times a 1e15 peak.
    status, tflops, frac, note = ca.classify(1e12, 1.0, 1e15, rel_error=1e-3)
    assert status == "INVALID" and frac == pytest.approx(1000.0)
    assert "exceeds the peak" in note


def test_error_above_tolerance_or_nan_fails():
    # 1e9 FLOPs in 10 us: 1e14 FLOP/s, 10 % of the peak.
    assert ca.classify(1e9, 10.0, 1e15, 1e-3)[0] == "OK"
    assert ca.classify(1e9, 10.0, 1e15, 1e-3)[2] == pytest.approx(0.1)
    assert ca.classify(1e9, 10.0, 1e15, 0.02)[0] == "FAIL"
    assert ca.classify(1e9, 10.0, 1e15, math.nan)[0] == "FAIL"


def test_issue_shapes_and_model_shapes():
    shapes = ca.default_shapes([128, 64], batch=16, heads=96, seq_len=4096)
    assert [(s.batch, s.heads, s.kv_heads, s.seq_len, s.head_dim) for s in shapes] == [
        (16, 96, 96, 4096, 128), (16, 96, 96, 4096, 64)]

    @dataclass
    class Spec:
        num_heads: int
        num_kv_heads: int
        head_dim: int

    models = [("a", Spec(32, 8, 128)), ("b", Spec(32, 8, 128)), ("c", Spec(64, 8, 128)), ("d", Spec(40, 40, 128))]
    picked = ca.model_shapes(models, batch=4, seq_len=4096, limit=2)
    assert [(s.heads, s.kv_heads, s.source) for s in picked] == [(32, 8, "a"), (64, 8, "c")]


def test_math_backend_memory_by_hand():
    # Scores and probabilities in fp32: 2 x 16 x 96 x 4096^2 x 4 bytes = 206 GB: skipped on any GPU today.
    shape = ca.CompareShape(16, 96, 96, 4096, 128)
    assert ca.math_backend_bytes(shape) == 2 * 16 * 96 * 4096 * 4096 * 4


def test_json_rows_have_no_nan():
    rows = [ca.CompareRow("s", "k", True, "FAIL", 1.0, 2.0, 0.1, math.nan, "nan")]
    assert ca.rows_as_dicts(rows)[0]["rel_error"] is None
