"""Importers: other projects' kernel tables -> our bench_data format (bench_data/README.md).

Layouts (by name):
- ``h100-blis``: ``gemm/<gpu>/data.csv`` (``m,k,n,latency_us,mfu``), ``mha/prefill/<gpu>/<h>-<kv>-<d>.csv``
  (``dtype,seq_len,latency_us,mfu``: no batch column, batch 1 assumed), ``mha/decode/<gpu>/<h>-<kv>-<d>-tp<N>.csv``
  (``dtype,kv_dtype,batch_size,kv_len,latency_us,mfu``, heads of the whole model: per GPU = heads / N).
- ``infersim``: alibaba/InferSim ``bench_data/``: the same files without the ``-tp<N>`` suffix (heads already
  per GPU). Its MLA, DSA and grouped-GEMM tables have no counterpart in our format and are skipped.

MFU is recomputed from the latency with our FLOP conventions and the GPU's datasheet peak (the source's
column is rounded to 3 decimals, often 0.0 for decode, and its peak differs per table). The GEMM dtype is
not recorded by these sources: ``auto`` picks the widest dtype under which every row is physically possible.
"""

from __future__ import annotations

import csv
import json
import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from blis.bench_data import format as bdf
from blis.errors import BlisInputError

# Dense datasheet figures for GPUs the sources cover, used when blis's hardware table lacks them.
# H100 SXM: 989.5 TFLOP/s bf16 dense (1979 with sparsity), 1979 fp8 dense, 3.35 TB/s HBM3 (datasheet).
# H800 SXM: the same compute and memory as H100 SXM (NVLink reduced).
_DATASHEET: dict[str, tuple[dict[str, float], float]] = {
    "h100": ({"bf16": 989.5, "fp16": 989.5, "fp8": 1979.0}, 3350.0),
    "h800": ({"bf16": 989.5, "fp16": 989.5, "fp8": 1979.0}, 3350.0),
}

_TP_RE = re.compile(r"^(\d+)-(\d+)-(\d+)-tp(\d+)\.csv$")
_PLAIN_RE = re.compile(r"^(\d+)-(\d+)-(\d+)\.csv$")


@dataclass
class ImportResult:
    """What an import wrote: one GPU folder per GPU found, and notes about choices made."""

    folders: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def gpu_peaks(gpu: str) -> tuple[dict[str, float], float]:
    """(peak TFLOP/s per dtype, memory GB/s) for ``gpu``: blis's hardware table, else the datasheet above."""
    try:
        from blis.physics.hardware import get_hardware

        hw = get_hardware(gpu)
    except (ImportError, BlisInputError):  # hardware table missing or GPU unknown to it
        hw = None
    if hw is not None:
        peaks = {dt: hw.peak_flops[dt] / 1e12 for dt in ("bf16", "fp16", "fp8") if hw.peak_flops.get(dt)}
        if "bf16" in peaks:
            return peaks, hw.memory_bandwidth_Bps / 1e9
    if gpu.lower() in _DATASHEET:
        peaks, bw = _DATASHEET[gpu.lower()]
        return dict(peaks), bw
    raise BlisInputError(f"gpu: no peak figures known for {gpu!r}; known: {', '.join(sorted(_DATASHEET))}")


def _read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    from blis._files import read_csv

    header, rows = read_csv(path)
    return header, [row for _, row in rows]


def _col(header: list[str], name: str, path: Path) -> int:
    if name not in header:
        raise BlisInputError(f"{path}:1: missing column {name!r} (have {','.join(header)})")
    return header.index(name)


def _fmt(x: float) -> str:
    return f"{x:.6g}"


def _fmt_lat(x: float) -> str:
    return f"{x:.10g}"  # keeps the source's digits


def _source_peak(flops_lat_mfu: list[tuple[float, float, float]]) -> float | None:
    """The peak TFLOP/s a source's MFU column implies (median over rows with MFU >= 0.05), or None."""
    vals = [f / (lat * 1e-6) / mfu / 1e12 for f, lat, mfu in flops_lat_mfu if mfu >= 0.05]
    return statistics.median(vals) if vals else None


