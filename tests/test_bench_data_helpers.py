"""Builders of small, physically consistent bench_data folders for the bench-data, MFU and roofline-v2 tests
(no tests here; imported by tests/test_bench_data_*.py, test_mfu_tables.py, test_roofline_v2.py)."""

from __future__ import annotations

import json
from pathlib import Path

PEAK_TFLOPS = {"bf16": 1000.0, "fp8": 2000.0}
BANDWIDTH_GBPS = 3000.0


def gemm_latency_us(m: int, k: int, n: int, dtype_bytes: float = 2.0, peak_tflops: float = 1000.0) -> float:
    """A plausible GEMM: max(FLOPs at an MFU rising with m, bytes at 80 % of the bandwidth) + 5 us launch."""
    mfu = 0.7 * m / (m + 256.0)
    compute = 2.0 * m * k * n / (peak_tflops * 1e12 * mfu) * 1e6
    memory = (m * k + k * n + m * n) * dtype_bytes / (0.8 * BANDWIDTH_GBPS * 1e9) * 1e6
    return max(compute, memory) + 5.0


def write_provenance(folder: Path, **extra) -> None:
    prov = {
        "gpu": "testgpu",
        "device": "Test GPU",
        "date": "2025-01-01",
        "dtype": "bf16",
        "peak_tflops": PEAK_TFLOPS,
        "peak_memory_bandwidth_GBps": BANDWIDTH_GBPS,
    }
    prov.update(extra)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "provenance.json").write_text(json.dumps(prov))


def write_gemm(folder: Path, rows: list[tuple[int, int, int, float]], dtype: str = "bf16") -> Path:
    """rows: (m, k, n, latency_us); MFU computed from them."""
    path = folder / f"gemm_{dtype}.csv"
    lines = ["m,k,n,latency_us,mfu"]
    for m, k, n, lat in rows:
        mfu = 2.0 * m * k * n / (lat * 1e-6) / (PEAK_TFLOPS[dtype] * 1e12)
        lines.append(f"{m},{k},{n},{lat:.6g},{mfu:.6g}")
    path.write_text("\n".join(lines) + "\n")
    return path


def write_prefill(folder: Path, shape: tuple[int, int, int], rows: list[tuple[int, int, float]]) -> Path:
    """rows: (batch, seq_len, latency_us), bf16."""
    h, kv, d = shape
    (folder / "attention_prefill").mkdir(parents=True, exist_ok=True)
    path = folder / "attention_prefill" / f"{h}-{kv}-{d}.csv"
    lines = ["dtype,batch_size,seq_len,latency_us,mfu"]
    for b, s, lat in rows:
        mfu = 2.0 * b * h * d * s * s / (lat * 1e-6) / (PEAK_TFLOPS["bf16"] * 1e12)
        lines.append(f"bf16,{b},{s},{lat:.6g},{mfu:.6g}")
    path.write_text("\n".join(lines) + "\n")
    return path


def write_decode(folder: Path, shape: tuple[int, int, int], rows: list[tuple[int, int, float]]) -> Path:
    """rows: (batch, kv_len, latency_us), bf16 with bf16 KV."""
    h, kv, d = shape
    (folder / "attention_decode").mkdir(parents=True, exist_ok=True)
    path = folder / "attention_decode" / f"{h}-{kv}-{d}.csv"
    lines = ["dtype,kv_dtype,batch_size,kv_len,latency_us,mfu"]
    for b, L, lat in rows:
        mfu = 4.0 * b * h * d * L / (lat * 1e-6) / (PEAK_TFLOPS["bf16"] * 1e12)
        lines.append(f"bf16,bf16,{b},{L},{lat:.6g},{mfu:.6g}")
    path.write_text("\n".join(lines) + "\n")
    return path


def decode_latency_us(b: int, L: int, kv_heads: int, head_dim: int) -> float:
    """KV read at 70 % of the bandwidth plus 10 us."""
    return b * L * 2 * kv_heads * head_dim * 2 / (0.7 * BANDWIDTH_GBPS * 1e9) * 1e6 + 10.0


def prefill_latency_us(b: int, s: int, heads: int, head_dim: int) -> float:
    """Causal FLOPs at an MFU rising with seq_len plus 8 us."""
    mfu = 0.7 * s / (s + 1024.0)
    return 2.0 * b * heads * head_dim * s * s / (PEAK_TFLOPS["bf16"] * 1e12 * mfu) * 1e6 + 8.0


GEMM_MS = (8, 32, 128, 512, 2048, 8192)
GEMM_PAIRS = ((4096, 4096), (4096, 12288), (11008, 4096))
SEQS = (256, 1024, 4096, 16384)
KV_LENS = (256, 1024, 4096, 16384)
BATCHES = (1, 8, 64)


# Llama-2-7B at TP 1: qkv, o, gate_up, down, lm_head
LLAMA7B_PAIRS = ((4096, 12288), (4096, 4096), (4096, 22016), (11008, 4096), (4096, 32000))


def write_synthetic(folder: Path, shapes=((32, 8, 128),), pairs=GEMM_PAIRS, gpu: str = "testgpu",
                    gemm_dtype: str = "bf16", scale: float = 1.0) -> Path:
    """A complete, passing GPU folder: GEMMs for ``pairs``, prefill and decode tables for ``shapes``;
    every latency multiplied by ``scale``."""
    write_provenance(folder, gpu=gpu)
    write_gemm(folder, [(m, k, n, scale * gemm_latency_us(m, k, n)) for k, n in pairs for m in GEMM_MS],
               dtype=gemm_dtype)
    for h, kv, d in shapes:
        write_prefill(folder, (h, kv, d), [(b, s, scale * prefill_latency_us(b, s, h, d)) for b in (1, 4)
                                           for s in SEQS])
        write_decode(folder, (h, kv, d), [(b, L, scale * decode_latency_us(b, L, kv, d)) for b in BATCHES
                                          for L in KV_LENS])
    return folder
