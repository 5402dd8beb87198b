"""One request as the scheduler sees it, its states, and the prefill-chunk rule (vLLM V1's names).

Names follow `vllm/v1/request.py` and `vllm/v1/core/sched/scheduler.py`: ``num_prompt_tokens``,
``max_tokens`` (output tokens it will produce), ``num_tokens`` (prompt plus tokens generated before a
preemption), ``num_computed_tokens`` (tokens in KV), ``num_output_tokens`` (tokens emitted), ``status``.
vLLM has one RUNNING state; blis splits it into prefill and decode because a decoding request advances
implicitly (see `blis.engine.scheduler`).

``status`` holds a plain int (comparing exact ints is the interpreter's fastest compare, and the hot loop
does it per running request); `RequestStatus` is the public, readable form of the same values.
"""

from __future__ import annotations

from enum import IntEnum


class RequestStatus(IntEnum):
    """Where a request is in one instance's scheduler."""

    WAITING = 0  # in the WAITING queue (new, or preempted and waiting to recompute)
    RUNNING_PREFILL = 1  # running, still computing its prompt (possibly in chunks)
    RUNNING_DECODE = 2  # running, one output token per step
    FINISHED = 3  # emitted all its output tokens; its blocks are freed


# plain-int copies for the scheduler's hot loop
WAITING = int(RequestStatus.WAITING)
RUNNING_PREFILL = int(RequestStatus.RUNNING_PREFILL)
RUNNING_DECODE = int(RequestStatus.RUNNING_DECODE)
FINISHED = int(RequestStatus.FINISHED)


def prefill_chunk(remaining: int, threshold: int, token_budget: int) -> int:
    """Prompt tokens a request computes this step (vLLM): all ``remaining`` ones, cut to the
    ``long_prefill_token_threshold`` when it is > 0, and to the step's ``token_budget`` left (tokens)."""
    if 0 < threshold < remaining:
        remaining = threshold
    return remaining if remaining < token_budget else token_budget


class Request:
    """Live state of one admitted-or-waiting request on one instance (dropped when it finishes).

    Decode progress is implicit: a request decoding since step ``k0`` with ``c0`` tokens in KV and ``e0``
    tokens emitted holds ``c0 + k - k0`` tokens at step k and has emitted ``e0 + k - k0``; its last token
    comes at step ``final_step``. ``num_computed_tokens`` and ``num_output_tokens`` are exact only while it
    is not decoding (`Scheduler` updates them at preemption).
    """

    __slots__ = ("idx", "num_prompt_tokens", "max_tokens", "num_tokens", "num_computed_tokens",
                 "num_output_tokens", "status", "keys", "all_keys", "keyed", "k0", "c0", "e0", "residue",
                 "final_step", "seg_start", "chunk", "took_block", "preloaded")

    def __init__(self, idx: int, num_prompt_tokens: int, max_tokens: int, keyed: bool) -> None:
        self.idx = idx
        self.num_prompt_tokens = num_prompt_tokens
        self.max_tokens = max_tokens
        self.num_tokens = num_prompt_tokens  # prompt plus tokens generated before a preemption
        self.num_computed_tokens = 0  # tokens in KV (while not decoding)
        self.num_output_tokens = 0  # output tokens emitted (while not decoding; e0 + k - k0 while decoding)
        self.status = WAITING
        self.keys: list = []  # content key (or None) of each block held, in sequence order
        self.all_keys: list | None = None  # keys of the full blocks of num_tokens, while prefilling
        self.keyed = keyed
        self.k0 = self.c0 = self.e0 = self.residue = self.final_step = 0
        self.seg_start = -1
        self.chunk = 0  # tokens scheduled in the current step
        self.took_block = False  # a decode block was allocated for it in the current step
        self.preloaded = 0  # prompt tokens whose KV arrived from a prefill instance (P/D), not computed here

    @property
    def request_status(self) -> RequestStatus:
        return RequestStatus(self.status)