def choose_gemm_dtype(rows: list[tuple[int, int, int, float]], peaks: dict[str, float], bw_GBps: float,
                      ) -> tuple[str, str]:
    """Widest dtype (bf16 before fp8) under which no GEMM row beats the peak FLOP/s or bandwidth.

    Returns (dtype, evidence sentence). Rows are (m, k, n, latency_us).
    """
    tflops = max(bdf.flops_gemm(m, k, n) / (lat * 1e-6) for m, k, n, lat in rows) / 1e12
    for dtype in ("bf16", "fp8"):
        if dtype not in peaks:
            continue
        tbps = max(bdf.bytes_gemm(m, k, n, dtype) / (lat * 1e-6) for m, k, n, lat in rows) / 1e12
        if tflops <= peaks[dtype] and tbps <= bw_GBps / 1e3 * (1 + bdf.BANDWIDTH_TOL):
            return dtype, (
                f"GEMM dtype {dtype}: best row reaches {tflops:.0f} TFLOP/s (peak {peaks[dtype]:.1f}) and "
                f"{tbps:.2f} TB/s with {bdf.DTYPE_BYTES[dtype]:g}-byte elements (peak {bw_GBps / 1e3:.2f})"
            )
    raise BlisInputError(
        f"gemm: rows reach {tflops:.0f} TFLOP/s, impossible for every dtype with a known peak ({peaks})"
    )


