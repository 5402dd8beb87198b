"""Cost of closed-loop clients: wall time per simulated request, closed loop vs open loop at the same load.

    python bench/closed_loop_speed.py                     # 50,000 chatbot requests, 64 users, one instance
    python bench/closed_loop_speed.py --num-requests 20000 --concurrency 256 --instances 4

The closed-loop run goes first (N users, no think time). Two open-loop runs follow: (1) the same requests at
the send times the closed loop produced, replayed open-loop: the engine does exactly the same work (same
steps, same latencies), so the difference is the cost of the closed-loop driver alone; (2) Poisson arrivals
at the request rate the closed loop achieved (the engine is about as busy, but its batches differ). On one
instance a third run (3) hands the same send times to the instance one request at a time through
``Instance.push`` (the entry a cluster router and the closed loop use) instead of the up-front bulk list of
``blis.simulate``: the closed loop minus (3) is the driver's own cost. Each run
times only the simulation (request tables are built beforehand), best of --repeat, in CPU seconds of this
process (the wall clock of a shared machine is noisy). Printed: CPU seconds, microseconds per simulated
request and per engine step, and the closed/open ratios per request.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

import blis


def base(n: int, instances: int, seed: int = 42, **load) -> blis.SimConfig:
    wl = blis.Workload.preset("chatbot", num_requests=n, seed=seed, **load)
    common = dict(model="llama-2-7b", hardware="H100", tp=1, latency_model="blackbox",
                  engine=blis.EngineConfig(total_kv_blocks=7462), workload=wl)
    if instances > 1:
        return blis.ClusterConfig(**common, num_instances=instances, routing="least-loaded")
    return blis.SimConfig(**common)


def timed(cfg, repeat: int, requests=None) -> tuple[float, object]:
    run = blis.simulate_cluster if isinstance(cfg, blis.ClusterConfig) else blis.simulate
    requests = cfg.workload.generate() if requests is None else requests
    best, res = float("inf"), None
    for _ in range(repeat):
        t0 = time.process_time()
        res = run(cfg, requests=requests)
        best = min(best, time.process_time() - t0)
    return best, res


def pushed(cfg, requests):
    """Simulate ``requests`` open-loop on one instance, handing each to ``Instance.push`` (not the bulk list)."""
    from blis.report import build_result
    from blis.run import build_single

    built = build_single(cfg, requests)
    req, group, env, log, inst = built.requests, built.group, built.env, built.log, built.instance
    for i, enter in enumerate(group.enter_us.tolist()):
        inst.push(i, enter)
    inst.close()
    env.run()
    return build_result(req, [group], log, extra={"num_instances": 1})


def timed_fn(fn, repeat: int) -> tuple[float, object]:
    best, res = float("inf"), None
    for _ in range(repeat):
        t0 = time.process_time()
        res = fn()
        best = min(best, time.process_time() - t0)
    return best, res


def sent_as_trace(cfg, result):
    """The closed loop's requests at the times they were sent, sorted: an open-loop trace."""
    table = cfg.workload.generate()
    sent = np.round(result.requests.arrival_ms.to_numpy() * 1000).astype(np.int64)
    order = np.argsort(sent, kind="stable")
    trace = table.take(order)
    trace.arrival_us = sent[order]
    return trace


def row(kind: str, wall: float, res, n: int) -> dict:
    s = res.summary
    return {"kind": kind, "requests": n, "cpu_s": round(wall, 3), "us_per_request": round(wall / n * 1e6, 2),
            "steps": s["num_steps"], "us_per_step": round(wall / max(1, s["num_steps"]) * 1e6, 2),
            "responses_per_sec": round(s["responses_per_sec"], 2), "ttft_mean_ms": s["ttft_mean_ms"],
            "tpot_mean_ms": s["tpot_mean_ms"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--num-requests", type=int, default=50_000)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--instances", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    n = args.num_requests
    closed_cfg = base(n, args.instances, concurrency=args.concurrency)
    wall_c, res_c = timed(closed_cfg, args.repeat)
    closed = row(f"closed loop, {args.concurrency} users", wall_c, res_c, n)
    rate = res_c.summary["responses_per_sec"]
    open_cfg = base(n, args.instances, rate=rate, arrival="poisson")
    wall_s, res_s = timed(open_cfg, args.repeat, sent_as_trace(closed_cfg, res_c))
    same = row("open loop, the closed loop's send times", wall_s, res_s, n)
    wall_o, res_o = timed(open_cfg, args.repeat)
    poisson = row(f"open loop, poisson {rate:.1f}/s", wall_o, res_o, n)
    rows = [closed, same, poisson]
    per_req = closed["us_per_request"]
    extra = {}
    if args.instances == 1:
        trace = sent_as_trace(closed_cfg, res_c)
        wall_p, res_p = timed_fn(lambda: pushed(open_cfg, trace), args.repeat)
        rows.append(row("open loop, the same send times through Instance.push", wall_p, res_p, n))
        extra["closed_over_same_arrivals_pushed_per_request"] = round(per_req / rows[-1]["us_per_request"], 3)
    for r in rows:
        print(json.dumps(r))
    print(json.dumps({"instances": args.instances, **extra,
                      "closed_over_same_arrivals_per_request": round(per_req / same["us_per_request"], 3),
                      "closed_over_poisson_per_request": round(per_req / poisson["us_per_request"], 3),
                      "same_work": (closed["steps"], closed["ttft_mean_ms"]) == (same["steps"], same["ttft_mean_ms"])}))


if __name__ == "__main__":
    main()
