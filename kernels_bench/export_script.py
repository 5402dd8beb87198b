"""``python -m kernels_bench export-script``: a standalone benchmark script for one target GPU.

The script needs torch only (no blis import): it times the validation shapes (or given ones) with CUDA
events, warm-up calls, repetitions and an L2 flush before every timed call, and prints either JSON in the
``POST /api/validate`` body schema or our bench_data CSV tables. ``render_script`` is also what
``GET /api/export-benchmark`` serves.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

OUTPUTS = ("validate-json", "csv")

# (kernel_type, shape, precision): the design's GB10 reference points, the default "validation shapes".
VALIDATION_SHAPES: tuple[tuple[str, tuple[int, ...], str], ...] = (
    ("gemv", (4096, 4096), "fp16"),
    ("gemv", (4096, 4096), "fp8"),
    ("gemm", (4096, 4096, 4096), "fp16"),
    ("gemm", (4096, 4096, 4096), "fp8"),
    ("gemm", (4096, 4096, 4096), "tf32"),
    ("gemm", (4096, 4096, 4096), "bf16"),
)
SCRIPT_PRECISIONS = ("fp32", "tf32", "fp16", "bf16", "fp8")


def _hardware(hardware: str) -> tuple[str, dict[str, float]]:
    """Canonical name and dense peak TFLOP/s per precision (for the CSV mfu column)."""
    from blis.physics.hardware import get_hardware

    hw = get_hardware(hardware)
    return hw.name, {p: hw.peak_flops[p] / 1e12 for p in hw.supported_precisions() if p in SCRIPT_PRECISIONS}


def parse_shape(text: str) -> tuple[str, tuple[int, ...], str]:
    """'gemm:64x64x64:fp16' -> ('gemm', (64, 64, 64), 'fp16')."""
    try:
        kernel, dims, prec = text.strip().split(":")
        shape = tuple(int(x) for x in dims.lower().split("x"))
    except ValueError:
        raise ValueError(f"shape {text!r}: expected KERNEL:DIMS:PRECISION, e.g. gemm:4096x4096x4096:fp16") from None
    kernel, prec = kernel.lower(), prec.lower()
    want = {"gemv": 2, "gemm": 3, "attention": 6}
    if kernel not in want:
        raise ValueError(f"shape {text!r}: kernel must be one of {', '.join(want)}")
    if len(shape) != want[kernel] or min(shape) < 1:
        raise ValueError(f"shape {text!r}: {kernel} needs {want[kernel]} dimensions >= 1")
    if prec not in SCRIPT_PRECISIONS:
        raise ValueError(f"shape {text!r}: precision must be one of {', '.join(SCRIPT_PRECISIONS)}")
    if kernel == "attention" and prec not in ("fp16", "bf16"):
        raise ValueError(f"shape {text!r}: attention runs in fp16 or bf16")
    return kernel, shape, prec


def render_script(hardware: str, output: str = "validate-json", shapes: Sequence | None = None) -> str:
    """The standalone script's source for ``hardware`` (its default ``--output`` is ``output``).

    ``shapes``: (kernel_type, shape, precision) tuples or 'gemm:MxNxK:fp16' strings; default: the validation
    shapes whose precision the hardware supports."""
    if output not in OUTPUTS:
        raise ValueError(f"output: {output!r} unknown; allowed: {', '.join(OUTPUTS)}")
    name, peaks = _hardware(hardware)
    if shapes is None:
        rows = [s for s in VALIDATION_SHAPES if s[2] in peaks]
    else:
        rows = [parse_shape(s) if isinstance(s, str) else (str(s[0]), tuple(s[1]), str(s[2])) for s in shapes]
    if not rows:
        raise ValueError(f"no shapes to measure on {name}")
    config = {"hardware": name, "output": output, "peaks_tflops": peaks,
              "shapes": [[k, list(s), p] for k, s, p in rows]}
    return _TEMPLATE.replace("@CONFIG@", json.dumps(config, indent=1, sort_keys=True)).replace("@HW@", name)


_TEMPLATE = r'''#!/usr/bin/env python3
"""Kernel benchmark for @HW@, exported by blis (`python -m kernels_bench export-script`). Needs torch only.

