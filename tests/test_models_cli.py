"""`blis run` for each model of issue #13 on every latency model: roofline v1 runs all of them (the reason
is printed); blackbox refuses (its coefficients were fitted on other models / precisions); roofline-v2 runs
the ones whose layers it composes (uniform GQA layers, one weight format) and names what it cannot."""

from __future__ import annotations

import json
import warnings

import pytest
from test_bench_data_helpers import LLAMA7B_PAIRS, write_synthetic

from blis.cli import main

SCOUT = "llama-4-scout-17b-16e-instruct-fp8-dynamic"
# (model or @config folder, hardware, tp, extra flags, roofline-v2 composes it?)
CASES = [
    ("openai/gpt-oss-120b", "H100", 2, ["--quantization", "mxfp4"], False),  # windowed layers
    ("meta-llama/Llama-3.1-8B-Instruct", "H100", 1, ["--quantization", "fp8"], True),
    ("meta-llama/Llama-3.1-70B-Instruct", "H100", 4, ["--quantization", "fp8", "--kv-cache-dtype", "fp8"], True),
    ("Qwen/Qwen3-32B-FP8", "H100", 2, [], True),
    ("Qwen/Qwen3-235B-A22B-FP8", "H200", 4, ["--ep", "4"], False),  # expert parallelism
    ("MiniMaxAI/MiniMax-M2.5", "H100", 4, [], True),
    ("deepseek-ai/DeepSeek-V3", "H200", 8, ["--kv-cache-dtype", "fp8"], False),  # MLA
    ("moonshotai/Kimi-K2.5", "B200", 8, ["--quantization", "int4", "--ep", "8"], False),
    ("deepseek-v2-lite", "H100", 1, [], False),
    (f"@{SCOUT}", "H100", 4, [], False),  # chunked attention, shared expert
    ("@glm-5.2-fp8", "B200", 8, ["--kv-cache-dtype", "fp8"], False),  # MLA with DeepSeek sparse attention
]
IDS = [c[0].rsplit("/", 1)[-1] for c in CASES]


def _args(case, shared_data, latency, extra=()):
    model, hw, tp, flags, _ = case
    where = ["--model-config", str(shared_data / "model_configs" / model[1:] / "config.json")] \
        if model.startswith("@") else ["--model", model]
    return ["run", *where, "--hardware", hw, "--tp", str(tp), *flags, "--latency-model", latency,
            "--num-requests", "6", "--rate", "4", "--no-progress", *extra]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_roofline_runs_every_model(case, shared_data, capsys):
    assert main(_args(case, shared_data, "roofline")) == 0
    out, err = capsys.readouterr()
    summary = json.loads(out)
    assert summary["completed_requests"] == 6 and summary["total_kv_blocks"] > 0
    assert summary["ttft_mean_ms"] > 0 and summary["tpot_mean_ms"] > 0
    assert "latency model roofline" in err


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_blackbox_refuses_in_one_line(case, shared_data, capsys):
    assert main(_args(case, shared_data, "blackbox")) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("blis: error:")]
    assert len(errors) == 1 and "blackbox coefficients" in errors[0]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_roofline_v2_runs_or_names_what_it_cannot_compose(case, shared_data, tmp_path, capsys):
    hw = case[1].lower()
    folder = write_synthetic(tmp_path / hw, shapes=((32, 32, 128),), pairs=LLAMA7B_PAIRS, gpu=hw,
                             gemm_dtype="fp8")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # stand-in shapes are warned about; not what this test checks
        rc = main(_args(case, shared_data, "roofline-v2", ["--bench-data-path", str(folder)]))
    out, err = capsys.readouterr()
    if case[4]:
        assert rc == 0 and json.loads(out)["completed_requests"] == 6
    else:
        assert rc == 2 and "roofline-v2 composes uniform GQA layers only" in err


@pytest.mark.parametrize("args,field", [
    (["--model", "deepseek-v3", "--tp", "8", "--ep", "3"], "ep: 3 must divide tp=8"),
    (["--model", "llama-3.1-8b", "--tp", "2", "--ep", "2"], "ep: 2 > 1 needs a mixture-of-experts model"),
    (["--model", "deepseek-v3", "--tp", "8", "--ep", "0"], "ep: Input should be greater than or equal to 1"),
])
def test_bad_ep_exits_2_naming_the_field(args, field, capsys):
    assert main(["run", *args, "--num-requests", "2", "--no-progress"]) == 2
    assert field in capsys.readouterr().err


def test_automatic_choice_skips_roofline_v2_for_models_it_cannot_compose(tmp_path):
    from blis.config import SimConfig
    from blis.latency.selection import choose_latency_model

    folder = write_synthetic(tmp_path / "h100", shapes=((32, 32, 128),), pairs=LLAMA7B_PAIRS, gpu="h100")
    name, why = choose_latency_model(SimConfig(model="deepseek-v3", hardware="H100", tp=8,
                                               bench_data_path=str(folder)))
    assert name == "roofline" and "roofline-v2 does not compose this model (MLA attention)" in why
    name, _ = choose_latency_model(SimConfig(model="llama-3.1-8b", hardware="H100", quantization="fp8",
                                             bench_data_path=str(folder)))
    assert name == "roofline-v2"
