"""Simulator speed: simulated requests per wall-second, and peak memory for a million requests.

    python bench/speed.py                 # 100,000 chatbot requests near saturation, blackbox model
    python bench/speed.py --memory        # also 1,000,000 requests in a child process: peak RSS
    python bench/speed.py --num-requests 20000 --rate 40

The saturating rate is found first: a short run at a rate far above capacity measures the instance's
completion rate (requests/s), and the benchmark then offers 95% of it.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import blis


def config(rate: float, n: int, seed: int = 42) -> blis.SimConfig:
    return blis.SimConfig(model="llama-2-7b", hardware="H100", tp=1, latency_model="blackbox",
                          engine=blis.EngineConfig(total_kv_blocks=7462),
                          workload=blis.Workload.preset("chatbot", rate=rate, num_requests=n, seed=seed))


def saturation_rate() -> float:
    res = blis.simulate(config(rate=1000.0, n=5000))
    return res.summary["responses_per_sec"]


def measure(rate: float, n: int) -> dict:
    cfg = config(rate, n)
    requests = cfg.workload.generate()  # workload generation is timed separately
    t0 = time.perf_counter()
    res = blis.simulate(cfg, requests=requests)
    wall = time.perf_counter() - t0
    return {"requests": n, "rate": round(rate, 2), "wall_s": round(wall, 3),
            "sim_requests_per_wall_s": round(n / wall), "steps": res.summary["num_steps"],
            "ttft_mean_ms": res.summary["ttft_mean_ms"], "preemptions": res.summary["preemption_count"]}


def child_memory(rate: float, n: int) -> dict:
    code = (f"import sys; sys.path.insert(0, {repr(sys.path[0])}); import speed, resource, json; "
            f"r = speed.measure({rate}, {n}); "
            "r['peak_rss_mb'] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024); "
            "print(json.dumps(r))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--num-requests", type=int, default=100_000)
    ap.add_argument("--rate", type=float, help="requests/s (default: 95%% of the measured saturation rate)")
    ap.add_argument("--memory", action="store_true", help="also run 1,000,000 requests and report peak RSS")
    args = ap.parse_args()
    sat = saturation_rate()
    rate = args.rate or 0.95 * sat
    print(f"saturation rate (measured): {sat:.1f} req/s; offered rate: {rate:.1f} req/s")
    r = measure(rate, args.num_requests)
    print(json.dumps(r))
    print(f"==> {r['sim_requests_per_wall_s']:,} simulated requests per wall-second "
          f"({r['requests']:,} requests in {r['wall_s']} s)")
    if args.memory:
        m = child_memory(rate, 1_000_000)
        print(json.dumps(m))
        print(f"==> 1,000,000 requests: {m['wall_s']} s, peak RSS {m['peak_rss_mb']} MB")
    _ = resource  # imported for the child


if __name__ == "__main__":
    main()
