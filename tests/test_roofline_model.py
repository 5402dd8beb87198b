"""Roofline v1 latency model: protocol, agreement with the reference decomposition, monotonicity,
calibration overrides, single-request accuracy against the sync13 runs, cost per call."""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import asdict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blis.config import SimConfig
from blis.errors import BlisInputError
from blis.latency.base import LatencyModel, StepBatch, create_latency_model
from blis.latency.roofline import RooflineParams, build_roofline, calibration_path
from blis.physics.step_cost import step_pieces


def _model(name="llama-2-7b", tp=1, hardware="H100", **cfg):
    return create_latency_model("roofline", SimConfig(model=name, tp=tp, hardware=hardware, **cfg))


def test_registered_and_implements_protocol():
    m = _model()
    assert isinstance(m, LatencyModel) and m.name == "roofline"
    d = m.describe()
    json.dumps(d)
    assert d["model"] == "llama-2-7b" and d["hardware"] == "H100-SXM" and d["source"].startswith("roofline_h100")
    assert isinstance(m.step_time_us(StepBatch(num_decode_tokens=1, sum_decode_context=10, num_sampled=1)), int)


def _reference_time(model, batch: StepBatch) -> float:
    """Independent combination of step_cost pieces with the model's parameters (microseconds)."""
    p = model.params
    peak, bw = model.peak_flops, model.bandwidth_Bps
    link = model.hardware.interconnect_bandwidth_Bps * p.interconnect_efficiency
    pieces = step_pieces(model.model, model.tp, batch.num_prefill_tokens, batch.num_decode_tokens,
                         batch.sum_decode_context, batch.prefill_chunks, batch.num_sampled)
    t = p.step_overhead_us + model.model.num_layers * p.layer_overhead_us
    for pc in pieces:
        if pc.kind in ("gemm", "expert_gemm", "lm_head"):
            c = (pc.flops_prefill / p.mfu_prefill + pc.flops_decode / p.mfu_decode) / peak
            t += max(c, pc.bytes / (bw * p.bw_efficiency)) * 1e6
        elif pc.kind == "attention_prefill":
            t += max(pc.flops / (peak * p.mfu_attention_prefill), pc.bytes / (bw * p.bw_efficiency_attention)) * 1e6
            t += p.prefill_step_overhead_us
        elif pc.kind == "attention_decode":
            t += max(pc.flops / (peak * p.mfu_decode), pc.bytes / (bw * p.bw_efficiency_attention)) * 1e6
        elif pc.kind == "elementwise":
            t += pc.bytes / (bw * p.bw_efficiency) * 1e6
        elif pc.kind == "allreduce":
            t += pc.calls * p.allreduce_latency_us + pc.bytes / link * 1e6
        else:  # pragma: no cover
            raise AssertionError(pc.kind)
    return t


@pytest.mark.parametrize("name,tp", [("llama-2-7b", 1), ("llama-2-70b", 4), ("mixtral-8x7b", 2),
                                     ("qwen3-30b-a3b", 1)])
@pytest.mark.parametrize("batch", [
    StepBatch(num_decode_tokens=1, sum_decode_context=300, num_sampled=1),
    StepBatch(num_prefill_tokens=2048, prefill_chunks=[(2048, 0)], num_sampled=1),
    StepBatch(num_prefill_tokens=700, num_decode_tokens=90, sum_decode_context=90 * 700,
              prefill_chunks=[(500, 100), (200, 0)], num_sampled=91),
])
def test_fast_path_equals_reference_decomposition(name, tp, batch):
    m = _model(name, tp)
    # the LM head runs at the decode MFU in the model; the reference puts its FLOPs in flops_decode too
    assert m.step_time_float_us(batch) == pytest.approx(_reference_time(m, batch), rel=1e-9)


steps = st.tuples(
    st.lists(st.tuples(st.integers(1, 2048), st.integers(0, 3000)), max_size=3),
    st.integers(0, 128),
    st.integers(0, 3000),
    st.integers(0, 32),
)


@settings(max_examples=80, deadline=None)
@given(steps, st.sampled_from([("llama-2-7b", 1), ("mixtral-8x7b", 2), ("llama-2-70b", 4)]), st.integers(1, 500))
def test_more_tokens_never_cost_less(step, model_tp, extra):
    chunks, d, ctx, s = step
    m = _model(*model_tp)

    def t(chunks, d, ctx, s):
        return m.step_time_float_us(StepBatch(sum(n for n, _ in chunks), d, d * ctx if d else 0, chunks, s))

    base = t(chunks, d, ctx, s)
    assert base > 0
    assert t(chunks + [(extra, 0)], d, ctx, s) >= base
    assert t(chunks, d + 1, ctx, s) >= base
    assert t(chunks, d, ctx + extra, s) >= base
    assert t([(n + extra, c) for n, c in chunks], d, ctx, s) >= base
    assert t(chunks, d, ctx, s + 1) >= base


def test_tensor_parallel_shortens_a_weight_bound_step():
    b = StepBatch(num_decode_tokens=8, sum_decode_context=8 * 500, num_sampled=8)
    t4 = _model("llama-2-70b", 4).step_time_us(b)
    t8 = _model("llama-2-70b", 8).step_time_us(b)
    assert t8 < t4
    # weights dominate: more bandwidth (H200) makes the same step faster
    assert _model("llama-2-70b", 4, "H200").step_time_us(b) < t4


