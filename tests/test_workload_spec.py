"""Workload spec: presets, determinism, validation, overrides, serialisation."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from scipy import stats

from blis.cli import format_validation_error
from blis.config import SimConfig
from blis.errors import BlisInputError
from blis.workload import RequestTable, Workload

# The issue's table (reference simulator presets): (mean, std, min, max) for prompt and output, tokens.
ISSUE_PRESETS = {
    "chatbot": ((256, 100, 2, 800), (256, 100, 1, 1024)),
    "contentgen": ((1024, 150, 10, 2048), (1024, 200, 10, 2048)),
    "summarization": ((4096, 500, 100, 8192), (512, 150, 10, 2048)),
    "multidoc": ((10240, 1200, 500, 20480), (1536, 300, 50, 4096)),
}


def clamped_normal_moments(mean, std, lo, hi):
    """Mean and std of clip(N(mean, std), lo, hi) from scipy's normal (independent of the code under test)."""
    a, b = (lo - mean) / std, (hi - mean) / std
    pa, pb = stats.norm.cdf(a), stats.norm.cdf(b)
    inner = stats.truncnorm(a, b, loc=mean, scale=std)
    m_in, v_in = inner.mean(), inner.var()
    w_in = pb - pa
    m = lo * pa + hi * (1 - pb) + m_in * w_in
    second = lo**2 * pa + hi**2 * (1 - pb) + (v_in + m_in**2) * w_in
    return m, math.sqrt(second - m * m)


@pytest.mark.parametrize("name", sorted(ISSUE_PRESETS))
def test_preset_lengths_clamp_and_moments(name):
    n = 200_000
    table = Workload.preset(name, rate=50, num_requests=n, seed=3).generate()
    assert len(table) == n
    for values, (mean, std, lo, hi) in zip((table.input_tokens, table.output_tokens), ISSUE_PRESETS[name]):
        assert values.min() >= lo and values.max() <= hi
        exp_mean, exp_std = clamped_normal_moments(mean, std, lo, hi)
        assert abs(values.mean() - exp_mean) < 5 * exp_std / math.sqrt(n)
        assert values.std() == pytest.approx(exp_std, rel=0.01)
    assert (table.prefix_group == -1).all() and (table.parent == -1).all()
    assert (table.prompt_id == np.arange(n)).all()


def test_chatbot_clamp_is_hit():
    # chatbot's lower bounds are about 2.5 std below the mean: some requests must sit exactly on them.
    t = Workload.preset("chatbot", num_requests=100_000).generate()
    assert (t.output_tokens == 1).sum() > 100 and (t.input_tokens == 2).sum() > 100


def test_defaults():
    wl = Workload.preset("chatbot")
    assert (wl.rate, wl.num_requests, wl.seed, wl.arrival) == (1.0, 100, 42, "constant")
    t = wl.generate()
    assert len(t) == 100 and t.arrival_us[-1] == 99_000_000
    assert Workload().preset_name == "chatbot"


def test_deterministic_and_seed_sensitive():
    def cols(t: RequestTable):
        return [t.arrival_us, t.input_tokens, t.output_tokens, t.prefix_group, t.prompt_id, t.parent]

    for arrival in ("poisson", "gamma", "inference-perf-constant"):
        a = Workload.preset("contentgen", rate=5, num_requests=2000, seed=7, arrival=arrival).generate()
        b = Workload.preset("contentgen", rate=5, num_requests=2000, seed=7, arrival=arrival).generate()
        c = Workload.preset("contentgen", rate=5, num_requests=2000, seed=8, arrival=arrival).generate()
        assert all(np.array_equal(x, y) for x, y in zip(cols(a), cols(b)))
        assert not np.array_equal(a.arrival_us, c.arrival_us)
        assert not np.array_equal(a.input_tokens, c.input_tokens)


def test_lengths_do_not_depend_on_arrival_process():
    a = Workload.preset("chatbot", num_requests=500, arrival="constant").generate()
    b = Workload.preset("chatbot", num_requests=500, arrival="poisson").generate()
    assert np.array_equal(a.input_tokens, b.input_tokens)


def test_explicit_lengths_and_prefix_tokens():
    wl = Workload(
        input={"mean": 100, "std": 0, "min": 1, "max": 1000},
        output={"mean": 20, "std": 5, "min": 20, "max": 20},
        prefix_tokens=30,
        num_requests=50,
    )
    t = wl.generate()
    assert (t.input_tokens == 130).all() and (t.output_tokens == 20).all()
    assert (t.prefix_group == 0).all() and (t.prefix_len == 30).all()


def test_generate_one_million_fast():
    wl = Workload.preset("chatbot", rate=1000, num_requests=1_000_000, arrival="poisson")
    best = math.inf
    for _ in range(2):
        start = time.perf_counter()
        t = wl.generate()
        best = min(best, time.perf_counter() - start)
    assert len(t) == 1_000_000
    assert best < 1.0, f"1M requests took {best:.2f} s"


def one_line(exc_info) -> str:
    return format_validation_error(exc_info.value)


