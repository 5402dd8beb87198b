"""Decode-only stretches (issue #17) change no answer: the same runs with stretches turned off (every step its
own event) give byte-identical JSON and step logs, on random workloads, both latency models, async scheduling
on and off, small KV pools (preemptions), horizons, clusters, and a latency model without the fast path."""

import numpy as np
import pytest

import blis
from blis.engine import scheduler as engine_scheduler
from blis.engine import timeline as engine_timeline
from blis.workload.request_table import RequestTable
from tests._same_run import assert_same_run

BB = dict(latency_model="blackbox", alpha_coeffs=(100, 1, 5), beta_coeffs=(3000, 20, 30))
RF = dict(model="llama-2-7b", hardware="H100", tp=1, latency_model="roofline")


def _table(seed: int, n: int = 80) -> RequestTable:
    rng = np.random.default_rng(seed)
    span = int(rng.integers(2_000_000, 30_000_000))
    return RequestTable(np.sort(rng.integers(0, span, n)), rng.integers(1, 700, n), rng.integers(1, 400, n),
                        prompt_id=rng.integers(0, 10, n))


def _both(monkeypatch, cfg, table):
    counted = []
    real = engine_timeline.StepLog.add_run

    def counting(self, start_us, durations, decode, kv_used):
        counted.append(len(durations))
        return real(self, start_us, durations, decode, kv_used)

    monkeypatch.setattr(engine_timeline.StepLog, "add_run", counting)
    fast = blis.simulate(cfg, requests=table)
    monkeypatch.setattr(engine_scheduler.Scheduler, "decode_stretch_limit", lambda self: 0)
    slow = blis.simulate(cfg, requests=table)
    return fast, slow, counted


@pytest.mark.parametrize("seed", range(6))
def test_single_instance_random(monkeypatch, seed):
    rng = np.random.default_rng(100 + seed)
    lm = BB if seed % 2 else RF
    engine = blis.EngineConfig(total_kv_blocks=int(rng.choice([90, 200, 3000])),
                               async_scheduling=bool(seed % 3),
                               enable_prefix_caching=seed != 4,
                               max_num_seqs=int(rng.choice([8, 64, 256])),
                               max_num_batched_tokens=int(rng.choice([256, 2048, 8192])))
    horizon = int(rng.integers(1_000_000, 20_000_000)) if seed in (2, 5) else None
    fast, slow, used = _both(monkeypatch, blis.SimConfig(**lm, engine=engine, horizon_us=horizon), _table(seed))
    assert_same_run(fast, slow)
    assert used


@pytest.mark.parametrize("routing", ["round-robin", "least-loaded"])
def test_cluster(monkeypatch, routing):
    cfg = blis.ClusterConfig(**RF, engine=blis.EngineConfig(total_kv_blocks=400), num_instances=3, routing=routing,
                             horizon_us=25_000_000 if routing == "round-robin" else None)
    fast, slow, used = _both(monkeypatch, cfg, _table(7, n=120))
    assert_same_run(fast, slow)
    assert used  # a dynamic router's instances use stretches once no more requests can be routed to them


@pytest.mark.parametrize("case", range(5))
def test_dynamic_routing_light_load(monkeypatch, case):
    """A dynamic router reads the instances only at arrivals (and snapshot ticks): between them an open
    instance advances stretches that end before the next one, with the same answers as one event per step."""
    routing = ["least-loaded", "weighted", "weighted", "least-loaded", "weighted"][case]
    cfg = blis.ClusterConfig(**(BB if case == 3 else RF), num_instances=[2, 2, 3, 2, 4][case], routing=routing,
                             engine=blis.EngineConfig(total_kv_blocks=[3000, 400, 3000, 150, 3000][case],
                                                      async_scheduling=case != 1),
                             snapshot_refresh_ms=[0, 0, 37, 0, 80][case],
                             horizon_us=20_000_000 if case == 2 else None)
    rng = np.random.default_rng(30 + case)
    n = 90
    table = RequestTable(np.sort(rng.integers(0, 60_000_000, n)), rng.integers(1, 900, n), rng.integers(1, 300, n),
                         prompt_id=rng.integers(0, 4, n))
    starts = []
    real = engine_timeline.StepLog.add_run

    def spy(self, start_us, durations, decode, kv_used):
        starts.append(start_us)
        return real(self, start_us, durations, decode, kv_used)

    monkeypatch.setattr(engine_timeline.StepLog, "add_run", spy)
    fast, slow, used = _both(monkeypatch, cfg, table)
    assert_same_run(fast, slow)
    for name in ("instance", "cached_tokens"):
        if name in slow.request_columns:
            assert np.array_equal(fast.request_columns[name], slow.request_columns[name]), name
    assert min(starts) < int(table.arrival_us[-1])  # stretches while requests were still being routed


