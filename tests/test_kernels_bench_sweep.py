"""The sweep loop on fake timers and clocks: MFU from the timing, impossible rows refused, resume after a
budget stop or an interrupt, and the written folder passing blis's bench_data check."""

from __future__ import annotations

import pytest

from kernels_bench import attention_decode, gemm, shapes
from kernels_bench.sweep import Budget, ImpossibleMeasurement, Peaks, PointSkipped, build_row, run_sweep
from kernels_bench.timing import median_latency_us, repetitions_for
from kernels_bench.writer import read_table

PEAKS = Peaks(flops={"bf16": 1e15, "fp8": 2e15}, bandwidth_Bps=3e12)


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def _gemm_points(ms, kn=((1000, 1000),), dtype="bf16"):
    pts, _ = gemm.points([shapes.GemmShape(k, n, ("test",)) for k, n in kn], ms, [dtype])
    return pts


def test_median_of_the_injected_timer():
    assert median_latency_us(lambda: None, lambda fn: [300.0, 100.0, 200.0]) == 200.0
    with pytest.raises(ValueError):
        median_latency_us(lambda: None, lambda fn: [])


def test_repetitions_for():
    assert repetitions_for(1000.0, 100.0, 10, 100) == 100  # 1 ms calls: 100 fit in 100 ms
    assert repetitions_for(50_000.0, 100.0, 10, 100) == 10  # floor at min_reps
    assert repetitions_for(10.0, 100.0, 10, 100) == 100  # cap at max_reps


def test_mfu_from_fake_timer(tmp_path):
    # m = k = n = 1000: 2e9 FLOPs. The timer reports 100/200/300 us; the median 200 us is 1e13 FLOP/s,
    # 1 % of a 1e15 FLOP/s peak.
    def timer(fn):
        return [100.0, 300.0, 200.0]

    def runner(p):
        return median_latency_us(lambda: None, timer)

    res = run_sweep(_gemm_points([1000]), runner, tmp_path, PEAKS, Budget(None))
    assert res.complete
    assert read_table(tmp_path / "gemm_bf16.csv") == [
        {"m": "1000", "k": "1000", "n": "1000", "latency_us": "200", "mfu": "0.01"}
    ]


def test_mfu_above_one_stops_the_run_naming_the_shape(tmp_path):
    # 2e9 FLOPs in 1 us would be 2e15 FLOP/s, twice the bf16 peak.
    pts = _gemm_points([1000])
    with pytest.raises(ImpossibleMeasurement, match=r"gemm_bf16.csv m=1000 k=1000 n=1000: .*MFU 2.000 > 1"):
        run_sweep(pts, lambda p: 1.0, tmp_path, PEAKS, Budget(None))
    assert read_table(tmp_path / "gemm_bf16.csv") == []


def test_bandwidth_above_peak_is_refused():
    shape = shapes.AttentionShape(8, 1, 128, ("test",))
    [pt], _ = attention_decode.points([shape], [(64, 4096)], ["bf16"], memory_limit_bytes=1e12)
    # The KV cache alone is 2*64*4096*128*2 bytes = 134 MB; in 10 us that would be 13 TB/s.
    with pytest.raises(ImpossibleMeasurement, match=r"batch=64 kv_len=4096: .* above the memory's 3.00 TB/s"):
        build_row(pt, 10.0, PEAKS)
    row = build_row(pt, 100.0, PEAKS)  # 1.35 TB/s is possible
    assert row["kv_len"] == 4096 and row["mfu"] == pytest.approx(pt.flops / (100e-6 * 1e15))


@pytest.mark.parametrize("latency", [0.0, -3.0, float("nan"), float("inf")])
def test_non_positive_or_non_finite_latency_is_refused(latency):
    with pytest.raises(ImpossibleMeasurement, match="not a positive number"):
        build_row(_gemm_points([8])[0], latency, PEAKS)


