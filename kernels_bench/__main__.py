"""``python -m kernels_bench``: measure kernels on this machine's GPU into a bench_data GPU folder.

    python -m kernels_bench gemm|attention-prefill|attention-decode|all --gpu h100 --out bench_data/h100
        [--models llama-2-7b,...] [--tp 1,2,4,8] [--dtype bf16,fp8] [--quick] [--max-seconds 480]
    python -m kernels_bench compare-attention --gpu h100
    python -m kernels_bench jobs plan|render|submit|status|collect|run-shard ...   (GPU cluster, see docs)
    python -m kernels_bench export-script --hardware gb10 --out bench_gb10.py

Exit codes: 0 done (every table complete and checked), 75 stopped by --max-seconds with points left (run
the same command again: it resumes), 2 bad arguments (one line), 1 anything else that stops a run
(impossible measurement, wrong kernel output, failed check, no GPU).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kernels_bench import attention_decode, attention_prefill, gemm, shapes
from kernels_bench.plan import FAMILIES, describe_plan, make_plan, restrict_plan
from kernels_bench.report import Progress, log, table_summary, write_decode_bandwidth

PROG = "kernels_bench"
EXIT_INCOMPLETE = 75
SWEEPS = ("gemm", "attention-prefill", "attention-decode", "all")
KNOWN_DTYPES = ("bf16", "fp8")


class UsageError(Exception):
    """Bad arguments or a --out that cannot take this run: one line, exit 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{PROG}: error: {message}\n")
        raise SystemExit(2)


