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
    imp.add_argument("--from", dest="src", required=True,
                     help="root folder of the tables to import, or aiconfigurator[:<system>/<backend>/<version>] "
                          "(the installed aiconfigurator-core package's tables)")
    imp.add_argument("--layout", choices=("h100-blis", "infersim"), help="source layout (folders only)")
    imp.add_argument("--out", required=True, help="output root: one <gpu>/ folder is written per GPU")
    imp.add_argument("--gemm-dtype", default="auto", choices=("auto", "bf16", "fp16", "fp8"),
                     help="dtype of the GEMM rows; auto = widest dtype under which no row beats the GPU's "
                          "peak FLOP/s or bandwidth (default auto)")
    imp.add_argument("--source", default=None, help="provenance 'source' text (repository, commit)")
    imp.add_argument("--force", action="store_true", help="overwrite non-empty OUT/<gpu>/ folders")
    imp.add_argument("--hardware", default=None,
                     help="GPU for aiconfigurator sources (peaks, bandwidth, default system); default: the system's")
    imp.set_defaults(handler=_import)

    chk = sub.add_parser("check", help="validate a bench_data root or GPU folder",
                         description="Check schema, units, MFU in (0, 1], latency > 0, duplicate keys, "
                                     "decode bandwidth and GEMM MFU trend; print a summary per file. "
                                     "Exit 1 when any problem is found.")
    chk.add_argument("dir", help="bench_data root (<root>/<gpu>/), one GPU folder, or aiconfigurator[:...]")
    chk.add_argument("--all-warnings", action="store_true", help="print every warning (default: the first 20 "
                                                                  "and a count per kind)")
    chk.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    chk.add_argument("--hardware", default=None,
                     help="GPU for aiconfigurator sources (peaks, bandwidth, default system); default: the system's")
    chk.set_defaults(handler=_check)

    loo = sub.add_parser("loo", help="leave-one-out accuracy of the table interpolation",
                         description="Hold back each measured row (and each whole shape) and predict it "
                                     "from the rest; print median and p90 relative errors (percent).")
    loo.add_argument("dir", help="one GPU folder (or a root with exactly one GPU folder), or aiconfigurator[:...]")
    loo.add_argument("--interp", default="loglog", choices=("loglog", "linlog"),
                     help="interpolation: log latency vs log x (default) or latency vs log x")
    loo.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    loo.add_argument("--hardware", default=None,
                     help="GPU for aiconfigurator sources (peaks, bandwidth, default system); default: the system's")
    loo.set_defaults(handler=_loo)


def _aic(spec: str, hardware: str | None):
    """Checked aiconfigurator tables for ``spec`` (hardware from the system when not given)."""
    from blis.bench_data import aiconfigurator as aic
    from blis.errors import BlisInputError

    if hardware is None:
        system = aic.resolve(spec, "H100").system if spec != aic.PREFIX else "h100_sxm"
        names = {v: k for k, v in aic.SYSTEMS.items()}
        if system not in names:
            raise BlisInputError(f"hardware: give --hardware for aiconfigurator system {system}")
        hardware = names[system]
    from blis.physics.hardware import get_hardware

    ref = aic.resolve(spec, hardware)
    return aic.read(ref, get_hardware(hardware).name.lower())


def _print_report(report, all_warnings: bool = True) -> None:
    import re
    from collections import Counter

    if all_warnings or len(report.warnings) <= 20:
        sys.stderr.write(report.format() + "\n")
        return
    shown = type(report)(report.problems, report.warnings[:20], report.tables)
    sys.stderr.write(shown.format() + "\n")
    kinds = Counter(re.sub(r"\d+(\.\d+)?(e[+-]?\d+)?", "#", w.split(": ", 1)[-1])[:90] for w in report.warnings)
    sys.stderr.write(f"{len(report.warnings)} warnings in all (--all-warnings prints them), by kind:\n")
    for kind, n in kinds.most_common():
        sys.stderr.write(f"  {n:>6}  {kind}\n")


def _import(args: argparse.Namespace) -> int:
    from blis.bench_data import aiconfigurator as aic
    from blis.bench_data.format import check_bench_dir
    from blis.bench_data.importers import import_tables
    from blis.errors import BlisInputError

    if aic.is_spec(args.src):
        if args.layout:
            raise BlisInputError("layout: does not apply to --from aiconfigurator")
        tables = _aic(args.src, args.hardware)
        if not tables.report.ok:
            _print_report(tables.report, False)
            return 1
        dest = Path(args.out) / tables.bench.provenance.gpu
        if dest.exists() and any(dest.iterdir()) and not args.force:
            raise BlisInputError(f"out: {dest} exists and is not empty (use --force to overwrite)")
        folder = aic.write_folder(tables, Path(args.out))
        report = check_bench_dir(folder)
        _print_report(report, False)
        sys.stderr.write(f"wrote {folder} from {tables.ref.label}\n")
        return 0 if report.ok else 1
    if not args.layout:
        raise BlisInputError("layout: required for a folder (h100-blis or infersim)")
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
    from blis.bench_data import aiconfigurator as aic
    from blis.bench_data.format import check_bench_dir

    report = _aic(args.dir, args.hardware).report if aic.is_spec(args.dir) else check_bench_dir(args.dir)
    if args.json:
        sys.stdout.write(json.dumps(report.to_dict(), indent=2) + "\n")
    else:
        _print_report(report, args.all_warnings)
    return 0 if report.ok else 1


def _loo(args: argparse.Namespace) -> int:
    from blis.bench_data import aiconfigurator as aic
    from blis.bench_data.format import gpu_folders, load_bench_dir
    from blis.bench_data.lookup import leave_one_out
    from blis.errors import BlisInputError

    if aic.is_spec(args.dir):
        tables = _aic(args.dir, args.hardware)
        if not tables.report.ok:
            raise BlisInputError(f"dir: {tables.ref.label} fails the check; run `blis bench-data check {args.dir}`")
        bench, folders = tables.bench, [tables.ref.label]
    else:
        folders = gpu_folders(args.dir)
        if len(folders) != 1:
            raise BlisInputError(f"dir: {args.dir} must be one GPU folder (found {len(folders)})")
        bench = load_bench_dir(folders[0])
    result = leave_one_out(bench, args.interp)
    if args.json:
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
        return 0
    sys.stderr.write(f"leave-one-out relative latency error, {folders[0]} (interp {args.interp})\n")
    sys.stderr.write(f"{'table':<18} {'held back':<10} {'n':>5} {'median%':>8} {'p90%':>8} {'max%':>8}\n")
    for kind, classes in result.items():
        for cls, st in classes.items():
            if st["n"]:
                sys.stderr.write(f"{kind:<18} {cls:<10} {st['n']:>5} {st['median_pct']:>8.1f} "
                                 f"{st['p90_pct']:>8.1f} {st['max_pct']:>8.1f}\n")
    return 0
