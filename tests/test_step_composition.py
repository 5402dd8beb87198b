"""One step composition: roofline v2 is roofline v1 wherever no table covers a kernel family, and drops the
per-layer overhead of the kernels it measures."""

from __future__ import annotations

import random
import warnings
from pathlib import Path

import pytest
from test_bench_data_helpers import write_synthetic

from blis.bench_data import format as bdf
from blis.bench_data.lookup import MfuDatabase
from blis.config import SimConfig
from blis.latency.base import StepBatch, create_latency_model
from blis.latency.composition import layer_overhead_share
from blis.latency.roofline_v2 import RooflineV2Model


def _empty_db() -> MfuDatabase:
    prov = bdf.Provenance(gpu="h100", device="none", date="2025-01-01", peak_tflops={"bf16": 989.5})
    return MfuDatabase.from_bench(bdf.BenchData(Path("empty"), prov, {}, {}, {}))


def _batches(seed: int, n: int = 300) -> list[StepBatch]:
    rnd = random.Random(seed)
    out = []
    for _ in range(n):
        chunks = [(rnd.randint(1, 2048), rnd.choice([0, 0, rnd.randint(1, 4000)])) for _ in range(rnd.randint(0, 3))]
        d = rnd.choice([0, rnd.randint(1, 256)])
        if not chunks and not d:
            d = 1
        out.append(StepBatch(num_prefill_tokens=sum(c[0] for c in chunks), prefill_chunks=chunks,
                             num_decode_tokens=d, sum_decode_context=d * rnd.randint(1, 8000),
                             num_sampled=d + rnd.randint(0, len(chunks))))
    return out


@pytest.mark.parametrize("model,tp", [("llama-2-7b", 1), ("llama-2-70b", 4), ("mixtral-8x7b", 2)])
def test_v2_equals_v1_exactly_when_every_family_falls_back(model, tp):
    v1 = create_latency_model("roofline", SimConfig(model=model, hardware="H100", tp=tp))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        v2 = RooflineV2Model(v1, _empty_db(), "empty")
    assert v2.measured_families == []
    for b in _batches(tp):
        assert v2.step_time_float_us(b) == v1.step_time_float_us(b)
        assert v2.step_time_us(b) == v1.step_time_us(b)
    assert v2.describe()["lookup_coverage"]["lookups"] == 0


def test_layer_overhead_share():
    assert layer_overhead_share(4, False, False) == 1.0
    assert layer_overhead_share(4, True, True) == 0.0
    assert layer_overhead_share(4, True, False) == pytest.approx(1 / 5)
    assert layer_overhead_share(4, False, True) == pytest.approx(4 / 5)


def test_measured_kernels_carry_no_layer_overhead(tmp_path):
    """Doubling v1's layer_overhead_us moves v1's step by L x overhead and leaves v2 (all kernels measured)
    where it was; the step CPU overhead stays in both."""
    folder = write_synthetic(tmp_path / "h100", shapes=((32, 32, 128),), gpu="h100")
    cal = tmp_path / "cal.yaml"
    b = StepBatch(num_decode_tokens=8, sum_decode_context=8 * 1000, num_sampled=8)
    times = {}
    for extra in (0.0, 100.0):
        cal.write_text(f"roofline:\n  layer_overhead_us: {extra}\n  step_overhead_us: 500\n")
        cfg = SimConfig(model="llama-2-7b", hardware="H100", bench_data_path=str(folder), calibration_file=str(cal))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            times[extra] = (create_latency_model("roofline", cfg).step_time_float_us(b),
                            create_latency_model("roofline-v2", cfg).step_time_float_us(b))
    assert times[100.0][0] - times[0.0][0] == pytest.approx(32 * 100.0)
    assert times[100.0][1] == times[0.0][1]
    cal.write_text("roofline:\n  layer_overhead_us: 0\n  step_overhead_us: 900\n")
    cfg = SimConfig(model="llama-2-7b", hardware="H100", bench_data_path=str(folder), calibration_file=str(cal))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert create_latency_model("roofline-v2", cfg).step_time_float_us(b) - times[0.0][1] == pytest.approx(400)


def test_attention_shape_split_at_the_same_group_size(tmp_path):
    """32 heads with 32 KV heads at batch b is the work of 8-8 at batch 4b: looked up there, unscaled."""
    folder = write_synthetic(tmp_path / "h100", shapes=((8, 8, 128),), gpu="h100")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        v2 = create_latency_model("roofline-v2", SimConfig(model="llama-2-7b", hardware="H100",
                                                           bench_data_path=str(folder)))
    grid = MfuDatabase.load(folder).decode.grids[(8, 8, 128)][("bf16", "bf16")]
    assert any("8-8-128 at 4x the batch" in n for n in v2.notes)
    assert v2.decode_attention_us(8, 8 * 1024) == pytest.approx(32 * grid(32, 1024)[0])
