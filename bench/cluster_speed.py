"""How fast the cluster simulator runs: simulated requests per wall-clock second.

    python bench/cluster_speed.py                      # saturation rate, 16 instances x 200k requests, scaling
    python bench/cluster_speed.py --requests 50000 --instances 1 4 16 --policies round-robin

Setup: llama-2-7b on H100 at TP 1 with the shipped blackbox coefficients, the chatbot length preset with
Poisson arrivals, KV blocks from the capacity model (or --total-kv-blocks). Step 1 measures one instance's
saturating throughput (responses/s when overloaded); then N instances get N times that rate. Times are wall
clock (and process CPU time, steadier on a shared machine) around `simulate_cluster`: workload generation
excluded; preparation and result tables included.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import blis  # noqa: E402
from blis.cluster import ClusterConfig, simulate_cluster  # noqa: E402


def engine(blocks: int | None) -> blis.EngineConfig:
    return blis.EngineConfig() if blocks is None else blis.EngineConfig(total_kv_blocks=blocks)


def saturation_rate(blocks: int | None, requests: int, seed: int) -> float:
    """Responses/s of one instance fed twice what it can serve (overloaded: throughput = capacity)."""
    cfg = blis.SimConfig(latency_model="blackbox", engine=engine(blocks),
                         workload=blis.Workload.preset("chatbot", rate=100.0, num_requests=requests,
                                                       arrival="poisson", seed=seed))
    return float(blis.simulate(cfg).summary["responses_per_sec"])


def run_once(n: int, rate: float, requests: int, policy: str, blocks: int | None, seed: int,
             repeats: int) -> tuple[float, float, dict]:
    cfg = ClusterConfig(latency_model="blackbox", engine=engine(blocks), num_instances=n, routing=policy,
                        workload=blis.Workload.preset("chatbot", rate=rate, num_requests=requests,
                                                      arrival="poisson", seed=seed))
    table = cfg.workload.generate()
    best = best_cpu = float("inf")
    res = None
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        res = simulate_cluster(cfg, requests=table)
        best = min(best, time.perf_counter() - t0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    assert res is not None
    return best, best_cpu, res.summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=200_000, help="requests per run (default 200000)")
    p.add_argument("--instances", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32, 64],
                   help="cluster sizes of the scaling table (default 1 2 4 8 16 32 64)")
    p.add_argument("--policies", nargs="+", default=["round-robin", "least-loaded", "weighted"],
                   help="routing policies to time")
    p.add_argument("--rate", type=float, help="per-instance rate, req/s (default: measured saturation rate)")
    p.add_argument("--total-kv-blocks", type=int, help="KV blocks per instance (default: capacity model)")
    p.add_argument("--repeats", type=int, default=1, help="runs per point; the fastest is reported")
    p.add_argument("--seed", type=int, default=42)
    args = p.parse_args(argv)

    print(f"python {platform.python_version()} on {platform.machine()} ({platform.processor() or 'cpu'})")
    rate = args.rate
    if rate is None:
        t0 = time.perf_counter()
        rate = saturation_rate(args.total_kv_blocks, 20_000, args.seed)
        print(f"single-instance saturation: {rate:.2f} responses/s (measured in {time.perf_counter() - t0:.1f} s)")
    print(f"per-instance rate {rate:.2f} req/s; {args.requests} requests per run\n")
    print(f"{'instances':>9} {'policy':>13} {'wall_s':>8} {'req_per_wall_s':>14} {'cpu_s':>7} {'req_per_cpu_s':>13} "
          f"{'ttft_p50_ms':>11} {'e2e_p50_ms':>10} {'steps':>8}")
    for n in args.instances:
        for policy in args.policies:
            wall, cpu, s = run_once(n, rate * n, args.requests, policy, args.total_kv_blocks, args.seed,
                                    args.repeats)
            print(f"{n:>9} {policy:>13} {wall:>8.2f} {args.requests / wall:>14,.0f} {cpu:>7.2f} "
                  f"{args.requests / cpu:>13,.0f} {s['ttft_p50_ms']:>11.1f} {s['e2e_p50_ms']:>10.1f} "
                  f"{s['num_steps']:>8}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
