"""Cross-validate the latency models on the shared H100 runs and rewrite the shipped coefficients.

    python -m tools.crossvalidate [--traces ../shared/data/traces/h100-vllm-v1] [--workers 2] [--write]

For roofline v1 and blackbox: leave-one-run-out per setup and (roofline) leave-one-model-out of the per-GPU
parameters, beside the generic per-GPU physics on the same runs (`blis.calibrate`). With ``--write``:
- ``blis/latency/coefficients/roofline_models.yaml`` and ``blackbox.yaml`` keep only the setups whose refit
  beat the generic physics on every held-back run (refitted on all the setup's runs);
- ``blis/latency/coefficients/cross_validation.yaml`` records every held-back error (the fidelity statement
  and the CI gate read it), with the runs named.
Deterministic; about 30-40 minutes on 2 cores with the defaults.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import yaml

from blis.calibrate import CalibrationSettings, calibrate
from blis.calibrate.crossval import table
from blis.traces import find_runs, load_run
from tools import compact_yaml

COEFF = Path(__file__).resolve().parents[1] / "blis" / "latency" / "coefficients"
SOURCE = "shared/data/traces/h100-vllm-v1 (inference-sim/training c4f0340, H100 SXM, vLLM V1)"
KEYS = ("ttft_mean_ms", "e2e_mean_ms", "tpot_mean_ms")
HEADER = ("# Cross-validated errors (%) of the generic per-GPU physics and of the refits, on held-back runs, with\n"
          "# the parameters each fold fitted without its held-back run. Written by tools/crossvalidate.py (command\n"
          "# below); read by blis/latency/fidelity.py and tests/test_regression_real_runs.py.\n")


def _r(x: float) -> float | None:
    return round(float(x), 2) if math.isfinite(x) else None


def cv_record(cv) -> dict:
    return {
        "kind": cv.kind, "latency_model": cv.latency_model, "model": cv.model, "hardware": cv.hardware, "tp": cv.tp,
        "penalty": cv.penalty, "cv_loss": {float(k): round(v, 3) for k, v in cv.cv_loss.items()},
        "ships": cv.ship, "verdict": cv.verdict,
        "held_out": [{"run": h.run, "overloaded": h.overloaded,
                      "generic": {k: _r(h.generic[k]) for k in KEYS},
                      "refit": {k: _r(h.refit[k]) for k in KEYS} if h.refit else None,
                      "fold_params": h.params} for h in cv.held_out],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--traces", default=os.environ.get("BLIS_SHARED_DATA", "../shared/data") + "/traces/h100-vllm-v1")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--max-evals", type=int, default=16)
    ap.add_argument("--windows-per-run", type=int, default=1)
    ap.add_argument("--penalty", default="0.03,0.3,3")
    ap.add_argument("--models", default="roofline,blackbox")
    ap.add_argument("--parts", default="loro,lomo", help="loro, lomo or both")
    ap.add_argument("--record", default=str(COEFF / "cross_validation.yaml"),
                    help="where --write puts the cross-validation record")
    ap.add_argument("--merge", nargs="+", metavar="YAML", help="only merge partial records into --record")
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args(argv)
    if args.merge:
        docs = [yaml.safe_load(Path(m).read_text()) for m in args.merge]
        doc = {**docs[0], "command": " ; ".join(d["command"] for d in docs),
               "results": [r for d in docs for r in d["results"]]}
        Path(args.record).write_text(HEADER + yaml.safe_dump(doc, sort_keys=False, width=200))
        return compact_yaml.main([])  # the JSON copies blis reads at start-up
    runs = [load_run(p) for p in find_runs([args.traces])]
    settings = CalibrationSettings(max_evals=args.max_evals, windows_per_run=args.windows_per_run)
    penalties = [float(x) for x in args.penalty.split(",")]
    say = lambda m: print(f"[{time.strftime('%H:%M:%S')}] {m}", file=sys.stderr, flush=True)  # noqa: E731
    record: dict = {
        "source_runs": SOURCE,
        "runs": [r.name for r in runs],
        "command": "python -m tools.crossvalidate " + " ".join(argv if argv is not None else sys.argv[1:]),
        "settings": {"max_evals": args.max_evals, "windows_per_run": args.windows_per_run, "penalties": penalties},
        "results": [],
    }
    for model in args.models.split(","):
        t0 = time.time()
        res = calibrate(runs, model, settings, say, penalties=penalties, workers=args.workers, final="validated",
                        parts=args.parts.split(","))
        say(f"{model}: {time.time() - t0:.0f} s")
        for line in table(res.loro + res.lomo):
            print(line, flush=True)
        record["results"].extend(cv_record(cv) for cv in res.loro + res.lomo)
        if args.write and "loro" in args.parts:
            write_table(model, res)
    if args.write:
        out = Path(args.record)
        out.write_text(HEADER + yaml.safe_dump(record, sort_keys=False, width=200))
        say(f"wrote {out}")
        return compact_yaml.main([])  # the JSON copies blis reads at start-up
    return 0


def write_table(model: str, res) -> None:
    head = [f"# {model} refits that passed leave-one-run-out (docs/validation.md): each beat the generic per-GPU",
            "# physics on every held-back run of its setup. Setups not listed use the generic physics.",
            "# Written by: python -m tools.crossvalidate --write (from " + SOURCE + ").",
            "# Parameter ranges: blis/calibrate/ranges.py. Cross-validated errors: cross_validation.yaml."]
    setups = [g for g in res.groups if g.model != "*" and res.validated(g)]
    if model == "blackbox":
        entries = [{"model": g.model.lower(), "hardware": g.hardware, "tp": g.tp, "alpha": g.params["alpha"],
                    "beta": g.params["beta"], "penalty": g.penalty,
                    "source": "blis calibrate, validated leave-one-run-out; fitted on " + ", ".join(g.runs)}
                   for g in setups]
        path = COEFF / "blackbox.yaml"
    else:
        entries = [{"model": g.model.lower(), "hardware": g.hardware, "tp": g.tp, "params": g.params,
                    "penalty": g.penalty,
                    "source": "blis calibrate, validated leave-one-run-out; fitted on " + ", ".join(g.runs)}
                   for g in setups]
        path = COEFF / "roofline_models.yaml"
    body = yaml.safe_dump(entries, sort_keys=False, default_flow_style=None, width=200) if entries else "[]\n"
    path.write_text("\n".join(head) + "\n" + body)


if __name__ == "__main__":
    sys.exit(main())
