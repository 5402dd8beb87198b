"""`blis bench-data`: import, check and measure the accuracy of measured kernel tables (bench_data format)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

NAME = "bench-data"


def register(subparsers) -> None:
    p = subparsers.add_parser(
        NAME,
        help="import, check and evaluate kernel timing tables (bench_data/<gpu>/)",
        description="Tools for the bench_data format of measured kernel latencies (see bench_data/README.md).",
    )
    sub = p.add_subparsers(dest="bench_data_command", metavar="ACTION", parser_class=type(p))
    sub.required = True

    imp = sub.add_parser("import", help="convert another project's tables into bench_data folders",
                         description="Write OUT/<gpu>/ in the bench_data format from another layout; the "
                                     "result is checked before the command returns.")
    imp.add_argument("--from", dest="src", required=True, help="root folder of the tables to import")
    imp.add_argument("--layout", required=True, choices=("h100-blis", "infersim"), help="source layout")
    imp.add_argument("--out", required=True, help="output root: one <gpu>/ folder is written per GPU")
    imp.add_argument("--gemm-dtype", default="auto", choices=("auto", "bf16", "fp16", "fp8"),
                     help="dtype of the GEMM rows; auto = widest dtype under which no row beats the GPU's "
                          "peak FLOP/s or bandwidth (default auto)")
    imp.add_argument("--source", default=None, help="provenance 'source' text (repository, commit)")
    imp.add_argument("--force", action="store_true", help="overwrite non-empty OUT/<gpu>/ folders")
    imp.set_defaults(handler=_import)

    chk = sub.add_parser("check", help="validate a bench_data root or GPU folder",
                         description="Check schema, units, MFU in (0, 1], latency > 0, duplicate keys, "
                                     "decode bandwidth and GEMM MFU trend; print a summary per file. "
                                     "Exit 1 when any problem is found.")
    chk.add_argument("dir", help="bench_data root (<root>/<gpu>/) or one GPU folder")
    chk.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    chk.set_defaults(handler=_check)

    loo = sub.add_parser("loo", help="leave-one-out accuracy of the table interpolation",
                         description="Hold back each measured row (and each whole shape) and predict it "
                                     "from the rest; print median and p90 relative errors (percent).")
    loo.add_argument("dir", help="one GPU folder (or a root with exactly one GPU folder)")
    loo.add_argument("--interp", default="loglog", choices=("loglog", "linlog"),
                     help="interpolation: log latency vs log x (default) or latency vs log x")
    loo.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    loo.set_defaults(handler=_loo)


def _import(args: argparse.Namespace) -> int:
    from blis.bench_data.format import check_bench_dir
    from blis.bench_data.importers import import_tables

    result = import_tables(args.src, args.layout, args.out, args.gemm_dtype, args.source, args.force)
    for note in result.notes:
        sys.stderr.write(f"note: {note}\n")
    ok = True
    for folder in result.folders:
        report = check_bench_dir(folder)
        sys.stderr.write(report.format() + "\n")
        ok &= report.ok
        sys.stderr.write(f"wrote {folder}\n")
    return 0 if ok else 1


def _check(args: argparse.Namespace) -> int:
    from blis.bench_data.format import check_bench_dir

    report = check_bench_dir(args.dir)
    if args.json:
        sys.stdout.write(json.dumps(report.to_dict(), indent=2) + "\n")
    else:
        sys.stderr.write(report.format() + "\n")
    return 0 if report.ok else 1


def _loo(args: argparse.Namespace) -> int:
    from blis.bench_data.format import gpu_folders, load_bench_dir
    from blis.bench_data.lookup import leave_one_out
    from blis.errors import BlisInputError

    folders = gpu_folders(args.dir)
    if len(folders) != 1:
        raise BlisInputError(f"dir: {args.dir} must be one GPU folder (found {len(folders)})")
    result = leave_one_out(load_bench_dir(folders[0]), args.interp)
    if args.json:
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
        return 0
    sys.stderr.write(f"leave-one-out relative latency error, {Path(folders[0])} (interp {args.interp})\n")
    sys.stderr.write(f"{'table':<18} {'held back':<10} {'n':>5} {'median%':>8} {'p90%':>8} {'max%':>8}\n")
    for kind, classes in result.items():
        for cls, st in classes.items():
            if st["n"]:
                sys.stderr.write(f"{kind:<18} {cls:<10} {st['n']:>5} {st['median_pct']:>8.1f} "
                                 f"{st['p90_pct']:>8.1f} {st['max_pct']:>8.1f}\n")
    return 0
