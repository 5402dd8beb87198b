"""Arrival processes and load stages."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from blis.workload import Workload
from blis.workload.arrivals import weibull_shape


def gaps_s(table):
    return np.diff(table.arrival_us) / 1e6


def test_constant_intervals_are_exact():
    t = Workload.preset("chatbot", rate=10, num_requests=1000).generate()
    assert t.arrival_us[0] == 0
    assert (np.diff(t.arrival_us) == 100_000).all()
    t3 = Workload.preset("chatbot", rate=3, num_requests=10).generate()
    assert (np.diff(t3.arrival_us) == 333_333).all()  # whole microseconds


@pytest.mark.parametrize(
    "arrival, cv", [("poisson", 1.0), ("gamma", 0.5), ("gamma", 2.5), ("weibull", 0.5), ("weibull", 2.0)]
)
def test_renewal_mean_and_cv(arrival, cv):
    rate = 8.0
    g = gaps_s(Workload.preset("chatbot", rate=rate, num_requests=200_001, arrival=arrival, cv=cv).generate())
    assert g.mean() == pytest.approx(1 / rate, rel=0.015)
    assert g.std() / g.mean() == pytest.approx(cv, rel=0.04)


def test_poisson_counts_per_window_are_poisson():
    t = Workload.preset("chatbot", rate=4, num_requests=40_001, arrival="poisson").generate()
    counts = np.bincount((t.arrival_us // 1_000_000).astype(int))[:-1]
    assert counts.var() / counts.mean() == pytest.approx(1.0, abs=0.08)


def test_weibull_shape_matches_scipy():
    for cv in (0.3, 1.0, 3.0):
        k = weibull_shape(cv)
        d = stats.weibull_min(k)
        assert d.std() / d.mean() == pytest.approx(cv, rel=1e-6)
    assert weibull_shape(1.0) == pytest.approx(1.0, rel=1e-6)  # exponential


def test_inference_perf_constant_stage():
    wl = Workload.preset("chatbot", arrival="inference-perf-constant", stages=[{"rate": 5, "duration": 600}])
    t = wl.generate()
    assert len(t) == 3000  # int(rate * duration)
    assert t.arrival_us[-1] == 600_000_000  # last request lands at the end of the stage
    g = gaps_s(t)
    assert g.std() / g.mean() == pytest.approx(1.0, abs=0.06)
    assert 0 < t.arrival_us[0] < 10_000_000


def test_inference_perf_constant_without_stages():
    t = Workload.preset("chatbot", rate=20, num_requests=400, arrival="inference-perf-constant").generate()
    assert len(t) == 400 and t.arrival_us[-1] == 20_000_000


def test_inference_perf_poisson_windows():
    wl = Workload.preset("chatbot", arrival="inference-perf-poisson", stages=[{"rate": 3, "duration": 200}])
    t = wl.generate()
    assert len(t) == 600
    sec = t.arrival_us / 1e6
    window = np.ceil(sec - 1e-9).astype(int)  # arrivals of window w lie in (w-1, w]
    last_of_window = np.r_[window[1:] != window[:-1], True]
    # every window but the (possibly cut) last one ends with an arrival exactly on its boundary
    on_boundary = np.abs(sec[last_of_window][:-1] - window[last_of_window][:-1]) < 1e-6
    assert on_boundary.all()
    counts = np.bincount(window)[1:]
    assert counts[:-1].mean() == pytest.approx(3, rel=0.15)


@pytest.mark.parametrize("rate", [0.3, 0.9, 4.0])
def test_inference_perf_poisson_window_counts(rate):
    t = Workload.preset(
        "chatbot", rate=rate, num_requests=60_000, arrival="inference-perf-poisson"
    ).generate()
    window = np.ceil(t.arrival_us / 1e6 - 1e-9).astype(int)
    counts = np.bincount(window)[1:-1]  # whole windows, empty ones included
    assert counts.mean() == pytest.approx(rate, rel=0.03)
    assert counts.var() == pytest.approx(rate, rel=0.06)
    assert (counts == 0).mean() == pytest.approx(math.exp(-rate), abs=0.01)


def test_stages_constant_and_gap():
    wl = Workload.preset(
        "chatbot", stages=[{"rate": 2, "duration": 10}, {"rate": 5, "duration_s": 4}], stage_gap_s=1.0
    )
    t = wl.generate()
    assert len(t) == 40
    first, second = t.arrival_us[:20], t.arrival_us[20:]
    assert (np.diff(first) == 500_000).all() and first[0] == 0
    assert second[0] == 11_000_000 and (np.diff(second) == 200_000).all()


def test_stages_poisson_rates_follow_each_stage():
    wl = Workload.preset(
        "chatbot",
        arrival="poisson",
        stages=[{"rate": 20, "duration": 300}, {"rate": 60, "duration": 300}],
        stage_gap_s=5,
    )
    t = wl.generate()
    s = t.arrival_us / 1e6
    n1, n2 = (s < 300).sum(), (s >= 305).sum()
    assert n1 + n2 == len(t)
    assert n1 == pytest.approx(6000, abs=5 * math.sqrt(6000))
    assert n2 == pytest.approx(18000, abs=5 * math.sqrt(18000))


def test_num_requests_caps_stages():
    wl = Workload.preset("chatbot", stages=[{"rate": 2, "duration": 10}]).with_overrides(num_requests=7)
    assert len(wl.generate()) == 7
