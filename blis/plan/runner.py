"""Drive search generators on a backend: in-process, a local process pool, or Ray.

Each generator yields a batch of tasks and is sent their results in task order once the whole batch is done,
so its path (and answer) never depends on which worker finished first."""

from __future__ import annotations

import os
import sys
import threading
from typing import Callable, Optional

from blis.plan.probe import run_probe


class SerialBackend:
    """Probes in this process, one after another (``workers=1``)."""

    name = "serial"
    workers = 1

    def submit(self, task):
        return ("done", run_probe(task))

    def wait(self, handles: list) -> list:
        return [(h, h[1]) for h in handles]

    def close(self) -> None:
        pass


class PoolBackend:
    """A local process pool; each worker runs probes in-process.

    On Linux, from a single-threaded process, the workers are forked (started here, before any progress
    thread exists), so they inherit the modules and latency-model tables the candidate checks already loaded:
    a spawned worker spends seconds importing them again. From a threaded process (a notebook kernel, after
    Ray) they come from a fork server with blis preloaded; elsewhere they are spawned."""

    name = "local"

    def __init__(self, workers: int) -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        if sys.platform.startswith("linux") and threading.active_count() == 1:
            context = multiprocessing.get_context("fork")
        elif "forkserver" in multiprocessing.get_all_start_methods():  # forking a threaded process is unsafe
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(["blis.plan.probe", "pandas"])
        else:
            context = multiprocessing.get_context("spawn")
        self.workers = workers
        self.executor = ProcessPoolExecutor(max_workers=workers, mp_context=context)
        self.executor.submit(int).result()  # start the workers now (fork starts them all at the first task)

    def submit(self, task):
        return self.executor.submit(run_probe, task)

    def wait(self, handles: list) -> list:
        from concurrent.futures import FIRST_COMPLETED, wait

        done, _ = wait(handles, return_when=FIRST_COMPLETED)
        return [(h, h.result()) for h in handles if h in done]

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)


def make_backend(workers: Optional[int], ray_address: Optional[str]):
    if ray_address is not None:
        from blis.plan.ray_backend import RayBackend

        return RayBackend(ray_address)
    if workers is None:
        workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if workers <= 1:
        return SerialBackend()
    return PoolBackend(workers)


def drive(backend, searches: list, on_event: Optional[Callable[[int], None]] = None) -> list:
    """Run the search generators to the end on ``backend``; returns their return values in order.
    ``on_event(running)`` is called whenever the number of probes in flight changes."""
    results: list = [None] * len(searches)
    # generator index -> (handles of its current batch, results gathered so far)
    batches: dict[int, tuple[list, dict]] = {}
    owner: dict = {}

    def advance(i: int, sent) -> None:
        gen = searches[i]
        try:
            tasks = next(gen) if sent is None else gen.send(sent)
        except StopIteration as stop:
            results[i] = stop.value
            batches.pop(i, None)
            return
        handles = [backend.submit(t) for t in tasks]
        batches[i] = (handles, {})
        for k, h in enumerate(handles):
            owner[id(h)] = (i, k)

    for i in range(len(searches)):
        advance(i, None)
    while batches:
        pending = [h for handles, got in batches.values() for k, h in enumerate(handles) if k not in got]
        if on_event:
            on_event(len(pending))
        for h, value in backend.wait(pending):
            i, k = owner.pop(id(h))
            handles, got = batches[i]
            got[k] = value
            if len(got) == len(handles):
                advance(i, [got[j] for j in range(len(handles))])
    return results