def test_moe_decode_reads_only_hit_experts():
    m = _model("mixtral-8x7b", 2)
    one = m.step_time_float_us(StepBatch(num_decode_tokens=1, sum_decode_context=100, num_sampled=1))
    many = m.step_time_float_us(StepBatch(num_decode_tokens=64, sum_decode_context=6400, num_sampled=64))
    # 1 token reads 2 of 8 experts, 64 tokens read about all 8: the step grows, but far less than 64x
    assert one < many < 4 * one


def test_queueing_and_other_times():
    m = _model()
    p = m.params
    assert m.queueing_time_us(1000) == round(p.queueing_base_us + 1000 * p.queueing_per_token_us)
    assert list(m.queueing_times_us([0, 1000])) == [m.queueing_time_us(0), m.queueing_time_us(1000)]
    assert m.output_token_processing_time_us() >= 0
    assert m.scheduling_processing_time_us() >= 0 and m.preemption_processing_time_us() >= 0


def test_calibration_file_overrides(tmp_path):
    path = tmp_path / "cal.yaml"
    path.write_text("roofline:\n  mfu_prefill: 0.5\n  step_overhead_us: 100\n  unrelated: 3\nbeta_coeffs: [1, 2, 3]\n")
    m = _model(calibration_file=str(path))
    assert m.params.mfu_prefill == 0.5 and m.params.step_overhead_us == 100
    base = _model()
    b = StepBatch(num_prefill_tokens=2048, prefill_chunks=[(2048, 0)], num_sampled=1)
    assert m.step_time_us(b) > base.step_time_us(b)  # lower MFU, slower compute-bound prefill
    flat = tmp_path / "flat.json"
    flat.write_text(json.dumps({"queueing_base_us": 0, "queueing_per_token_us": 0}))
    assert _model(calibration_file=str(flat)).queueing_time_us(500) == 0


@pytest.mark.parametrize("body,message", [
    ("mfu_decode: 1.3\n", "cannot exceed 1"),
    ("layer_overhead_us: -5\n", "must be >= 0"),
    ("nothing: 1\n", "holds no roofline parameters"),
])
def test_calibration_file_errors(tmp_path, body, message):
    path = tmp_path / "cal.yaml"
    path.write_text(body)
    with pytest.raises(BlisInputError, match=message):
        _model(calibration_file=str(path))


def test_hardware_without_calibration_borrows_h100_efficiencies():
    m = _model("llama-3.1-8b", 1, "B200")
    assert "borrowed" in m.describe()["source"]
    assert m.bandwidth_Bps == 8e12 and m.peak_flops == pytest.approx(2.25e15)


def test_hardware_file_and_model_config(tmp_path, shared_data):
    hw = tmp_path / "hw.yaml"
    hw.write_text("- {name: H100-slow, base: H100, memory_bandwidth_tbps: 1.0}\n")
    cfg = shared_data / "model_configs" / "llama-2-7b-hf" / "config.json"
    slow = _model(hardware="H100-slow", hardware_file=str(hw), model_config_path=str(cfg))
    b = StepBatch(num_decode_tokens=1, sum_decode_context=100, num_sampled=1)
    assert slow.step_time_us(b) > _model().step_time_us(b)
    assert slow.model.num_layers == 32


def test_params_validation():
    good = asdict(build_roofline("llama-2-7b").params)
    with pytest.raises(BlisInputError, match="bw_efficiency: 1.1 outside"):
        RooflineParams(**{**good, "bw_efficiency": 1.1})
    with pytest.raises(BlisInputError, match="must be a finite number"):
        RooflineParams(**{**good, "step_overhead_us": float("inf")})


def test_sync13_single_request_accuracy(shared_data):
    """Median |error| of TTFT and TPOT over the 13 single-request H100 runs, each predicted for one request
    of mean prompt / output length (see tools.fit_roofline.sync13_cases)."""
    from tools.fit_roofline import sync13_cases, sync13_errors

    m = _model()
    errs = sync13_errors(sync13_cases(shared_data), m.params)
    assert len(errs) == 13
    assert statistics.median(abs(e["ttft_err"]) for e in errs) <= 0.15
    assert statistics.median(abs(e["tpot_err"]) for e in errs) <= 0.15


def test_shipped_coefficients_are_reproducible(shared_data):
    from tools.fit_roofline import fit

    shipped = json.loads(calibration_path("H100-SXM").read_text())["params"]
    params, _ = fit(shared_data)
    for key, value in asdict(params).items():
        assert value == pytest.approx(shipped[key], rel=0.01, abs=1e-3), key


def test_step_evaluation_is_cheap():
    m = _model("mixtral-8x7b", 2)
    b = StepBatch(num_prefill_tokens=600, num_decode_tokens=60, sum_decode_context=60 * 800,
                  prefill_chunks=[(600, 0)], num_sampled=61)
    n = 20000
    start = time.perf_counter()
    for _ in range(n):
        m.step_time_us(b)
    per_call_us = (time.perf_counter() - start) / n * 1e6
    assert per_call_us < 30  # measured about 3 us on the development machine; generous for slow CI
