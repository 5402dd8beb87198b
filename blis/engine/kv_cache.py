"""Paged KV cache with prefix caching: a pool of fixed-size blocks, a hash map of cached full blocks, and
an LRU queue of free blocks (vLLM V1's `BlockPool` / `FreeKVCacheBlockQueue`).

A block has no numeric id here. A *cached* block is named by its content key (a tuple of ints, see
`blis.engine.block_keys`); a block that nobody can ever hit is anonymous (``None``). The free queue keeps
vLLM's order: blocks never used come first, then blocks in the order they were freed, a request's blocks
tail-first. Allocation pops from the front, evicting a cached block's key as it is reused (lazy eviction).

The queue is a deque of *runs* (one per release: a list of keys, or just a count when none of its blocks
stays cached) so that freeing a request's blocks is one append and allocating n blocks slices lists in C, or
subtracts, rather than looping in Python.
"""

from __future__ import annotations

from collections import deque
from typing import Hashable, Optional

BlockKey = Optional[Hashable]


class BlockPool:
    """Counts and prefix-cache state of one instance's KV blocks (all sizes in blocks).

    One dict holds the cache: a cached key maps to the free-queue run (a list) that holds its block while it
    is free, or to the number of requests holding it (an int >= 1) while it is in use."""

    __slots__ = ("num_blocks", "num_free", "_fresh", "_runs", "_cached", "hits", "queries")

    def __init__(self, num_blocks: int) -> None:
        self.num_blocks = num_blocks
        self.num_free = num_blocks
        self._fresh = num_blocks  # never-used blocks, at the front of the free queue
        # released blocks, front = evicted first: a list of keys (None: anonymous) per release, or a count
        # where none of them stays cached
        self._runs: deque = deque()
        self._cached: dict = {}  # key -> its run (list) while free | its reference count (int) while held
        self.hits = 0  # blocks served from the cache (prefix-cache hit counters)
        self.queries = 0  # blocks looked up

    @property
    def num_used(self) -> int:
        return self.num_blocks - self.num_free

    def ref_count(self, key) -> int:
        """Requests holding the cached block ``key`` (0 while it is free)."""
        v = self._cached[key]
        return 0 if type(v) is list else v

    def num_cached_hits(self, keys: list, max_blocks: int) -> tuple[int, int]:
        """Length of the longest cached prefix of ``keys`` (at most ``max_blocks``), and how many of those
        blocks are currently free (taking them uses free blocks, as in vLLM). A pure probe: counts nothing."""
        cached = self._cached
        n = 0
        free_hits = 0
        limit = min(max_blocks, len(keys))
        while n < limit:
            key = keys[n]
            if key is None:
                break
            v = cached.get(key)
            if v is None:
                break
            if type(v) is list:
                free_hits += 1
            n += 1
        return n, free_hits

    def count_lookup(self, num_blocks: int) -> None:
        """Count a prefix-cache lookup of ``num_blocks`` blocks (the hit-rate denominator; vLLM counts the
        blocks a scheduling attempt queries, also for requests whose blocks can never be shared)."""
        self.queries += num_blocks

    def touch(self, keys: list, n: int) -> None:
        """Take the first ``n`` cached blocks of ``keys`` for a request (prefix hit; counted in ``hits``)."""
        self.hits += n
        cached = self._cached
        for i in range(n):
            key = keys[i]
            v = cached[key]
            if type(v) is list:  # free: leave the LRU queue
                v.remove(key)
                cached[key] = 1
                self.num_free -= 1
            else:
                cached[key] = v + 1

    def allocate(self, n: int) -> None:
        """Take ``n`` blocks from the front of the free queue (caller checked ``num_free``)."""
        self.num_free -= n
        fresh = self._fresh
        if n <= fresh:
            self._fresh = fresh - n
            return
        n -= fresh
        self._fresh = 0
        runs = self._runs
        cached = self._cached
        while n:
            run = runs[0]
            if type(run) is int:  # anonymous blocks only: a count
                if run <= n:
                    runs.popleft()
                    n -= run
                else:
                    runs[0] = run - n
                    n = 0
                continue
            if len(run) <= n:
                runs.popleft()
                taken = run
            else:
                taken = run[:n]
                del run[:n]
            n -= len(taken)
            for key in filter(None, taken):  # evict cached content being reused
                del cached[key]

    def register(self, key) -> bool:
        """Enter a block that a request holds (just allocated) in the cache under ``key``.
        Returns False, leaving it anonymous, when the key is cached already (duplicate content)."""
        cached = self._cached
        if key in cached:
            return False
        cached[key] = 1
        return True

    def release(self, keys_tail_first: list, anonymous: int) -> None:
        """Give back a request's blocks: ``anonymous`` unkeyed blocks (its newest) then ``keys_tail_first``
        (keys or None), appended to the back of the free queue in that order. A run of blocks none of which
        stays cached is kept as a count (anonymous blocks are interchangeable)."""
        runs = self._runs
        if not any(keys_tail_first):  # nothing cached: a count
            n = anonymous + len(keys_tail_first)
            if n:
                if runs and type(runs[-1]) is int:
                    runs[-1] += n
                else:
                    runs.append(n)
                self.num_free += n
            return
        cached = self._cached
        run: list = [None] * anonymous
        freed = []
        for key in keys_tail_first:
            if key is None:
                run.append(None)
                continue
            c = cached[key] - 1
            if c == 0:
                run.append(key)
                freed.append(key)
            else:
                cached[key] = c
        if freed:
            for key in freed:
                cached[key] = run
            runs.append(run)
            self.num_free += len(run)
        elif run:
            self.release([], len(run))

    def check(self) -> None:
        """Invariant check for tests: counts agree with the queue and reference counts."""
        in_queue = self._fresh + sum(r if type(r) is int else len(r) for r in self._runs)
        assert in_queue == self.num_free, (in_queue, self.num_free)
        assert 0 <= self.num_free <= self.num_blocks
        for key, v in self._cached.items():
            if type(v) is list:
                assert key in v
            else:
                assert v >= 1
