"""How many KV-cache blocks vLLM gets on each GPU of a TP group.

vLLM (``Worker.determine_available_memory``; shared/docs/vllm-v1-scheduling.md section 3):
    KV bytes = total GPU memory x gpu_memory_utilization
               - (weights + peak activation of a profiling pass of max_num_batched_tokens tokens
                  + non-torch memory such as cuBLAS workspaces and NCCL buffers)
    blocks   = floor(KV bytes / (num_layers x page bytes)), page = 2 x block_size x kv_heads/TP x head_dim x dtype.
Every rank holds the same number of blocks, each block covering ``block_size`` tokens of every layer.
Page bytes follow the model as deployed: an fp8 KV cache halves them; MLA stores kv_lora_rank + rope dims
per token and layer, replicated on every TP rank.

Windowed layers (sliding window, chunked local attention): vLLM's hybrid KV-cache manager puts them in
their own KV-cache group(s), sharing one block pool with the full-attention layers, and frees a request's
blocks once they leave the window, so a windowed layer holds at most ceil(W / block_size) + 1 blocks per
running request. blis's engine counts the blocks of the full-attention layers only (a request holds
ceil(tokens / block_size) of them) and sets aside, from the KV memory, the windowed layers' blocks of
``max_num_seqs`` running requests: blocks = (KV bytes - max_num_seqs x (ceil(W / bs) + 1) x windowed page
bytes) / full-attention page bytes. That is vLLM's pool when max_num_seqs requests with contexts of at
least W run; with fewer running requests vLLM lends the unused window blocks to the full layers, so the
count here is a lower bound. The hybrid manager never holds more than full attention would, so when the
set-aside is larger than the windowed layers' share (long windows such as Llama-4's 8192-token chunks
with many sequences) the windowed layers are counted as full ones instead; so is a model whose every
layer is windowed (no full layers to count).

The two non-torch constants are derived from the four shared H100 runs (vLLM logged 7462, 31356, 27510 and
26602 blocks): memory left after weights, KV blocks and our activation estimate was 0.16 GiB for the TP1 run
and 0.58-0.63 GiB for the three TP>1 runs (NCCL and custom all-reduce buffers). It is under 1.5% of the KV
memory in every case, so the block count is set by the weights, the block size and the GPU memory.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from blis.errors import BlisInputError
from blis.physics.hardware import GiB, HardwareSpec, get_hardware, load_hardware_file
from blis.physics.model_registry import model_for_config
from blis.physics.model_spec import ModelSpec, check_tp, get_model
from blis.physics.step_cost import gemm_shapes, lm_head_shape

if TYPE_CHECKING:  # pragma: no cover
    from blis.config import SimConfig

NON_TORCH_BYTES_TP1 = 0.16 * GiB  # derived from the Llama-2-7B TP1 run (see module docstring)
NON_TORCH_BYTES_TP_MULTI = 0.60 * GiB  # derived from the three TP>1 runs (mean of 0.58, 0.58, 0.63 GiB)
SAMPLER_BYTES_PER_LOGIT = 8.0  # fp32 logits plus one fp32 copy (probabilities) in the dummy sampler run


@dataclass(frozen=True)
class KVMemory:
    """Per-GPU memory budget in bytes and the resulting block count."""

    usable_bytes: float
    weight_bytes: float
    activation_bytes: float
    non_torch_bytes: float
    kv_bytes: float
    block_bytes: float
    blocks: int

    def to_dict(self) -> dict:
        return asdict(self)


def weight_bytes_per_gpu(model: ModelSpec, tp: int) -> float:
    """Weights one GPU holds: sharded GEMM weights (KV heads replicated when fewer than tp), the
    vocabulary-parallel embedding and LM head, and the replicated norms. Each weight group in its own
    format (expert parallelism does not change the per-GPU share: E/ep experts of width I/(tp/ep))."""
    if not model.is_uniform:
        from blis.physics.layer_cost import layer_gemms

        gemm = sum(g.k * g.n * g.count * g.layers * model.weight_bytes_of(g.group) for g in layer_gemms(model, tp))
        norms = model.num_layers * (2 * model.hidden_size + model.q_lora_rank + model.kv_lora_rank)
        lm = lm_head_shape(model, tp)
        vocab = (1 if model.tie_word_embeddings else 2) * lm.k * lm.n
        return gemm + (norms + vocab + model.hidden_size) * model.weight_bytes_of("embed")
    per_layer = sum(g.k * g.n * g.count for g in gemm_shapes(model, tp)) + 2 * model.hidden_size
    lm = lm_head_shape(model, tp)
    vocab_mats = 1 if model.tie_word_embeddings else 2
    params = model.num_layers * per_layer + vocab_mats * lm.k * lm.n + model.hidden_size
    return params * model.weight_bytes_per_param


def activation_bytes(model: ModelSpec, tp: int, max_num_batched_tokens: int, max_num_seqs: int) -> float:
    """Peak activation of vLLM's profiling pass: the live tensors of the FFN for every token (residual,
    normalised input, gate/up output, SiLU output; for MoE the fused-expert caches of the routed tokens)
    in 16 bits, plus the dummy sampler's fp32 logits for ``max_num_seqs`` requests."""
    T = max_num_batched_tokens
    h = model.hidden_size
    ffn = -(-model.intermediate_size // tp)
    if model.is_moe:
        elements = 2 * h + model.experts_per_token * (3 * ffn + h)
        elements += 3 * -(-model.shared_expert_intermediate_size // tp)
        if model.num_dense_layers:
            elements = max(elements, 2 * h + 3 * -(-model.dense_intermediate_size // tp))
    else:
        elements = 2 * h + 3 * ffn
    vocab = -(-model.vocab_size // tp)
    return T * elements * 2.0 + max_num_seqs * vocab * SAMPLER_BYTES_PER_LOGIT


def kv_block_bytes(model: ModelSpec, tp: int, block_size: int = 16, windowed_apart: bool = False) -> float:
    """Bytes one KV block takes on one GPU: all layers, or with ``windowed_apart`` the full-attention
    layers of a model with windowed ones (module docstring)."""
    layers = (model.num_full_layers or model.num_layers) if windowed_apart else model.num_layers
    return layers * model.kv_token_layer_bytes(tp) * block_size


def window_reserve_bytes(model: ModelSpec, tp: int, block_size: int, max_num_seqs: int) -> float:
    """KV memory set aside for the windowed layers of ``max_num_seqs`` running requests (0 without any,
    or when every layer is windowed)."""
    if not model.num_window_layers or not model.num_full_layers:
        return 0.0
    blocks = -(-model.sliding_window // block_size) + 1
    page = model.kv_token_layer_bytes(tp) * block_size
    return max_num_seqs * blocks * model.num_window_layers * page


def kv_memory(
    model: ModelSpec | str,
    hardware: HardwareSpec | str,
    tp: int = 1,
    block_size: int = 16,
    gpu_memory_utilization: float = 0.9,
    max_num_batched_tokens: int = 2048,
    max_num_seqs: int = 256,
) -> KVMemory:
    """The per-GPU memory budget; raises BlisInputError when the model does not fit."""
    spec = get_model(model)
    hw = get_hardware(hardware)
    check_tp(spec, tp)
    if not 0.0 < gpu_memory_utilization <= 1.0:
        raise BlisInputError(f"gpu_memory_utilization: must be in (0, 1], got {gpu_memory_utilization}")
    if block_size < 1 or max_num_batched_tokens < 1 or max_num_seqs < 1:
        raise BlisInputError("block_size, max_num_batched_tokens and max_num_seqs must be >= 1")
    usable = hw.memory_bytes * gpu_memory_utilization
    weights = weight_bytes_per_gpu(spec, tp)
    act = activation_bytes(spec, tp, max_num_batched_tokens, max_num_seqs)
    non_torch = NON_TORCH_BYTES_TP1 if tp == 1 else NON_TORCH_BYTES_TP_MULTI
    kv = usable - weights - act - non_torch
    block = kv_block_bytes(spec, tp, block_size)
    blocks = math.floor(kv / block) if kv > 0 else 0
    reserve = window_reserve_bytes(spec, tp, block_size, max_num_seqs)
    if reserve and kv > reserve:  # hybrid allocator: windowed layers apart, if that holds more tokens
        apart = kv_block_bytes(spec, tp, block_size, windowed_apart=True)
        if math.floor((kv - reserve) / apart) > blocks:
            kv, block = kv - reserve, apart
            blocks = math.floor(kv / block)
    if blocks < 1:
        missing = (block - kv) / GiB
        raise BlisInputError(
            f"model {spec.name} does not fit on {hw.name} with tp={tp}: per GPU it needs "
            f"{weights / GiB:.2f} GiB of weights + {(act + non_torch) / GiB:.2f} GiB of activations and "
            f"runtime + one KV block, but only {usable / GiB:.2f} GiB is usable "
            f"({gpu_memory_utilization} x {hw.memory_bytes / GiB:.2f} GiB); {missing:.2f} GiB per GPU is missing "
            "(raise tp, gpu_memory_utilization or use a larger GPU)"
        )
    return KVMemory(usable, weights, act, non_torch, kv, block, blocks)


def kv_blocks(
    model: ModelSpec | str,
    hardware: HardwareSpec | str,
    tp: int = 1,
    block_size: int = 16,
    gpu_memory_utilization: float = 0.9,
    max_num_batched_tokens: int = 2048,
    max_num_seqs: int = 256,
) -> int:
    """KV-cache blocks per GPU (= per instance: every rank holds the same count) as vLLM would compute."""
    return kv_memory(
        model, hardware, tp, block_size, gpu_memory_utilization, max_num_batched_tokens, max_num_seqs
    ).blocks


def kv_blocks_for_config(config: SimConfig) -> int:
    """``kv_blocks`` for a SimConfig: its model (or config.json), hardware (or hardware file) and engine."""
    model = model_for_config(config)
    extra = load_hardware_file(config.hardware_file) if config.hardware_file else None
    hw = get_hardware(config.hardware, extra)
    e = config.engine
    return kv_blocks(model, hw, config.tp, e.block_size, e.gpu_memory_utilization, e.max_num_batched_tokens,
                     e.max_num_seqs)  # fmt: skip