@pytest.mark.parametrize("seed", range(8))
def test_dynamic_routing_with_ties(monkeypatch, seed):
    """Constant step times and arrivals on the same grid: arrivals, snapshot ticks and step boundaries
    coincide all the time, the worst case for event order; stretches change no routing and no answer."""
    rng = np.random.default_rng(700 + seed)
    n = int(rng.integers(60, 160))
    step = int(rng.choice([1000, 2500, 5000]))
    lm = dict(latency_model="blackbox", alpha_coeffs=(0, 0, 0), beta_coeffs=(step, 0, int(rng.choice([0, 10]))))
    arrivals = np.sort(rng.integers(0, n * 6, n)) * step // int(rng.choice([1, 2]))
    table = RequestTable(arrivals, rng.integers(1, 600, n), rng.integers(1, 200, n), prompt_id=rng.integers(0, 5, n))
    routing = ["least-loaded", "weighted"][seed % 2]
    cfg = blis.ClusterConfig(**lm, num_instances=int(rng.integers(2, 4)), routing=routing,
                             engine=blis.EngineConfig(total_kv_blocks=int(rng.choice([80, 300, 3000])),
                                                      async_scheduling=bool(seed % 3),
                                                      max_num_seqs=int(rng.choice([4, 64]))),
                             snapshot_refresh_ms=[0, 0, 3 * step / 1000][seed % 3])
    fast, slow, used = _both(monkeypatch, cfg, table)
    assert_same_run(fast, slow)
    assert np.array_equal(fast.request_columns["instance"], slow.request_columns["instance"])
    assert used


@pytest.mark.parametrize("case", range(4))
def test_closed_loop(monkeypatch, case):
    """A closed loop on one instance: every send comes from the instance's own finishes, so it stretches."""
    lm = BB if case % 2 == 0 else RF
    loop = dict(concurrency=[4, 16, 2, 8][case], think_time_ms=[0, 200, 50, 0][case], ramp_s=[0, 0, 3, 1][case])
    cfg = blis.SimConfig(**lm, engine=blis.EngineConfig(total_kv_blocks=[500, 300, 2000, 800][case]),
                         horizon_us=40_000_000 if case == 3 else None,
                         workload=blis.Workload.preset("chatbot", num_requests=80, seed=3 + case, **loop))
    fast, slow, used = _both(monkeypatch, cfg, None)
    assert_same_run(fast, slow)
    assert used


def test_model_without_fast_path_falls_back_per_step(monkeypatch):
    from blis.latency.blackbox import BlackboxModel

    class PerStep(BlackboxModel):
        def step_time_us(self, batch):  # a subclass pricing steps its own way: no fast path
            return 2000 + 3 * batch.num_prefill_tokens + 40 * batch.num_decode_tokens + batch.sum_decode_context // 50

    model = PerStep(alpha=(100, 1, 5), beta=(0, 0, 0))
    assert model.decode_stretch_us(4, 100, 3) is None
    orig = blis.latency.base.create_latency_model

    def create(name, config):
        return model if name == "blackbox" else orig(name, config)

    import blis.run as run_mod

    monkeypatch.setattr(run_mod, "create_latency_model", create)
    cfg = blis.SimConfig(**BB, engine=blis.EngineConfig(total_kv_blocks=300))
    fast, slow, used = _both(monkeypatch, cfg, _table(11))
    assert_same_run(fast, slow)
    assert used


