"""Writers of small tables in NVIDIA aiconfigurator's layout (systems/data/<system>/<op>/<backend>/<version>/
*.parquet, latency in milliseconds) for the aiconfigurator tests. No tests here."""

from __future__ import annotations

from pathlib import Path

BANDWIDTH = 3.35e12  # H100 SXM bytes/s
PEAK = 989.5e12  # H100 SXM bf16 FLOP/s


def gemm_ms(m: int, k: int, n: int) -> float:
    """Plausible bf16 GEMM: max(FLOPs at 60 % of peak, bytes at 70 % of DRAM) + 6 us."""
    t = max(2.0 * m * k * n / (0.6 * PEAK), 2.0 * (m * k + k * n + m * n) / (0.7 * BANDWIDTH))
    return (t + 6e-6) * 1e3


def decode_ms(b: int, L: int, kv: int, d: int) -> float:
    return (b * L * 2 * kv * d * 2 / (0.7 * BANDWIDTH) + 10e-6) * 1e3


def prefill_ms(b: int, s: int, h: int, d: int) -> float:
    return (2.0 * b * h * d * s * s / (0.5 * PEAK) + 8e-6) * 1e3


META = "schema_version: 1\nruntime:\n  framework: vllm\n  version: {v}\ntables:\n  {t}:\n    status: complete\n"


def _write(folder: Path, table: str, rows: list[dict], version: str) -> Path:
    import pandas as pd

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "collection_meta.yaml").write_text(META.format(v=version, t=table))
    path = folder / f"{table}.parquet"
    pd.DataFrame(rows).to_parquet(path)
    return path


def write_system(root: Path, system: str = "h100_sxm", version: str = "0.10.0", pairs=((4096, 4096),),
                 shapes=((32, 8, 128),), gemm_rows=None) -> Path:
    """A system with bf16 GEMMs, context and generation attention and a custom all-reduce table."""
    base = root / system
    common = {"framework": "VLLM", "version": version, "device": "NVIDIA H100 80GB HBM3"}
    rows = gemm_rows or [
        {**common, "op_name": "gemm", "kernel_source": "torch.nn.functional.linear", "gemm_dtype": "bfloat16",
         "m": m, "n": n, "k": k, "latency": gemm_ms(m, k, n)}
        for k, n in pairs for m in (1, 8, 64, 512, 4096)
    ]
    _write(base / "gemm" / "vllm" / version, "gemm_perf", rows, version)
    att = {**common, "kernel_source": "vllm_flash_attn_fa3", "beam_width": 1, "attn_dtype": "bfloat16",
           "kv_cache_dtype": "bfloat16", "window_size": 0}
    ctx = [{**att, "op_name": "context_attention", "batch_size": b, "isl": s, "num_heads": h,
            "num_key_value_heads": kv, "head_dim": d, "step": 0, "latency": prefill_ms(b, s, h, d)}
           for h, kv, d in shapes for b in (1, 4) for s in (256, 1024, 4096)]
    gen = [{**att, "op_name": "generation_attention", "batch_size": b, "isl": 1, "num_heads": h,
            "num_key_value_heads": kv, "head_dim": d, "step": L - 1, "latency": decode_ms(b, L, kv, d)}
           for h, kv, d in shapes for b in (1, 8, 64) for L in (128, 1024, 8192)]
    _write(base / "attention" / "vllm" / version, "context_attention_perf", ctx, version)
    _write(base / "attention" / "vllm" / version, "generation_attention_perf", gen, version)
    ar = [{**common, "op_name": "all_reduce", "kernel_source": "vLLM_custom_graph", "allreduce_dtype": "bfloat16",
           "num_gpus": g, "message_size": n, "latency": (5e-6 + 2 * n / 200e9) * 1e3, "backend": "vllm_graph"}
          for g in (2, 4) for n in (1024, 65536, 4194304, 268435456)]
    _write(base / "comm" / "vllm" / version, "custom_allreduce_perf", ar, version)
    return base
