"""Instances that nothing else touches run on their own clock (`Instance.advance`, issue #17): a single
instance fed up front, and every instance of a static-routing cluster without P/D. The same runs forced onto
the shared SimPy environment give byte-identical JSON, step logs and request times, with and without a
horizon, a progress callback, preemptions and async scheduling."""

import numpy as np
import pytest

import blis
import blis.cluster.cluster as cluster_mod
import blis.run as run_mod
from blis.workload.request_table import RequestTable
from tests._same_run import assert_same_run

BB = dict(latency_model="blackbox", alpha_coeffs=(100, 1, 5), beta_coeffs=(3000, 20, 30))
RF = dict(model="llama-2-7b", hardware="H100", tp=1, latency_model="roofline")
REAL_RUN_ENVIRONMENT = run_mod.run_environment


def _table(seed: int, n: int = 120) -> RequestTable:
    rng = np.random.default_rng(seed)
    span = int(rng.integers(2_000_000, 30_000_000))
    return RequestTable(np.sort(rng.integers(0, span, n)), rng.integers(1, 700, n), rng.integers(1, 400, n),
                        prompt_id=rng.integers(0, 10, n))


def _run(monkeypatch, cfg, table, solo: bool, progress=None):
    used = []
    allowed = solo

    def spy(*args, solo=None, **kwargs):
        used.append(solo is not None)
        return REAL_RUN_ENVIRONMENT(*args, solo=solo if allowed else None, **kwargs)

    monkeypatch.setattr(run_mod, "run_environment", spy)
    monkeypatch.setattr(cluster_mod, "run_environment", spy)
    res = blis.simulate(cfg, requests=table, progress=progress)
    return res, used


@pytest.mark.parametrize("seed", range(6))
def test_single_instance_same_as_simpy(monkeypatch, seed):
    rng = np.random.default_rng(200 + seed)
    engine = blis.EngineConfig(total_kv_blocks=int(rng.choice([90, 300, 3000])), async_scheduling=bool(seed % 2),
                               max_num_seqs=int(rng.choice([8, 64, 256])),
                               max_num_batched_tokens=int(rng.choice([256, 2048])))
    horizon = int(rng.integers(1_000_000, 20_000_000)) if seed in (1, 4) else None
    cfg = blis.SimConfig(**(BB if seed % 3 == 0 else RF), engine=engine, horizon_us=horizon)
    fractions: list[float] = []
    own, used = _run(monkeypatch, cfg, _table(seed), True, progress=fractions.append if seed % 2 else None)
    shared, _ = _run(monkeypatch, cfg, _table(seed), False)
    assert used == [True]
    assert_same_run(own, shared)
    if fractions:
        assert fractions == sorted(fractions) and fractions[-1] <= 1.0


@pytest.mark.parametrize("horizon", [None, 15_000_000])
def test_static_cluster_same_as_simpy(monkeypatch, horizon):
    cfg = blis.ClusterConfig(**RF, engine=blis.EngineConfig(total_kv_blocks=400), num_instances=3,
                             routing="round-robin", horizon_us=horizon)
    own, used = _run(monkeypatch, cfg, _table(7, 200), True)
    shared, _ = _run(monkeypatch, cfg, _table(7, 200), False)
    assert used == [True]
    assert_same_run(own, shared)


def test_dynamic_routing_stays_on_simpy(monkeypatch):
    cfg = blis.ClusterConfig(**RF, num_instances=2, routing="least-loaded")
    _, used = _run(monkeypatch, cfg, _table(3, 50), True)
    assert used == [False]


@pytest.mark.parametrize("case", range(3))
def test_closed_loop_on_one_instance_same_as_simpy(monkeypatch, case):
    """Users in a closed loop on one instance: their sends come from its own finishes, so it runs on its own
    clock; the users' send times (arrival_ms) and every answer match the shared-environment run."""
    loop = dict(concurrency=[3, 12, 6][case], think_time_ms=[0, 300, 20][case], ramp_s=[0, 2, 0][case])
    cfg = blis.SimConfig(**(BB if case == 0 else RF), horizon_us=30_000_000 if case == 2 else None,
                         engine=blis.EngineConfig(total_kv_blocks=[400, 3000, 600][case]),
                         workload=blis.Workload.preset("chatbot", num_requests=70, seed=11 + case, **loop))
    own, used = _run(monkeypatch, cfg, None, True)
    shared, _ = _run(monkeypatch, cfg, None, False)
    assert used == [True]
    assert_same_run(own, shared)
    assert np.array_equal(own.request_columns["arrival_ms"], shared.request_columns["arrival_ms"])


def test_advance_refuses_an_open_instance():
    import simpy

    from blis.engine import BlockKeys, Instance, RequestLog

    table = _table(1, 4)
    cfg = blis.SimConfig(**BB)
    dep = run_mod.resolve_deployment(cfg)
    inputs, outputs = table.input_tokens.tolist(), table.output_tokens.tolist()
    inst = Instance(simpy.Environment(), 0, cfg.engine, 100, dep.latency_model, BlockKeys(table, 16), RequestLog(4),
                    inputs, outputs, table.arrival_us.tolist())
    with pytest.raises(RuntimeError, match="closed or self-fed"):
        inst.advance()


def test_fused_roofline_step_time_is_the_composition_bit_for_bit():
    """RooflineModel's hot-path closure gives the same float as the shared step composition."""
    from blis.latency.base import StepBatch

    rng = np.random.default_rng(5)
    for tp in (1, 2):
        model = run_mod.resolve_deployment(blis.SimConfig(**{**RF, "tp": tp})).latency_model
        for _ in range(2000):
            chunks = [(int(rng.integers(1, 3000)), int(rng.integers(0, 4000))) for _ in range(rng.integers(0, 4))]
            D = int(rng.integers(0, 300))
            P = sum(n for n, _ in chunks)
            if P + D == 0:
                continue
            batch = StepBatch(P, D, int(rng.integers(0, 2_000_000)) if D else 0, chunks,
                              D + int(rng.integers(0, len(chunks) + 1)))
            assert model._fuse(rounded=False)(batch) == model._composition.step_time_float_us(batch)
            assert model.step_time_us(batch) == round(model._composition.step_time_float_us(batch))
