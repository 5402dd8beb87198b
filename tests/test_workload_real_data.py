"""Regenerate the loads of real H100 runs (shared/data/traces/h100-vllm-v1) from their profile.yaml and
compare them with what the client recorded in requests.csv.

The prompt-length model (token_inflation 1.047, token_noise 0.27, one BOS token) was fitted on the runs whose
meta.json split is "train"; the reasoning runs below are "test" runs, held out from that fit.
"""

from __future__ import annotations

import csv

import numpy as np
import pytest
import yaml

from blis.workload import Workload

RUNS = [
    "20260217-155451-llama-2-7b-tp1-codegen",  # 2 stages: 5 then 10 req/s, 600 s each
    "20260217-231439-llama-2-7b-tp1-general",  # 2 stages: 8 then 20 req/s
    "20260218-065057-llama-2-70b-hf-tp4-reasoning",  # 1 stage, 4 req/s, held out
    "20260218-160939-codellama-34b-tp2-reasoning",  # 1 stage, different tokenizer, held out
]


def read_requests(path):
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    arrival = np.array([int(r["arrival_time_us"]) for r in rows])
    inp = np.array([int(r["input_tokens"]) for r in rows])
    ok = np.array([r["has_error"] == "0" for r in rows])
    return arrival, inp, ok


def split_stages(arrival_us, num_stages):
    """Indices where stages start: the num_stages - 1 largest inter-arrival gaps."""
    if num_stages == 1:
        return [np.arange(len(arrival_us))]
    cuts = np.sort(np.argsort(np.diff(arrival_us))[-(num_stages - 1) :] + 1)
    return np.split(np.arange(len(arrival_us)), cuts)


def stage_rate(arrival_us):
    return (len(arrival_us) - 1) / ((arrival_us[-1] - arrival_us[0]) / 1e6)


@pytest.mark.parametrize("run", RUNS)
def test_regenerated_load_matches_recorded(shared_data, run):
    folder = shared_data / "traces" / "h100-vllm-v1" / run
    profile = yaml.safe_load((folder / "profile.yaml").read_text())
    stages = profile["load"]["stages"]
    sp = profile["data"]["shared_prefix"]
    real_arrival, real_input, ok = read_requests(folder / "requests.csv")

    wl = Workload.from_inference_perf_profile(folder / "profile.yaml", seed=11)
    table = wl.generate()

    assert len(table) == len(real_arrival)
    real_parts = split_stages(real_arrival, len(stages))
    sim_parts = split_stages(table.arrival_us, len(stages))
    for stage, real_idx, sim_idx in zip(stages, real_parts, sim_parts):
        assert len(sim_idx) == len(real_idx) == int(stage["rate"] * stage["duration"])
        real_rate = stage_rate(real_arrival[real_idx])
        sim_rate = stage_rate(table.arrival_us[sim_idx])
        assert sim_rate == pytest.approx(real_rate, rel=0.01)
        real_gaps = np.diff(real_arrival[real_idx])
        sim_gaps = np.diff(table.arrival_us[sim_idx])
        assert sim_gaps.std() / sim_gaps.mean() == pytest.approx(real_gaps.std() / real_gaps.mean(), abs=0.06)

    real_mean = real_input[ok].mean()
    assert table.input_tokens.mean() == pytest.approx(real_mean, rel=0.02)
    # the nominal length alone would be off by more than that: the length model is doing the work
    assert abs(sp["system_prompt_len"] + sp["question_len"] - real_mean) / real_mean > 0.03
    # output = the profile's output_len (the server ran with ignore_eos)
    assert (table.output_tokens == sp["output_len"]).all()
    # 100 prompts cycled: the recorded prompt lengths repeat with period 100, and so do ours
    both_ok = ok[:-100] & ok[100:]
    real_repeat = (real_input[:-100] == real_input[100:])[both_ok].mean()
    assert real_repeat > 0.95
    assert (table.input_tokens[:-100] == table.input_tokens[100:]).mean() >= real_repeat