def test_builtin_latency_model_names_match_the_registry():
    from blis.latency import base

    assert base.latency_model_names() == base.available_latency_models()
    for name, module in base.BUILTIN_MODELS.items():
        assert base._FACTORIES[name].__module__ == module


def test_step_log_run_length_records_expand_per_step():
    from blis.engine import StepLog

    log = StepLog()
    log.add(0, 10, 100, 0, 1, 7, 0, 2)
    log.add_run(10, [5, 6, 7], 1, [7, 8, 8])
    log.add(100, 3_000_000_000, 0, 1, 1, 9, 1, 0)  # a duration beyond 32 bits widens the column
    log.add_run(3_000_000_100, [4, 2_500_000_000], 2, [10, 2**33])
    assert len(log) == 7 and len(log.record("count")) == 4
    assert log.column("start_us").tolist() == [0, 10, 15, 21, 100, 3_000_000_100, 3_000_000_104]
    assert log.column("duration_us").tolist() == [10, 5, 6, 7, 3_000_000_000, 4, 2_500_000_000]
    assert log.column("kv_blocks_used").tolist() == [7, 7, 8, 8, 9, 10, 2**33]
    assert log.column("decode_tokens").tolist() == [0, 1, 1, 1, 1, 2, 2]
    assert log.column("num_waiting").tolist() == [2, 0, 0, 0, 0, 0, 0]
    assert log.end_us().tolist() == [10, 15, 21, 28, 3_000_000_100, 3_000_000_104, 5_500_000_104]


@pytest.mark.parametrize("chunk, dense", [(7, True), (1 << 20, False), (5, False)])
def test_itl_from_runs_same_in_chunks_and_sparse(monkeypatch, chunk, dense):
    from blis import metrics

    cfg = blis.SimConfig(**RF, engine=blis.EngineConfig(total_kv_blocks=300))
    want = blis.simulate(cfg, requests=_table(5)).to_json()
    monkeypatch.setattr(metrics._inner_gaps, "__defaults__", (chunk,))
    if not dense:
        monkeypatch.setattr(metrics, "DENSE_RANGE", 0)
    assert blis.simulate(cfg, requests=_table(5)).to_json() == want


def test_step_log_widens_record_columns():
    from blis.engine import StepLog

    log = StepLog()
    log.add(0, 10, 100, 0, 1, 7, 0, 2)
    log.add(10, 10, 0, 1, 1, 7, 0, 2**40)  # more waiting requests than 32 bits hold
    assert log.column("num_waiting").tolist() == [2, 2**40]
    assert log.column("prefill_tokens").tolist() == [100, 0]
    assert log.column("start_us").tolist() == [0, 10]


def test_engine_log_widens_mid_run():
    """A step time beyond 32 bits (us) after ordinary steps and stretches: the engine's inlined step log
    widens its columns and keeps every step."""
    big = 3_000_000_000  # > 2**31 us
    lm = dict(latency_model="blackbox", alpha_coeffs=(0, 0, 0), beta_coeffs=(1000, 0, 0))
    rng = np.random.default_rng(3)
    n = 30
    table = RequestTable(np.sort(rng.integers(0, 50_000, n)), rng.integers(1, 100, n), rng.integers(2, 40, n))
    from blis.latency.blackbox import BlackboxModel

    class Slow(BlackboxModel):
        def step_time_us(self, batch):  # one very long step once 40 steps have run
            self.calls = getattr(self, "calls", 0) + 1
            return big if self.calls == 40 else 1000

    import blis.run as run_mod

    model = Slow(alpha=(0, 0, 0), beta=(1000, 0, 0))
    orig = run_mod.create_latency_model
    try:
        run_mod.create_latency_model = lambda name, config: model if name == "blackbox" else orig(name, config)
        res = blis.simulate(blis.SimConfig(**lm), requests=table)
    finally:
        run_mod.create_latency_model = orig
    d = res.step_columns["duration_us"]
    assert big in d.tolist() and len(d) == res.summary["num_steps"]
    starts = res.step_columns["start_us"]
    assert (starts[1:] >= starts[:-1] + d[:-1]).all()
    assert (res.request_columns["finish_ms"] >= 0).all()

