"""Serving-trace accuracy of the roofline v1 latency model on the shared H100 vLLM runs.

    python bench/roofline_accuracy.py [--data DIR] [--latency-model roofline] [--kv-from-model] [--json]

Each run in shared/data/traces/h100-vllm-v1 is replayed through ``blis.simulate`` (``blis.traces`` reads it:
real arrivals and prompt lengths from requests.csv, output length = profile.yaml ``output_len``, prompts
repeating as prompt_id = index within stage mod 100, server settings and KV blocks from meta.json /
exp-config.yaml). The metrics are ``blis.validate``'s: mean TTFT, mean E2E and mean TPOT = (E2E - TTFT) /
(output_len - 1) over completed requests, error = |sim - measured| / measured. Runs whose clients saw
failures or a runaway queue are "overloaded" and reported apart; the headline is the median error over
the non-overloaded runs.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

KEYS = ("ttft_mean_ms", "e2e_mean_ms", "tpot_mean_ms")


def main(argv: list[str] | None = None) -> int:
    root = Path(__file__).resolve().parents[1]
    default = Path(os.environ.get("BLIS_SHARED_DATA", root.parent / "shared" / "data"))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=default, help="shared data folder")
    ap.add_argument("--latency-model", default="roofline", help="latency model to evaluate (default roofline)")
    ap.add_argument("--calibration-file", help="calibration YAML/JSON overriding the shipped parameters")
    ap.add_argument("--kv-from-model", action="store_true",
                    help="derive KV blocks with blis.physics.kv_capacity instead of the logged vLLM count")
    ap.add_argument("--json", action="store_true", help="print the per-run results as JSON on stdout")
    args = ap.parse_args(argv)

    from blis.traces import find_runs, load_run
    from blis.traces.replay import replay, sim_config
    from blis.validate import compare

    rows = []
    for path in find_runs([str(args.data / "traces" / "h100-vllm-v1")]):
        run = load_run(path)
        cfg = sim_config(run, args.latency_model, calibration_file=args.calibration_file)
        if args.kv_from_model:
            cfg = cfg.model_copy(update={"engine": cfg.engine.model_copy(update={"total_kv_blocks": None})})
        start = time.perf_counter()
        rep = compare(replay(run, config=cfg))
        wall = time.perf_counter() - start
        row = {"run": rep.name, "model": rep.model, "tp": rep.tp, "overloaded": rep.overloaded, "wall_s": wall}
        for k in KEYS:
            m = rep.metrics[k]
            row[k] = {"measured": m.measured, "simulated": m.simulated, "error_pct": m.error_pct}
        rows.append(row)
        print(f"{rep.name:50s} {'overloaded' if rep.overloaded else 'ok':10s} "
              + "  ".join(f"{k[:-8]} {row[k]['measured']:9.1f}/{row[k]['simulated']:9.1f} ({row[k]['error_pct']:5.1f}%)"
                          for k in KEYS) + f"  [{wall:.1f} s]", file=sys.stderr)  # fmt: skip

    def medians(subset):
        return {k: statistics.median(r[k]["error_pct"] for r in subset if math.isfinite(r[k]["error_pct"]))
                for k in KEYS} if subset else {}  # fmt: skip

    ok = [r for r in rows if not r["overloaded"]]
    summary = {"non_overloaded_runs": len(ok), "median_error_pct_non_overloaded": medians(ok),
               "median_error_pct_all": medians(rows)}  # fmt: skip
    for label, key in (("non-overloaded", "median_error_pct_non_overloaded"), ("all", "median_error_pct_all")):
        med = summary[key]
        print(f"median error over {label} runs: " + ", ".join(f"{k} {v:.1f}%" for k, v in med.items()),
              file=sys.stderr)
    if args.json:
        json.dump({"runs": rows, "summary": summary}, sys.stdout, indent=2)
        sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
