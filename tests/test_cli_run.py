"""`python -m blis run`: JSON on stdout only, defaults announced on stderr, bad input exits 2 in one line."""

import json
import subprocess
import sys

import pytest

from blis.cli import main


def cli(*args):
    return subprocess.run([sys.executable, "-m", "blis", *args], capture_output=True, text=True)


def test_run_prints_json_summary_with_documented_keys(capsys):
    assert main(["run", "--workload", "chatbot", "--rate", "10", "--num-requests", "40",
                 "--latency-model", "blackbox", "--total-kv-blocks", "2000", "--no-progress"]) == 0
    out, err = capsys.readouterr()
    summary = json.loads(out)
    for key in ("ttft_mean_ms", "ttft_p99_ms", "itl_p90_ms", "e2e_mean_ms", "tpot_mean_ms",
                "completed_requests", "preemption_count", "tokens_per_sec", "responses_per_sec",
                "kv_util_mean", "kv_util_max", "sim_duration_s"):
        assert key in summary
    assert summary["completed_requests"] == 40
    assert "defaults used" in err and "model=llama-2-7b" in err


def test_table_output_and_requests_csv(tmp_path, capsys):
    out_csv = tmp_path / "req.csv"
    assert main(["run", "--num-requests", "20", "--latency-model", "blackbox", "--total-kv-blocks", "2000",
                 "--output", "table", "--requests-out", str(out_csv), "--no-progress"]) == 0
    text = out_csv.read_text().splitlines()
    assert text[0].startswith("request_id,")
    assert len(text) == 21
    assert "TTFT" in capsys.readouterr().out


@pytest.mark.parametrize("args,field", [
    (["--rate", "-1"], "rate"),
    (["--num-requests", "0"], "num_requests"),
    (["--workload", "nosuchpreset"], "preset"),
    (["--tp", "0"], "tp"),
    (["--max-num-seqs", "0"], "max_num_seqs"),
    (["--alpha-coeffs", "1,2"], "alpha_coeffs"),
    (["--beta-coeffs", "1,x,3"], "beta_coeffs"),
    (["--total-kv-blocks", "4", "--latency-model", "blackbox"], "input_tokens"),
    (["--trace", "/nonexistent/trace.csv"], "trace"),
    (["--latency-model", "nosuchmodel"], "latency_model"),
])
def test_bad_input_exits_2_with_one_line(args, field):
    proc = cli("run", "--no-progress", *args)
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    lines = [line for line in proc.stderr.splitlines() if line.startswith(("blis", "usage"))]
    err = [line for line in proc.stderr.splitlines() if "error" in line]
    assert len(err) == 1, proc.stderr
    assert field in err[0]
    assert "Traceback" not in proc.stderr
    assert lines


def test_malformed_trace_row_names_line(tmp_path):
    trace = tmp_path / "t.csv"
    trace.write_text("arrival_time_us,input_tokens,output_tokens\n0,10,5\n100,abc,5\n")
    proc = cli("run", "--no-progress", "--trace", str(trace), "--latency-model", "blackbox")
    assert proc.returncode == 2
    assert "3" in proc.stderr and "Traceback" not in proc.stderr


def test_help_explains_units():
    proc = cli("run", "--help")
    assert proc.returncode == 0
    for word in ("requests per second", "microseconds", "tokens"):
        assert word in proc.stdout
