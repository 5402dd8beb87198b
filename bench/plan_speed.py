"""Planner speed: the issue's target search, 2 GPUs x 4 TP values for Llama-3.1-8B with chatbot traffic.

    python bench/plan_speed.py                      # local process pool (one worker per CPU)
    python bench/plan_speed.py --workers 1          # in-process
    python bench/plan_speed.py --ray                # also through a local Ray instance (2 CPUs): same rows?
    python bench/plan_speed.py --no-bracket-reuse   # every candidate searched from scratch (probe count)

Prints one JSON line per run: wall seconds, CPU seconds (this process and its workers), probes and simulated
requests, then the rows. The target is under 60 s on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time

import blis

SLO = {"ttft_p99_ms": 200, "tpot_p99_ms": 50}


def cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def run(args, **backend) -> tuple[dict, object]:
    settings = {"reuse_brackets": not args.no_bracket_reuse}
    c0, t0 = cpu_seconds(), time.perf_counter()
    df, outcomes = blis.plan(model=args.model, hardware=args.hardware, tp=args.tp,
                             workload=blis.Workload.preset("chatbot", arrival="poisson"), slo=SLO,
                             settings=settings, details=True, progress=False, **backend)
    wall = time.perf_counter() - t0
    meta = df.attrs["plan"]
    record = {"backend": meta["backend"], "workers": meta["workers"], "candidates": len(df),
              "wall_s": round(wall, 2), "cpu_s_local": round(cpu_seconds() - c0, 2), "probes": meta["probes"],
              "cpus_visible": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()}
    return record, df


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="llama-3.1-8b")
    ap.add_argument("--hardware", default="H100,H200")
    ap.add_argument("--tp", default="1,2,4,8")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--ray", action="store_true", help="also run through a local Ray instance and compare rows")
    ap.add_argument("--no-bracket-reuse", action="store_true")
    args = ap.parse_args()
    record, df = run(args, workers=args.workers)
    print(json.dumps(record))
    cols = ["hardware", "tp", "max_rate_per_instance", "cost_per_million_output_tokens", "ttft_p99_ms",
            "tpot_p99_ms", "probes"]
    print(df[cols].to_string(index=False))
    if args.ray:
        import ray

        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        try:
            rrecord, rdf = run(args, ray_address="auto")
        finally:
            ray.shutdown()
        rrecord["identical_rows"] = bool(rdf.equals(df))
        print(json.dumps(rrecord))
        if not rrecord["identical_rows"]:
            print(rdf[cols].to_string(index=False))
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
