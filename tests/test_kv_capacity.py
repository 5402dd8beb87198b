"""KV capacity: vLLM's block counts of the shared H100 runs, hand arithmetic, the does-not-fit error."""

from __future__ import annotations

import json

import pytest

from blis.cli import main
from blis.config import EngineConfig, SimConfig
from blis.errors import BlisInputError
from blis.physics.hardware import GiB
from blis.physics.kv_capacity import (
    kv_block_bytes,
    kv_blocks,
    kv_blocks_for_config,
    kv_memory,
    weight_bytes_per_gpu,
)
from blis.physics.model_spec import get_model

# What vLLM logged for the shared runs (meta.json kv_blocks_total_gpu; block 16, H100 80 GB,
# max_num_batched_tokens 2048, max_num_seqs 128).
VLLM_BLOCKS = [("llama-2-7b", 1, 7462), ("llama-2-70b", 4, 31356), ("mixtral-8x7b", 2, 27510),
               ("codellama-34b", 2, 26602)]


@pytest.mark.parametrize("name,tp,blocks", VLLM_BLOCKS)
def test_within_5_percent_of_vllm(name, tp, blocks):
    got = kv_blocks(name, "H100", tp, block_size=16, gpu_memory_utilization=0.9, max_num_batched_tokens=2048,
                    max_num_seqs=128)
    assert got == pytest.approx(blocks, rel=0.05)


def test_shared_run_metadata_agrees(shared_data):
    seen = set()
    for meta_path in sorted((shared_data / "traces" / "h100-vllm-v1").glob("*/meta.json")):
        meta = json.loads(meta_path.read_text())
        c = meta["config"]
        key = (meta["model_id"], c["tensor_parallelism"])
        if key in seen:
            continue
        seen.add(key)
        got = kv_blocks(meta["model_id"], "H100", c["tensor_parallelism"], c["block_size"], 0.9,
                        c["max_num_batched_tokens"], c["max_num_seqs"])
        assert got == pytest.approx(c["kv_blocks_total_gpu"], rel=0.05), key
    assert len(seen) == 4


def test_block_bytes_by_hand():
    # Llama-2-7B: 32 layers x (K and V) x 16 tokens x 32 heads x 128 x 2 bytes = 8 MiB
    assert kv_block_bytes(get_model("llama-2-7b"), 1, 16) == 8 * 2**20
    # Llama-2-70B TP4: 2 KV heads per GPU
    assert kv_block_bytes(get_model("llama-2-70b"), 4, 16) == 80 * 2 * 16 * 2 * 128 * 2


def test_weights_per_gpu_by_hand():
    m = get_model("llama-2-7b")
    assert weight_bytes_per_gpu(m, 1) == m.param_count() * 2
    assert weight_bytes_per_gpu(m, 2) == pytest.approx(m.param_count(), rel=1e-4)  # norms replicated


def test_budget_adds_up():
    mem = kv_memory("llama-2-7b", "H100", 1)
    parts = mem.weight_bytes + mem.activation_bytes + mem.non_torch_bytes + mem.kv_bytes
    assert mem.usable_bytes == pytest.approx(parts)
    assert mem.blocks == int(mem.kv_bytes // mem.block_bytes)


def test_more_memory_more_blocks():
    assert kv_blocks("llama-2-7b", "H100", 1, gpu_memory_utilization=0.95) > kv_blocks("llama-2-7b", "H100", 1)
    assert kv_blocks("llama-2-70b", "H100", 8) > kv_blocks("llama-2-70b", "H100", 4)
    assert kv_blocks("llama-2-7b", "H200", 1) > kv_blocks("llama-2-7b", "H100", 1)
    assert kv_blocks("llama-2-7b", "H100", 1, block_size=32) == pytest.approx(
        kv_blocks("llama-2-7b", "H100", 1, block_size=16) / 2, abs=1)


def test_model_that_does_not_fit_says_what_is_missing():
    with pytest.raises(BlisInputError, match=r"does not fit on H100-SXM with tp=1.*GiB per GPU is missing") as e:
        kv_blocks("llama-2-70b", "H100", 1)
    # 128.5 GiB of weights vs 71.2 GiB usable: about 58 GiB short
    missing = float(str(e.value).split("; ")[-1].split(" GiB")[0])
    assert 57 < missing < 59
    with pytest.raises(BlisInputError, match="does not fit on L40S"):
        kv_blocks("llama-2-70b", "L40S", 2)


def test_bad_input():
    with pytest.raises(BlisInputError, match="gpu_memory_utilization"):
        kv_blocks("llama-2-7b", "H100", 1, gpu_memory_utilization=1.5)


def test_from_sim_config():
    cfg = SimConfig(model="llama-2-70b", tp=4, engine=EngineConfig(max_num_seqs=128))
    assert kv_blocks_for_config(cfg) == kv_blocks("llama-2-70b", "H100", 4, max_num_seqs=128)


def test_cli_kv(capsys):
    assert main(["roofline", "kv", "--model", "llama-2-7b", "--max-num-seqs", "128", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["blocks"] == pytest.approx(7462, rel=0.05)
    assert out["kv_bytes"] / GiB > 50
    assert main(["roofline", "kv", "--model", "llama-2-70b"]) == 2
    assert "does not fit" in capsys.readouterr().err
