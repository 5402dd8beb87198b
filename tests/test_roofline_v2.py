"""roofline-v2: measured kernel latencies enter the step time as documented; coverage is counted."""

from __future__ import annotations

import warnings

import pytest
from test_bench_data_helpers import (
    LLAMA7B_PAIRS,
    decode_latency_us,
    gemm_latency_us,
    write_synthetic,
)

from blis.config import SimConfig
from blis.errors import BlisInputError
from blis.latency.base import StepBatch, create_latency_model
from blis.latency.roofline_v2 import BenchDataWarning

LAYERS = 32  # Llama-2-7B


def _model(folder, **kw):
    cfg = SimConfig(model="llama-2-7b", hardware="H100", bench_data_path=str(folder), **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BenchDataWarning)
        return create_latency_model("roofline-v2", cfg)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """Tables with Llama-2-7B's exact shapes, at 1x, 2x and 3x the latencies."""
    root = tmp_path_factory.mktemp("v2")
    return {s: write_synthetic(root / f"x{s}" / "h100", shapes=((32, 32, 128),), pairs=LLAMA7B_PAIRS,
                               gpu="h100", scale=s) for s in (1, 2, 3)}


def _decode_batch(d: int, kv_len: int) -> StepBatch:
    """d decoding requests whose attention reads kv_len keys each (context kv_len - 1 plus the new token)."""
    return StepBatch(num_decode_tokens=d, sum_decode_context=d * (kv_len - 1), num_sampled=d)


def test_measured_latencies_enter_linearly(folders):
    """At grid points (m = 8 tokens, decode batch 8 x 1024 keys) the kernel part of the step is exactly the
    tables' latencies summed over layers; everything else (v1's terms) does not depend on the tables."""
    batch = _decode_batch(8, 1024)
    t = {s: _model(f).step_time_float_us(batch) for s, f in folders.items()}
    kernels = LAYERS * sum(gemm_latency_us(8, k, n) for k, n in LLAMA7B_PAIRS[:4])
    kernels += gemm_latency_us(8, *LLAMA7B_PAIRS[4])  # LM head, once per step for the 8 sampled tokens
    kernels += LAYERS * decode_latency_us(8, 1024, 32, 128)
    # the CSVs hold 6 significant digits
    assert t[2] - t[1] == pytest.approx(kernels, rel=1e-5)
    assert t[3] - t[2] == pytest.approx(kernels, rel=1e-5)
    assert t[1] - kernels > 0  # v1's overheads and element-wise kernels remain


def test_fp8_gemm_table_stands_in_for_bf16_at_equal_mfu(tmp_path, folders):
    fp8 = write_synthetic(tmp_path / "h100", shapes=((32, 32, 128),), pairs=LLAMA7B_PAIRS, gpu="h100",
                          gemm_dtype="fp8")
    with pytest.warns(BenchDataWarning, match="gemm_fp8.csv used at equal MFU"):
        create_latency_model("roofline-v2", SimConfig(model="llama-2-7b", hardware="H100",
                                                      bench_data_path=str(fp8)))
    batch = _decode_batch(8, 1024)
    gemm = LAYERS * sum(gemm_latency_us(8, k, n) for k, n in LLAMA7B_PAIRS[:4]) + gemm_latency_us(8, 4096, 32000)
    # same latencies labelled fp8 (peak 2000 vs 1000 TFLOP/s): the bf16 model's GEMMs take twice as long
    diff = _model(fp8).step_time_float_us(batch) - _model(folders[1]).step_time_float_us(batch)
    assert diff == pytest.approx(gemm, rel=1e-5)


def test_step_time_grows_with_work(folders):
    m = _model(folders[1])
    times = [m.step_time_us(_decode_batch(d, 1500)) for d in (1, 4, 16, 40, 64, 100)]
    assert times == sorted(times) and times[0] < times[-1]
    times = [m.step_time_us(_decode_batch(16, kv)) for kv in (100, 1000, 5000, 20000)]
    assert times == sorted(times) and times[0] < times[-1]
    times = [m.step_time_us(StepBatch(num_prefill_tokens=n, prefill_chunks=[(n, 0)], num_sampled=1))
             for n in (10, 300, 1024, 2048, 4096)]
    assert times == sorted(times) and times[0] < times[-1]


