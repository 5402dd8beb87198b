"""Reading `vllm bench serve --save-result --save-detailed` JSON (fixtures written from the documented
per-request fields: input_lens, output_lens, ttfts, itls, errors, start_times)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from blis.errors import BlisInputError
from blis.traces import load_run


def _bench(**over):
    doc = {
        "date": "20250101-000000",
        "backend": "vllm",
        "model_id": "meta-llama/Llama-2-7b-hf",
        "num_prompts": 3,
        "request_rate": 2.0,
        "max_concurrency": None,
        "duration": 3.0,
        "completed": 2,
        "input_lens": [100, 120, 90],
        "output_lens": [4, 0, 3],
        "ttfts": [0.05, 0.0, 0.02],
        "itls": [[0.01, 0.012, 0.011], [], [0.02, 0.02]],
        "start_times": [1000.5, 1000.1, 1001.0],
        "errors": ["", "Timeout", ""],
        "generated_texts": ["a b c d", "", "x y z"],
    }
    doc.update(over)
    return doc


def _write(tmp_path, doc, exp=None):
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(doc))
    if exp is not None:
        (tmp_path / "exp-config.yaml").write_text(exp)
    return path


def test_requests_sorted_by_start_time(tmp_path):
    run = load_run(_write(tmp_path, _bench(), exp="tensor_parallelism: 2\nmax_num_seqs: 64\n"))
    assert run.kind == "vllm-bench"
    assert run.requests.arrival_us.tolist() == [0, 400_000, 900_000]
    assert run.requests.input_tokens.tolist() == [120, 100, 90]
    assert run.failed.tolist() == [True, False, False]
    # E2E = TTFT + sum of the inter-token gaps
    assert run.e2e_ms[1:] == pytest.approx([50 + 33.0, 20 + 40.0])
    assert run.ttft_ms[1:] == pytest.approx([50.0, 20.0])
    # a failed request still loads the server: its output length is the median of the successes
    assert run.requests.output_tokens.tolist() == [3, 4, 3]
    assert (run.server.model, run.server.tp, run.server.max_num_seqs) == ("meta-llama/Llama-2-7b-hf", 2, 64)


def test_found_inside_a_folder(tmp_path):
    _write(tmp_path, _bench())
    (tmp_path / "other.json").write_text("{}")
    assert len(load_run(tmp_path)) == 3


def test_e2els_preferred_over_itls(tmp_path):
    run = load_run(_write(tmp_path, _bench(e2els=[0.2, 0.0, 0.1])))
    assert run.e2e_ms[1:] == pytest.approx([200.0, 100.0])


def test_without_start_times(tmp_path):
    doc = _bench(request_rate="inf")
    del doc["start_times"]
    run = load_run(_write(tmp_path, doc))
    assert (run.requests.arrival_us == 0).all()
    doc = _bench()
    del doc["start_times"]
    with pytest.raises(BlisInputError, match="'start_times' missing and request_rate is 2.0"):
        load_run(_write(tmp_path, doc))


@pytest.mark.parametrize(
    "over, pattern",
    [
        ({"ttfts": [0.05, 0.0]}, "'ttfts' has 2"),
        ({"ttfts": [0.05, 0.0, -1.0]}, r"ttfts\[2\]: must be finite and >= 0"),
        ({"output_lens": [4, 0, 2.5]}, r"output_lens\[2\]: expected an integer"),
        ({"itls": [[0.01], [], "x"]}, r"itls\[2\]: expected a list"),
        ({"input_lens": None}, "'input_lens' missing or not a list"),
        ({"errors": ["a", "b", "c"]}, "every request failed"),
        ({"e2els": [0.01, 0.0, 0.1]}, "request 0: E2E shorter than TTFT"),
    ],
)
def test_malformed(tmp_path, over, pattern):
    with pytest.raises(BlisInputError, match=pattern):
        load_run(_write(tmp_path, _bench(**over)))


def test_invalid_json_names_the_line(tmp_path):
    path = tmp_path / "bench.json"
    path.write_text('{\n "ttfts": [1,\n}\n')
    with pytest.raises(BlisInputError, match=r"bench\.json:3: invalid JSON"):
        load_run(path)
    assert np.isnan(load_run(_write(tmp_path, _bench())).ttft_ms[0])
