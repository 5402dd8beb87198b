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
    """One row per engine step of one instance (times in microseconds, sizes in tokens/blocks)."""

    COLUMNS = ("start_us", "duration_us", "prefill_tokens", "decode_tokens", "num_requests",
               "kv_blocks_used", "preemptions", "num_waiting")

    def __init__(self) -> None:
        for name in self.COLUMNS:
            setattr(self, name, array("q"))

    def add(self, start_us: int, duration_us: int, prefill: int, decode: int, num_requests: int,
            kv_used: int, preemptions: int, num_waiting: int) -> None:
        self.start_us.append(start_us)
        self.duration_us.append(duration_us)
        self.prefill_tokens.append(prefill)
        self.decode_tokens.append(decode)
        self.num_requests.append(num_requests)
        self.kv_blocks_used.append(kv_used)
        self.preemptions.append(preemptions)
        self.num_waiting.append(num_waiting)

    def add_run(self, starts: list[int], durations: list[int], decode: int, kv_used: list[int]) -> None:
        """Rows of consecutive decode-only steps of ``decode`` requests (no prefill, preemption or waiting)."""
        n = len(starts)
        self.start_us.extend(starts)
        self.duration_us.extend(durations)
        self.prefill_tokens.extend([0] * n)
        self.decode_tokens.extend([decode] * n)
        self.num_requests.extend([decode] * n)
        self.kv_blocks_used.extend(kv_used)
        self.preemptions.extend([0] * n)
        self.num_waiting.extend([0] * n)

    def __len__(self) -> int:
        return len(self.start_us)

    def column(self, name: str) -> np.ndarray:
        a = getattr(self, name)
        return np.frombuffer(a, dtype=np.int64) if len(a) else np.zeros(0, dtype=np.int64)

    def end_us(self) -> np.ndarray:
        return self.column("start_us") + self.column("duration_us")
