"""Shared-prefix workloads: single-turn prompt cycling, multi-turn conversation chains."""

from __future__ import annotations

import numpy as np

from blis.workload import Workload


def test_single_turn_cycles_prompts():
    wl = Workload.shared_prefix(
        num_groups=3,
        prompts_per_group=4,
        system_prompt_len=200,
        question_len=30,
        output_len=64,
        rate=5,
        num_requests=50,
    )
    t = wl.generate()
    n = np.arange(50)
    assert (t.prompt_id == n % 12).all()
    assert (t.prefix_group == (n % 12) // 4).all()
    assert (t.prefix_len == 200).all()
    assert (t.input_tokens == 230).all() and (t.output_tokens == 64).all()
    assert (t.parent == -1).all()
    t.validate()


def test_single_turn_restarts_cycle_each_stage():
    wl = Workload.shared_prefix(
        num_groups=2,
        prompts_per_group=5,
        rate=1,
        stages=[{"rate": 3, "duration": 5}, {"rate": 2, "duration": 4}],
        stage_gap_s=2,
    )
    t = wl.generate()
    assert len(t) == 15 + 8
    assert (t.prompt_id[:15] == np.arange(15) % 10).all()
    assert (t.prompt_id[15:] == np.arange(8) % 10).all()


def test_shuffled_groups_keep_group_sizes():
    wl = Workload.shared_prefix(num_groups=10, prompts_per_group=10, num_requests=300, shuffle=True)
    t = wl.generate()
    groups_of_first_cycle = t.prefix_group[:100]
    assert (np.bincount(groups_of_first_cycle) == 10).all()
    assert not (groups_of_first_cycle == np.arange(100) // 10).all()
    # the same prompt always belongs to the same group and has the same length
    assert (t.prefix_group[:200] == t.prefix_group[100:300]).all()
    assert (t.input_tokens[:200] == t.input_tokens[100:300]).all()


def test_retokenization_model_changes_lengths_but_keeps_cycle():
    wl = Workload.shared_prefix(
        system_prompt_len=100,
        question_len=466,
        output_len=247,
        num_requests=1000,
        token_inflation=1.05,
        token_noise=0.3,
        bos_tokens=1,
        seed=4,
    )
    t = wl.generate()
    lengths = t.input_tokens[:100]
    assert abs(lengths.mean() - (1 + 1.05 * 566)) < 6
    assert 2 < lengths.std() < 15
    assert (t.input_tokens[:-100] == t.input_tokens[100:]).all()
    # prompts of one group share the same prefix length
    for g in range(10):
        assert np.unique(t.prefix_len[t.prefix_group == g]).size == 1
    assert (t.prefix_len < t.input_tokens).all()


def test_multi_turn_parent_chain_and_growth():
    q, o, s = 40, 25, 300
    wl = Workload.shared_prefix(
        num_groups=2,
        prompts_per_group=3,
        system_prompt_len=s,
        question_len=q,
        output_len=o,
        rate=2,
        num_requests=40,
        multi_turn=True,
    )
    t = wl.generate()
    t.validate()
    users = 6
    idx = np.arange(40)
    assert (t.parent == np.where(idx >= users, idx - users, -1)).all()
    assert (t.input_tokens[:users] == s + q).all()
    has_parent = t.parent >= 0
    p = t.parent[has_parent]
    assert (t.input_tokens[has_parent] == t.input_tokens[p] + t.output_tokens[p] + q).all()
    assert np.unique(t.prompt_id).size == 40
    assert (t.prefix_group == (idx % users) // 3).all() and (t.prefix_len == s).all()


def test_multi_turn_conversations_continue_across_stages():
    wl = Workload.shared_prefix(
        num_groups=1,
        prompts_per_group=4,
        system_prompt_len=10,
        question_len=5,
        output_len=7,
        multi_turn=True,
        stages=[{"rate": 2, "duration": 3}, {"rate": 1, "duration": 2}],
    )
    t = wl.generate()
    assert len(t) == 6 + 2
    # stage 2 request 0 is user 0's 3rd turn (stage 1 had slots 0..5 -> users 0,1,2,3,0,1)
    assert t.parent[6] == 4 and t.parent[7] == 5
    assert t.input_tokens[6] == 10 + 3 * 5 + 2 * 7
