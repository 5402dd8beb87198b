"""The engine's public surface (blis.engine): load snapshots, prefix-cache probes and counters, roles, and the
prefill-chunk rule, on hand-computable cases (constant 100 us steps, 16-token blocks)."""

from __future__ import annotations

import dataclasses

import pytest
import simpy

from blis.config import EngineConfig
from blis.engine import BlockKeys, Instance, InstanceLoad, RequestLog, RequestStatus, prefill_chunk
from blis.latency.base import StepBatch
from blis.workload.request_table import RequestTable


class ConstantSteps:
    """Every step 100 us; no API-server, scheduling or detokenisation time."""

    name = "constant"

    def step_time_us(self, batch: StepBatch) -> int:
        return 100

    def queueing_time_us(self, input_tokens: int) -> int:
        return 0

    def output_token_processing_time_us(self) -> int:
        return 0

    def scheduling_processing_time_us(self) -> int:
        return 0

    def preemption_processing_time_us(self) -> int:
        return 0

    def describe(self) -> dict:
        return {"name": self.name}


def make(table: RequestTable, role: str = "mixed", **engine) -> tuple[simpy.Environment, Instance, RequestLog]:
    env = simpy.Environment()
    log = RequestLog(len(table))
    cfg = EngineConfig(**{"total_kv_blocks": 100, "async_scheduling": False, **engine})
    inst = Instance(env, 0, cfg, cfg.total_kv_blocks, ConstantSteps(), BlockKeys(table, cfg.block_size), log,
                    table.input_tokens.tolist(), table.output_tokens.tolist(), table.arrival_us.tolist(), role=role)
    return env, inst, log


def test_load_is_a_frozen_snapshot_of_queue_batch_flight_and_blocks():
    table = RequestTable([0, 0, 0, 10_000], [10, 10, 10, 40], [5, 5, 5, 1])
    env, inst, _ = make(table, max_num_seqs=1)
    for idx in range(4):
        inst.push(idx)
    env.run(until=50)  # inside the first step: request 0 runs (one block), 1 and 2 wait, 3 is still in flight
    load = inst.load()
    assert load == InstanceLoad(waiting=2, running=1, in_flight=1, kv_blocks_used=1, kv_blocks_total=100)
    assert load.kv_utilization == 0.01
    with pytest.raises(dataclasses.FrozenInstanceError):
        load.waiting = 0
    env.run(until=60)
    assert inst.load() == load  # nothing changed inside the step
    inst.close()
    env.run()
    assert inst.load() == InstanceLoad(0, 0, 0, 0, 100)
    assert inst.num_routed == 4 and inst.num_kv_blocks == 100


def test_prefix_probe_counts_nothing_and_the_pool_counts_its_hits():
    # two requests with the same 40-token prompt (2 full blocks + 8 tokens); the second arrives after the
    # first finished (its blocks freed but still cached)
    table = RequestTable([0, 10_000], [40, 40], [2, 2], prompt_id=[7, 7])
    env, inst, log = make(table)
    inst.push(0)
    assert inst.prefix_hit_blocks(1) == 0 and inst.num_prompt_blocks(1) == 2
    env.run(until=5_000)
    assert log.finish_step[0] >= 0
    assert inst.prefix_hit_blocks(1) == 2
    assert inst.prefix_hit_blocks(1) == 2  # a probe: asking again changes nothing
    stats = inst.cache_stats()
    assert (stats.hits, stats.queries) == (0, 2)  # request 0 looked up (40 - 1) // 16 = 2 blocks, none cached
    inst.push(1)
    inst.close()
    env.run()
    stats = inst.cache_stats()
    assert (stats.hits, stats.queries, stats.hit_rate) == (2, 4, 0.5)
    assert log.cached_tokens.tolist() == [0, 32]


def test_roles_prefill_stops_after_one_token_and_decode_receives_the_prompt_computed():
    table = RequestTable([0], [100], [5])
    env, inst, log = make(table, role="prefill")
    inst.push(0)
    inst.close()
    env.run()
    assert inst.role == "prefill"
    assert inst.steps.column("prefill_tokens").tolist() == [100]  # one step: the prompt, one token, done
    assert log.finish_step.tolist() == [0]

    env, inst, log = make(table, role="decode")
    inst.push(0)
    inst.close()
    env.run()
    # the last prompt token is recomputed (and samples token 1), then 4 decode steps
    assert inst.steps.column("prefill_tokens").tolist() == [1, 0, 0, 0, 0]
    assert inst.steps.column("decode_tokens").tolist() == [0, 1, 1, 1, 1]

    with pytest.raises(ValueError, match="role"):
        make(table, role="both")


def test_prefill_chunk_rule_and_status_names():
    assert prefill_chunk(500, 0, 2048) == 500  # threshold 0 = off
    assert prefill_chunk(500, 64, 2048) == 64  # cut to the long-prefill threshold
    assert prefill_chunk(500, 0, 100) == 100  # cut to the step's token budget left
    assert prefill_chunk(500, 64, 10) == 10
    assert prefill_chunk(30, 64, 2048) == 30
    assert [s.name for s in RequestStatus] == ["WAITING", "RUNNING_PREFILL", "RUNNING_DECODE", "FINISHED"]
