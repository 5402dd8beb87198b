"""The run's engine steps as the report needs them, read from the instances' run-length step logs
(`blis.engine.StepLog`, issue #17) without building the per-step table: step end times, durations and KV
blocks per step, the records (one per step or per decode-only stretch), and `StepColumns`, the per-step
table (``SimResult.step_columns``) expanded only when someone reads it."""

from __future__ import annotations

from functools import cached_property

import numpy as np

STEP_COLUMNS = ("start_us", "duration_us", "prefill_tokens", "decode_tokens", "num_requests", "kv_blocks_used",
                "preemptions", "num_waiting")


def _concat(parts: list[np.ndarray]) -> np.ndarray:
    if len(parts) == 1:
        return parts[0]  # one instance: no copy
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


class RunSteps:
    """Every instance's steps, concatenated in instance order (global step index = offset + local index)."""

    def __init__(self, instances: list) -> None:
        logs = [i.steps for i in instances]
        self.logs = logs
        self.lengths = np.array([len(s) for s in logs], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)[:-1]]).astype(np.int64)
        self.durations = _concat([s.durations() for s in logs])  # int32 while they fit (read-only views)
        counts = [s.record("count") for s in logs]
        # global index of each record's first step, its step count, and its decode batch
        self.record_first = _concat([off + np.cumsum(c) - c for off, c in zip(self.offsets, counts)])
        self.record_count = _concat(counts)
        self.record_decode = _concat([s.record("decode_tokens") for s in logs])

    @cached_property
    def ends(self) -> np.ndarray:
        """End time of every step (us, int64), built on first use."""
        return _concat([s.end_us() for s in self.logs])

    def kv_blocks_used(self) -> list[np.ndarray]:
        return [s.kv_blocks() for s in self.logs]


class StepColumns(dict):
    """``SimResult.step_columns``: one row per engine step (the instance, then `STEP_COLUMNS`), expanded from
    the run-length logs on first use (a run of a million requests keeps ~16 bytes per step until then)."""

    def __init__(self, logs: list) -> None:
        super().__init__()
        self._logs = logs

    def _fill(self) -> None:
        if self._logs is None:
            return
        logs, self._logs = self._logs, None
        lengths = [len(s) for s in logs]
        dict.__setitem__(self, "instance", np.repeat(np.arange(len(logs)), lengths))
        for name in STEP_COLUMNS:
            dict.__setitem__(self, name, _concat([s.column(name) for s in logs]))

    def __getitem__(self, key):
        self._fill()
        return dict.__getitem__(self, key)

    def __iter__(self):
        self._fill()
        return dict.__iter__(self)

    def __len__(self) -> int:
        self._fill()
        return dict.__len__(self)

    def __contains__(self, key) -> bool:
        self._fill()
        return dict.__contains__(self, key)

    def __repr__(self) -> str:
        self._fill()
        return dict.__repr__(self)

    def keys(self):
        self._fill()
        return dict.keys(self)

    def values(self):
        self._fill()
        return dict.values(self)

    def items(self):
        self._fill()
        return dict.items(self)

    def get(self, key, default=None):
        self._fill()
        return dict.get(self, key, default)

    def copy(self) -> dict:
        self._fill()
        return dict(dict.items(self))


def kv_utilization(instances: list, steps: RunSteps) -> tuple[float, float]:
    """Time-weighted mean and max over steps of KV blocks used / the instance's blocks. One float array per
    step (the products are formed in place), with the same operations and summation order as a per-step
    table: ``(used / blocks * duration).sum() / duration.sum()``."""
    n = len(steps.durations)
    if n == 0:
        return 0.0, 0.0
    util = np.empty(n)
    for inst, used, off in zip(instances, steps.kv_blocks_used(), steps.offsets):
        np.divide(used, float(inst.num_kv_blocks), out=util[off:off + len(used)])
    util_max = float(util.max())
    np.multiply(util, steps.durations, out=util)
    total = float(steps.durations.sum(dtype=np.int64))  # integers: the float sum is exact
    return (float(util.sum() / total) if total else 0.0), util_max
