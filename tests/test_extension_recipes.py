"""The extension recipes of docs/architecture.md work as written: a toy latency model, a toy routing policy and
a toy GPU, each defined here (the "one file") and made known with one registry call, then simulated."""

from __future__ import annotations

import numpy as np
import pytest

import blis
from blis.cluster import register_router, routing
from blis.latency import base as latency_base
from blis.latency.base import StepBatch, register_latency_model
from blis.physics import hardware
from blis.physics.hardware import HardwareSpec, get_hardware, register_hardware
from blis.physics.kv_capacity import kv_blocks
from blis.workload.request_table import RequestTable


@pytest.fixture
def registries(monkeypatch):
    """Registries are process-wide; give this test private copies so the toys do not leak."""
    latency_base.available_latency_models()  # load the built-in models before copying their registry
    monkeypatch.setattr(latency_base, "_FACTORIES", dict(latency_base._FACTORIES))
    monkeypatch.setattr(routing, "_ROUTERS", dict(routing._ROUTERS))
    monkeypatch.setattr(hardware, "_BUILTIN", hardware._BUILTIN)
    monkeypatch.setattr(hardware, "_BY_KEY", dict(hardware._BY_KEY))


# --- toy GPU: 40 GB, 1 TB/s (so one token's worth of "bandwidth cost" below is 1 us) -----------------------
TOY_GPU = HardwareSpec(name="Toy-GPU", memory_bytes=40e9, memory_bandwidth_Bps=1e12, interconnect_bandwidth_Bps=1e11,
                       interconnect_latency_us=5.0, peak_flops={"bf16": 100e12, "fp16": 100e12},
                       source="test toy")


# --- toy latency model: 1000 us per step + (prefill tokens + decode tokens) x 1e12 / GPU bandwidth us -------
class ToyLinear:
    name = "toy-linear"

    def __init__(self, per_token_us: float) -> None:
        self.per_token_us = per_token_us

    def step_time_us(self, batch: StepBatch) -> int:
        return round(1000 + (batch.num_prefill_tokens + batch.num_decode_tokens) * self.per_token_us)

    def queueing_time_us(self, input_tokens: int) -> int:
        return 0

    def output_token_processing_time_us(self) -> int:
        return 0

    def scheduling_processing_time_us(self) -> int:
        return 0

    def preemption_processing_time_us(self) -> int:
        return 0

    def describe(self) -> dict:
        return {"name": self.name, "per_token_us": self.per_token_us}


def build_toy_linear(config) -> ToyLinear:
    return ToyLinear(1e12 / get_hardware(config.hardware).memory_bandwidth_Bps)


# --- toy routing policy: always the last candidate ------------------------------------------------------------
class LastInstance:
    name = "toy-last"
    static = False  # decided per arrival (exercises the dynamic path)

    def __init__(self, candidates: list, signals, config=None) -> None:
        self.n = len(candidates)

    def choose(self, idx: int) -> int:
        return self.n - 1


def _register_toys() -> None:
    register_hardware(TOY_GPU)
    register_latency_model("toy-linear")(build_toy_linear)
    register_router("toy-last", LastInstance)


def test_toy_latency_model_and_gpu_give_hand_computed_times(registries):
    _register_toys()
    # one request: 100 prompt tokens, 3 output tokens, at t=0
    cfg = blis.SimConfig(model="llama-2-7b", hardware="toy-gpu", latency_model="toy-linear")
    res = blis.simulate(cfg, requests=RequestTable([0], [100], [3]))
    s = res.summary
    assert (s["latency_model"], s["hardware"]) == ("toy-linear", "toy-gpu")
    # prefill step 1000 + 100 us -> first token at 1.1 ms; two decode steps of 1000 + 1 us each
    assert s["ttft_mean_ms"] == pytest.approx(1.1)
    assert s["e2e_mean_ms"] == pytest.approx(3.102)
    assert s["tpot_mean_ms"] == pytest.approx(1.001)
    # the KV cache was sized from the toy GPU's memory (no total_kv_blocks given), not an H100's
    assert s["total_kv_blocks"] == kv_blocks("llama-2-7b", TOY_GPU)
    assert s["total_kv_blocks"] != kv_blocks("llama-2-7b", "H100")
    assert res.model_description == {"name": "toy-linear", "per_token_us": 1.0}


def test_toy_router_in_a_cluster_and_the_toy_gpu_under_the_builtin_roofline(registries):
    _register_toys()
    n = 6
    table = RequestTable(np.arange(n) * 10_000, np.full(n, 50), np.full(n, 4))
    cluster = blis.ClusterConfig(hardware="Toy-GPU", latency_model="toy-linear", num_instances=3, routing="toy-last")
    res = blis.simulate_cluster(cluster, requests=table)
    assert res.instances["routed_requests"].tolist() == [0, 0, n]
    assert res.summary["completed_requests"] == n
    # the toy GPU also plugs into the built-in physics: the roofline prices steps from its bandwidth and FLOPs
    slow = blis.simulate(blis.SimConfig(hardware="Toy-GPU", latency_model="roofline"), requests=table)
    fast = blis.simulate(blis.SimConfig(hardware="H100", latency_model="roofline"), requests=table)
    assert slow.summary["e2e_mean_ms"] > fast.summary["e2e_mean_ms"]  # 1 TB/s vs 3.35 TB/s memory bandwidth


def test_unknown_names_list_the_registered_toys(registries):
    _register_toys()
    from blis.cluster import available_routers
    from blis.latency.base import available_latency_models

    assert "toy-last" in available_routers()
    assert "toy-linear" in available_latency_models()
    assert "Toy-GPU" in hardware.available_hardware()
