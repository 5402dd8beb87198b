"""Accuracy of roofline-v2 against the shared H100 vLLM runs, next to roofline v1 (prints a table).

Usage: python bench/roofline_v2_accuracy.py [--runs DIR] [--bench-data-path SRC ...] [--jobs N]
SRC is a bench_data folder or ``aiconfigurator[:system/backend/version]`` (default: ``aiconfigurator``, the
newest vLLM tables of aiconfigurator-core for the H100 SXM). Each run is replayed with its real arrivals,
prompt lengths and repeats, output_len and server settings (blis.traces) and compared with what the client
measured (blis.validate): error = |simulated - measured| / measured of mean TTFT, E2E and TPOT.

Variants: ``v1`` (today's default: the H100 calibration plus the shipped per-(model, TP) refit fitted on
these runs), ``v1 generic`` (the H100 calibration alone: no per-setup refit) and ``v2 <SRC> generic``
(roofline-v2 on the tables, with the H100 calibration alone for its non-kernel terms). Only ``v1`` has seen
these runs; the generic variants are not fitted to them. Medians over the runs not overloaded and over all.

``--decode-v1`` adds a diagnostic: roofline-v2 with its decode-attention tables removed (v1's decode attention).
``--step-overhead-grid 0,400,...`` instead scores roofline-v2 (first SRC) with step_overhead_us set to each
value and reports leave-one-model-out: for each model the value that is best on the other models' runs
(median over those runs of the mean of the three errors), scored on the held-out model's runs.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import statistics
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from unittest import mock

SHARED = Path(os.environ.get("BLIS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
METRICS = ("ttft_mean_ms", "e2e_mean_ms", "tpot_mean_ms")


def _without_decode_tables():
    """Diagnostic: roofline-v2 with its decode-attention tables removed (that family falls back to v1)."""
    from dataclasses import replace

    from blis.bench_data import format as bdf
    from blis.bench_data import lookup

    orig = lookup.MfuDatabase.from_source.__func__

    def from_source(cls, source, hardware, mode="loglog"):
        return replace(orig(cls, source, hardware, mode), decode=lookup.AttentionTables(bdf.DECODE))

    return mock.patch.object(lookup.MfuDatabase, "from_source", classmethod(from_source))


def _one(job: tuple[str, str, str, dict, bool]) -> tuple[str, str, bool, dict]:
    from blis.traces import load_run
    from blis.traces.replay import sim_config
    from blis.validate import is_overloaded, validate_run

    path, label, name, update, generic = job
    run = load_run(path)
    update = dict(update)
    decode_v1 = update.pop("_decode_v1", False)
    cfg = sim_config(run, name).model_copy(update=update)
    no_refit = mock.patch("blis.latency.roofline.model_calibration", lambda *a: None)
    with warnings.catch_warnings(), (no_refit if generic else contextlib.nullcontext()), \
            (_without_decode_tables() if decode_v1 else contextlib.nullcontext()):
        warnings.simplefilter("ignore")
        rep = validate_run(run, config=cfg)
    cells = {m: (rep.metrics[m].measured, rep.metrics[m].simulated, rep.metrics[m].error_pct) for m in METRICS}
    return run.name, label, is_overloaded(run), cells


def main() -> None:
    from blis.traces import find_runs

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", default=str(SHARED / "traces" / "h100-vllm-v1"))
    ap.add_argument("--bench-data-path", nargs="*", default=["aiconfigurator"])
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--step-overhead-grid", default=None, metavar="US,US,...")
    ap.add_argument("--decode-v1", action="store_true",
                    help="diagnostic: also roofline-v2 with decode attention from v1 (its tables removed)")
    args = ap.parse_args()
    if args.step_overhead_grid:
        return overhead_lomo(args)
    variants = [("v1", "roofline", {}, False), ("v1 generic", "roofline", {}, True)]
    variants += [(f"v2 {src} generic", "roofline-v2", {"bench_data_path": src}, True)
                 for src in args.bench_data_path]
    if args.decode_v1:
        variants += [(f"v2 {src} generic, decode v1", "roofline-v2", {"bench_data_path": src, "_decode_v1": True},
                      True) for src in args.bench_data_path]
    runs = [str(p) for p in find_runs([args.runs])]
    jobs = [(r, label, name, upd, gen) for r in runs for label, name, upd, gen in variants]
    with ProcessPoolExecutor(args.jobs) as pool:
        results = list(pool.map(_one, jobs))
    labels = [v[0] for v in variants]
    errors = {lb: {m: [] for m in METRICS} for lb in labels}
    over: dict[str, bool] = {}
    print(f"{'run':<48} {'variant':<34} " + " ".join(f"{m[:-8] + ' meas/sim/err%':>26}" for m in METRICS))
    for name, label, overloaded, cells in results:
        over[name] = overloaded
        for m in METRICS:
            errors[label][m].append((name, cells[m][2]))
        row = " ".join(f"{c[0]:>9.1f}/{c[1]:>9.1f}/{c[2]:>5.1f}" for c in cells.values())
        print(f"{name[:47] + ('*' if overloaded else ' '):<48} {label:<34} {row}")
    print("\n* overloaded run (client failures or runaway queue)")
    for title, keep in (("runs not overloaded", lambda n: not over[n]), ("all runs", lambda n: True)):
        print(f"error over {title} ({sum(keep(n) for n in over)}), %: median (worst)")
        for label in labels:
            parts = []
            for m in METRICS:
                v = [e for n, e in errors[label][m] if keep(n) and math.isfinite(e)]
                parts.append(f"{m[:-8]}: {statistics.median(v):.1f} ({max(v):.1f})")
            print(f"  {label:<34} " + "  ".join(parts))


def overhead_lomo(args) -> None:
    import tempfile

    from blis.traces import find_runs

    grid = [float(x) for x in args.step_overhead_grid.split(",")]
    tmp = tempfile.TemporaryDirectory()
    jobs = []
    runs = [str(p) for p in find_runs([args.runs])]
    for x in grid:
        cal = Path(tmp.name) / f"so{x:g}.yaml"
        cal.write_text(f"roofline:\n  step_overhead_us: {x}\n")
        upd = {"bench_data_path": args.bench_data_path[0], "calibration_file": str(cal)}
        jobs += [(r, f"{x:g}", "roofline-v2", upd, True) for r in runs]
    with ProcessPoolExecutor(args.jobs) as pool:
        results = list(pool.map(_one, jobs))
    err = {(name, label): cells for name, label, _, cells in results}
    over = {name: o for name, _, o, _ in results}
    # the model of a run, e.g. llama-2-70b (the run names write it with or without "-hf")
    model = {name: name.split("-", 2)[2].rsplit("-", 2)[0].removesuffix("-hf") for name in over}

    def mean3(name, label):
        return statistics.mean(abs(err[(name, label)][m][2]) for m in METRICS)

    print(f"{'held-out model':<28} {'chosen step_overhead_us':>24}  " + "  ".join(m[:-8] for m in METRICS))
    held: dict[str, list[float]] = {m: [] for m in METRICS}
    for mdl in sorted(set(model.values())):
        train = [n for n in over if model[n] != mdl]
        best = min(grid, key=lambda x: statistics.median(mean3(n, f"{x:g}") for n in train))
        for n in (n for n in over if model[n] == mdl):
            cells = err[(n, f"{best:g}")]
            for m in METRICS:
                held[m].append((n, cells[m][2]))
            print(f"{n[:27] + ('*' if over[n] else ''):<28} {best:>24g}  "
                  + "  ".join(f"{cells[m][2]:>5.1f}" for m in METRICS))
    for title, keep in (("runs not overloaded", lambda n: not over[n]), ("all runs", lambda n: True)):
        parts = []
        for m in METRICS:
            v = [e for n, e in held[m] if keep(n) and math.isfinite(e)]
            parts.append(f"{m[:-8]}: {statistics.median(v):.1f} ({max(v):.1f})")
        print(f"leave-one-model-out, {title}: " + "  ".join(parts))
    for x in grid:
        print(f"step_overhead_us {x:g}: all runs median " + "  ".join(
            f"{m[:-8]} {statistics.median(abs(err[(n, f'{x:g}')][m][2]) for n in over):.1f}" for m in METRICS))
    tmp.cleanup()


if __name__ == "__main__":
    main()
