"""Speed of roofline-v2's per-step cost evaluation (microseconds per step_time_us call), against roofline v1.

Usage: python bench/mfu_lookup_speed.py [--bench-data-path SRC] [--model llama-2-7b] [--steps 200000]
SRC defaults to ``aiconfigurator`` (aiconfigurator-core's newest vLLM tables for --hardware) when that package
is installed, else the h100-blis tables of the shared data (BLIS_SHARED_DATA, default ../shared/data) are
imported into a temporary folder. "build" is the model's construction once the tables are read (the
aiconfigurator parquet read, about 2 s, happens once per process). Batches are drawn once (seeded) from a
serving-like mix: decode batches of 1..256 requests with contexts of 100..4000 tokens, and a prefill chunk
in 30 % of steps.
Prints CPU time per step_time_us call: warm (the caches filled by one pass), cold (the first 20000 steps of
a fresh model, most decode shapes new), and roofline v1 on the same steps.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
import warnings
from pathlib import Path

from blis.config import SimConfig
from blis.latency.base import StepBatch, create_latency_model


def batches(n: int, seed: int = 0, budget: int = 2048) -> list[StepBatch]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        d = rng.randint(1, 256)
        ctx = sum(rng.randint(100, 4000) for _ in range(min(d, 8))) * d // min(d, 8)
        chunks = []
        if rng.random() < 0.3:
            new = rng.randint(16, max(16, budget - d))
            chunks = [(new, rng.choice((0, 0, 512, 1024)))]
        p = sum(c[0] for c in chunks)
        out.append(StepBatch(num_prefill_tokens=p, num_decode_tokens=d, sum_decode_context=ctx,
                             prefill_chunks=chunks, num_sampled=d + len(chunks)))
    return out


def per_call_us(model, steps: list[StepBatch], repeat: int = 3) -> float:
    """Best of ``repeat`` passes, CPU time of this process per call (microseconds): other processes on
    the machine inflate wall time but hardly this."""
    f = model.step_time_us
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        for b in steps:
            f(b)
        best = min(best, (time.process_time() - t0) / len(steps) * 1e6)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bench-data-path", default=None)
    ap.add_argument("--model", default="llama-2-7b")
    ap.add_argument("--hardware", default="H100")
    ap.add_argument("--tp", type=int, default=1)
    ap.add_argument("--steps", type=int, default=200_000)
    args = ap.parse_args()
    tmp = None
    path = args.bench_data_path
    from blis.bench_data import aiconfigurator as aic

    if path is None and aic.installed():
        path = "aiconfigurator"
    if path is None:
        from blis.bench_data.importers import import_tables

        shared = Path(os.environ.get("BLIS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
        tmp = tempfile.TemporaryDirectory()
        import_tables(shared / "kernels" / "h100-blis", "h100-blis", tmp.name)
        path = tmp.name
    cfg = SimConfig(model=args.model, hardware=args.hardware, tp=args.tp, bench_data_path=path)
    steps = batches(args.steps)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        v2 = create_latency_model("roofline-v2", cfg)
        t0 = time.perf_counter()
        cold_model = create_latency_model("roofline-v2", cfg)
        build_ms = (time.perf_counter() - t0) * 1e3
    v1 = create_latency_model("roofline", cfg)
    per_call_us(v2, steps[:1000], repeat=1)
    # cold: a fresh model, one pass: first sight of every shape pays the table lookups
    t0 = time.process_time()
    for b in steps[:20000]:
        cold_model.step_time_us(b)
    cold = (time.process_time() - t0) / 20000 * 1e6
    warm = per_call_us(v2, steps)
    base = per_call_us(v1, steps)
    cov = v2.lookup_coverage()
    print(f"model {args.model} tp={args.tp} on {args.hardware}, tables {path}")
    print(f"build (load + check tables): {build_ms:.1f} ms")
    print(f"roofline-v2 step_time_us, warm caches:   {warm:.2f} us/step over {len(steps)} steps")
    print(f"roofline-v2 step_time_us, first 20000 steps of a fresh model: {cold:.2f} us/step")
    print(f"roofline v1 step_time_us:               {base:.2f} us/step")
    sizes = {k: len(getattr(v2, k)) for k in ("_gemm_cache", "_lm_cache", "_ar_cache", "_prefill_cache",
                                              "_decode_cache")}
    print(f"cache entries: {sizes}; coverage: {cov}")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
