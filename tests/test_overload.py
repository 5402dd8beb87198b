"""The overload rule of blis/overload.py (docs/validation.md): hand cases on arrays, and one overloaded and
one stable simulation whose service rate is set by hand."""

from __future__ import annotations

import numpy as np
import pytest

import blis
from blis.config import EngineConfig, SimConfig
from blis.overload import detect

S = 1_000_000  # microseconds per second


def test_waits_that_grow_are_overload():
    arrival = np.arange(8) * S  # one request per second for 8 s
    waits = np.array([0, 0, 1, 1, 2, 2, 3, 3]) * S  # quarters: first [0, 0], last [3, 3] s
    finish = arrival + waits + S // 2
    out = detect(arrival, arrival + waits, finish, float(finish.max()))
    assert out["overloaded"]  # 3 s >= 1 s and >= 2 x 0 + 0.5 s
    assert out["arrival_rate_rps"] == pytest.approx(7 / 7)
    # finished within [0, 7] s: requests 0..5 (finish 0.5, 1.5, 3.5, 4.5, 6.5 ... -> 5 of them <= 7 s)
    assert out["sustained_rate_rps"] == pytest.approx(int((finish <= 7 * S).sum()) / 7)


def test_constant_wait_is_not_overload_however_long():
    arrival = np.arange(40) * S
    waits = np.full(40, 5 * S)  # everyone waits 5 s: slow, but the queue does not grow
    out = detect(arrival, arrival + waits, arrival + waits + S, float(arrival[-1] + 6 * S))
    assert not out["overloaded"]


def test_never_scheduled_waits_until_the_end():
    arrival = np.arange(8) * S
    sched = arrival.astype(float).copy()
    sched[-2:] = np.nan  # the last two were never scheduled; the simulation stopped at 20 s
    out = detect(arrival, sched, sched + S, 20.0 * S)
    assert out["overloaded"]  # last quarter waits 14 s and 13 s


def test_too_few_requests_or_one_instant():
    assert not detect(np.arange(5) * S, np.arange(5) * S + 10 * S, np.arange(5) * S + 11 * S, 30 * S)["overloaded"]
    out = detect(np.zeros(10), np.zeros(10), np.ones(10), 1.0)
    assert out == {"overloaded": False, "arrival_rate_rps": None, "sustained_rate_rps": None}


def _simulate(rate: float, n: int = 100):
    """One request in the batch at a time, each step 100 ms (blackbox b0), two output tokens: a request
    takes two steps, so the server sustains at most 5 requests per second."""
    arrival = (np.arange(n) * S / rate).astype(np.int64)
    table = blis.RequestTable(arrival_us=arrival, input_tokens=np.full(n, 16), output_tokens=np.full(n, 2))
    cfg = SimConfig(model="llama-2-7b", latency_model="blackbox", alpha_coeffs=(0.0, 0.0, 0.0),
                    beta_coeffs=(100_000.0, 0.0, 0.0), engine=EngineConfig(max_num_seqs=1, total_kv_blocks=100))
    return blis.simulate(cfg, table).summary


def test_simulated_overload_and_its_sustained_rate():
    s = _simulate(rate=10.0)  # twice what the server can do
    assert s["overloaded"] is True
    assert s["arrival_rate_rps"] == pytest.approx(10.0)
    assert 4.0 <= s["sustained_rate_rps"] <= 5.0  # at most one request per two 100 ms steps


def test_simulated_stable_server():
    s = _simulate(rate=2.0)  # 40 % of what the server can do
    assert s["overloaded"] is False
    assert s["sustained_rate_rps"] == pytest.approx(2.0, rel=0.05)
