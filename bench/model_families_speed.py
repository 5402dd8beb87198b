"""Cost of one roofline-v1 step for the model families of docs/models.md (microseconds per call).

    python bench/model_families_speed.py

Uniform models use roofline v1's precomputed fast path; MLA, windowed, shared-expert, mixed-format and EP
deployments are evaluated piece by piece (``blis.latency.roofline_general``), their weight GEMMs cached per
(prefill, decode, sampled) token counts. Batches: decode-only (64 requests, context growing every call so
attention is never cached) and mixed (one 512-token chunk + 32 decodes). Best of 3 x 20k calls.
"""

from __future__ import annotations

import platform
import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from blis.config import SimConfig  # noqa: E402
from blis.latency.base import StepBatch, create_latency_model  # noqa: E402

CASES = [
    ("llama-3.1-70b", "H100", 4, {}),
    ("llama-3.1-70b", "H100", 4, {"quantization": "fp8"}),
    ("openai/gpt-oss-120b", "H100", 2, {}),
    ("Qwen/Qwen3-235B-A22B-FP8", "H200", 4, {"ep": 4}),
    ("deepseek-ai/DeepSeek-V3", "H200", 8, {"ep": 8}),
    ("moonshotai/Kimi-K2.5", "B200", 8, {}),
]


def main() -> None:
    print(f"python {platform.python_version()}, {platform.machine()}")
    print(f"{'model':34s} {'flags':22s} {'path':8s} {'decode us':>10s} {'mixed us':>10s}")
    for model, hw, tp, extra in CASES:
        lm = create_latency_model("roofline", SimConfig(model=model, hardware=hw, tp=tp, **extra))
        path = "pieces" if getattr(lm, "general", None) is not None else "fast"
        counter = iter(range(10**9))

        def decode(lm=lm, counter=counter):
            i = next(counter)
            lm.step_time_us(StepBatch(num_decode_tokens=64, sum_decode_context=64 * 2000 + i, num_sampled=64))

        def mixed(lm=lm, counter=counter):
            i = next(counter)
            lm.step_time_us(StepBatch(num_prefill_tokens=512, prefill_chunks=[(512, i % 4096)],
                                      num_decode_tokens=32, sum_decode_context=32 * 1500 + i, num_sampled=33))

        n = 20_000
        d = min(timeit.repeat(decode, number=n, repeat=3)) / n * 1e6
        m = min(timeit.repeat(mixed, number=n, repeat=3)) / n * 1e6
        flags = " ".join(f"{k}={v}" for k, v in extra.items())
        print(f"{model:34s} {flags:22s} {path:8s} {d:10.1f} {m:10.1f}")


if __name__ == "__main__":
    main()
