"""The capacity planner: stability rule (hand cases and the short-run trap), consistency with direct
simulation, replicas at a target rate, determinism across backends, prices, CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

import blis
from blis.cli import main
from blis.plan.pricing import load_prices
from blis.plan.report import pareto_front
from blis.plan.spec import SLO
from blis.plan.stability import _ci, judge_seed, pool

FAST = {"seeds": 2, "probe_seconds": 20, "min_requests": 600}
MODEL = "llama-3.1-8b"


class _Result:
    """A SimResult stand-in with hand-made per-request times (ms)."""

    def __init__(self, arrival, finish, ttft=None, out_tokens=2):
        n = len(arrival)
        arrival = np.asarray(arrival, float)
        finish = np.asarray(finish, float)
        ttft = np.full(n, 10.0) if ttft is None else np.asarray(ttft, float)
        e2e = finish - arrival
        self.requests = pd.DataFrame({
            "arrival_ms": arrival, "finish_ms": finish, "finished": ~np.isnan(finish), "output_tokens": out_tokens,
            "ttft_ms": ttft, "e2e_ms": e2e, "tpot_ms": (e2e - ttft) / (out_tokens - 1),
        })
        self.summary = {"latency_model": "hand"}


def test_stable_run_by_hand():
    # 1,000 arrivals 10 ms apart, each done 100 ms later: flat backlog of 10, p99 E2E = 100 ms
    arrival = np.arange(1000) * 10.0
    s = judge_seed(_Result(arrival, arrival + 100.0), SLO(e2e_p99_ms=150), 0.2, 0)
    assert not s.unstable
    assert s.backlog_mean == pytest.approx(10.0, abs=0.5)
    assert s.p99("e2e") == pytest.approx(100.0)
    assert s.window_requests == 800  # first 20 % of the 9.99 s span discarded
    assert s.fidelity_basis == "hand (no fidelity basis reported)"


def test_growing_queue_is_unstable_whatever_the_percentiles():
    # served at 80 % of the arrival rate: the backlog grows linearly; E2E stays under the limit in this run
    arrival = np.arange(1000) * 10.0
    finish = 5.0 + np.arange(1000) * 12.5
    s = judge_seed(_Result(arrival, finish), SLO(e2e_p99_ms=1e6), 0.2, 0)
    assert s.p99("e2e") < 1e6
    assert s.unstable
    assert s.growth > 0.15 * 0.45 * 800  # ~20 % of the ~360 arrivals between the middle and the end


def test_short_run_is_not_shown_stable():
    # the trap: Llama-2-7B at 40 req/s on one H100; 500 requests look fine on p99 TTFT, 4,000 do not
    runs = {}
    for n in (500, 4000):
        wl = blis.Workload.preset("chatbot", rate=40, num_requests=n, seed=42)
        runs[n] = blis.simulate(blis.SimConfig(model="llama-2-7b", hardware="H100", tp=1, workload=wl))
    assert runs[500].summary["ttft_p99_ms"] < 200 < runs[4000].summary["ttft_p99_ms"]
    for n, res in runs.items():
        assert judge_seed(res, SLO(ttft_p99_ms=200), 0.2, 42).unstable, n


def test_pooled_p99_and_confidence_interval_by_hand():
    a = np.arange(1000) * 10.0
    s1 = judge_seed(_Result(a, a + 100.0), SLO(e2e_p99_ms=150), 0.2, 0)
    s2 = judge_seed(_Result(a, a + 120.0), SLO(e2e_p99_ms=150), 0.2, 1)
    v = pool([s1, s2], SLO(e2e_p99_ms=150), 100.0)
    assert v.ok and v.stable and v.seeds == 2
    assert v.p99["e2e"] == pytest.approx(np.percentile(np.r_[np.full(800, 100.0), np.full(800, 120.0)], 99))
    lo, hi = v.p99_ci["e2e"]
    half = 12.706 * np.std([100.0, 120.0], ddof=1) / math.sqrt(2)
    assert (lo, hi) == pytest.approx((max(110 - half, 0.0), 110 + half), abs=1e-3)
    assert _ci([5.0]) is None
    assert pool([s1, s2], SLO(e2e_p99_ms=110), 100.0).ok is False


def test_consistent_with_direct_simulation():
    slo = {"ttft_p99_ms": 200, "tpot_p99_ms": 50}
    df = blis.plan(model=MODEL, hardware="H100", tp=1, workload=blis.Workload.preset("chatbot", arrival="poisson"),
                   slo=slo, workers=1)
    (row,) = df.to_dict(orient="records")
    best = row["max_rate_per_instance"]
    assert row["feasible"] and best > 5
    assert row["ttft_p99_ms"] <= 200 and row["tpot_p99_ms"] <= 50
    for factor, meets in ((0.9, True), (1.25, False)):
        wl = blis.Workload.preset("chatbot", rate=factor * best, num_requests=20000, arrival="poisson", seed=7)
        s = blis.simulate(blis.SimConfig(model=MODEL, hardware="H100", tp=1, workload=wl)).summary
        ok = s["ttft_p99_ms"] <= 200 and s["tpot_p99_ms"] <= 50
        assert ok is meets, (factor, s["ttft_p99_ms"], s["tpot_p99_ms"])


def test_fewest_gpus_at_a_rate():
    slo = SLO(ttft_p99_ms=300, tpot_p99_ms=50)
    df, outs = blis.plan(model=MODEL, hardware="A100", tp=[1, 2], rate=60, slo=slo,
                         workload=blis.Workload.preset("chatbot", arrival="poisson"), workers=1, settings=FAST,
                         details=True)
    assert list(df.columns[:3]) == ["model", "hardware", "tp"]
    assert df["cost_per_hour"].is_monotonic_increasing
    price = load_prices().price("A100")
    for row in df.to_dict(orient="records"):
        assert row["feasible"]
        assert row["gpus"] == row["replicas"] * row["tp"]
        assert row["cost_per_hour"] == pytest.approx(row["gpus"] * price)
        assert row["replicas"] >= math.ceil(60 / row["max_rate_per_instance"]) - 1
    for out in outs:  # one replica fewer did not pass (or the answer is a single replica)
        tried = {units: ok for units, rate, ok, _ in out.trail if rate == 60}
        assert tried[out.replicas] is True
        assert out.replicas == 1 or tried.get(out.replicas - 1) is False


def test_serial_and_process_pool_give_identical_rows():
    kw = dict(model=MODEL, hardware="H100", tp=[1, 2], ttft_p99_ms=200, tpot_p99_ms=50, settings=FAST,
              workload=blis.Workload.preset("chatbot", arrival="poisson"))
    pd.testing.assert_frame_equal(blis.plan(**kw, workers=1), blis.plan(**kw, workers=2, progress=True))


def test_ray_gives_identical_rows(tmp_path):
    import os

    if os.environ.get("CI", "").lower() != "true":
        pytest.importorskip("ray")
    import ray

    kw = dict(model=MODEL, hardware="H100", tp=[1, 2], ttft_p99_ms=200, tpot_p99_ms=50, settings=FAST,
              workload=blis.Workload.preset("chatbot", arrival="poisson"))
    local = blis.plan(**kw, workers=2)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        remote = blis.plan(**kw, ray_address="auto")
    finally:
        ray.shutdown()
    assert remote.attrs["plan"]["backend"] == "ray"
    pd.testing.assert_frame_equal(local, remote)


def test_trace_sizes_replicas_for_its_own_load(tmp_path):
    wl = blis.Workload.preset("chatbot", rate=30, num_requests=1500, arrival="poisson", seed=3)
    t = wl.generate()
    path = tmp_path / "trace.csv"
    pd.DataFrame({"arrival_time_us": t.arrival_us, "input_tokens": t.input_tokens,
                  "output_tokens": t.output_tokens}).to_csv(path, index=False)
    trace = blis.Workload.from_trace_csv(path)
    df = blis.plan(model=MODEL, hardware="A100", tp=1, workload=trace, ttft_p99_ms=300, tpot_p99_ms=50,
                   workers=1, settings=FAST)
    row = df.iloc[0]
    assert df.attrs["plan"]["question"] == "fewest_gpus_at_rate"
    assert row["feasible"] and row["replicas"] >= 2  # one A100 serves ~23 req/s of chatbot at these SLOs
    assert row["ttft_p99_ci_ms"] is None  # a trace is one realisation: no seeds
    with pytest.raises(ValueError, match="rate: .*does not apply"):
        blis.plan(model=MODEL, hardware="A100", tp=1, workload=trace, rate=10, ttft_p99_ms=300)


def test_price_file_overrides(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("source: my contract\ndate: 2026-01-01\ngpus:\n  H100: {usd_per_gpu_hour: 1.5}\n")
    table = load_prices(path)
    assert table.price("h100") == 1.5 and table.price("H200") == load_prices().price("H200")
    assert table.source.startswith("my contract") and table.date == "2026-01-01"
    bad = tmp_path / "bad.yaml"
    bad.write_text("gpus:\n  H100: {usd_per_gpu_hour: -1}\n")
    with pytest.raises(ValueError, match="usd_per_gpu_hour of H100"):
        load_prices(bad)


def test_pareto_front_by_hand():
    df = pd.DataFrame({"feasible": [True, True, True, False], "ttft_p99_ms": [100.0, 50.0, 120.0, 10.0],
                       "output_tokens_per_s_per_gpu": [1000.0, 800.0, 900.0, 5000.0]})
    assert pareto_front(df).tolist() == [True, True, False, False]


def test_cli_json(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    png = tmp_path / "pareto.png"
    code = main(["plan", "--model", MODEL, "--hardware", "H100", "--tp", "1", "--slo-ttft-p99-ms", "200",
                 "--slo-tpot-p99-ms", "50", "--workers", "1", "--seeds", "2", "--probe-seconds", "20",
                 "--no-progress", "--plot", str(png)])
    assert png.stat().st_size > 1000
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    (row,) = out["candidates"]
    for key in ("hardware", "tp", "max_num_seqs", "max_num_batched_tokens", "max_rate_per_instance", "replicas",
                "gpus", "cost_per_hour", "cost_per_million_output_tokens", "ttft_p99_ms", "tpot_p99_ms",
                "e2e_p99_ms", "ttft_p99_ci_ms", "fidelity_basis"):
        assert key in row
    assert row["gpus"] == 1 and row["replicas"] == 1
    assert "backlog" in out["plan"]["stability_rule"]


@pytest.mark.parametrize("argv, message", [
    (["--tp", "1"], "slo: give at least one of"),
    (["--tp", "3", "--slo-ttft-p99-ms", "200"], "candidate llama-3.1-8b H100 TP3: tp: 3"),
    (["--hardware", "H999", "--slo-ttft-p99-ms", "200"], "candidate llama-3.1-8b H999 TP1: "),
    (["--routing", "round-robin", "--slo-ttft-p99-ms", "200"], "routing: only used with --rate"),
    (["--rate", "-3", "--slo-ttft-p99-ms", "200"], "rate: must be > 0"),
    (["--tp", "1,1", "--slo-ttft-p99-ms", "200"], "tp: 1 given twice"),
    (["--workers", "2", "--ray-address", "auto", "--slo-ttft-p99-ms", "200"], "workers: not used with"),
])
def test_cli_bad_input_is_one_line_exit_2(capsys, argv, message):
    base = ["plan", "--model", MODEL, "--no-progress"]
    try:
        code = main(base + argv)
    except SystemExit as exc:  # argparse's own refusals exit from the parser
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_pareto_plot_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    df = pd.DataFrame({"feasible": [True, True], "ttft_p99_ms": [100.0, 50.0], "hardware": ["H100", "A100"],
                       "tp": [1, 2], "pd_split": [None, None], "output_tokens_per_s_per_gpu": [1000.0, 800.0]})
    path = tmp_path / "pareto.png"
    blis.plan.plot_pareto(df, str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_infeasible_slo_is_reported_not_searched_forever():
    df = blis.plan(model=MODEL, hardware="A100", tp=1, ttft_p99_ms=5, rate=50, workers=1, settings=FAST)
    row = df.iloc[0]
    assert not row["feasible"] and row["max_rate_per_instance"] == 0.0
    assert row["replicas"] is None and row["cost_per_hour"] is None
    assert row["probes"] <= 8


def test_cli_json_is_identical_across_backends(capsys):
    argv = ["plan", "--model", MODEL, "--hardware", "H100", "--tp", "1,2", "--slo-ttft-p99-ms", "200",
            "--seeds", "2", "--probe-seconds", "20", "--no-progress"]
    outs = []
    for workers in ("1", "2"):
        assert main(argv + ["--workers", workers]) == 0
        outs.append(capsys.readouterr().out)
    assert outs[0] == outs[1]


def test_load_stages_are_sized_at_their_own_load():
    wl = blis.Workload.preset("chatbot", stages=[{"rate": 30, "duration_s": 40}, {"rate": 60, "duration_s": 40}],
                              arrival="poisson")
    df = blis.plan(model=MODEL, hardware="A100", tp=1, workload=wl, ttft_p99_ms=300, tpot_p99_ms=50, workers=1,
                   settings=FAST)
    row = df.iloc[0]
    assert df.attrs["plan"]["question"] == "fewest_gpus_at_rate"
    assert df.attrs["plan"]["target_rate"] == pytest.approx(45, rel=0.05)  # the stages' mean rate
    assert row["feasible"] and row["replicas"] >= math.ceil(60 / 23.4)  # the 60 req/s stage needs 3 A100s
