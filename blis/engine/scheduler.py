"""One vLLM-V1 scheduler: forms each engine step's batch and applies its outcome.

Follows `vllm/v1/core/sched/scheduler.py` (see shared docs `vllm-v1-scheduling.md`):
1. RUNNING requests in list (admission) order: a decode takes 1 token, an unfinished prefill
   `prefill_chunk` (``min(rest, long_prefill_token_threshold if > 0, token_budget left)``); a request that
   cannot get a KV block
   preempts the last running request (recompute) until it fits or preempts itself.
2. WAITING requests FCFS, only if nothing was preempted, while token budget is left, ``len(running) <
   max_num_seqs`` and their blocks (prefix-cache hits that are free count) can be allocated.
3. After the step: a request whose last prompt chunk ran emits a token; every decode emits one; a request
   with all its output tokens finishes and frees its blocks (their content stays cached).

Speed: decode progress is implicit. A decoding request is anchored at the step ``k0`` where it started
decoding with ``c0`` tokens in KV; at step k it holds ``c0 + k - k0`` and needs a new block exactly when
``k % B == (k0 - c0) % B`` (its *residue*), so the blocks all decoders need in a step are one counter
lookup, and its finish step is known in advance. Per-request work happens only at admission, prefill
chunks, preemption, skips (token budget exhausted) and exit.
"""

from __future__ import annotations

from collections import deque

from blis.engine.block_keys import BlockKeys
from blis.engine.kv_cache import BlockPool
from blis.engine.request import FINISHED, RUNNING_DECODE, RUNNING_PREFILL, WAITING, Request, prefill_chunk
from blis.engine.timeline import RequestLog
from blis.latency.base import StepBatch


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)  # (inlined as -(-a // b) on the hot paths)


