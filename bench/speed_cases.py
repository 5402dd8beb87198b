"""Issue #17's speed cases: roofline v1 (Llama-2-7B / H100 / TP 1), chatbot preset, simulated requests per
wall-second and per CPU-second (``time.process_time``; steadier on a shared machine), and peak memory.

    python bench/speed_cases.py                        # the three cases at 100,000 requests
    python bench/speed_cases.py --requests 20000 --cases light
    python bench/speed_cases.py --memory               # also 1,000,000 requests at 10 req/s: peak RSS (child)

Cases: ``light`` one instance at 10 req/s; ``busy`` one instance at 95 % of its capacity (measured first:
responses/s of a 5,000-request overload run); ``cluster16`` 16 instances at 160 req/s (round-robin). Not run
by default (``--cases``): ``dynamic2`` 2 instances at 4 req/s and ``dynamic16`` 16 at 160 req/s, least-loaded.
Workload generation is excluded from the timing; preparation and the result tables are included.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import blis  # noqa: E402

RF = dict(model="llama-2-7b", hardware="H100", tp=1, latency_model="roofline")


def workload(rate: float, n: int) -> blis.Workload:
    return blis.Workload.preset("chatbot", rate=rate, num_requests=n, seed=42)


def capacity() -> float:
    return float(blis.simulate(blis.SimConfig(**RF, workload=workload(1000.0, 5000))).summary["responses_per_sec"])


def config(case: str, n: int, busy_rate: float | None = None):
    if case == "light":
        return blis.SimConfig(**RF, workload=workload(10.0, n))
    if case == "busy":
        return blis.SimConfig(**RF, workload=workload(busy_rate, n))
    if case == "cluster16":
        return blis.ClusterConfig(**RF, num_instances=16, workload=workload(160.0, n))
    if case == "dynamic2":  # a dynamic router at light load: stretches between arrivals
        return blis.ClusterConfig(**RF, num_instances=2, routing="least-loaded", workload=workload(4.0, n))
    if case == "dynamic16":  # arrivals every 6 ms cluster-wide: shorter than two decode steps
        return blis.ClusterConfig(**RF, num_instances=16, routing="least-loaded", workload=workload(160.0, n))
    raise SystemExit(f"case: {case!r} is not one of light, busy, cluster16, dynamic2, dynamic16")


def measure(case: str, n: int, busy_rate: float | None = None) -> dict:
    cfg = config(case, n, busy_rate)
    table = cfg.workload.generate()
    t0, c0 = time.perf_counter(), time.process_time()
    res = blis.simulate(cfg, requests=table)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    s = res.summary
    return {"case": case, "requests": n, "rate": round(cfg.workload.rate, 2), "wall_s": round(wall, 3),
            "cpu_s": round(cpu, 3), "req_per_wall_s": round(n / wall), "req_per_cpu_s": round(n / cpu),
            "steps": s["num_steps"], "steps_per_request": round(s["num_steps"] / n, 2),
            "ttft_p50_ms": round(s["ttft_p50_ms"], 3)}


def child_memory(n: int) -> dict:
    code = (f"import sys; sys.path.insert(0, {str(Path(__file__).resolve().parent)!r}); import speed_cases as b, "
            f"resource, json; r = b.measure('light', {n}); "
            "r['peak_rss_mb'] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024); print(json.dumps(r))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=100_000)
    ap.add_argument("--cases", nargs="+", default=["light", "busy", "cluster16"])
    ap.add_argument("--memory", action="store_true", help="also 1,000,000 requests at 10 req/s: peak RSS")
    args = ap.parse_args()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; cpus: {os.cpu_count()}")
    busy = None
    if "busy" in args.cases:
        cap = capacity()
        busy = 0.95 * cap
        print(f"capacity (measured): {cap:.1f} responses/s; busy case at {busy:.1f} req/s")
    for case in args.cases:
        print(json.dumps(measure(case, args.requests, busy)), flush=True)
    if args.memory:
        print(json.dumps(child_memory(1_000_000)), flush=True)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    _ = resource


if __name__ == "__main__":
    main()
