"""Reading vLLM's OTLP/JSON trace export (traces.json)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from blis.errors import BlisInputError
from blis.traces import load_run
from blis.traces.otel import read_otel_spans


def _span(start_ns, ttft, e2e, prompt, completion, name="llm_request"):
    attrs = [
        {"key": "gen_ai.latency.time_to_first_token", "value": {"doubleValue": ttft}},
        {"key": "gen_ai.latency.e2e", "value": {"doubleValue": e2e}},
        {"key": "gen_ai.usage.prompt_tokens", "value": {"intValue": str(prompt)}},
        {"key": "gen_ai.usage.completion_tokens", "value": {"intValue": str(completion)}},
        {"key": "gen_ai.request.max_tokens", "value": {"intValue": str(max(completion, 7))}},
        {"key": "gen_ai.request.id", "value": {"stringValue": f"cmpl-{start_ns}"}},
    ]
    return {"name": name, "startTimeUnixNano": str(start_ns), "attributes": attrs}


def _batch(*spans):
    return json.dumps({"resourceSpans": [{"resource": {}, "scopeSpans": [{"scope": {"name": "vllm"},
                                                                         "spans": list(spans)}]}]})


def _folder(tmp_path, lines, exp="model: meta-llama/Llama-2-7b-hf\ntensor_parallelism: 2\nmax_num_seqs: 16\n"):
    folder = tmp_path / "otel"
    folder.mkdir()
    (folder / "traces.json").write_text("\n".join(lines) + "\n")
    (folder / "exp-config.yaml").write_text(exp)
    return folder


def test_spans_become_requests(tmp_path):
    t0 = 1_769_000_000_000_000_000
    lines = [
        _batch(_span(t0 + 5_000_000, 0.05, 1.5, 300, 40), _span(t0, 0.1, 2.0, 200, 50)),
        _batch(_span(t0 + 9_000_000, 0.0, 0.0, 100, 0), _span(t0, 1, 1, 1, 1, name="other")),
    ]
    run = load_run(_folder(tmp_path, lines))
    assert run.kind == "otel" and run.measured_at == "server"
    assert run.requests.arrival_us.tolist() == [0, 5000, 9000]  # sorted by start, microseconds
    assert run.requests.input_tokens.tolist() == [200, 300, 100]
    assert run.requests.output_tokens.tolist() == [50, 40, 7]  # a failed span falls back to max_tokens
    assert run.failed.tolist() == [False, False, True]
    assert run.ttft_ms[:2] == pytest.approx([100.0, 50.0])
    assert run.e2e_ms[:2] == pytest.approx([2000.0, 1500.0])
    assert (run.server.model, run.server.tp, run.server.max_num_seqs) == ("meta-llama/Llama-2-7b-hf", 2, 16)


def test_malformed_lines_name_the_line(tmp_path):
    good = _batch(_span(1, 0.1, 1.0, 10, 5))
    path = tmp_path / "t.json"
    path.write_text(good + "\n{not json\n")
    with pytest.raises(BlisInputError, match=r"t\.json:2: invalid JSON"):
        read_otel_spans(path)
    path.write_text(good + "\n" + json.dumps({"spans": []}) + "\n")
    with pytest.raises(BlisInputError, match=r"t\.json:2: not an OTLP/JSON batch"):
        read_otel_spans(path)
    bad = _span(1, 0.1, 1.0, 10, 5)
    bad["attributes"] = bad["attributes"][1:]
    path.write_text(good + "\n" + _batch(bad) + "\n")
    with pytest.raises(BlisInputError, match=r"t\.json:2: span attribute 'gen_ai.latency.time_to_first_token'"):
        read_otel_spans(path)
    path.write_text(_batch(_span(1, 2.0, 1.0, 10, 5)) + "\n")
    with pytest.raises(BlisInputError, match=r"t\.json:1: impossible latencies"):
        read_otel_spans(path)
    path.write_text(_batch(_span(1, 0.1, 1.0, 10, 5, name="x")) + "\n")
    with pytest.raises(BlisInputError, match="no 'llm_request' spans"):
        read_otel_spans(path)


def test_missing_model_is_an_error(tmp_path):
    folder = _folder(tmp_path, [_batch(_span(1, 0.1, 1.0, 10, 5))], exp="tensor_parallelism: 1\n")
    with pytest.raises(BlisInputError, match="missing field 'model'"):
        load_run(folder)


def test_shared_otel_runs_match_the_flattened_csv(shared_data):
    """The shipped otel_requests.csv is an independent flattening of the same spans."""
    root = shared_data / "traces" / "vllm-0.11-guidellm"
    for folder in sorted(root.iterdir()):
        run = load_run(folder)
        flat = pd.read_csv(folder / "otel_requests.csv").sort_values("start_unix_ns", kind="stable")
        assert len(run) == len(flat)
        assert run.requests.input_tokens.tolist() == flat.prompt_tokens.tolist()
        assert np.allclose(run.ttft_ms, flat.ttft_s.to_numpy() * 1e3)
        assert np.allclose(run.e2e_ms, flat.e2e_s.to_numpy() * 1e3)
        assert np.allclose(run.requests.arrival_us / 1e6, flat.arrival_s_rel.to_numpy(), atol=1e-5)
    run = load_run(root / "jan20-prefill-llama7b-tp1-1")
    assert run.server.model == "codellama/CodeLlama-34b-Instruct-hf"  # what its config says ran
    assert run.requests.prefix_len.max() == 1024
