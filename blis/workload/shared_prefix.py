"""Shared-prefix workloads (inference-perf's ``shared_prefix`` data type) as request columns.

G groups x P prompts: every prompt is ``system prompt of its group + question``. All lengths in tokens.

- Single-turn: request with slot s uses prompt ``s mod (G*P)``; equal prompts have equal ``prompt_id`` (full
  prefix-cache hits are possible), and ``prefix_group``/``prefix_len`` mark the shared system prompt.
- Multi-turn: G*P users; the request with slot s belongs to user ``s mod (G*P)``. Turn r of a user sends
  its whole conversation so far plus the question again, so its prompt is
  ``previous prompt + previous output + question`` and its ``parent`` is that user's previous turn. Every
  turn has its own ``prompt_id``.

The slot is the request's number inside its load stage (inference-perf restarts numbering every stage) or its
index when there are no stages. Users keep their conversations across stages.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from blis.workload.lengths import retokenized_lengths


def shared_prefix_columns(spec: Any, slot: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Request columns for the requests with the given slots (in arrival order).

    ``spec`` has num_groups, prompts_per_group, system_prompt_len, question_len, output_len, multi_turn,
    shuffle, token_inflation, token_noise, bos_tokens (see ``blis.workload.spec.SharedPrefix``).
    """
    g, p = spec.num_groups, spec.prompts_per_group
    num_prompts = g * p
    n = len(slot)
    # The prompt set is drawn once: group of each prompt (position in the cycle), then token counts.
    order = rng.permutation(num_prompts) if spec.shuffle else np.arange(num_prompts)
    group_of_prompt = order // p
    sys_len = retokenized_lengths(rng, g, spec.system_prompt_len, spec.token_inflation, spec.token_noise)
    question_len = retokenized_lengths(
        rng, num_prompts, spec.question_len, spec.token_inflation, spec.token_noise
    )
    prompt = np.asarray(slot, dtype=np.int64) % num_prompts
    group = group_of_prompt[prompt]
    prefix = spec.bos_tokens + sys_len[group]
    has_prefix = spec.system_prompt_len > 0
    output = np.full(n, spec.output_len, dtype=np.int64)

    if not spec.multi_turn:
        input_tokens = prefix + question_len[prompt]
        parent = np.full(n, -1, dtype=np.int64)
        prompt_id = prompt
    else:
        by_user = np.argsort(prompt, kind="stable")
        sorted_user = prompt[by_user]
        first = np.ones(n, dtype=bool)
        first[1:] = sorted_user[1:] != sorted_user[:-1]
        run_start = np.maximum.accumulate(np.where(first, np.arange(n), 0))
        turn = np.empty(n, dtype=np.int64)
        turn[by_user] = np.arange(n) - run_start
        parent = np.full(n, -1, dtype=np.int64)
        parent[by_user[~first]] = by_user[np.flatnonzero(~first) - 1]
        # Turn r: system + (r + 1) questions + r outputs (every earlier question and answer is kept).
        input_tokens = prefix + (turn + 1) * question_len[prompt] + turn * spec.output_len
        prompt_id = np.arange(n, dtype=np.int64)

    return {
        "input_tokens": np.maximum(input_tokens, 1),
        "output_tokens": output,
        "prefix_group": group if has_prefix else np.full(n, -1, dtype=np.int64),
        "prefix_len": np.minimum(prefix, np.maximum(input_tokens, 1))
        if has_prefix
        else np.zeros(n, np.int64),
        "prompt_id": prompt_id,
        "parent": parent,
    }
