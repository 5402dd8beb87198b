"""One check shared by the equivalence tests of issue #17: two runs gave the same answers."""

import numpy as np


def assert_same_run(a, b) -> None:
    """Byte-identical summary JSON, identical step columns and per-request times (ms; NaN for never)."""
    assert a.to_json() == b.to_json()
    for name, col in b.step_columns.items():
        assert np.array_equal(a.step_columns[name], col), name
    for name in ("scheduled_ms", "first_token_ms", "finish_ms"):
        x, y = a.request_columns[name], b.request_columns[name]
        assert np.array_equal(np.nan_to_num(x, nan=-1), np.nan_to_num(y, nan=-1)), name
