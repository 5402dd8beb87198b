"""Roofline v1's kernel terms against measured tables: hand-computable rows, and a fit that recovers the
efficiencies and floors the tables were made with."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from blis.bench_data import format as bdf
from blis.latency import kernel_validation as kv

PEAK, BW = 1000e12, 3e12
TRUE = {"mfu_prefill": 0.7, "mfu_decode": 0.6, "mfu_attention_prefill": 0.5, "bw_efficiency": 0.8,
        "bw_efficiency_attention": 0.9, "gemm_floor_us": 5.0, "attention_floor_us": 8.0}


def _bench(p: dict) -> bdf.BenchData:
    """Tables made exactly by v1's kernel formula with parameters ``p``."""
    prov = bdf.Provenance(gpu="testgpu", device="t", date="2025-01-01", peak_tflops={"bf16": 1000.0})
    gemm = []
    for k, n in ((4096, 4096), (4096, 14336)):
        for m in (1, 16, 256, 2048, 16384):
            mfu = p["mfu_prefill"] if m >= kv.PREFILL_M else p["mfu_decode"]
            t = max(2 * m * k * n / (PEAK * mfu), (k * n + m * (k + n)) * 2 / (BW * p["bw_efficiency"]))
            gemm.append((m, k, n, t * 1e6 + p["gemm_floor_us"], 0.5))
    h, kvh, d = 32, 8, 128
    kvb, qo = 2 * kvh * d * 2, 2 * h * d * 2
    pre = [("bf16", b, s, max(4 * h * d * b * s * (s + 1) / 2 / (PEAK * p["mfu_attention_prefill"]),
                             b * (s * kvb + s * (kvb + qo)) / (BW * p["bw_efficiency_attention"])) * 1e6
            + p["attention_floor_us"], 0.5) for b in (1, 4) for s in (128, 1024, 8192)]
    dec = [("bf16", "bf16", b, L, max(4 * h * d * b * L / (PEAK * p["mfu_decode"]),
                                      (b * L * kvb + b * (kvb + qo)) / (BW * p["bw_efficiency_attention"])) * 1e6
            + p["attention_floor_us"], 0.5) for b in (1, 32) for L in (512, 8192)]
    return bdf.BenchData(Path("t"), prov, {"bf16": gemm}, {(h, kvh, d): pre}, {(h, kvh, d): dec})


def test_exact_parameters_score_zero_error():
    fams = kv.families(_bench(TRUE))
    assert [f.name for f in fams] == ["gemm", "attention_prefill", "attention_decode"]
    for row in kv.score(fams, TRUE, PEAK, BW):
        assert row["median_pct"] == pytest.approx(0.0, abs=1e-9)
    half = dict(TRUE, gemm_floor_us=0.0)  # dropping the floor of a 5 us-floored kernel: known signed error
    g = kv.families(_bench(TRUE))[0]
    err = kv.v1_times(g, half, PEAK, BW) / g.measured - 1
    assert np.allclose(err, -5.0 / g.measured)


def test_fit_recovers_the_parameters_the_tables_were_made_with():
    fams = kv.families(_bench(TRUE))
    start = dict(TRUE, mfu_prefill=0.3, mfu_decode=0.9, bw_efficiency=0.5, attention_floor_us=20.0)
    fitted = kv.fit_kernel_params(fams, start, PEAK, BW)
    for row in kv.score(fams, fitted, PEAK, BW):
        assert row["median_pct"] < 1.0
    assert fitted["bw_efficiency"] == pytest.approx(0.8, rel=0.05)
    assert fitted["mfu_prefill"] == pytest.approx(0.7, rel=0.05)


def test_shipped_h100_params_include_the_floors():
    from blis.physics.hardware import get_hardware

    p = kv.shipped_kernel_params(get_hardware("H100"))
    assert set(p) == set(kv.FITTED) and p["gemm_floor_us"] > 0 and 0 < p["mfu_decode"] <= 1
