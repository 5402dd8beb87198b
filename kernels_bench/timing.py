"""Timing kernels on the GPU: CUDA events around each call, warm-up first, the L2 cache flushed before
every timed call, the median of many repetitions.

A ``Timer`` takes a zero-argument callable that launches the kernel and returns per-repetition
latencies in microseconds. `CudaEventTimer` is the real one (torch imported when it is first used);
tests pass their own timers to `median_latency_us`.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

Timer = Callable[[Callable[[], Any]], Sequence[float]]

MIB = 1 << 20


def median_latency_us(fn: Callable[[], Any], timer: Timer) -> float:
    """Median of the per-repetition latencies (microseconds) that ``timer`` measures for ``fn``."""
    samples = list(timer(fn))
    if not samples:
        raise ValueError("timer returned no samples")
    return float(statistics.median(samples))


def repetitions_for(estimate_us: float, target_ms: float, min_reps: int, max_reps: int) -> int:
    """How many timed calls fit in ``target_ms`` given one call takes ``estimate_us``, within bounds."""
    if estimate_us <= 0:
        return max_reps
    return int(min(max_reps, max(min_reps, (target_ms * 1000.0) // estimate_us)))


@dataclass
class CudaEventTimer:
    """Times a kernel launcher with CUDA events on the current stream.

    warmup: untimed calls first (module load, autotuning, JIT, allocator warm-up).
    The repetition count is chosen so the timed calls take about ``target_ms`` (between ``min_reps`` and
    ``max_reps``), from one timed probe call. Before every timed call a buffer of ``flush_bytes`` (default:
    four times the L2 size, at least 256 MiB) is overwritten, outside the events, so each call reads its
    inputs from device memory as in a real step, not from a cache warmed by the previous repetition.
    The flush also keeps the GPU busy while the CPU queues the next call, so host launch overhead does not
    enter the timing (as with CUDA graphs in a serving engine).
    """

    warmup: int = 3
    min_reps: int = 10
    max_reps: int = 100
    target_ms: float = 100.0
    flush_bytes: int | None = None
    _flush: Any = field(default=None, init=False, repr=False)

    def _flush_buffer(self) -> Any:
        if self._flush is None:
            import torch

            nbytes = self.flush_bytes
            if nbytes is None:
                l2 = int(getattr(torch.cuda.get_device_properties(torch.cuda.current_device()), "L2_cache_size", 0))
                nbytes = max(256 * MIB, 4 * l2)
            self._flush = torch.empty(nbytes // 4, dtype=torch.int32, device="cuda")
        return self._flush

    def _timed(self, fn: Callable[[], Any], reps: int) -> list[float]:
        import torch

        flush = self._flush_buffer()
        starts = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
        ends = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
        for i in range(reps):
            flush.zero_()
            starts[i].record()
            fn()
            ends[i].record()
        torch.cuda.synchronize()
        return [s.elapsed_time(e) * 1000.0 for s, e in zip(starts, ends)]

    def __call__(self, fn: Callable[[], Any]) -> list[float]:
        import torch

        for _ in range(self.warmup):
            fn()
        torch.cuda.synchronize()
        probe = self._timed(fn, 1)[0]
        reps = repetitions_for(probe, self.target_ms, self.min_reps, self.max_reps)
        return self._timed(fn, reps)

    def describe(self) -> str:
        return (
            f"CUDA events around each call; {self.warmup} warm-up calls; median of {self.min_reps}-"
            f"{self.max_reps} calls (about {self.target_ms:g} ms of calls per point); L2 flushed before "
            f"each call by overwriting {'4x L2 (>= 256 MiB)' if self.flush_bytes is None else self.flush_bytes}"
            " bytes; random inputs"
        )