def _import_gemm(path: Path, out: Path, peaks, bw, gemm_dtype: str, notes: list[str]) -> None:
    header, rows = _read_csv(path)
    im, ik, i_n, il = (_col(header, c, path) for c in ("m", "k", "n", "latency_us"))
    imfu = header.index("mfu") if "mfu" in header else None
    parsed = [(int(r[im]), int(r[ik]), int(r[i_n]), float(r[il])) for r in rows]
    if gemm_dtype == "auto":
        gemm_dtype, evidence = choose_gemm_dtype(parsed, peaks, bw)
        notes.append(f"{path.name}: {evidence}")
        if gemm_dtype != "bf16":
            tflops = max(bdf.flops_gemm(m, k, n) / (lat * 1e-6) for m, k, n, lat in parsed) / 1e12
            notes.append(f"{path.name}: not bf16: {tflops:.0f} TFLOP/s exceeds the bf16 dense peak "
                         f"{peaks['bf16']:.1f}")
    if imfu is not None:
        src = _source_peak([(bdf.flops_gemm(m, k, n), lat, float(r[imfu]))
                            for (m, k, n, lat), r in zip(parsed, rows)])
        if src is not None:
            notes.append(f"{path.name}: source MFU column implies a peak of {src:.0f} TFLOP/s")
    peak = peaks[gemm_dtype] * 1e12
    with (out / f"gemm_{gemm_dtype}.csv").open("w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(bdf.COLUMNS[bdf.GEMM])
        for m, k, n, lat in parsed:
            w.writerow([m, k, n, _fmt_lat(lat), _fmt(bdf.flops_gemm(m, k, n) / (lat * 1e-6) / peak)])


def _per_gpu_shape(path: Path, with_tp: bool) -> tuple[tuple[int, int, int], int]:
    mt = (_TP_RE if with_tp else _PLAIN_RE).match(path.name)
    if mt is None:
        want = "<h>-<kv>-<d>-tp<N>.csv" if with_tp else "<h>-<kv>-<d>.csv"
        raise BlisInputError(f"{path}: file name must look like {want}")
    h, kv, d = int(mt.group(1)), int(mt.group(2)), int(mt.group(3))
    tp = int(mt.group(4)) if with_tp else 1
    if h % tp != 0:
        raise BlisInputError(f"{path}: {h} heads do not split over tp={tp}")
    return (h // tp, max(1, kv // tp), d), tp


def _merge(groups: dict[tuple, list[tuple[tuple, float, str]]], notes: list[str], what: str):
    """Rows keyed by (shape, key) from several files: average duplicates, noting the spread."""
    merged: dict[tuple, dict[tuple, float]] = {}
    for shape, items in groups.items():
        by_key: dict[tuple, list[float]] = {}
        sources = sorted({src for _, _, src in items})
        for key, lat, _ in items:
            by_key.setdefault(key, []).append(lat)
        dup = {k: v for k, v in by_key.items() if len(v) > 1}
        if dup:
            spread = max(max(v) / min(v) - 1 for v in dup.values())
            notes.append(
                f"{what} {shape[0]}-{shape[1]}-{shape[2]}: {len(sources)} source files ({', '.join(sources)}) "
                f"give this per-GPU shape; {len(dup)} keys measured more than once, latencies averaged "
                f"(largest spread {100 * spread:.0f}%)"
            )
        merged[shape] = {k: sum(v) / len(v) for k, v in by_key.items()}
    return merged


def _import_prefill(folder: Path, out: Path, peaks, notes: list[str]) -> None:
    groups: dict[tuple, list] = {}
    no_batch = False
    for path in sorted(folder.glob("*.csv")):
        shape, _ = _per_gpu_shape(path, with_tp=False)
        header, rows = _read_csv(path)
        idt, isq, il = (_col(header, c, path) for c in ("dtype", "seq_len", "latency_us"))
        ib = header.index("batch_size") if "batch_size" in header else None
        no_batch |= ib is None
        for r in rows:
            b = int(r[ib]) if ib is not None else 1
            groups.setdefault(shape, []).append(((r[idt].strip(), b, int(r[isq])), float(r[il]), path.name))
    if not groups:
        return
    if no_batch:
        notes.append("attention_prefill: source files have no batch_size column: batch_size 1 assumed")
    merged = _merge(groups, notes, "attention_prefill")

    def row(shape: tuple, key: tuple, lat: float) -> list:
        (h, _, d), (dt, b, s) = shape, key
        return [dt, b, s, _fmt_lat(lat), _fmt(bdf.flops_prefill(b, s, h, d) / (lat * 1e-6) / (peaks[dt] * 1e12))]

    _write_shape_tables(out, bdf.PREFILL, merged, row)


def _import_decode(folder: Path, out: Path, peaks, with_tp: bool, notes: list[str]) -> None:
    groups: dict[tuple, list] = {}
    for path in sorted(folder.glob("*.csv")):
        shape, _ = _per_gpu_shape(path, with_tp)
        header, rows = _read_csv(path)
        cols = [_col(header, c, path) for c in ("dtype", "kv_dtype", "batch_size", "kv_len", "latency_us")]
        for r in rows:
            dt, kvd, b, L, lat = (r[i].strip() for i in cols)
            groups.setdefault(shape, []).append(((dt, kvd, int(b), int(L)), float(lat), path.name))
    if not groups:
        return
    if with_tp:
        notes.append("attention_decode: source files are per model and TP degree: heads per GPU = heads / tp")
    merged = _merge(groups, notes, "attention_decode")

    def row(shape: tuple, key: tuple, lat: float) -> list:
        (h, _, d), (dt, kvd, b, L) = shape, key
        return [dt, kvd, b, L, _fmt_lat(lat), _fmt(bdf.flops_decode(b, L, h, d) / (lat * 1e-6) / (peaks[dt] * 1e12))]

    _write_shape_tables(out, bdf.DECODE, merged, row)


def _write_shape_tables(out: Path, kind: str, merged: dict, row) -> None:
    """One CSV per attention shape (heads, kv heads, head dim) under ``out/kind``: the kind's header, then
    ``row(shape, key, latency_us)`` for every measured point in key order."""
    (out / kind).mkdir()
    for shape, table in sorted(merged.items()):
        with (out / kind / bdf.shape_file_name(*shape)).open("w", newline="") as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(bdf.COLUMNS[kind])
            for key, lat in sorted(table.items()):
                w.writerow(row(shape, key, lat))


def _gpus(src: Path, subdirs: tuple[str, ...]) -> list[str]:
    names: set[str] = set()
    for sub in subdirs:
        d = src / sub
        if d.is_dir():
            names |= {p.name for p in d.iterdir() if p.is_dir()}
    return sorted(names)


LAYOUTS = ("h100-blis", "infersim")


def import_tables(src, layout: str, out, gemm_dtype: str = "auto", source: str | None = None,
                  force: bool = False) -> ImportResult:
    """Convert the tables under ``src`` (layout ``layout``) into ``out/<gpu>/`` folders of our format."""
    src, out = Path(src), Path(out)
    if layout not in LAYOUTS:
        raise BlisInputError(f"layout: {layout!r} is not one of {', '.join(LAYOUTS)}")
    if gemm_dtype not in ("auto", "bf16", "fp16", "fp8"):
        raise BlisInputError(f"gemm_dtype: {gemm_dtype!r} is not one of auto, bf16, fp16, fp8")
    if not src.is_dir():
        raise BlisInputError(f"from: {src} is not a folder")
    pkg = bdf.package_bench_data_dir().resolve()
    if out.resolve() == pkg or pkg in out.resolve().parents:
        raise BlisInputError(
            f"out: {out} is inside the package's bench_data/, which holds only our own measurements; "
            "import third-party tables elsewhere"
        )
    gpus = _gpus(src, ("gemm", "mha/prefill", "mha/decode"))
    if not gpus:
        raise BlisInputError(f"from: {src} has no gemm/<gpu>/ or mha/*/<gpu>/ folders ({layout} layout)")
    result = ImportResult()
    for gpu in gpus:
        dest = out / gpu
        if dest.exists() and any(dest.iterdir()) and not force:
            raise BlisInputError(f"out: {dest} exists and is not empty (use --force to overwrite)")
        dest.mkdir(parents=True, exist_ok=True)
        for old in (dest / bdf.PREFILL, dest / bdf.DECODE):
            if old.is_dir():
                for f in old.glob("*.csv"):
                    f.unlink()
                old.rmdir()
        for f in dest.glob("gemm_*.csv"):
            f.unlink()
        peaks, bw = gpu_peaks(gpu)
        notes: list[str] = []
        gemm_csv = src / "gemm" / gpu / "data.csv"
        if gemm_csv.is_file():
            _import_gemm(gemm_csv, dest, peaks, bw, gemm_dtype, notes)
        if (src / "mha" / "prefill" / gpu).is_dir():
            _import_prefill(src / "mha" / "prefill" / gpu, dest, peaks, notes)
        if (src / "mha" / "decode" / gpu).is_dir():
            _import_decode(src / "mha" / "decode" / gpu, dest, peaks, layout == "h100-blis", notes)
        skipped = sorted(
            str(p.relative_to(src)) for p in src.iterdir()
            if p.is_dir() and p.name not in ("gemm", "mha")
        )
        if skipped:
            notes.append(f"not imported (no counterpart in the bench_data format): {', '.join(skipped)}")
        if layout == "infersim":
            notes.append("attention_decode: InferSim file names taken as heads per GPU")
        prov = {
            "gpu": gpu,
            "device": f"{gpu.upper()} (device name not recorded by the source)",
            "date": "unknown",
            "dtype": "bf16",
            "peak_tflops": {k: float(v) for k, v in peaks.items()},
            "peak_memory_bandwidth_GBps": float(bw),
            "source": source or f"imported from the {layout} layout",
            "notes": notes,
        }
        (dest / bdf.PROVENANCE_FILE).write_text(json.dumps(prov, indent=2) + "\n")
        result.folders.append(dest)
        result.notes += [f"{gpu}: {n}" for n in notes]
    return result