Times each (kernel, shape, precision) with CUDA events: warm-up calls, then repetitions with an L2 flush
(a buffer of 4x the L2 size, >= 256 MiB, overwritten) before every timed call; reports the median.
Output: JSON in the blis `POST /api/validate` body schema (default), or bench_data CSV tables.

    python bench.py                      # on the target GPU, JSON on stdout
    python bench.py --output csv --out-dir bench_data/gpu
    python bench.py --device cpu         # tests the script on a CPU: NOT GPU data (labelled so)
    python bench.py --shape gemm:64x64x64:fp16 --shape gemv:256x256:fp32
"""
import argparse
import json
import statistics
import sys
import time

CONFIG = json.loads(r"""@CONFIG@""")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", choices=("cuda", "cpu"), default="cuda",
                   help="cuda (default) or cpu: cpu only tests this script, its numbers are not GPU data")
    p.add_argument("--output", choices=("validate-json", "csv"), default=CONFIG["output"],
                   help="validate-json: the /api/validate body; csv: bench_data gemm tables (default %(default)s)")
    p.add_argument("--out", help="write the JSON here instead of stdout")
    p.add_argument("--out-dir", default=".", help="folder for --output csv (default .)")
    p.add_argument("--warmup", type=int, default=5, help="untimed calls first (default 5)")
    p.add_argument("--reps", type=int, default=50, help="timed calls, median reported (default 50)")
    p.add_argument("--no-flush", action="store_true",
                   help="do not flush L2 between calls (a warm-cache measurement; reported as cache=warm)")
    p.add_argument("--shape", action="append", default=None, metavar="KERNEL:DIMS:PRECISION",
                   help="measure this instead of the built-in shapes, e.g. gemm:4096x4096x4096:fp16, "
                        "gemv:4096x4096:fp8, attention:1x32x8x1x4096x128:bf16 (batch,heads,kv_heads,q,kv,dim)")
    args = p.parse_args(argv)
    if args.warmup < 0 or args.reps < 1:
        p.error("--warmup must be >= 0 and --reps >= 1")
    return args


def shapes(args):
    if not args.shape:
        return [(k, tuple(s), prec) for k, s, prec in CONFIG["shapes"]]
    out = []
    for text in args.shape:
        try:
            kernel, dims, prec = text.split(":")
            out.append((kernel.lower(), tuple(int(x) for x in dims.lower().split("x")), prec.lower()))
        except ValueError:
            sys.exit(f"error: --shape {text!r}: expected KERNEL:DIMS:PRECISION")
    return out


class Timer:
    """Median microseconds of fn(): CUDA events on cuda, perf_counter on cpu; L2 flushed before each call."""

    def __init__(self, torch, device, warmup, reps, flush):
        self.torch, self.device, self.warmup, self.reps = torch, device, warmup, reps
        self.flush = None
        if flush:
            if device == "cuda":
                props = torch.cuda.get_device_properties(torch.cuda.current_device())
                nbytes = max(256 << 20, 4 * int(getattr(props, "L2_cache_size", 0)))
            else:
                nbytes = 64 << 20  # larger than a CPU's last-level cache on most machines
            self.flush = torch.empty(nbytes // 4, dtype=torch.int32, device=device)

    def __call__(self, fn):
        torch = self.torch
        for _ in range(self.warmup):
            fn()
        samples = []
        if self.device == "cuda":
            torch.cuda.synchronize()
            starts = [torch.cuda.Event(enable_timing=True) for _ in range(self.reps)]
            ends = [torch.cuda.Event(enable_timing=True) for _ in range(self.reps)]
            for i in range(self.reps):
                if self.flush is not None:
                    self.flush.zero_()
                starts[i].record()
                fn()
                ends[i].record()
            torch.cuda.synchronize()
            samples = [s.elapsed_time(e) * 1000.0 for s, e in zip(starts, ends)]
        else:
            for _ in range(self.reps):
                if self.flush is not None:
                    self.flush.zero_()
                t0 = time.perf_counter()
                fn()
                samples.append((time.perf_counter() - t0) * 1e6)
        return statistics.median(samples)


def launcher(torch, kernel, shape, prec, device):
    """(zero-argument launcher, FLOPs, bytes moved at least once, note) for one point."""
    g = torch.Generator(device="cpu").manual_seed(0)
    elt = {"fp32": 4, "tf32": 4, "fp16": 2, "bf16": 2, "fp8": 1}[prec]

    def rand(*dims, dtype=torch.float32):
        return torch.randn(*dims, generator=g).to(device=device, dtype=dtype)

    torch.backends.cuda.matmul.allow_tf32 = prec == "tf32"
    if kernel in ("gemv", "gemm"):
        if kernel == "gemv":
            n, k = shape
            m = 1
        else:
            m, n, k = shape
        flops, nbytes = 2.0 * m * n * k, (m * k + k * n) * elt + m * n * max(elt, 2)
        if prec == "fp8":
            if not hasattr(torch, "_scaled_mm"):
                raise RuntimeError("this torch has no _scaled_mm (FP8)")
            rows = max(16, -(-m // 16) * 16)  # torch's FP8 GEMM needs multiples of 16
            a = rand(rows, k).to(torch.float8_e4m3fn)
            w = rand(n, k).to(torch.float8_e4m3fn)
            one = torch.ones((), device=device)
            note = f"fp8 via torch._scaled_mm with {rows} rows" if rows != m else "fp8 via torch._scaled_mm"
            return (lambda: torch._scaled_mm(a, w.t(), scale_a=one, scale_b=one, out_dtype=torch.bfloat16),
                    flops, nbytes, note)
        dtype = {"fp32": torch.float32, "tf32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[prec]
        w = rand(n, k, dtype=dtype)
        if kernel == "gemv":
            x = rand(k, dtype=dtype)
            return (lambda: torch.mv(w, x)), flops, nbytes, ""
        a = rand(m, k, dtype=dtype)
        return (lambda: torch.matmul(a, w.t())), flops, nbytes, ""
    if kernel == "attention":
        b, h, kvh, q, kv, d = shape
        dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}[prec]
        qt = rand(b, h, q, d, dtype=dtype)
        kt = rand(b, h, kv, d, dtype=dtype)  # KV heads repeated to the query heads (sdpa without GQA)
        vt = rand(b, h, kv, d, dtype=dtype)
        pairs = q * (kv - q) + q * (q + 1) / 2.0
        flops = 4.0 * b * h * d * pairs
        nbytes = b * (2 * q * h * d + 2 * kv * kvh * d) * elt
        f = torch.nn.functional.scaled_dot_product_attention
        return (lambda: f(qt, kt, vt, is_causal=True)), flops, nbytes, "torch sdpa, causal"
    raise RuntimeError(f"unknown kernel {kernel!r}")


def main(argv=None):
    args = parse_args(argv)
    try:
        import torch
    except ImportError:
        sys.exit("error: this script needs torch (pip install torch)")
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("error: no CUDA device visible to torch (use --device cpu to test the script itself)")
    device_name = torch.cuda.get_device_name() if args.device == "cuda" else "cpu (NOT GPU DATA)"
    timer = Timer(torch, args.device, args.warmup, args.reps, not args.no_flush)
    cache = "warm" if args.no_flush else "cold"
    rows = []
    for kernel, shape, prec in shapes(args):
        try:
            fn, flops, nbytes, note = launcher(torch, kernel, shape, prec, args.device)
            fn()
            t_us = timer(fn)
        except Exception as exc:  # one failing point (e.g. no FP8 on this GPU) must not lose the others
            print(f"skipped {kernel} {shape} {prec}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}",
                  file=sys.stderr)
            continue
        row = {"kernel_type": kernel, "shape": list(shape), "precision": prec.upper(),
               "measured_time_us": round(t_us, 3), "measured_tflops": flops / t_us / 1e6,
               "measured_bandwidth_gb_s": nbytes / t_us / 1e3, "ai": flops / nbytes, "cache": cache}
        if note:
            row["note"] = note
        rows.append(row)
        print(f"{kernel} {'x'.join(map(str, shape))} {prec}: {t_us:.2f} us", file=sys.stderr)
    meta = {"device": device_name, "torch": torch.__version__, "not_gpu_data": args.device != "cuda",
            "date": time.strftime("%Y-%m-%d"), "warmup": args.warmup, "reps": args.reps,
            "timing": ("CUDA events" if args.device == "cuda" else "perf_counter") +
                      ("" if args.no_flush else ", L2 flushed before each call")}
    if args.output == "validate-json":
        body = {"hardware_key": CONFIG["hardware"].lower(), "cache": cache, "benchmarks": rows, **meta}
        text = json.dumps(body, indent=2)
        if args.out:
            with open(args.out, "w") as fh:
                fh.write(text + "\n")
        else:
            print(text)
    else:
        write_csv(args.out_dir, rows, meta)
    return 0 if rows else 1


def write_csv(out_dir, rows, meta):
    """bench_data tables: gemm_<dtype>.csv (m,k,n,latency_us,mfu; a GEMV is m = 1) and provenance.json."""
    import os

    os.makedirs(out_dir, exist_ok=True)
    peaks = CONFIG["peaks_tflops"]
    by_dtype = {}
    for r in rows:
        if r["kernel_type"] == "attention":
            print("attention rows are written only in the JSON output", file=sys.stderr)
            continue
        prec = r["precision"].lower()
        m, n, k = (1, *r["shape"]) if r["kernel_type"] == "gemv" else r["shape"]
        peak = peaks.get(prec)
        mfu = r["measured_tflops"] / peak if peak else float("nan")
        by_dtype.setdefault(prec, []).append((m, k, n, r["measured_time_us"], mfu))
    for prec, items in by_dtype.items():
        with open(os.path.join(out_dir, f"gemm_{prec}.csv"), "w") as fh:
            fh.write("m,k,n,latency_us,mfu\n")
            for m, k, n, t, mfu in sorted(items):
                fh.write(f"{m},{k},{n},{t:.3f},{mfu:.6g}\n")
    prov = {"gpu": CONFIG["hardware"].lower(), "device": meta["device"], "torch": meta["torch"],
            "date": meta["date"], "dtype": "bf16", "peak_tflops": peaks,
            "source": "blis export-script", "notes": [meta["timing"]] +
            (["NOT GPU DATA: measured on a CPU to test the script"] if meta["not_gpu_data"] else [])}
    with open(os.path.join(out_dir, "provenance.json"), "w") as fh:
        json.dump(prov, fh, indent=2)
    print(f"wrote {len(by_dtype)} table(s) to {out_dir}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
'''


def register(sub) -> None:
    """Add ``export-script`` to the ``python -m kernels_bench`` subcommands."""
    p = sub.add_parser("export-script", help="write a standalone (torch-only) benchmark script for a target GPU")
    p.add_argument("--hardware", required=True, help="target GPU in blis's hardware table (e.g. gb10, h100)")
    p.add_argument("--out", required=True, help="script file to write, e.g. bench_gb10.py ('-' = stdout)")
    p.add_argument("--output", choices=OUTPUTS, default="validate-json",
                   help="the script's default output: /api/validate JSON or bench_data CSV (default validate-json)")
    p.add_argument("--shape", action="append", default=None, metavar="KERNEL:DIMS:PRECISION",
                   help="shapes to measure instead of the validation shapes, e.g. gemm:4096x4096x4096:fp16")
    p.set_defaults(handler=cmd_export_script)


def cmd_export_script(args) -> int:
    import sys
    from pathlib import Path

    from blis.errors import BlisInputError

    try:
        text = render_script(args.hardware, args.output, args.shape)
    except (ValueError, BlisInputError) as exc:
        sys.stderr.write(f"kernels_bench: error: {exc}\n")
        return 2
    if args.out == "-":
        sys.stdout.write(text)
    else:
        Path(args.out).write_text(text)
        sys.stderr.write(f"wrote {args.out} ({len(text.splitlines())} lines): python {args.out} --help\n")
    return 0
