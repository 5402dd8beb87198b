"""The engine gives the per-request times and step logs recorded before the speed work (issue #17):
exactly for blackbox, to the microsecond for roofline (`tests/golden/runs.py` recorded them)."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "golden"))
import runs  # noqa: E402

GOLDEN = json.loads(runs.GOLDEN.read_text())
CASES = runs.cases()


def test_golden_set_covers_the_cases():
    assert set(GOLDEN) == set(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_same_answers_as_recorded(name):
    cfg, requests = CASES[name]
    got = runs.record(cfg, requests)
    want = GOLDEN[name]
    tol = 1 if name.startswith(("rf_", "cl_rf")) else 0
    for key in ("scheduled_us", "first_token_us", "finish_us"):
        diffs = [abs(a - b) for a, b in zip(got[key], want[key])]
        assert len(got[key]) == len(want[key]) and max(diffs) <= tol, (key, max(diffs))
        assert [a < 0 for a in got[key]] == [b < 0 for b in want[key]], key
    for key in ("preemptions", "instance", "num_steps"):
        assert got[key] == want[key], key
    if tol == 0:
        assert got["steps_sha256"] == want["steps_sha256"]
        assert got["summary"] == want["summary"]
    else:
        for key, value in want["summary"].items():
            assert got["summary"][key] == pytest.approx(value, rel=1e-9, abs=1e-3), key
