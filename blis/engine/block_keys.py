"""Content keys of full KV blocks: two blocks with equal keys hold identical tokens, so one can serve the
other from the prefix cache (vLLM chains a hash over token ids; the workload's identities play that role).

Block ``i`` of request ``r`` covers tokens ``[i*B, (i+1)*B)`` of its sequence (prompt, then output):
- inside the part inherited from a multi-turn parent: the parent's key for block ``i``;
- inside the shared system prompt of its prefix group: ``(0, group, i)``;
- inside its prompt: ``(1, prompt_id, i)`` (equal prompt ids mean equal prompts);
- inside its own output: ``(2, r, i)``.
Each key implies every earlier block of the sequence, like vLLM's chained hash.
"""

from __future__ import annotations

import numpy as np

from blis.workload.request_table import RequestTable


class BlockKeys:
    """Builds the keys of a request's full blocks; knows which requests can ever share blocks."""

    __slots__ = ("block_size", "_input", "_output", "_group", "_prefix_len", "_prompt_id", "_parent",
                 "shareable", "is_parent", "_prompt_memo")

    def __init__(self, requests: RequestTable, block_size: int, input_tokens: list | None = None,
                 output_tokens: list | None = None) -> None:
        """``input_tokens``/``output_tokens``: the requests' lengths as lists, when the caller holds them
        already (shared, not copied: a million requests' lists weigh ~40 MB each)."""
        self.block_size = block_size
        self._input = requests.input_tokens.tolist() if input_tokens is None else input_tokens
        self._output = requests.output_tokens.tolist() if output_tokens is None else output_tokens
        self._group = requests.prefix_group.tolist()
        self._prefix_len = requests.prefix_len.tolist()
        self._prompt_id = requests.prompt_id.tolist()
        self._parent = requests.parent.tolist()
        # A request's blocks can be hit by another request only if it shares a group prefix, repeats a
        # prompt, inherits from a parent or is one. Other requests get anonymous blocks (cheaper) until
        # a preemption makes their own blocks worth caching.
        pid = requests.prompt_id
        _, inverse, counts = np.unique(pid, return_inverse=True, return_counts=True)
        repeated = counts[inverse] > 1
        is_parent = np.zeros(len(requests), dtype=bool)
        is_parent[requests.parent[requests.parent >= 0]] = True
        share = (requests.prefix_group >= 0) | repeated | is_parent | (requests.parent >= 0)
        self.shareable = share.tolist()
        self.is_parent = is_parent.tolist()
        self._prompt_memo: tuple = (-1, [])  # (request, keys of its full prompt blocks): routers ask per instance

    def num_prompt_blocks(self, r: int) -> int:
        """Full blocks of request ``r``'s prompt."""
        return self._input[r] // self.block_size

    def prompt_keys(self, r: int) -> list:
        """Keys of the full blocks of request ``r``'s prompt (read-only; the last answer is kept, since every
        instance sharing these keys asks for the same request in turn)."""
        if self._prompt_memo[0] != r:
            self._prompt_memo = (r, self.keys(r, self._input[r] // self.block_size))
        return self._prompt_memo[1]

    def keys(self, r: int, num_blocks: int) -> list:
        """Keys of the first ``num_blocks`` full blocks of request ``r``'s sequence."""
        bs = self.block_size
        parent = self._parent[r]
        keys: list = []
        start = 0
        if parent >= 0:
            inherited = min(num_blocks, (self._input[parent] + self._output[parent]) // bs)
            keys = self.keys(parent, inherited)
            start = inherited
        if start >= num_blocks:
            return keys
        group = self._group[r]
        if group >= 0:
            end = min(num_blocks, self._prefix_len[r] // bs)
            if end > start:
                keys.extend([(0, group, i) for i in range(start, end)])
                start = end
        end = min(num_blocks, self._input[r] // bs)
        if end > start:
            pid = self._prompt_id[r]
            keys.extend([(1, pid, i) for i in range(start, end)])
            start = end
        if num_blocks > start:
            keys.extend([(2, r, i) for i in range(start, num_blocks)])
        return keys
