"""What happened during a run, recorded compactly: one row per engine step (per instance) and a few step
indices per request. Per-token times are never stored; they are rebuilt from the step timeline afterwards
(`blis.metrics`)."""

from __future__ import annotations

from array import array

import numpy as np


class RequestLog:
    """Per-request outcome arrays; step indices refer to the steps of the request's ``instance``."""

    def __init__(self, num_requests: int) -> None:
        n = num_requests
        self.instance = np.full(n, -1, dtype=np.int64)
        self.scheduled_step = np.full(n, -1, dtype=np.int64)
        self.first_token_step = np.full(n, -1, dtype=np.int64)
        self.finish_step = np.full(n, -1, dtype=np.int64)
        self.preemptions = np.zeros(n, dtype=np.int64)
        self.rejected = np.zeros(n, dtype=bool)
        self.cached_tokens = np.zeros(n, dtype=np.int64)  # prompt tokens served by the prefix cache
        # token segments: request emits one token at the end of every step in [start, end]
        self.seg_request = array("q")
        self.seg_start = array("q")
        self.seg_end = array("q")

    def on_scheduled(self, idx: int, step: int, cached_tokens: int) -> None:
        if self.scheduled_step[idx] < 0:
            self.scheduled_step[idx] = step
            self.cached_tokens[idx] = cached_tokens

    def on_first_token(self, idx: int, step: int) -> None:
        self.first_token_step[idx] = step

    def on_finished(self, idx: int, step: int) -> None:
        self.finish_step[idx] = step

    def on_preempted(self, idx: int) -> None:
        self.preemptions[idx] += 1

    def on_rejected(self, idx: int) -> None:
        self.rejected[idx] = True

    def add_segment(self, idx: int, start: int, end: int) -> None:
        self.seg_request.append(idx)
        self.seg_start.append(start)
        self.seg_end.append(end)

    def segments(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        def arr(a: array) -> np.ndarray:
            return np.frombuffer(a, dtype=np.int64) if len(a) else np.zeros(0, dtype=np.int64)

        return arr(self.seg_request), arr(self.seg_start), arr(self.seg_end)


class StepLog:
    """The engine steps of one instance (times in microseconds, sizes in tokens/blocks), stored run-length:
    one *record* per step, or per decode-only stretch of consecutive steps that differ only in their duration
    and KV blocks (issue #17), with the start time and the constant columns per record and only the duration
    and the KV blocks used per step. `column` expands any column to one value per step."""

    COLUMNS = ("start_us", "duration_us", "prefill_tokens", "decode_tokens", "num_requests",
               "kv_blocks_used", "preemptions", "num_waiting")
    RECORD_COLUMNS = ("start_us", "count", "prefill_tokens", "decode_tokens", "num_requests", "preemptions",
                      "num_waiting")

    def __init__(self) -> None:
        # per record: the start in 8 bytes, the rest in 4 while they fit (all widened on the first that does not)
        self.records = {name: array("q" if name == "start_us" else "i") for name in self.RECORD_COLUMNS}
        # per step: 4 bytes each while the values fit (widened to 8 on the first that does not)
        self.duration_us = array("i")
        self.kv_blocks_used = array("i")
        self._bind()

    def _bind(self) -> None:
        r = self.records
        self._rec_append = (r["start_us"].append, r["count"].append, r["prefill_tokens"].append,
                            r["decode_tokens"].append, r["num_requests"].append, r["preemptions"].append,
                            r["num_waiting"].append)

    def _add_record(self, start_us: int, count: int, prefill: int, decode: int, num_requests: int,
                    preemptions: int, num_waiting: int) -> None:
        a_start, a_count, a_prefill, a_decode, a_nreq, a_pre, a_wait = self._rec_append
        n = len(self.records["start_us"])
        try:
            a_start(start_us)
            a_count(count)
            a_prefill(prefill)
            a_decode(decode)
            a_nreq(num_requests)
            a_pre(preemptions)
            a_wait(num_waiting)
        except OverflowError:  # a value beyond 32 bits: widen every record column, then add the record again
            for name, column in self.records.items():
                del column[n:]
                self.records[name] = array("q", column)
            self._bind()
            self._add_record(start_us, count, prefill, decode, num_requests, preemptions, num_waiting)

    def add(self, start_us: int, duration_us: int, prefill: int, decode: int, num_requests: int,
            kv_used: int, preemptions: int, num_waiting: int) -> None:
        a_start, a_count, a_prefill, a_decode, a_nreq, a_pre, a_wait = self._rec_append
        try:  # the hot path: one record of one step, appended in place
            a_count(1)
            a_prefill(prefill)
            a_decode(decode)
            a_nreq(num_requests)
            a_pre(preemptions)
            a_wait(num_waiting)
            a_start(start_us)
        except OverflowError:  # some value beyond 32 bits: the general path widens (start_us is appended last)
            n = len(self.records["start_us"])
            for column in self.records.values():
                del column[n:]
            self._add_record(start_us, 1, prefill, decode, num_requests, preemptions, num_waiting)
        try:
            self.duration_us.append(duration_us)
        except OverflowError:
            self.duration_us = array("q", self.duration_us)
            self.duration_us.append(duration_us)
        try:
            self.kv_blocks_used.append(kv_used)
        except OverflowError:
            self.kv_blocks_used = array("q", self.kv_blocks_used)
            self.kv_blocks_used.append(kv_used)

    def add_run(self, start_us: int, durations: list[int], decode: int, kv_used) -> None:
        """One record for consecutive decode-only steps of ``decode`` requests, back to back from ``start_us``
        (no prefill, preemption or waiting request); ``kv_used``: KV blocks used per step (any iterable)."""
        self._add_record(start_us, len(durations), 0, decode, decode, 0, 0)
        self.duration_us = _extended(self.duration_us, durations)
        self.kv_blocks_used = _extended(self.kv_blocks_used, list(kv_used))

    def __len__(self) -> int:
        return len(self.duration_us)

    def record(self, name: str) -> np.ndarray:
        """One value per record (``RECORD_COLUMNS``), int64."""
        return _arr(self.records[name]).astype(np.int64, copy=False)

    def column(self, name: str) -> np.ndarray:
        """One value per step."""
        if name == "duration_us" or name == "kv_blocks_used":
            return _arr(getattr(self, name)).astype(np.int64)
        if name == "start_us":
            return self.end_us() - _arr(self.duration_us)
        return np.repeat(self.record(name), self.record("count"))

    def durations(self) -> np.ndarray:
        """Step durations (us) as a read-only int32 (or int64) view, without a copy."""
        return _arr(self.duration_us)

    def kv_blocks(self) -> np.ndarray:
        """KV blocks used per step as a read-only int32 (or int64) view, without a copy."""
        return _arr(self.kv_blocks_used)

    def end_us(self) -> np.ndarray:
        """End time of every step: a record's steps run back to back from its start."""
        dur = _arr(self.duration_us)
        if len(dur) == 0:
            return np.zeros(0, dtype=np.int64)
        count = self.record("count")
        start = self.record("start_us")
        first = np.cumsum(count) - count
        record_end = start + np.add.reduceat(dur, first, dtype=np.int64)
        ends = dur.astype(np.int64)  # becomes the ends in place: each record's first step carries its idle gap
        ends[first] += start - np.concatenate(([0], record_end[:-1]))
        np.cumsum(ends, out=ends)
        return ends


def _extended(column: array, values: list) -> array:
    """``column`` with ``values`` appended; widened to 8-byte items first when one does not fit."""
    n = len(column)
    try:
        column.extend(values)
    except OverflowError:
        del column[n:]
        column = array("q", column)
        column.extend(values)
    return column


def _arr(a: array) -> np.ndarray:
    """A read-only view of an ``array('q'|'i')`` (int64 or int32)."""
    return np.frombuffer(a, dtype=np.int64 if a.itemsize == 8 else np.int32) if len(a) else \
        np.zeros(0, dtype=np.int64)