def _int_list(text: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected integers >= 1, got {text!r}")
    return sorted(set(values))


def _tp_list(text: str) -> list[int]:
    values = _int_list(text)
    bad = [v for v in values if v & (v - 1)]
    if bad:
        raise argparse.ArgumentTypeError(f"TP degrees must be powers of two (1, 2, 4, 8, ...), got {bad}")
    return values


def _dtype_list(text: str) -> list[str]:
    values = [x.strip().lower() for x in text.split(",") if x.strip()]
    bad = [v for v in values if v not in KNOWN_DTYPES]
    if not values or bad:
        raise argparse.ArgumentTypeError(f"dtypes must be among {', '.join(KNOWN_DTYPES)}, got {text!r}")
    return list(dict.fromkeys(values))


def _name_list(text: str) -> list[str]:
    values = [x.strip() for x in text.split(",") if x.strip()]
    if not values:
        raise argparse.ArgumentTypeError("expected comma-separated model names")
    return values


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return v


def _fraction(text: str) -> float:
    v = _positive_float(text)
    if v > 0.9:
        raise argparse.ArgumentTypeError(f"must be in (0, 0.9], got {text}")
    return v


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return v


def _add_timing_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--warmup", type=_positive_int, default=3, help="untimed calls before timing (default 3)")
    p.add_argument("--min-reps", type=_positive_int, default=10, help="fewest timed calls per point (default 10)")
    p.add_argument("--max-reps", type=_positive_int, default=100, help="most timed calls per point (default 100)")
    p.add_argument("--target-ms", type=_positive_float, default=100.0,
                   help="milliseconds of timed calls aimed at per point (default 100)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Measure GEMM and attention kernels into bench_data tables.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in SWEEPS:
        p = sub.add_parser(name, help=f"measure {'every table' if name == 'all' else name + ' tables'}")
        p.add_argument("--gpu", required=True, help="GPU name in blis's hardware table (e.g. h100)")
        p.add_argument("--out", required=True, type=Path, help="GPU folder to write, e.g. bench_data/h100")
        p.add_argument("--models", type=_name_list, default=None,
                       help="comma-separated registered models (default: every registered model)")
        p.add_argument("--tp", type=_tp_list, default=list(shapes.TP_DEGREES),
                       help="tensor-parallel degrees (default 1,2,4,8)")
        p.add_argument("--dtype", type=_dtype_list, default=list(KNOWN_DTYPES),
                       help="GEMM operand dtypes and decode KV-cache dtypes (default bf16,fp8); "
                            "prefill attention is bf16 only")
        p.add_argument("--quick", action="store_true", help="a few points per table (smoke run)")
        p.add_argument("--max-seconds", type=_positive_float, default=None,
                       help="stop starting new points after this many seconds (exit 75; rerun to resume)")
        p.add_argument("--token-budget", type=_positive_int, default=shapes.DEFAULT_TOKEN_BUDGET,
                       help="scheduler token budget whose step sizes are added to GEMM m (default 2048 tokens)")
        p.add_argument("--max-m", type=_positive_int, default=16384, help="largest GEMM m in tokens (default 16384)")
        p.add_argument("--max-prefill-tokens", type=_positive_int, default=65536,
                       help="largest batch_size x seq_len for prefill attention in tokens (default 65536)")
        p.add_argument("--decode-memory-fraction", type=_fraction, default=0.5,
                       help="largest decode KV cache as a fraction of GPU memory (default 0.5)")
        p.add_argument("--decode-tensor-cores", choices=("auto", "on", "off"), default="auto",
                       help="flashinfer decode on tensor cores (auto: query heads per KV head > 4)")
        p.add_argument("--prefill-backend", choices=("auto", "flash-attn", "torch-sdpa"), default="auto",
                       help="prefill attention kernel (auto: flash-attn when installed, else torch SDPA)")
        p.add_argument("--decode-backend", choices=("auto", "flashinfer", "torch-sdpa"), default="auto",
                       help="decode attention kernel (auto: flashinfer when installed, else torch SDPA)")
        p.add_argument("--dry-run", action="store_true", help="print the tables and point counts, measure nothing")
        _add_timing_args(p)
        p.set_defaults(handler=cmd_sweep)
    p = sub.add_parser("compare-attention", help="time and check every prefill attention kernel")
    p.add_argument("--gpu", required=True, help="GPU name in blis's hardware table (e.g. h100)")
    p.add_argument("--batch", type=_positive_int, default=16, help="batch size (default 16)")
    p.add_argument("--heads", type=_positive_int, default=96, help="query heads = KV heads (default 96)")
    p.add_argument("--seq-len", type=_positive_int, default=4096, help="tokens per sequence (default 4096)")
    p.add_argument("--head-dims", type=_int_list, default=[128, 64], help="head dims (default 128,64)")
    p.add_argument("--models", type=_name_list, default=None,
                   help="registered models whose TP-1 head shapes are added (default: the first 3 shapes)")
    p.add_argument("--model-shapes", type=int, default=3, help="how many model shapes to add (default 3; 0: none)")
    p.add_argument("--model-batch", type=_positive_int, default=4, help="batch size of model shapes (default 4)")
    p.add_argument("--json", action="store_true", help="print rows as JSON on stdout instead of a table")
    _add_timing_args(p)
    p.set_defaults(handler=cmd_compare)
    from kernels_bench import export_script
    from kernels_bench.jobs.cli import register as register_jobs

    register_jobs(sub)
    export_script.register(sub)
    return parser


# --- sweeps on the GPU --------------------------------------------------------------------------------


def _require_cuda() -> Any:
    try:
        import torch
    except ImportError:
        raise RuntimeError('torch is not installed (pip install -e ".[bench]")') from None
    if not torch.cuda.is_available():
        raise RuntimeError("no CUDA device visible to torch")
    return torch


def _timer(args: argparse.Namespace) -> Any:
    from kernels_bench.timing import CudaEventTimer

    if args.min_reps > args.max_reps:
        raise UsageError(f"--min-reps {args.min_reps} is above --max-reps {args.max_reps}")
    return CudaEventTimer(warmup=args.warmup, min_reps=args.min_reps, max_reps=args.max_reps,
                          target_ms=args.target_ms)


def _usage(fn: Any, *a: Any) -> Any:
    """Call ``fn``; its ValueError (a bad name, a --out that cannot take this run) becomes a UsageError."""
    try:
        return fn(*a)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _models_and_sheet(args: argparse.Namespace) -> tuple[list[tuple[str, Any]], Any]:
    from kernels_bench import provenance as prov_mod

    return _usage(shapes.load_models, args.models), _usage(prov_mod.datasheet, args.gpu)


def cmd_sweep(args: argparse.Namespace) -> int:
    from kernels_bench import provenance as prov_mod

    models, sheet = _models_and_sheet(args)
    if args.dry_run:
        plan = make_plan(args, models, sheet.memory_bytes)
        if getattr(args, "only", None) is not None:
            plan = restrict_plan(plan, args.only)
        for line in describe_plan(plan):
            print(line)
        return 0
    from kernels_bench.sweep import Budget, Peaks, run_sweep

    budget = Budget(args.max_seconds)
    timer = _timer(args)
    torch = _require_cuda()
    dev = prov_mod.device_info()
    if not prov_mod.matches_gpu_family(sheet.hardware, dev["device"]):
        raise UsageError(f"--gpu {args.gpu} ({sheet.hardware}) but this device is {dev['device']!r}")
    out: Path = args.out
    prov = prov_mod.load(out)
    if prov is None:
        command = f"python -m kernels_bench {shlex.join(sys.argv[1:])}"
        prov = prov_mod.new_provenance(args.gpu.lower(), sheet, dev, command)
    else:
        _usage(prov_mod.check_same_device, prov, args.gpu.lower(), dev["device"])
    fp8_ok, fp8_why = gemm.fp8_support()
    families = FAMILIES[args.command]
    prefill_backend = attention_prefill.resolve_backend(args.prefill_backend)
    decode_backend = attention_decode.resolve_backend(args.decode_backend)
    plan = make_plan(args, models, float(dev["total_memory"]), fp8_gemm=fp8_ok,
                     fp8_kv=decode_backend == attention_decode.FLASHINFER)
    only = getattr(args, "only", None)  # a shard of `jobs run-shard`: keep its points only
    if only is not None:
        plan = restrict_plan(plan, only)
    for line in plan.notes:
        log(line)
    notes = list(prov["notes"])
    have = prov_mod.parse_notes(notes)
    for dtype in ("bf16", "fp8"):
        key = f"measured_peak_tflops.{dtype}"
        if key not in have and (dtype == "bf16" or fp8_ok):
            rate = prov_mod.measure_peak_gemm(dtype, timer)
            n = prov_mod.PEAK_GEMM_SIZE
            notes = prov_mod.set_note(notes, key, f"{rate / 1e12:.1f} ({gemm.KERNEL_NAMES[dtype].split('(')[0]} "
                                      f"{n}x{n}x{n}, random data, median)")
            log(f"measured peak {dtype}: {rate / 1e12:.1f} TFLOP/s (datasheet "
                 f"{sheet.peak_flops.get(dtype, float('nan')) / 1e12:.1f})")
    if "copy_bandwidth_GBps" not in have:
        bw = prov_mod.measure_copy_bandwidth(timer)
        notes = prov_mod.set_note(notes, "copy_bandwidth_GBps",
                                  f"{bw / 1e9:.0f} (device-to-device copy of 1 GiB, bytes read + written)")
        log(f"measured copy bandwidth: {bw / 1e9:.0f} GB/s (datasheet {sheet.bandwidth_Bps / 1e9:.0f})")
    if not fp8_ok:
        notes = prov_mod.set_note(notes, "fp8_gemm", f"not measured: {fp8_why}")
    kernels: dict[str, str] = {}
    runners: dict[str, Any] = {}
    if "gemm" in families:
        for d in args.dtype:
            if d == "bf16" or fp8_ok:
                kernels[f"kernel.gemm_{d}"] = gemm.KERNEL_NAMES[d]
        runners["gemm"] = gemm.GemmRunner(timer)
    if "attention_prefill" in families:
        kernels["kernel.attention_prefill"] = attention_prefill.kernel_description(prefill_backend)
        runners["attention_prefill"] = attention_prefill.PrefillRunner(timer, prefill_backend)
    if "attention_decode" in families:
        kernels["kernel.attention_decode"] = attention_decode.kernel_description(
            decode_backend, args.decode_tensor_cores)
        runners["attention_decode"] = attention_decode.DecodeRunner(timer, decode_backend, args.decode_tensor_cores)
    for key, desc in kernels.items():
        _usage(prov_mod.check_same_kernel, prov, key, desc)
        notes = prov_mod.set_note(notes, key, desc)
    notes = prov_mod.set_note(notes, "timing_method", timer.describe())
    prov = {**prov, "notes": notes}
    prov_mod.save(out, prov)
    peaks = Peaks(flops=sheet.peak_flops, bandwidth_Bps=sheet.bandwidth_Bps)
    progress = Progress(plan.total)
    results = {}
    try:
        for family, pts in plan.points.items():
            results[family] = run_sweep(pts, runners.pop(family), out, peaks, budget, on_point=progress.advance)
            torch.cuda.empty_cache()  # the finished family's tensors are gone; give their memory back
            if results[family].stopped_by_budget:
                break
    finally:
        progress.stop()
        torch.cuda.synchronize()
    for res in results.values():
        for rel, outcome in res.tables.items():
            log(table_summary(out, rel, outcome, sheet.bandwidth_Bps))
    write_decode_bandwidth(out, sheet.bandwidth_Bps)
    left = sum(r.remaining for r in results.values()) + sum(
        len(pts) for fam, pts in plan.points.items() if fam not in results)
    if left:
        log(f"stopped by --max-seconds after {budget.elapsed():.0f} s with {left} points left: "
             "run the same command again to continue")
        return EXIT_INCOMPLETE
    rels = sorted({p.table.relpath for pts in plan.points.values() for p in pts})
    return check_written(out, rels)


def check_written(out: Path, rels: Sequence[str]) -> int:
    """Run blis's bench_data checker over the tables of this run (those that exist) when it is
    importable; 0 when they pass."""
    try:
        from blis.bench_data.format import CheckReport, check_table
    except ImportError:
        log("blis.bench_data.format not importable: tables not checked")
        return 0
    report = CheckReport()
    for rel in rels:
        if (out / rel).exists():
            kind = rel.split("/")[0] if "/" in rel else "gemm"
            report.extend(check_table(out / rel, kind))
    for line in report.warnings:
        log(f"check warning: {line}")
    for line in report.problems:
        log(f"check problem: {line}")
    log(f"bench-data check of {len(report.tables)} tables in {out}: {'OK' if report.ok else 'FAILED'}")
    return 0 if report.ok else 1


def cmd_compare(args: argparse.Namespace) -> int:
    from rich.console import Console

    from kernels_bench import compare_attention as ca
    from kernels_bench import provenance as prov_mod

    models, sheet = _models_and_sheet(args) if args.model_shapes > 0 else ([], _usage(prov_mod.datasheet, args.gpu))
    shapes_ = ca.default_shapes(args.head_dims, args.batch, args.heads, args.seq_len)
    shapes_ += ca.model_shapes(models, args.model_batch, args.seq_len, args.model_shapes)
    timer = _timer(args)
    _require_cuda()
    dev = prov_mod.device_info()
    if not prov_mod.matches_gpu_family(sheet.hardware, dev["device"]):
        raise UsageError(f"--gpu {args.gpu} ({sheet.hardware}) but this device is {dev['device']!r}")
    peak = sheet.peak_flops["bf16"]
    rows = []
    for s in shapes_:
        log(f"compare-attention: {s.label} ({s.source})")
        rows += ca.compare_shape(s, timer, peak)
    rows += ca.ragged_check(timer, peak)
    if args.json:
        print(json.dumps({"device": dev["device"], "peak_tflops_bf16": peak / 1e12,
                          "rows": ca.rows_as_dicts(rows)}, indent=2))
    else:
        ca.render(rows, peak, Console())
    bad = [r for r in rows if r.status in ("FAIL", "INVALID")]
    for r in bad:
        log(f"{r.status}: {r.kernel} {r.shape} causal={r.causal}: {r.note}")
    return 1 if bad else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from kernels_bench.sweep import ImpossibleMeasurement

    try:
        return int(args.handler(args))
    except UsageError as exc:
        log(f"{PROG}: error: {exc}")
        return 2
    except ImpossibleMeasurement as exc:
        log(f"{PROG}: impossible measurement, run stopped: {exc}")
        return 1
    except (RuntimeError, ValueError, ImportError, OSError) as exc:
        log(f"{PROG}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        return 1
    except KeyboardInterrupt:
        log(f"{PROG}: interrupted (rows written so far are kept; run again to resume)")
        return 130


if __name__ == "__main__":
    sys.exit(main())