class Scheduler:
    """Scheduler, KV cache and running sums of one instance. Times live in the instance; this counts steps."""

    def __init__(self, engine, num_blocks: int, block_keys: BlockKeys, recorder: RequestLog,
                 input_tokens: list, output_tokens: list, kv_preloaded: bool = False,
                 prefill_only: bool = False) -> None:
        self.max_num_seqs = engine.max_num_seqs
        self.max_num_scheduled_tokens = engine.max_num_batched_tokens  # the token budget of one step
        self.threshold = engine.long_prefill_token_threshold
        self.B = engine.block_size
        self.prefix_caching = engine.enable_prefix_caching
        self.pool = BlockPool(num_blocks)
        self.bk = block_keys
        self.rec = recorder
        self._input = input_tokens
        self._output = output_tokens
        self.waiting: deque[Request] = deque()
        self.running: dict[Request, None] = {}  # insertion-ordered: admission order
        self.prefilling: dict[Request, None] = {}  # running requests still computing their prompt
        self.num_decoding = 0
        self.sum_decode_ctx = 0  # sum over decoding requests of tokens in KV at the current step
        self.residue_count = [0] * self.B
        self.finish_at: dict[int, list[Request]] = {}
        self.step = 0
        # outcome of the step being run
        self._scheduled_prefills: list[Request] = []
        self._skipped: list[Request] = []
        self.step_preemptions = 0
        self.total_preemptions = 0
        # P/D decode instance: every request arrives with the KV of all but its last prompt token computed
        # elsewhere (vLLM's remote prefill recomputes that one token to sample the first output token)
        self.kv_preloaded = kv_preloaded
        self.on_finish = None  # optional callable(idx), called as a request finishes (Instance's hook)
        # P/D prefill instance: every request computes its prompt and one output token, then leaves
        self.prefill_only = prefill_only

    @property
    def budget(self) -> int:
        """Token budget of one step (``max_num_batched_tokens``)."""
        return self.max_num_scheduled_tokens

    # ------------------------------------------------------------------ queue
    def add_request(self, idx: int) -> None:
        """A request enters the WAITING queue (after the API server's queueing delay)."""
        if self.kv_preloaded:
            r = Request(idx, self._input[idx], self._output[idx], False)
            r.preloaded = r.num_prompt_tokens - 1
            self.waiting.append(r)
            return
        keyed = self.prefix_caching and self.bk.shareable[idx]
        self.waiting.append(Request(idx, self._input[idx], 1 if self.prefill_only else self._output[idx], keyed))

    @property
    def num_waiting(self) -> int:
        return len(self.waiting)

    @property
    def has_work(self) -> bool:
        return bool(self.running) or bool(self.waiting)

    # --------------------------------------------------------------- schedule
    def schedule(self) -> StepBatch:
        """Form step ``self.step``'s batch (vLLM `schedule()`), allocating KV blocks as it goes."""
        k = self.step
        B = self.B
        pool = self.pool
        token_budget = self.max_num_scheduled_tokens
        thr = self.threshold
        self.step_preemptions = 0
        self._scheduled_prefills = prefills = []
        self._skipped = []
        batch = StepBatch()

        # Fast path: every running request gets all it wants and all blocks fit.
        # (a chunk cut to the whole budget passes only when it is the step's one request: same outcome)
        demand = self.num_decoding
        need = self.residue_count[k % B]
        prefilling = self.prefilling
        if prefilling:
            wants = []
            for r in prefilling:
                want = prefill_chunk(r.num_tokens - r.num_computed_tokens, thr, token_budget)
                wants.append(want)
                demand += want
                need += -(-(r.num_computed_tokens + want) // B) - len(r.keys)
        if demand <= token_budget and need <= pool.num_free:
            if prefilling:
                for r, want in zip(prefilling, wants):
                    self._run_chunk(r, want)
                    prefills.append(r)
            pool.allocate(self.residue_count[k % B])
            token_budget -= demand
            batch.num_decode_tokens = self.num_decoding
            batch.sum_decode_context = self.sum_decode_ctx
        else:
            token_budget = self._schedule_running_slow(batch, token_budget)

        if not self.step_preemptions:
            token_budget = self._schedule_waiting(token_budget)

        chunks = batch.prefill_chunks
        n_prefill = 0
        sampled = batch.num_decode_tokens
        for r in prefills:
            chunks.append((r.chunk, r.num_computed_tokens - r.chunk))
            n_prefill += r.chunk
            if r.num_computed_tokens == r.num_tokens:
                sampled += 1
        batch.num_prefill_tokens = n_prefill
        batch.num_sampled = sampled
        return batch

    def _run_chunk(self, r: Request, n: int) -> None:
        """Schedule ``n`` prompt tokens of running request ``r`` and allocate/register their blocks."""
        B = self.B
        start = r.num_computed_tokens
        end = start + n
        new_blocks = -(-end // B) - len(r.keys)
        if new_blocks > 0:
            self.pool.allocate(new_blocks)
            r.keys.extend([None] * new_blocks)
        if r.all_keys is not None:  # enter newly full blocks in the prefix cache at scheduling time
            keys = r.keys
            all_keys = r.all_keys
            register = self.pool.register
            for i in range(start // B, min(end // B, len(all_keys))):
                if keys[i] is None and register(all_keys[i]):
                    keys[i] = all_keys[i]
        r.num_computed_tokens = end
        r.chunk = n

    def _decode_blocks_needed(self, r: Request, k: int) -> int:
        return 1 if (r.k0 - r.c0 - k) % self.B == 0 and not r.took_block else 0

    def _schedule_running_slow(self, batch: StepBatch, token_budget: int) -> int:
        """The general RUNNING pass: token_budget may run out (later requests skip the step) and a request
        that cannot get a block preempts the tail of the running list."""
        k = self.step
        B = self.B
        thr = self.threshold
        pool = self.pool
        order = list(self.running)
        scheduled_decodes: list[Request] = []
        i = 0
        stop = False
        while i < len(order) and token_budget > 0 and not stop:
            r = order[i]
            i += 1
            if r.status == WAITING:  # preempted earlier in this pass
                continue
            if r.status == RUNNING_DECODE:
                want = 1
                need = self._decode_blocks_needed(r, k)
            else:
                want = prefill_chunk(r.num_tokens - r.num_computed_tokens, thr, token_budget)
                need = _cdiv(r.num_computed_tokens + want, B) - len(r.keys)
            while need > pool.num_free:
                victim = next(reversed(self.running))
                if victim.status == RUNNING_DECODE and victim in scheduled_decodes:
                    scheduled_decodes.remove(victim)
                    token_budget += 1
                elif victim.status == RUNNING_PREFILL and victim in self._scheduled_prefills:
                    self._scheduled_prefills.remove(victim)
                    token_budget += victim.chunk
                    victim.num_computed_tokens -= victim.chunk
                self._preempt(victim)
                if victim is r:
                    stop = True
                    break
            if stop:
                break
            if r.status == RUNNING_DECODE:
                if need:
                    pool.allocate(1)
                    r.took_block = True
                scheduled_decodes.append(r)
            else:
                self._run_chunk(r, want)
                self._scheduled_prefills.append(r)
            token_budget -= want
        # Decoding requests that got no token this step skip it: shift their anchor by one step.
        if len(scheduled_decodes) != self.num_decoding:
            chosen = set(scheduled_decodes)
            for r in self.running:
                if r.status == RUNNING_DECODE and r not in chosen:
                    self._skip(r)
        for r in scheduled_decodes:
            r.took_block = False
        batch.num_decode_tokens = len(scheduled_decodes)
        batch.sum_decode_context = sum(r.c0 + k - r.k0 for r in scheduled_decodes)
        return token_budget

    def _skip(self, r: Request) -> None:
        k = self.step
        self._close_segment(r, k - 1)
        self.residue_count[r.residue] -= 1
        r.e0 += k - r.k0
        r.c0 += k - r.k0
        r.k0 = k + 1
        r.residue = (r.k0 - r.c0) % self.B
        self.residue_count[r.residue] += 1
        r.final_step += 1
        self._add_finish(r)
        r.seg_start = k + 1
        self._skipped.append(r)

    def _schedule_waiting(self, token_budget: int) -> int:
        B = self.B
        thr = self.threshold
        pool = self.pool
        waiting = self.waiting
        running = self.running
        while waiting and token_budget > 0 and len(running) < self.max_num_seqs:
            r = waiting[0]
            hit_blocks = free_hits = 0
            if r.keyed:
                if r.all_keys is None:
                    r.all_keys = self.bk.keys(r.idx, r.num_tokens // B)
                limit = (r.num_tokens - 1) // B  # at least one token is always computed
                hit_blocks, free_hits = pool.num_cached_hits(r.all_keys, limit)
            if r.preloaded:  # KV received from a prefill instance: no compute, fresh blocks
                hit_tokens = r.preloaded
            else:
                pool.queries += (r.num_tokens - 1) // B  # `BlockPool.count_lookup`, inlined
                hit_tokens = hit_blocks * B
            new = prefill_chunk(r.num_tokens - hit_tokens, thr, token_budget)
            need = -(-(hit_tokens + new) // B) - hit_blocks + free_hits
            if need > pool.num_free:
                break
            waiting.popleft()
            if hit_blocks:
                pool.touch(r.all_keys, hit_blocks)  # counts the hits
                r.keys = r.all_keys[:hit_blocks]
            r.num_computed_tokens = hit_tokens
            r.status = RUNNING_PREFILL
            running[r] = None
            self.prefilling[r] = None
            self.rec.on_scheduled(r.idx, self.step, hit_tokens)
            self._run_chunk(r, new)
            self._scheduled_prefills.append(r)
            token_budget -= new
        return token_budget

    # ------------------------------------------------------------- preemption
    def _preempt(self, r: Request) -> None:
        """Recompute preemption: free every block (content stays cached), back to the WAITING front."""
        k = self.step
        if r.status == RUNNING_DECODE:
            kv_tokens = r.c0 + k - r.k0
            r.num_output_tokens = r.e0 + k - r.k0
            self.num_decoding -= 1
            self.sum_decode_ctx -= kv_tokens
            self.residue_count[r.residue] -= 1
            self._close_segment(r, k - 1)
            held = _cdiv(kv_tokens + (1 if r.took_block else 0), self.B)
            r.took_block = False
        else:
            kv_tokens = r.num_computed_tokens
            held = len(r.keys)
            del self.prefilling[r]
        del self.running[r]
        # its own blocks are worth caching now: it will look them up when it resumes
        r.keyed = self.prefix_caching
        self._release(r, kv_tokens, held)
        r.status = WAITING
        r.num_tokens = r.num_prompt_tokens + r.num_output_tokens
        r.num_computed_tokens = 0
        r.preloaded = 0  # its KV is gone: recomputed here on resume
        r.keys = []
        r.all_keys = None
        self.waiting.appendleft(r)
        self.step_preemptions += 1
        self.total_preemptions += 1
        self.rec.on_preempted(r.idx)

    def _release(self, r: Request, kv_tokens: int, held: int) -> None:
        """Free the ``held`` blocks of ``r``, whose first ``kv_tokens`` tokens are computed; when ``r`` is
        keyed, its full blocks are entered in the prefix cache first (they stay there until reused)."""
        keys = r.keys[:held]
        if r.keyed:
            full = min(kv_tokens // self.B, held)
            if full > len(keys) or None in keys[:full]:
                content = self.bk.keys(r.idx, full)
                register = self.pool.register
                keys.extend([None] * (full - len(keys)))
                for i in range(full):
                    if keys[i] is None and register(content[i]):
                        keys[i] = content[i]
        anonymous = held - len(keys)
        keys.reverse()
        self.pool.release(keys, anonymous)

    # ------------------------------------------------------------ after step
    def update_from_output(self) -> None:
        """Apply the outcome of step ``self.step`` (tokens emitted, finishes), then advance the step
        (vLLM's ``Scheduler.update_from_output``)."""
        k = self.step
        B = self.B
        rec = self.rec
        self.sum_decode_ctx += self.num_decoding - len(self._skipped)
        for r in self._scheduled_prefills:
            r.chunk = 0
            if r.num_computed_tokens < r.num_tokens:
                continue
            # last prompt chunk ran: it emits a token
            del self.prefilling[r]
            r.all_keys = None
            r.num_output_tokens += 1
            r.seg_start = k
            if r.num_output_tokens == 1:
                rec.on_first_token(r.idx, k)
            if r.num_output_tokens >= r.max_tokens:
                self._finish(r, k, r.num_computed_tokens)
                continue
            r.status = RUNNING_DECODE
            r.k0 = k + 1
            r.c0 = r.num_computed_tokens
            r.e0 = r.num_output_tokens
            r.residue = (r.k0 - r.c0) % B
            self.residue_count[r.residue] += 1
            self.num_decoding += 1
            self.sum_decode_ctx += r.c0
            r.final_step = r.k0 + (r.max_tokens - r.e0) - 1
            self._add_finish(r)
        done = self.finish_at.pop(k, None)
        if done:
            for r in done:
                if r.status != RUNNING_DECODE or r.final_step != k:
                    continue  # stale entry (skipped or preempted since)
                kv_tokens = r.c0 + k + 1 - r.k0
                self.num_decoding -= 1
                self.sum_decode_ctx -= kv_tokens
                self.residue_count[r.residue] -= 1
                self._finish(r, k, kv_tokens)
        self.step = k + 1

    def _add_finish(self, r: Request) -> None:
        self.finish_at.setdefault(r.final_step, []).append(r)

    # ------------------------------------------------------- decode stretches
    def decode_stretch_limit(self) -> int:
        """How many steps, from the current one, are decode-only with an unchanged batch (issue #17): every
        running request decodes, nothing waits, the token budget covers them and the free blocks cover every
        block they take. Bounded by the next finish step (included: it ends at that step's end). 0 when the
        current step is not such a step. Arrivals are the instance's to check."""
        D = self.num_decoding
        if self.prefilling or self.waiting or not D or D > self.max_num_scheduled_tokens:
            return 0
        k = self.step
        finish_at = self.finish_at
        # all decoding: their finish steps are exact and every one is a key of `finish_at`; keys of requests
        # skipped or preempted since are stale and at most shorten the stretch (those behind us are dropped)
        first = min(finish_at)
        while first < k:
            del finish_at[first]
            first = min(finish_at)
        n = first - k + 1
        free = self.pool.num_free
        B = self.B
        cycles = free // D  # every B steps the decodes take D blocks in all
        if cycles * B >= n:
            return n
        left = free - cycles * D
        rc = self.residue_count
        i = 0
        while i < B:
            left -= rc[(k + i) % B]
            if left < 0:
                break
            i += 1
        return min(n, cycles * B + i)

    def decode_stretch_blocks(self, n: int) -> list[int]:
        """Blocks the decodes take in each of the next ``n`` steps (read-only)."""
        rc = self.residue_count
        B = self.B
        k = self.step
        if n <= B:
            return [rc[(k + i) % B] for i in range(n)]
        cycle = [rc[(k + i) % B] for i in range(B)]
        return (cycle * (n // B + 1))[:n]

    def start_decode_stretch(self, n: int, blocks: int) -> StepBatch:
        """Schedule ``n`` decode-only steps at once (``n <= decode_stretch_limit()``), taking their
        ``blocks`` KV blocks in bulk (one allocation of the sum takes the same blocks as one per step): the
        first ``n - 1`` are applied now, the last is left running (`update_from_output` applies it). Returns
        the first step's batch."""
        D = self.num_decoding
        batch = StepBatch(0, D, self.sum_decode_ctx, [], D)
        self.step_preemptions = 0
        self._scheduled_prefills = []
        self._skipped = []
        self.pool.allocate(blocks)
        self.sum_decode_ctx += (n - 1) * D
        self.step += n - 1
        return batch

    def _finish(self, r: Request, k: int, kv_tokens: int) -> None:
        del self.running[r]
        if r.keyed and not self.bk.is_parent[r.idx]:
            r.keyed = False  # its output blocks will never be looked up: keep them anonymous
        held = -(-kv_tokens // self.B)
        self._release(r, kv_tokens, held)
        r.status = FINISHED
        self._close_segment(r, k)
        self.rec.on_finished(r.idx, k)
        if self.on_finish is not None:
            self.on_finish(r.idx)

    def _close_segment(self, r: Request, last_step: int) -> None:
        if r.seg_start >= 0 and last_step >= r.seg_start:
            self.rec.add_segment(r.idx, r.seg_start, last_step)
        r.seg_start = -1

    # ------------------------------------------------------------- testing
    def check_invariants(self) -> None:
        """Assert KV conservation between steps (used for tests; O(running x blocks)).

        Used blocks = anonymous blocks held + distinct cached blocks held; each cached block's reference
        count equals the number of running requests holding it; counters match the running set.
        """
        self.pool.check()
        k = self.step
        anonymous = 0
        holders: dict = {}
        decoding = 0
        ctx = 0
        for r in self.running:
            if r.status == RUNNING_DECODE:
                decoding += 1
                kv = r.c0 + k - r.k0
                ctx += kv
                held = _cdiv(kv, self.B)
                assert r.final_step >= k, (r.idx, r.final_step, k)
            else:
                assert r.status == RUNNING_PREFILL
                held = len(r.keys)
                assert r.num_computed_tokens <= r.num_tokens
            keyed = [key for key in r.keys[:held] if key is not None]
            anonymous += held - len(keyed)
            for key in keyed:
                holders[key] = holders.get(key, 0) + 1
        assert decoding == self.num_decoding, (decoding, self.num_decoding)
        assert ctx == self.sum_decode_ctx, (ctx, self.sum_decode_ctx)
        assert sum(self.residue_count) == decoding
        for key, n in holders.items():
            assert self.pool.ref_count(key) == n, (key, self.pool.ref_count(key), n)
        assert self.pool.num_used == anonymous + len(holders), (self.pool.num_used, anonymous, len(holders))
        assert len(self.running) <= self.max_num_seqs
        for r in self.waiting:
            assert r.status == WAITING