def test_lookup_coverage_counts(folders):
    m = _model(folders[1])
    for _ in range(3):
        m.step_time_us(_decode_batch(8, 1024))  # every lookup on a grid point
    for _ in range(2):
        m.step_time_us(_decode_batch(12, 2000))  # m=12 between 8 and 32; batch 12 between 8 and 64
    m.step_time_us(_decode_batch(4, 2000))  # m=4 below the smallest measured m (8): extrapolated GEMMs
    cov = m.describe()["lookup_coverage"]
    # per step: 4 layer GEMMs + LM head + decode attention = 6 lookups
    assert cov["lookups"] == 6 * 6
    assert cov["exact"] == 3 * 6
    assert cov["interpolated"] == 2 * 6 + 1  # the last step's attention: batch 4 lies between 1 and 8
    assert cov["extrapolated"] == 5
    assert cov["nearest_shape"] == 0


def test_missing_shapes_use_nearest_with_warning(tmp_path):
    folder = write_synthetic(tmp_path / "h100", shapes=((32, 8, 128),), gpu="h100")  # 7B is 32-32-128
    with pytest.warns(BenchDataWarning) as record:
        model = create_latency_model("roofline-v2", SimConfig(model="llama-2-7b", hardware="H100",
                                                              bench_data_path=str(folder)))
    text = " ".join(str(w.message) for w in record)
    assert "attention_decode 32-32-128 not measured: using 32-8-128" in text
    assert "GEMM gate_up (k=4096, n=22016) not measured" in text
    model.step_time_us(_decode_batch(8, 1024))
    cov = model.describe()["lookup_coverage"]
    # gate_up and the LM head have no measured (k, n); decode attention borrows 32-8-128
    assert cov["nearest_shape"] == 3
    assert any("32-8-128" in n for n in model.describe()["notes"])


def test_failing_table_is_an_error(tmp_path):
    folder = write_synthetic(tmp_path / "h100", shapes=((32, 32, 128),), pairs=LLAMA7B_PAIRS, gpu="h100")
    lines = (folder / "gemm_bf16.csv").read_text().splitlines()
    lines[3] = "32,4096,12288,0,0.5"
    (folder / "gemm_bf16.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(BlisInputError, match=r"gemm_bf16.csv:4: latency_us 0 must be > 0"):
        _model(folder)


def test_without_tables_v2_refuses(monkeypatch, tmp_path):
    from blis.latency import selection

    monkeypatch.setattr(selection, "package_bench_data_dir", lambda: tmp_path)
    with pytest.raises(ValueError, match="no measured kernel tables for H100"):
        create_latency_model("roofline-v2", SimConfig(model="llama-2-7b", hardware="H100"))


def test_simulation_summary_reports_model_reason_and_coverage(folders):
    import blis
    from blis.workload.request_table import RequestTable

    n = 40
    table = RequestTable(arrival_us=[i * 20_000 for i in range(n)], input_tokens=[300 + 7 * i for i in range(n)],
                         output_tokens=[20] * n)
    cfg = SimConfig(model="llama-2-7b", hardware="H100", bench_data_path=str(folders[1]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BenchDataWarning)
        result = blis.simulate(cfg, table)
    s = result.summary
    assert s["latency_model"] == "roofline-v2"
    assert "measured kernel tables" in s["latency_model_reason"]
    cov = s["lookup_coverage"]
    assert cov["lookups"] == cov["exact"] + cov["interpolated"] + cov["extrapolated"] > 0
    assert s["completed_requests"] > 0


def test_quantise_keeps_seven_significant_bits():
    from blis.latency.roofline_v2 import _quantise

    for x in (1, 127, 1024, 1536, 3072, 4096, 131072):
        assert _quantise(x) == x
    for x in range(128, 200_000, 97):
        assert abs(_quantise(x) - x) <= x / 128
