"""Accuracy of roofline-v2 against the shared H100 vLLM runs, next to roofline v1 (prints a table).

Usage: python bench/roofline_v2_accuracy.py [--runs DIR] [--bench-data-path DIR] [--variants]
Without --bench-data-path, the h100-blis kernel tables of the shared data are imported into a temporary
folder (their GEMM rows are fp8: roofline-v2 then scales them to bf16 at equal MFU, see docs/roofline_v2.md).
Each run is replayed with its real arrivals, prompt lengths and repeats (prompt n of a stage = n mod 100),
output_len from profile.yaml and server settings from meta.json (blis.traces), and compared with what the
client measured (blis.validate): error = |simulated - measured| / measured of mean TTFT, E2E and TPOT.
Same method as bench/roofline_accuracy.py (roofline v1): medians over the runs that were not overloaded
(no client failures, no runaway queue: blis.validate.is_overloaded) and over all runs.
--variants adds two diagnostics (not models one should use): roofline-v2 with roofline v1's per-layer
overhead set to 0 (v1 fitted it on top of its own ideal kernel times), and roofline-v2 taking the fp8 GEMM
latencies as they are for the bf16 models (no peak-ratio scaling; FLOPs / peak still bounds them).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import tempfile
import warnings
from pathlib import Path
from unittest import mock

SHARED = Path(os.environ.get("BLIS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
METRICS = ("ttft_mean_ms", "e2e_mean_ms", "tpot_mean_ms")


def main() -> None:
    from blis.bench_data.importers import import_tables
    from blis.bench_data.lookup import MfuDatabase
    from blis.traces import find_runs, load_run
    from blis.traces.replay import sim_config
    from blis.validate import is_overloaded, validate_run

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", default=str(SHARED / "traces" / "h100-vllm-v1"))
    ap.add_argument("--bench-data-path", default=None)
    ap.add_argument("--variants", action="store_true")
    args = ap.parse_args()
    tmp = tempfile.TemporaryDirectory()
    bench = args.bench_data_path
    if bench is None:
        import_tables(SHARED / "kernels" / "h100-blis", "h100-blis", tmp.name)
        bench = tmp.name
    no_layer = Path(tmp.name) / "no_layer_overhead.yaml"
    no_layer.write_text("roofline:\n  layer_overhead_us: 0.0\n")
    v2 = {"bench_data_path": bench}
    variants = [("v1", "roofline", {}, False), ("v2", "roofline-v2", v2, False)]
    if args.variants:
        variants += [("v2 no layer overhead", "roofline-v2", {**v2, "calibration_file": str(no_layer)}, False),
                     ("v2 fp8 GEMM unscaled", "roofline-v2", v2, True)]
    labels = [v[0] for v in variants]
    errors: dict[str, dict[str, list[float]]] = {lb: {m: [] for m in METRICS} for lb in labels}
    overloaded: list[bool] = []
    print(f"{'run':<48} {'model':<22} " + " ".join(f"{m[:-8] + ' meas/sim/err%':>26}" for m in METRICS))
    for path in find_runs([args.runs]):
        run = load_run(path)
        overloaded.append(is_overloaded(run))
        for label, name, update, unscaled in variants:
            cfg = sim_config(run, name).model_copy(update=update)
            with warnings.catch_warnings(), mock.patch.object(
                MfuDatabase, "peak_ratio", (lambda self, a, b: 1.0) if unscaled else MfuDatabase.peak_ratio
            ):
                warnings.simplefilter("ignore")
                rep = validate_run(run, config=cfg)
            cells = []
            for m in METRICS:
                c = rep.metrics[m]
                errors[label][m].append(c.error_pct)
                cells.append(f"{c.measured:>9.1f}/{c.simulated:>9.1f}/{c.error_pct:>5.1f}")
            flag = "*" if overloaded[-1] else " "
            print(f"{run.name[:47] + flag:<48} {label:<22} " + " ".join(f"{c:>26}" for c in cells), flush=True)
    print("\n* overloaded run (client failures or runaway queue)")
    for title, keep in (("runs not overloaded", [not o for o in overloaded]), ("all runs", [True] * len(overloaded))):
        print(f"median error over {title} ({sum(keep)}), %:")
        for label in labels:
            med = {m: statistics.median([e for e, k in zip(errors[label][m], keep) if k and math.isfinite(e)])
                   for m in METRICS}
            print(f"  {label:<22} " + "  ".join(f"{m}: {v:.1f}" for m, v in med.items()))
    tmp.cleanup()


if __name__ == "__main__":
    main()
