"""Fit roofline-v2's non-kernel terms for H100-SXM on single-request runs; print the fit and optionally write it.

    python -m tools.fit_roofline_v2 [--data DIR] [--bench-data-path SRC]

roofline-v2 times GEMMs, attention and all-reduces from measured kernel tables (default: aiconfigurator's
newest vLLM H100 tables), so of v1's calibration only the CPU-side terms remain: step_overhead_us,
queueing_base_us and queueing_per_token_us. They are fitted exactly like v1's stage 2 (``tools.fit_roofline``):
least squares of log(predicted / measured) over the 13 TTFTs and 13 TPOTs of
shared/data/reference/sync13_h100_gt_from_h-roofline_h1.csv (single requests, so no batching effects), with
the per-layer overhead 0 (measured kernels contain their launch time). Also printed: the leave-one-run-out
error (each of the 13 runs predicted by a fit on the other 12). Nothing is written: on aiconfigurator's H100
tables the fit lands on v1's generic figures (step overhead 1663 vs 1621 us), so roofline-v2 keeps v1's
generic calibration for these terms (docs/roofline_v2.md).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import warnings
from dataclasses import replace
from pathlib import Path

from blis.bench_data.lookup import MfuDatabase
from blis.latency.roofline import RooflineModel, load_calibration
from blis.latency.roofline_v2 import RooflineV2Model
from blis.physics.hardware import get_hardware
from blis.physics.model_spec import get_model
from tools.fit_roofline import HW, SYNC13_BUDGET, default_data_dir, sync13_cases

FITTED = ("step_overhead_us", "queueing_base_us", "queueing_per_token_us")


def predict(case, params, db) -> tuple[float, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        v1 = RooflineModel(get_model(case.model), get_hardware(HW), case.tp, params)
        v2 = RooflineV2Model(v1, db, db.label)
    r = v2.predict_request(case.input_tokens, case.output_tokens, case.cached_tokens, SYNC13_BUDGET)
    return r["ttft_us"] / 1e3, r["tpot_us"] / 1e3


def fit(cases, base, db) -> dict:
    from scipy.optimize import least_squares

    def res(x):
        p = replace(base, **dict(zip(FITTED, x)))
        out = []
        for c in cases:
            ttft, tpot = predict(c, p, db)
            out += [math.log(ttft / c.ttft_ms), math.log(tpot / c.tpot_ms)]
        return out

    sol = least_squares(res, x0=[1000.0, 5000.0, 5.0], bounds=([0, 0, 0], [1e5, 1e5, 100.0]))
    return {k: round(float(v), 3) for k, v in zip(FITTED, sol.x)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=default_data_dir())
    ap.add_argument("--bench-data-path", default="aiconfigurator")
    args = ap.parse_args(argv)
    db = MfuDatabase.from_source(args.bench_data_path, HW)
    base, _ = load_calibration(get_hardware(HW))
    base = replace(base, layer_overhead_us=0.0, prefill_step_overhead_us=0.0)
    cases = sync13_cases(args.data)
    params = fit(cases, base, db)
    p = replace(base, **params)
    train = [(predict(c, p, db), c) for c in cases]
    loo = []
    for i, c in enumerate(cases):
        pi = replace(base, **fit(cases[:i] + cases[i + 1:], base, db))
        loo.append((predict(c, pi, db), c))

    def med(rows, j, attr):
        return statistics.median(abs(r[j] / getattr(c, attr) - 1) for r, c in rows)

    print(json.dumps(params, indent=2))
    for name, rows in (("fit on all 13", train), ("leave one run out", loo)):
        print(f"sync13 {name}: median |error| TTFT {med(rows, 0, 'ttft_ms'):.1%}, TPOT {med(rows, 1, 'tpot_ms'):.1%}, "
              f"worst TPOT {max(abs(r[1] / c.tpot_ms - 1) for r, c in rows):.1%}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
