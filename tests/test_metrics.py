import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from blis.metrics import percentiles, stats, weighted_percentiles


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1e6), st.integers(0, 20)), min_size=1, max_size=40))
def test_weighted_percentiles_equal_expanded_sample(pairs):
    values = np.array([v for v, _ in pairs])
    counts = np.array([c for _, c in pairs], dtype=np.int64)
    got = weighted_percentiles(values, counts)
    expanded = np.repeat(values, counts)
    if len(expanded) == 0:
        assert all(np.isnan(got))
    else:
        assert np.allclose(got, np.percentile(expanded, [50, 90, 95, 99]))


def test_percentiles_linear_interpolation_by_hand():
    # 0, 10, 20, 30, 40: p90 sits 0.6 of the way from 30 to 40
    assert percentiles(np.array([40.0, 0, 30, 10, 20]), (50, 90)) == [20.0, 36.0]


def test_stats_converts_microseconds_to_ms():
    s = stats("ttft", np.array([1000.0, 3000.0]))
    assert s["ttft_mean_ms"] == 2.0
    assert s["ttft_p50_ms"] == 2.0
