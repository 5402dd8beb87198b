"""MFU database lookups: exact at grid points, bracketed between them, edge MFU outside, nearest shapes."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_bench_data_helpers import (
    BATCHES,
    GEMM_MS,
    GEMM_PAIRS,
    KV_LENS,
    SEQS,
    write_synthetic,
)

from blis.bench_data import format as bdf
from blis.bench_data.lookup import (
    EXACT,
    EXTRAPOLATED,
    INTERPOLATED,
    Curve,
    Grid2D,
    MfuDatabase,
    leave_one_out,
)


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    folder = write_synthetic(tmp_path_factory.mktemp("bd") / "testgpu", shapes=((32, 8, 128), (8, 8, 128)))
    return MfuDatabase.load(folder)


def _table_rows(db, kind):
    if kind == bdf.GEMM:
        return db.bench.gemm["bf16"]
    return db.bench.decode[(32, 8, 128)] if kind == bdf.DECODE else db.bench.prefill[(32, 8, 128)]


def test_grid_points_return_the_table_exactly(db):
    for m, k, n, lat, _ in _table_rows(db, bdf.GEMM):
        assert db.gemm["bf16"].lookup(m, k, n) == (lat, EXACT, False)
    grid = db.decode.grids[(32, 8, 128)][("bf16", "bf16")]
    for _, _, b, L, lat, _ in _table_rows(db, bdf.DECODE):
        assert grid(b, L) == (lat, EXACT)
    grid = db.prefill.grids[(32, 8, 128)][("bf16",)]
    for _, b, s, lat, _ in _table_rows(db, bdf.PREFILL):
        assert grid(b, s) == (lat, EXACT)


@settings(max_examples=60, deadline=None)
@given(i=st.integers(0, len(GEMM_MS) - 2), frac=st.floats(0.01, 0.99), pair=st.sampled_from(GEMM_PAIRS))
def test_gemm_interpolation_lies_between_neighbours(db, i, frac, pair):
    lo, hi = GEMM_MS[i], GEMM_MS[i + 1]
    m = lo + frac * (hi - lo)
    table = db.gemm["bf16"]
    a, b, x = table.lookup(lo, *pair), table.lookup(hi, *pair), table.lookup(m, *pair)
    assert x.where == INTERPOLATED
    assert min(a.latency_us, b.latency_us) <= x.latency_us <= max(a.latency_us, b.latency_us)


@settings(max_examples=60, deadline=None)
@given(bi=st.integers(0, len(BATCHES) - 2), li=st.integers(0, len(KV_LENS) - 2),
       fb=st.floats(0.0, 1.0), fl=st.floats(0.0, 1.0))
def test_decode_bilinear_lies_within_the_cell(db, bi, li, fb, fl):
    grid = db.decode.grids[(32, 8, 128)][("bf16", "bf16")]
    b0, b1 = BATCHES[bi], BATCHES[bi + 1]
    l0, l1 = KV_LENS[li], KV_LENS[li + 1]
    b, L = b0 + fb * (b1 - b0), l0 + fl * (l1 - l0)
    corners = [grid(bb, ll)[0] for bb in (b0, b1) for ll in (l0, l1)]
    lat, where = grid(b, L)
    assert where in (EXACT, INTERPOLATED)
    assert min(corners) * (1 - 1e-12) <= lat <= max(corners) * (1 + 1e-12)


def test_above_the_grid_keeps_the_edge_mfu(db):
    table = db.gemm["bf16"]
    k, n = GEMM_PAIRS[0]
    top = table.lookup(GEMM_MS[-1], k, n).latency_us
    above = table.lookup(4 * GEMM_MS[-1], k, n)
    assert above.where == EXTRAPOLATED and above.latency_us == pytest.approx(4 * top)
    pre = db.prefill.grids[(32, 8, 128)][("bf16",)]
    s_top = SEQS[-1]
    assert pre(1, 2 * s_top)[0] == pytest.approx(4 * pre(1, s_top)[0])  # prefill FLOPs ~ s^2
    assert pre(16, s_top)[0] == pytest.approx(4 * pre(4, s_top)[0])  # batch 16 beyond measured 4


@pytest.mark.parametrize(
    "first_two, expected_at_1",
    [((10.0, 10.0), 10.0),  # flat (launch/memory bound): latency held at the edge
     ((10.0, 15.0), 10.0 * (1.5 ** -1)),  # slope log2(1.5) per doubling continues below the grid
     ((10.0, 9.0), 10.0),  # latency falling with size (noise): slope clamped to 0, held at the edge
     ((10.0, 80.0), 10.0 / 2)],  # steeper than the FLOPs: MFU held at the edge (power 1)
)
def test_below_the_grid_continues_the_clamped_first_slope(first_two, expected_at_1):
    curve = Curve([(2.0, first_two[0]), (4.0, first_two[1]), (8.0, 100.0)], power=1.0)
    lat, where = curve(1.0)
    assert where == EXTRAPOLATED and lat == pytest.approx(expected_at_1)


def test_missing_gemm_pair_uses_nearest_covering_pair_scaled_by_flops(db):
    table = db.gemm["bf16"]
    # (4096, 8192) is covered by (4096, 12288) (not by 4096 x 4096, which is nearer but smaller)
    assert table.nearest_pair(4096, 8192) == (4096, 12288)
    got = table.lookup(512, 4096, 8192)
    ref = table.lookup(512, 4096, 12288).latency_us
    assert got.nearest_shape and got.where == EXACT
    assert got.latency_us == pytest.approx(ref * 8192 / 12288)
    # nothing covers (20000, 20000): the nearest pair overall in log distance (|ln 20000/4096| + |ln 20000/12288|
    # = 2.07 against 2.18 for (11008, 4096))
    assert table.nearest_pair(20000, 20000) == (4096, 12288)


def test_missing_attention_shape_uses_nearest(db):
    assert db.decode.nearest_shape((32, 8, 128)) == (32, 8, 128)
    assert db.decode.nearest_shape((28, 4, 128)) == (32, 8, 128)
    assert db.decode.nearest_shape((10, 10, 128)) == (8, 8, 128)
    # decode is scaled by KV bytes, prefill by FLOPs
    assert db.decode.shape_scale((28, 4, 128), (32, 8, 128)) == pytest.approx(0.5)
    assert db.prefill.shape_scale((28, 4, 128), (32, 8, 128)) == pytest.approx(28 / 32)


def test_loglog_is_exact_on_power_laws_linlog_is_not():
    pts = [(x, 3.0 * x**0.8) for x in (8, 64, 512, 4096)]
    x = 1000.0
    assert Curve(pts, 1.0)(x)[0] == pytest.approx(3.0 * x**0.8, rel=1e-12)
    assert Curve(pts, 1.0, "linlog")(x)[0] != pytest.approx(3.0 * x**0.8, rel=1e-3)


def test_ragged_grid_extrapolates_only_the_short_row():
    rows = [(1, 1024, 10.0), (1, 4096, 20.0), (1, 16384, 60.0), (8, 1024, 30.0), (8, 4096, 90.0)]
    grid = Grid2D(rows, 1.0)
    assert grid(8, 16384) == pytest.approx((90.0 * 4, EXTRAPOLATED))
    lat, where = grid(4, 2048)
    assert where == INTERPOLATED and 10.0 < lat < 90.0


def test_leave_one_out_reports_errors(db):
    res = leave_one_out(db.bench)
    assert set(res) == {bdf.GEMM, bdf.PREFILL, bdf.DECODE}
    gemm = res[bdf.GEMM]
    n_rows = len(GEMM_MS) * len(GEMM_PAIRS)
    assert gemm["interior"]["n"] + gemm["edge"]["n"] == n_rows
    assert gemm["edge"]["n"] == 2 * len(GEMM_PAIRS)
    assert 0 <= gemm["interior"]["median_pct"] <= gemm["interior"]["p90_pct"] <= gemm["interior"]["max_pct"]
    assert res[bdf.DECODE]["shape_out"]["n"] == 2 * len(BATCHES) * len(KV_LENS)
    assert math.isfinite(res[bdf.PREFILL]["interior"]["median_pct"])
