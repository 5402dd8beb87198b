"""Start-up speed: wall and CPU time of the README's first command, ``python -m blis run --workload chatbot
--rate 10`` (100 requests), run in a fresh subprocess N times; prints the median and the spread.

    python bench/startup.py            # 11 runs
    python bench/startup.py --runs 21 \
        --command "python -m blis run --workload chatbot --rate 10 --latency-model blackbox"

CPU time is the child's user + system time (``resource.getrusage(RUSAGE_CHILDREN)``), steadier than wall time on
a shared machine; the load average is printed beside the numbers. Byte-code is cached as on a user's machine (the
warm-up run writes it even where PYTHONDONTWRITEBYTECODE is set). The floor printed below is the same interpreter
importing only numpy (with one OpenBLAS thread, as the blis command asks) and pydantic, what blis cannot start
without. ``--root`` measures another checkout (before
and after a change: run both, interleaved if the machine is shared).
"""

from __future__ import annotations

import argparse
import os
import resource
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README_COMMAND = "python -m blis run --workload chatbot --rate 10"


def once(argv: list[str], env: dict, cwd: Path = ROOT) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=11)
    ap.add_argument("--command", default=README_COMMAND)
    ap.add_argument("--root", type=Path, default=ROOT, help="checkout to measure (default: this one)")
    args = ap.parse_args()
    if not (args.root / "blis" / "__init__.py").is_file():
        ap.error(f"--root: {args.root} is not a blis checkout (no blis/__init__.py)")
    argv = shlex.split(args.command)
    if argv[0] == "python":
        argv[0] = sys.executable
    floor = [sys.executable, "-c", "import numpy, pydantic"]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(args.root.resolve())
    floor_env = dict(env, OPENBLAS_NUM_THREADS=env.get("OPENBLAS_NUM_THREADS", "1"))
    once(argv, env, args.root)  # warm the file cache and byte-code
    once(floor, floor_env, args.root)
    walls, cpus, floors = [], [], []
    load0 = os.getloadavg()[0]
    for _ in range(args.runs):
        w, c = once(argv, env, args.root)
        walls.append(w)
        cpus.append(c)
        floors.append(once(floor, floor_env, args.root)[0])
    print(f"command: {args.command}  ({args.runs} runs, {os.cpu_count()} cpus, load average {load0:.2f} -> "
          f"{os.getloadavg()[0]:.2f})")
    print(f"wall: median {statistics.median(walls):.3f} s (min {min(walls):.3f}, max {max(walls):.3f})")
    print(f"cpu:  median {statistics.median(cpus):.3f} s (min {min(cpus):.3f}, max {max(cpus):.3f})")
    print(f"floor (python -c 'import numpy, pydantic'): wall median {statistics.median(floors):.3f} s")


if __name__ == "__main__":
    main()
