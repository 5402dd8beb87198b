"""Sweeps: one simulation per point, one row per point, the throughput-latency curve and its plot."""

import json
import subprocess
import sys

import pytest

import blis
from blis.errors import BlisInputError
from blis.sweep import sweep
from blis.workload import Workload


def config(**wl):
    return blis.SimConfig(latency_model="blackbox", alpha_coeffs=(500, 2, 30), beta_coeffs=(1000, 10, 1),
                          engine=blis.EngineConfig(total_kv_blocks=4000),
                          workload=Workload.random(input_len=200, output_len=50, num_requests=64, **wl))


def test_concurrency_sweep_rows_match_single_runs_and_throughput_grows():
    cfg = config()
    sw = sweep(cfg, concurrency=[1, 2, 8])
    table = sw.table
    assert table.concurrency.tolist() == [1, 2, 8]
    single = blis.simulate(cfg.model_copy(update={"workload": cfg.workload.with_overrides(concurrency=2)}))
    assert table.tpot_mean_ms[1] == single.summary["tpot_mean_ms"]
    tput = table.tokens_per_sec.tolist()
    assert tput[0] < tput[1] < tput[2]  # more users, more throughput (far from saturation)
    assert table.tpot_mean_ms.is_monotonic_increasing  # and bigger batches, slower tokens
    curve = sw.curve("tpot")
    assert [c[0] for c in curve] == [1, 2, 8] and curve[2][1] == tput[2]


def test_rate_sweep_and_closed_loop_rate_cap():
    sw = sweep(config(concurrency=4), rate=[1.0, 50.0])
    assert sw.table.rate.tolist() == [1.0, 50.0]
    assert all(r.summary["completed_requests"] == 64 for r in sw.results)
    with pytest.raises(BlisInputError, match="either"):
        sweep(config(), concurrency=[1], rate=[1.0])
    with pytest.raises(BlisInputError, match="latency"):
        sw.curve("foo")


def test_plot_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    path = sweep(config(), concurrency=[1, 4]).plot(str(tmp_path / "curve.png"))
    assert (tmp_path / "curve.png").read_bytes()[:4] == b"\x89PNG" and path.endswith("curve.png")


def test_cli_sweep_rows_and_plot(tmp_path):
    pytest.importorskip("matplotlib")
    png = tmp_path / "c.png"
    out = subprocess.run([sys.executable, "-m", "blis", "run", "--concurrency", "1,4", "--num-requests", "12",
                          "--input-len", "64", "--output-len", "8", "--plot", str(png), "--no-progress"],
                         capture_output=True, text=True, check=True)
    rows = json.loads(out.stdout)
    assert [r["concurrency"] for r in rows] == [1, 4] and png.is_file()
    emit = subprocess.run([sys.executable, "-m", "blis", "run", "--rate", "1,2", "--concurrency", "2",
                           "--num-requests", "6", "--emit", "vllm-bench", "--no-progress"],
                          capture_output=True, text=True, check=True)
    assert [r["rate"] for r in json.loads(emit.stdout)] == [1.0, 2.0]
    assert "mean_ttft_ms" in json.loads(emit.stdout)[0]


@pytest.mark.parametrize("argv,field", [
    (["--concurrency", "0"], "concurrency"),
    (["--concurrency", "1,2", "--rate", "1,2"], "concurrency"),
    (["--think-time-ms", "3"], "think_time_ms"),
    (["--plot", "x.png"], "plot"),
    (["--input-len", "10", "--workload", "chatbot"], "input_len"),
    (["--range-ratio", "1.5"], "range_ratio"),
])
def test_cli_bad_flags_exit_2_with_one_line(argv, field):
    out = subprocess.run([sys.executable, "-m", "blis", "run", "--no-progress", *argv], capture_output=True,
                         text=True)
    assert out.returncode == 2, out.stderr
    assert field in out.stderr and "Traceback" not in out.stderr


def test_yaml_clients_with_their_own_concurrency(tmp_path):
    path = tmp_path / "wl.yaml"
    path.write_text("""
num_requests: 30
clients:
  - {name: chat, concurrency: 2, think_time_ms: 50, lengths: chatbot}
  - {name: agents, concurrency: 1, lengths: {input: {mean: 300, min: 300, max: 300},
                                              output: {mean: 20, min: 20, max: 20}}}
""")
    wl = Workload.from_yaml(path)
    assert wl.closed_loop and wl.rate is None
    assert [c.concurrency for c in wl.clients] == [2, 1]
    res = blis.simulate(blis.SimConfig(workload=wl))
    assert res.summary["completed_requests"] == 30
    req = res.requests
    agents = req[req.client == "agents"].sort_values("arrival_ms")
    assert (agents.arrival_ms.to_numpy()[1:] >= agents.finish_ms.to_numpy()[:-1] - 1e-9).all()