def test_budget_stops_then_resume_completes(tmp_path):
    clock = FakeClock()
    calls = []

    def runner(p):  # each point takes 1 s of the fake clock
        calls.append(p.key["m"])
        clock.now += 1.0
        return 1000.0

    ms = [1, 2, 4, 8, 16, 32]
    pts = _gemm_points(ms)
    first = run_sweep(pts, runner, tmp_path, PEAKS, Budget(3.5, clock))
    # Points start only while elapsed + longest point so far fits in 3.5 s: 3 of them.
    assert first.stopped_by_budget and not first.complete and first.remaining == 3
    assert calls == [1, 2, 4]
    assert len(read_table(tmp_path / "gemm_bf16.csv")) == 3
    second = run_sweep(pts, runner, tmp_path, PEAKS, Budget(None, clock))
    assert second.complete
    assert calls == [1, 2, 4, 8, 16, 32]  # nothing measured twice
    assert second.tables["gemm_bf16.csv"].already == 3
    assert [int(r["m"]) for r in read_table(tmp_path / "gemm_bf16.csv")] == ms


def test_interrupt_keeps_rows_and_resume_finishes_sorted(tmp_path):
    pts = _gemm_points([512, 1, 64, 8])  # deliberately unsorted

    def interrupted(p):
        if p.key["m"] == 64:
            raise KeyboardInterrupt
        return 1000.0

    with pytest.raises(KeyboardInterrupt):
        run_sweep(pts, interrupted, tmp_path, PEAKS, Budget(None))
    assert [r["m"] for r in read_table(tmp_path / "gemm_bf16.csv")] == ["512", "1"]
    res = run_sweep(pts, lambda p: 1000.0, tmp_path, PEAKS, Budget(None))
    assert res.complete and res.tables["gemm_bf16.csv"].measured == 2
    assert [r["m"] for r in read_table(tmp_path / "gemm_bf16.csv")] == ["1", "8", "64", "512"]


def test_skipped_points_are_reported_not_written(tmp_path):
    def runner(p):
        if p.key["m"] == 2:
            raise PointSkipped("out of GPU memory")
        return 1000.0

    seen = []
    res = run_sweep(_gemm_points([1, 2, 4]), runner, tmp_path, PEAKS, Budget(None),
                    on_point=lambda p, status: seen.append(status))
    out = res.tables["gemm_bf16.csv"]
    assert out.complete and out.measured == 2 and out.skipped == [("m=2 k=1000 n=1000", "out of GPU memory")]
    assert seen == ["measured", "skipped: out of GPU memory", "measured"]
    assert [r["m"] for r in read_table(tmp_path / "gemm_bf16.csv")] == ["1", "4"]


def test_written_folder_passes_the_bench_data_check(tmp_path):
    """Tables and provenance as kernels_bench writes them pass blis's checker (schema, units, bandwidth)."""
    bdf = pytest.importorskip("blis.bench_data.format")
    from kernels_bench import attention_prefill, provenance

    sheet = provenance.datasheet("h100")
    device = {"device": "NVIDIA H100 80GB HBM3", "driver": "test", "cuda": "test", "torch": "test",
              "detail": "test"}
    prov = provenance.new_provenance("h100", sheet, device, "python -m kernels_bench all --gpu h100")
    provenance.save(tmp_path, prov)
    peaks = Peaks(flops=sheet.peak_flops, bandwidth_Bps=sheet.bandwidth_Bps)
    shape = shapes.AttentionShape(32, 8, 128, ("test",))
    pts = _gemm_points([1, 16, 256], kn=((4096, 6144),))
    pts += _gemm_points([1, 16, 256], kn=((4096, 6144),), dtype="fp8")
    pts += attention_prefill.points([shape], [(1, 1024), (2, 4096)])
    dec, _ = attention_decode.points([shape], [(1, 4096), (64, 4096)], ["bf16", "fp8"], 1e12)
    pts += dec

    def runner(p):  # a latency at 40 % of whichever roofline bound applies: physically possible
        return 1e6 * max(p.flops / p_peak(p), p.nbytes / sheet.bandwidth_Bps) / 0.4

    def p_peak(p):
        return sheet.peak_flops[p.precision]

    res = run_sweep(pts, runner, tmp_path, peaks, Budget(None))
    assert res.complete
    report = bdf.check_bench_dir(tmp_path)
    assert report.ok, report.problems
    assert {t.kind for t in report.tables} == {bdf.GEMM, bdf.PREFILL, bdf.DECODE}
    assert sum(t.rows for t in report.tables) == len(pts)
