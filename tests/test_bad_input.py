"""Every class of bad input (issue #19) through the real entry point, in-process: exit code 2, exactly one stderr
line naming the field or the file, no traceback, nothing on stdout. A few run in a subprocess too."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from blis.cli import main

TRACE_OK = "arrival_time_us,input_tokens,output_tokens\n0,10,5\n1000,20,5\n"
HF_OK = {"architectures": ["LlamaForCausalLM"], "hidden_size": 4096, "num_attention_heads": 32,
         "num_key_value_heads": 32, "num_hidden_layers": 32, "intermediate_size": 11008, "vocab_size": 32000,
         "torch_dtype": "float16", "max_position_embeddings": 4096}

# file name -> content (str, or bytes for binary files); "@name" in an argument is that file's path
FILES = {
    "trace.csv": TRACE_OK,
    "trace_missing_col.csv": "arrival_time_us,input_tokens\n0,10\n",
    "trace_bad_number.csv": "arrival_time_us,input_tokens,output_tokens\n0,10,5\n100,abc,5\n",
    "trace_huge.csv": "arrival_time_us,input_tokens,output_tokens\n0,100000000000000000000,5\n",
    "trace_negative.csv": "arrival_time_us,input_tokens,output_tokens\n0,-3,5\n",
    "trace_nan.csv": "arrival_time_us,input_tokens,output_tokens\nnan,3,5\n",
    "trace_empty.csv": "",
    "trace_header_only.csv": "arrival_time_us,input_tokens,output_tokens\n",
    "trace_short_row.csv": "arrival_time_us,input_tokens,output_tokens\n0,10\n",
    "trace_binary.csv": bytes(range(256)) * 4,
    "trace_latin1.csv": "arrival_time_us,input_tokens,output_tokens\n0,10,5\n# caf\xe9\n".encode("latin-1"),
    "wl_list.yaml": "- 1\n- 2\n",
    "wl_invalid.yaml": "rate: [1, 2\n",
    "wl_unknown.yaml": "preset: chatbot\nrat: 5\n",
    "wl_negative.yaml": "preset: chatbot\nrate: -2\n",
    "wl_nan.yaml": "preset: chatbot\nrate: .nan\n",
    "wl_preset.yaml": "preset: nosuch\n",
    "wl_trace_missing.yaml": "trace: nowhere.csv\n",
    "wl_empty.yaml": "",
    "wl_binary.yaml": b"\x00\x01\x02rate: 1\n",
    "wl_lengths.yaml": "input: {mean: 10, std: 1, min: 5, max: 2}\noutput: {mean: 5, max: 10}\n",
    "wl_stages.yaml": "preset: chatbot\nstages: [{rate: 1, duration: -5}]\n",
    "model_bad.json": "{not json",
    "model_kv0.json": json.dumps({**HF_OK, "num_key_value_heads": 0}),
    "model_noarch.json": json.dumps({k: v for k, v in HF_OK.items() if k != "architectures"}),
    "model_list.json": "[1, 2]",
    "hw_bad.json": "{",
    "hw_unknown.yaml": "name: X\nbase: H100\nmemory_gigs: 80\n",
    "calib_typo.yaml": "roofline:\n  mfu_prefil: 0.5\n",
    "calib_roofline.yaml": "roofline:\n  step_overhead_us: 100\n",
    "calib_bb_typo.yaml": "- {model: llama-2-7b, hardware: H100, tp: 1, alpha: [1, 1, 1], beta: [1, 1, 1], sorce: x}\n",
    "calib_scalar.yaml": "42\n",
    "cluster_bad.yaml": "routing: [\n",
    "cluster_unknown.yaml": "routers: 3\n",
    "cluster_list.yaml": "- 1\n",
    "eff_bad.json": "[1]",
}


def R(*args: str) -> list[str]:
    return ["run", "--no-progress", *args]


BB = ("--latency-model", "blackbox")
CASES = [
    # --- numbers: non-finite, overflow, out of range, not a number
    (R("--rate", "nan"), "rate: must be a finite number"),
    (R("--rate", "inf"), "rate: must be a finite number"),
    (R("--rate", "-1"), "rate"),
    (R("--rate", "0"), "rate"),
    (R("--rate", "1e-12", *BB), "rate"),
    (R("--rate", "1e20"), "rate"),
    (R("--rate", "fast"), "rate: must be a number"),
    (R("--horizon-s", "inf"), "horizon_s: must be a finite number"),
    (R("--horizon-s", "nan"), "horizon_s: must be a finite number"),
    (R("--horizon-s", "-1"), "horizon_s: must be > 0"),
    (R("--horizon-s", "1e300"), "horizon_s"),
    (R("--beta-coeffs", "1e300,1,1"), "beta_coeffs"),
    (R("--alpha-coeffs", "nan,1,1"), "alpha_coeffs: must be a finite number"),
    (R("--alpha-coeffs", "1,2"), "alpha_coeffs: expected 3"),
    (R("--beta-coeffs", "1,-2,3"), "beta_coeffs"),
    (R("--num-requests", "0"), "num_requests"),
    (R("--num-requests", "1.5"), "num_requests: must be an integer"),
    (R("--num-requests", "100000000000000000000"), "num_requests"),
    (R("--seed", "-1"), "seed"),
    (R("--seed", "9" * 400), "seed"),
    (R("--prefill-instances", "9" * 400), "prefill_instances"),
    (R("--tp", "0"), "tp"),
    (R("--tp", "3"), "tp"),
    (R("--max-num-seqs", "0"), "max_num_seqs"),
    (R("--max-num-batched-tokens", "-4"), "max_num_batched_tokens"),
    (R("--gpu-memory-utilization", "1.5"), "gpu_memory_utilization"),
    (R("--gpu-memory-utilization", "nan"), "gpu_memory_utilization: must be a finite number"),
    (R("--total-kv-blocks", "4", *BB), "input_tokens"),
    (R("--total-kv-blocks", "0"), "total_kv_blocks"),
    (R("--max-model-len", "1"), "max_model_len"),
    (R("--long-prefill-token-threshold", "-1"), "long_prefill_token_threshold"),
    (R("--block-size", "7"), "block_size: must be one of 1, 8, 16, 32, 64, 128"),
    (R("--block-size", "0"), "block_size"),
    (R("--cv", "-2", "--arrival", "gamma"), "cv"),
    (R("--stage-gap-s", "-1"), "stage_gap_s"),
    (R("--snapshot-refresh-ms", "-1", "--num-instances", "2"), "snapshot_refresh_ms"),
    (R("--num-instances", "0"), "num_instances"),
    (R("--token-bucket-capacity", "inf", "--admission", "token-bucket", "--token-bucket-rate", "1"),
     "token_bucket_capacity: must be a finite number"),
    # --- unknown names list the known ones
    (R("--model", "foo"), "unknown model 'foo'; known: llama-2-7b"),
    (R("--hardware", "foo"), "unknown hardware 'foo'; known:"),
    (R("--latency-model", "foo"), "latency_model: unknown latency model 'foo'; known: blackbox"),
    (R("--workload", "nosuchpreset"), "unknown preset 'nosuchpreset'; known presets: chatbot"),
    (R("--arrival", "foo"), "arrival: unknown arrival 'foo'; known: constant"),
    (R("--routing", "foo"), "routing: unknown policy 'foo'; known:"),
    (R("--admission", "foo"), "admission: unknown policy 'foo'; known:"),
    (R("--routing", "weighted", "--routing-scorers", "latency:1"), "unknown scorer 'latency'"),
    (["list", "gpus"], "invalid choice"),
    (["calibrate", "--traces", ".", "--latency-model", "foo", "--out", "x.yaml"], "latency_model: unknown"),
    (["replay", "--trace", ".", "--latency-model", "foo"], "latency_model: unknown"),
    (["validate", "--traces", ".", "--latency-model", "foo"], "latency_model: unknown"),
    # --- flags that do not apply are errors, not ignored
    (R("--alpha-coeffs", "1,1,1", "--latency-model", "roofline"), "alpha_coeffs: --alpha-coeffs is for the blackbox"),
    (R("--beta-coeffs", "1,1,1", "--latency-model", "roofline-v2"), "beta_coeffs"),
    (R("--bench-data-path", ".", *BB), "bench_data_path: --bench-data-path is for the roofline-v2"),
    (R("--trace", "@trace.csv", "--workload", "chatbot"), "workload: --workload and --trace"),
    (R("--trace", "@trace.csv", "--rate", "5"), "rate: --rate does not apply with --trace"),
    (R("--trace", "@trace.csv", "--seed", "5"), "seed: --seed does not apply with --trace"),
    (R("--trace", "@trace.csv", "--arrival", "poisson"), "arrival: --arrival does not apply with --trace"),
    (R("--pd-transfer-bandwidth", "10"), "pd_transfer_bandwidth: applies only to prefill/decode"),
    (R("--pd-transfer-latency-ms", "2", "--num-instances", "2"), "pd_transfer_latency_ms: applies only"),
    (R("--token-bucket-capacity", "10", "--num-instances", "2"), "token_bucket_capacity: only used with"),
    (R("--routing-scorers", "queue-depth:1", "--num-instances", "2"), "routing_scorers: only used with"),
    (R("--cv", "2"), "cv: only used by gamma and weibull"),
    (R("--stage-gap-s", "2"), "stage_gap_s: --stage-gap-s applies only to a workload with load stages"),
    (R("--trace", ""), "trace: must not be empty"),
    (R("--workload", " "), "workload: must not be empty"),
    (R("--requests-out", ""), "requests_out"),
    (R("--calibration-file", "@calib_roofline.yaml", *BB), "calibration_file: {tmp}/calib_roofline.yaml holds"),
    (["validate", "--traces", ".", "--calibration-file", "@calib_typo.yaml"], "unknown key(s) mfu_prefil"),
    (["replay", "--trace", ".", "--calibration-file", "@calib_roofline.yaml", *BB], "holds roofline parameters"),
    # --- output paths are checked before the work
    (R("--requests-out", "/nonexistent-dir/x.csv"), "requests_out: folder /nonexistent-dir does not exist"),
    (R("--requests-out", "@."), "requests_out"),
    (R("--requests-out", "out.xlsx"), "requests_out: out.xlsx: unknown extension '.xlsx'; allowed: .csv, .parquet"),
    (R("--steps-out", "steps.txt"), "steps_out: steps.txt: unknown extension"),
    (R("--steps-out", "@trace.csv/x.csv"), "steps_out: {tmp}/trace.csv is not a folder"),
    (R("--steps-out", "/proc/x.csv"), "steps_out: cannot write /proc/x.csv"),
    (["calibrate", "--traces", ".", "--latency-model", "blackbox", "--out", "/nonexistent-dir/c.yaml"],
     "out: folder /nonexistent-dir does not exist"),
    (["calibrate", "--traces", ".", "--latency-model", "blackbox", "--out", "c.txt"], "out: c.txt: unknown extension"),
    (["replay", "--trace", ".", "--requests-out", "r.xlsx"], "requests_out: r.xlsx: unknown extension"),
    # --- files: missing, folder, binary, invalid syntax, wrong shape, bad fields
    (R("--trace", "/nonexistent/trace.csv"), "trace"),
    (R("--trace", "@trace_missing_col.csv", *BB), "missing column(s) output_tokens"),
    (R("--trace", "@trace_bad_number.csv", *BB), "line 3: input_tokens 'abc' is not a number"),
    (R("--trace", "@trace_huge.csv", *BB), "trace_huge.csv line 2: input_tokens"),
    (R("--trace", "@trace_negative.csv", *BB), "input_tokens is -3, must be >= 1"),
    (R("--trace", "@trace_nan.csv", *BB), "arrival_time_us 'nan' is not"),
    (R("--trace", "@trace_empty.csv", *BB), "trace_empty.csv"),
    (R("--trace", "@trace_header_only.csv", *BB), "no requests after the header"),
    (R("--trace", "@trace_short_row.csv", *BB), "2 fields, header has 3"),
    (R("--trace", "@trace_binary.csv", *BB), "trace_binary.csv: not a text file"),
    (R("--trace", "@trace_latin1.csv", *BB), "trace_latin1.csv: not a UTF-8 text file"),
    (R("--trace", "@."), "trace"),
    (R("--workload", "@wl_list.yaml"), "wl_list.yaml: expected a mapping"),
    (R("--workload", "@wl_invalid.yaml"), "wl_invalid.yaml"),
    (R("--workload", "@wl_unknown.yaml"), "wl_unknown.yaml: rat: unknown field"),
    (R("--workload", "@wl_negative.yaml"), "wl_negative.yaml: rate"),
    (R("--workload", "@wl_nan.yaml"), "wl_nan.yaml: rate: must be a finite number"),
    (R("--workload", "@wl_preset.yaml"), "unknown preset 'nosuch'"),
    (R("--workload", "@wl_trace_missing.yaml"), "nowhere.csv"),
    (R("--workload", "@wl_empty.yaml"), "wl_empty.yaml"),
    (R("--workload", "@wl_binary.yaml"), "wl_binary.yaml: not a text file"),
    (R("--workload", "@wl_lengths.yaml"), "input: max: must be >= min"),
    (R("--workload", "@wl_stages.yaml"), "stages.0.duration"),
    (R("--workload", "/nonexistent/w.yaml"), "w.yaml"),
    (R("--model-config", "/nonexistent/config.json"), "model_config_path: /nonexistent/config.json"),
    (R("--model-config", "@model_bad.json"), "model_bad.json"),
    (R("--model-config", "@model_kv0.json"), "num_key_value_heads"),
    (R("--model-config", "@model_noarch.json"), "missing field 'architectures'"),
    (R("--model-config", "@model_list.json"), "model_list.json"),
    (R("--hardware-file", "@hw_bad.json"), "hw_bad.json"),
    (R("--hardware-file", "@hw_unknown.yaml"), "memory_gigs"),
    (R("--hardware-file", "/nonexistent/hw.yaml"), "hardware_file"),
    (R("--calibration-file", "/nonexistent/c.yaml"), "calibration_file"),
    (R("--calibration-file", "@calib_typo.yaml"), "calibration_file: {tmp}/calib_typo.yaml: unknown key(s) mfu_prefil"),
    (R("--calibration-file", "@calib_bb_typo.yaml"), "unknown key(s) sorce"),
    (R("--calibration-file", "@calib_scalar.yaml"), "calibration_file"),
    (R("--cluster-file", "@cluster_bad.yaml"), "cluster_bad.yaml"),
    (R("--cluster-file", "@cluster_unknown.yaml"), "unknown field(s) routers"),
    (R("--cluster-file", "@cluster_list.yaml"), "cluster_list.yaml"),
    (R("--cluster-file", "/nonexistent/c.yaml"), "cluster_file"),
    (["roofline", "gemm", "-M", "1", "-N", "1", "-K", "1", "--efficiency-file", "@eff_bad.json"], "eff_bad.json"),
    (["roofline", "gemm", "-M", "1", "-N", "1", "-K", "1", "--efficiency", "nan"], "efficiency"),
    (["roofline", "kv", "--model", "foo"], "unknown"),
    (["roofline", "kv", "--model", "llama-2-7b", "--hardware", "foo"], "unknown"),
    (["replay", "--trace", "/nonexistent/run"], "/nonexistent/run"),
    (["validate", "--traces", "/nonexistent/runs"], "/nonexistent/runs"),
]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad")
    for name, content in FILES.items():
        path = root / name
        path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    return root


def _argv(args: list[str], root) -> list[str]:
    return [str(root / a[1:]) if a.startswith("@") else a for a in args]


@pytest.mark.parametrize("args,needle", CASES, ids=[" ".join(a[1:] if a[0] == "run" else a)[:60] for a, _ in CASES])
def test_bad_input_one_line_exit_2(args, needle, files, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # relative output paths land here, never in the repository
    code = main(_argv(args, files))
    out, err = capsys.readouterr()
    assert code == 2, err
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("blis: error: "), err
    assert needle.replace("{tmp}", str(files)) in lines[0], err
    assert "Traceback" not in err
    assert not any(tmp_path.iterdir())  # nothing written


def test_parquet_without_pyarrow_refused_before_the_work(monkeypatch, capsys, tmp_path):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pyarrow" else real(name, *a))
    assert main(R("--requests-out", str(tmp_path / "r.parquet"))) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "requests_out" in err and "pyarrow" in err


@pytest.mark.parametrize("args", [
    R("--rate", "nan"),
    R("--beta-coeffs", "1e300,1,1"),
    R("--trace", "@trace_binary.csv"),
    R("--model-config", "@model_bad.json"),
    R("--requests-out", "/nonexistent-dir/x.csv"),
])
def test_subprocess_no_traceback(args, files):
    proc = subprocess.run([sys.executable, "-m", "blis", *_argv(args, files)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert len(proc.stderr.splitlines()) == 1 and proc.stderr.startswith("blis: error: "), proc.stderr


@pytest.mark.parametrize("kwargs,line", [
    ({"rate": float("nan")}, "rate: must be a finite number > 0 and <= 1e+07 (got nan)"),
    ({"rate": -1}, "rate: Input should be greater than 0 (allowed > 0 and <= 1e+07; got -1)"),
    ({"stages": [{"rate": 1, "duration": 0}]}, "stages.0.duration: Input should be greater than 0 (allowed > 0 and "
     "<= 1e+08; got 0)"),
    ({"ratee": 1}, "ratee: unknown field (Extra inputs are not permitted); allowed: preset_name, input"),
    ({"input": {"mean": 5}, "output": {"mean": 5, "max": 9}}, "input.max: required field missing (Field required)"),
])
def test_one_formatter_names_field_range_and_value(kwargs, line):
    from pydantic import ValidationError

    from blis.errors import format_validation_error
    from blis.workload.spec import Workload

    with pytest.raises(ValidationError) as exc:
        Workload(**kwargs)
    assert format_validation_error(exc.value).startswith(line)
    assert format_validation_error(exc.value, where="w.yaml").startswith("w.yaml: " + line)