@pytest.mark.parametrize(
    "kwargs, field, words",
    [
        ({"rate": 0}, "rate", "greater than 0"),
        ({"rate": -3}, "rate", "greater than 0"),
        ({"num_requests": 0}, "num_requests", "greater than or equal to 1"),
        ({"arrival": "gamma", "cv": 0}, "cv", "greater than 0"),
        ({"arrival": "weibull", "cv": -1}, "cv", "greater than 0"),
        ({"seed": -1}, "seed", "greater than or equal to 0"),
        ({"arrival": "bursty"}, "arrival", "'constant'"),
    ],
)
def test_validation_names_field_and_range(kwargs, field, words):
    with pytest.raises(ValidationError) as exc:
        Workload.preset("chatbot", **kwargs)
    msg = one_line(exc)
    assert msg.startswith(field) and words in msg and "\n" not in msg


def test_unknown_preset_lists_known():
    with pytest.raises(ValidationError) as exc:
        Workload.preset("chat")
    msg = one_line(exc)
    assert msg.startswith(("preset_name", "preset"))
    for name in ISSUE_PRESETS:
        assert name in msg


@pytest.mark.parametrize(
    "kwargs, text",
    [
        ({"preset": "chatbot", "cv": 2.0}, "cv: only used by gamma and weibull"),
        ({"preset": "chatbot", "shared_prefix": {"output_len": 5}}, "exactly one of"),
        ({"input": {"mean": 5, "max": 10}}, "give both"),
        (
            {"input": {"mean": 5, "min": 20, "max": 10}, "output": {"mean": 5, "max": 10}},
            "max: must be >= min",
        ),
        ({"preset": "chatbot", "colour": "red"}, "Extra inputs are not permitted"),
        ({"shared_prefix": {"system_prompt_len": 0, "question_len": 0}}, "question_len"),
        (
            {
                "clients": [
                    {"name": "a", "rate": 1, "preset": "chatbot"},
                    {"name": "b", "rate_fraction": 0.5, "preset": "chatbot"},
                ]
            },
            "not a mix",
        ),
        ({"clients": [{"name": "a", "preset": "chatbot"}, {"name": "a", "preset": "multidoc"}]}, "distinct"),
        ({"stages": [{"rate": 0, "duration": 5}]}, "greater than 0"),
    ],
)
def test_cross_field_validation(kwargs, text):
    with pytest.raises(ValidationError) as exc:
        Workload(**kwargs)
    assert text in one_line(exc)


def test_with_overrides():
    wl = Workload.preset("chatbot", rate=2, arrival="gamma", cv=3.0)
    new = wl.with_overrides(rate=20, num_requests=10, seed=1)
    assert (new.rate, new.num_requests, new.seed, new.cv) == (20, 10, 1, 3.0)
    assert wl.rate == 2 and len(new.generate()) == 10
    assert wl.with_overrides(arrival="poisson").cv == 1.0
    with pytest.raises(ValidationError):
        wl.with_overrides(rate=-1)
    staged = Workload.preset("chatbot", stages=[{"rate": 1, "duration": 5}])
    with pytest.raises(BlisInputError, match="rate"):
        staged.with_overrides(rate=3)


def test_serialisable_hashable_and_a_simconfig_field():
    wl = Workload.shared_prefix(
        num_groups=2,
        prompts_per_group=3,
        rate=4,
        num_requests=40,
        stages=[{"rate": 4, "duration": 10}],
        multi_turn=True,
    )
    again = Workload.model_validate_json(wl.model_dump_json())
    assert again == wl and hash(again) == hash(wl)
    cfg = SimConfig(workload=wl)
    assert SimConfig.model_validate_json(cfg.model_dump_json()).workload == wl
    assert SimConfig().workload.preset_name == "chatbot"
    with pytest.raises(ValidationError):
        wl.rate = 3  # frozen


@settings(max_examples=60, deadline=None)
@given(
    arrival=st.sampled_from(
        ["constant", "poisson", "gamma", "weibull", "inference-perf-constant", "inference-perf-poisson"]
    ),
    rate=st.floats(0.05, 500),
    n=st.integers(1, 400),
    seed=st.integers(0, 2**32),
    multi_turn=st.booleans(),
    groups=st.integers(1, 5),
    per_group=st.integers(1, 5),
    staged=st.booleans(),
)
def test_any_spec_gives_a_valid_sorted_table(arrival, rate, n, seed, multi_turn, groups, per_group, staged):
    cv = 1.7 if arrival in ("gamma", "weibull") else 1.0
    stages = [{"rate": rate, "duration": (n + 1) / rate}, {"rate": 2 * rate, "duration": 1.0 / rate}]
    wl = Workload(
        seed=seed,
        rate=rate,
        num_requests=n,
        arrival=arrival,
        cv=cv,
        stages=stages if staged else (),
        stage_gap_s=0.5,
        clients=[
            {"name": "p", "rate_fraction": 2, "preset": "chatbot"},
            {
                "name": "s",
                "rate_fraction": 1,
                "shared_prefix": {
                    "num_groups": groups,
                    "prompts_per_group": per_group,
                    "multi_turn": multi_turn,
                    "system_prompt_len": 30,
                    "question_len": 7,
                    "output_len": 5,
                },
            },
        ],
    )
    t = wl.generate()
    t.validate()
    assert 1 <= len(t) <= n
    assert (np.diff(t.arrival_us) >= 0).all()
    chain = t.parent >= 0
    assert (t.input_tokens[chain] > t.input_tokens[t.parent[chain]]).all()
    if not staged:
        assert len(t) == n
