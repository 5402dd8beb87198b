"""The bench_data format (see bench_data/README.md): schema, reader and checker of measured kernel tables.

A GPU folder ``<root>/<gpu>/`` holds ``provenance.json``, ``gemm_<dtype>.csv`` (``m,k,n,latency_us,mfu``),
``attention_prefill/<heads>-<kv_heads>-<head_dim>.csv`` (``dtype,batch_size,seq_len,latency_us,mfu``) and
``attention_decode/<heads>-<kv_heads>-<head_dim>.csv`` (``dtype,kv_dtype,batch_size,kv_len,latency_us,mfu``),
heads per GPU (after TP). Latencies in microseconds; MFU = FLOP/s (conventions of `flops_*`) / provenance peak.

`check_table` / `check_bench_dir` return a `CheckReport` (problems read ``file:line: message``; the physics
checks are in ``checks.py``); `load_bench_dir` refuses a folder with any problem. Plain csv/json: no pandas.
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from blis._files import read_json
from blis.errors import BlisInputError, format_validation_error
from blis.physics.hardware import BYTES_PER_ELEMENT

GEMM = "gemm"
PREFILL = "attention_prefill"
DECODE = "attention_decode"
KINDS = (GEMM, PREFILL, DECODE)

COLUMNS: dict[str, tuple[str, ...]] = {
    GEMM: ("m", "k", "n", "latency_us", "mfu"),
    PREFILL: ("dtype", "batch_size", "seq_len", "latency_us", "mfu"),
    DECODE: ("dtype", "kv_dtype", "batch_size", "kv_len", "latency_us", "mfu"),
}

# Bytes per element of the dtypes a table may name (the physics' figures, for the dense dtypes a table uses).
TABLE_DTYPES = ("fp32", "tf32", "bf16", "fp16", "fp8", "fp8_e4m3", "fp8_e5m2", "int8")
DTYPE_BYTES: dict[str, float] = {name: BYTES_PER_ELEMENT[name] for name in TABLE_DTYPES}

PROVENANCE_FILE = "provenance.json"
_SHAPE_RE = re.compile(r"^(\d+)-(\d+)-(\d+)\.csv$")
_GEMM_RE = re.compile(r"^gemm_([a-z0-9_]+)\.csv$")

# Checker tolerances (relative). Kept loose enough for real measurements: on the imported H100 tables GEMM
# MFU falls by up to 14 % at m = 131072 (clock/power throttling), decode reaches 96 % of HBM bandwidth.
MFU_COLUMN_REL_TOL = 0.02  # mfu column vs FLOPs / (latency x peak)
MFU_COLUMN_ABS_TOL = 6e-4  # allows MFU written with 3 decimals
BANDWIDTH_TOL = 0.10  # achieved bytes/s may exceed the peak by this much (caches, datasheet rounding)
GEMM_MFU_DROP_WARN = 0.10  # MFU below this fraction under the best smaller-m MFU: warning
LATENCY_ORDER_WARN = 1.3  # a kernel this many times slower than the next larger one: warning


def flops_gemm(m: float, k: float, n: float) -> float:
    """FLOPs of an (m x k) @ (k x n) GEMM: 2 m k n."""
    return 2.0 * m * k * n


def flops_prefill(batch: float, seq_len: float, heads: float, head_dim: float) -> float:
    """FLOPs of causal self-attention over ``seq_len`` tokens: QK^T and PV, halved by the mask: 2 b h d s^2."""
    return 2.0 * batch * heads * head_dim * seq_len * seq_len


def flops_decode(batch: float, kv_len: float, heads: float, head_dim: float) -> float:
    """FLOPs of one-token decode attention over ``kv_len`` cached tokens: 4 b h d L."""
    return 4.0 * batch * heads * head_dim * kv_len


def bytes_decode(
    batch: float, kv_len: float, heads: float, kv_heads: float, head_dim: float, dtype: str, kv_dtype: str
) -> float:
    """Least bytes moved by decode attention: K and V of every cached token, plus Q in and O out."""
    kv = batch * kv_len * 2.0 * kv_heads * head_dim * DTYPE_BYTES[kv_dtype]
    return kv + 2.0 * batch * heads * head_dim * DTYPE_BYTES[dtype]


def bytes_gemm(m: float, k: float, n: float, dtype: str) -> float:
    """Least bytes moved by a GEMM: A, B read once and C written once."""
    return (m * k + k * n + m * n) * DTYPE_BYTES[dtype]


class Provenance(BaseModel):
    """``provenance.json``: where and how the tables of one GPU folder were measured."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)  # built when a table is read

    gpu: str = Field(..., min_length=1, description="folder name / hardware name, e.g. 'h100'")
    device: str = Field(..., min_length=1, description="device name as the driver reports it")
    driver: str = "unknown"
    cuda: str = "unknown"
    torch: str = "unknown"
    flash_attn: str = "unknown"
    flashinfer: str = "unknown"
    date: str = Field(..., min_length=1, description="ISO date of the measurement")
    dtype: str = Field("bf16", description="main compute dtype of the tables")
    peak_tflops: dict[str, float] = Field(..., description="dense peak TFLOP/s per dtype, used for MFU")
    peak_memory_bandwidth_GBps: float | None = Field(None, gt=0, description="HBM GB/s (1e9 B/s)")
    source: str | None = None
    notes: list[str] = Field(default_factory=list)

    def peak_flops(self, dtype: str) -> float | None:
        """Peak FLOP/s for ``dtype`` (None if the provenance does not give one)."""
        v = self.peak_tflops.get(dtype)
        return None if v is None else v * 1e12

    def bandwidth_Bps(self) -> float | None:
        """Peak memory bandwidth in bytes/s: from the provenance, else from blis's hardware table."""
        if self.peak_memory_bandwidth_GBps is not None:
            return self.peak_memory_bandwidth_GBps * 1e9
        try:
            from blis.physics.hardware import get_hardware  # optional: written by another module

            return float(get_hardware(self.gpu).memory_bandwidth_Bps)
        except (ImportError, BlisInputError):  # hardware table missing or GPU unknown: check skipped
            return None


@dataclass
class TableSummary:
    """One checked file: row count, MFU range and the grid it covers."""

    path: str
    kind: str
    rows: int
    mfu_min: float
    mfu_max: float
    grid: dict

    def line(self) -> str:
        grid = ", ".join(f"{k}={v}" for k, v in self.grid.items())
        return f"{self.path}: {self.kind}, {self.rows} rows, MFU {self.mfu_min:.4g}..{self.mfu_max:.4g}; {grid}"


@dataclass
class CheckReport:
    """Outcome of a check: ``problems`` refuse the data, ``warnings`` do not."""

    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    tables: list[TableSummary] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def extend(self, other: CheckReport) -> None:
        self.problems += other.problems
        self.warnings += other.warnings
        self.tables += other.tables

    def to_dict(self) -> dict:
        return {
            "ok": self.ok,
            "problems": list(self.problems),
            "warnings": list(self.warnings),
            "tables": [t.__dict__ for t in self.tables],
        }

    def format(self) -> str:
        out = [t.line() for t in self.tables]
        out += [f"warning: {w}" for w in self.warnings]
        out += [f"problem: {p}" for p in self.problems]
        out.append("OK" if self.ok else f"FAILED: {len(self.problems)} problem(s)")
        return "\n".join(out)


@dataclass
class Table:
    """Parsed rows of one file (only rows that passed the row checks). ``lines`` are 1-based file lines."""

    path: Path
    kind: str
    dtype: str | None  # GEMM: from the file name
    shape: tuple[int, int, int] | None  # attention: (heads, kv_heads, head_dim) per GPU
    rows: list[tuple]  # GEMM (m,k,n,lat,mfu); prefill (dtype,b,s,lat,mfu); decode (dtype,kvd,b,L,lat,mfu)
    lines: list[int]


def package_bench_data_dir() -> Path:
    """The repository's ``bench_data/`` (beside the ``blis`` package), reserved for our own measurements."""
    return Path(__file__).resolve().parent.parent.parent / "bench_data"


def shape_from_name(name: str) -> tuple[int, int, int] | None:
    """``'32-8-128.csv'`` -> (32, 8, 128); None if the name does not match."""
    mt = _SHAPE_RE.match(name)
    return None if mt is None else (int(mt.group(1)), int(mt.group(2)), int(mt.group(3)))


def shape_file_name(heads: int, kv_heads: int, head_dim: int) -> str:
    return f"{heads}-{kv_heads}-{head_dim}.csv"


def _find_provenance(path: Path) -> Path | None:
    for folder in (path.parent, path.parent.parent):
        p = folder / PROVENANCE_FILE
        if p.is_file():
            return p
    return None


def read_provenance(path: Path) -> Provenance:
    """Read and validate ``provenance.json`` (BlisInputError naming the field on a bad file)."""
    data = read_json(path)
    try:
        prov = Provenance.model_validate(data)
    except ValidationError as exc:
        raise BlisInputError(format_validation_error(exc, where=f"{path}:0")) from None
    for dt, v in prov.peak_tflops.items():
        if dt not in DTYPE_BYTES or not (v > 0 and math.isfinite(v)):
            raise BlisInputError(
                f"{path}:0: peak_tflops.{dt}: must be a known dtype ({', '.join(DTYPE_BYTES)}) with a finite "
                "value > 0 TFLOP/s"
            )
    return prov


def _num(text: str, integer: bool) -> float:
    v = float(text)
    if integer and (not math.isfinite(v) or v != int(v)):
        raise ValueError("not an integer")
    return int(v) if integer else v


def parse_table(path: Path, kind: str, report: CheckReport) -> Table | None:
    """Read one CSV, appending row problems ('file:line: message') to ``report``; bad rows are dropped."""
    path = Path(path)
    if kind not in KINDS:
        raise BlisInputError(f"kind: {kind!r} is not one of {', '.join(KINDS)}")
    name = str(path)
    dtype = shape = None
    if kind == GEMM:
        mt = _GEMM_RE.match(path.name)
        if mt is None or mt.group(1) not in DTYPE_BYTES:
            report.problems.append(f"{name}:0: GEMM file must be named gemm_<dtype>.csv, dtype one of "
                                   f"{', '.join(DTYPE_BYTES)}")
            return None
        dtype = mt.group(1)
    else:
        shape = shape_from_name(path.name)
        if shape is None or min(shape) < 1 or shape[0] % shape[1] != 0:
            report.problems.append(
                f"{name}:0: attention file must be named <heads>-<kv_heads>-<head_dim>.csv with heads a "
                "multiple of kv_heads, all >= 1"
            )
            return None
    try:
        handle = path.open(newline="")
    except OSError as exc:
        report.problems.append(f"{name}:0: cannot read ({exc})")
        return None
    with handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        want = COLUMNS[kind]
        if header is None or tuple(h.strip() for h in header) != want:
            report.problems.append(f"{name}:1: header must be {','.join(want)} (got {header})")
            return None
        rows: list[tuple] = []
        lines: list[int] = []
        for values in reader:
            line = reader.line_num
            if not values or all(not v.strip() for v in values):
                continue
            row = _parse_row(kind, values, f"{name}:{line}", report)
            if row is not None:
                rows.append(row)
                lines.append(line)
    if not rows and not any(p.startswith(f"{name}:") for p in report.problems):
        report.problems.append(f"{name}:1: no data rows")
    return Table(path, kind, dtype, shape, rows, lines)


def _parse_row(kind: str, values: list[str], where: str, report: CheckReport) -> tuple | None:
    want = COLUMNS[kind]
    if len(values) != len(want):
        report.problems.append(f"{where}: expected {len(want)} fields ({','.join(want)}), got {len(values)}")
        return None
    out: list = []
    for col, text in zip(want, values):
        text = text.strip()
        if col in ("dtype", "kv_dtype"):
            if text not in DTYPE_BYTES:
                report.problems.append(f"{where}: {col} {text!r} is not one of {', '.join(DTYPE_BYTES)}")
                return None
            out.append(text)
            continue
        integer = col not in ("latency_us", "mfu")
        try:
            v = _num(text, integer)
        except ValueError:
            kind_word = "an integer" if integer else "a number"
            report.problems.append(f"{where}: {col} {text!r} is not {kind_word}")
            return None
        if not math.isfinite(v):
            report.problems.append(f"{where}: {col} is {text} (must be finite)")
            return None
        if col == "latency_us" and not v > 0:
            report.problems.append(f"{where}: latency_us {text} must be > 0 microseconds")
            return None
        if col == "mfu" and not 0 < v <= 1:
            report.problems.append(f"{where}: mfu {text} must be within (0, 1]")
            return None
        if integer and v < 1:
            report.problems.append(f"{where}: {col} {text} must be an integer >= 1")
            return None
        out.append(v)
    return tuple(out)


def _row_flops_bytes(table: Table, row: tuple) -> tuple[str, float, float | None]:
    """(dtype, FLOPs, least bytes or None) of one parsed row."""
    if table.kind == GEMM:
        m, k, n = row[0], row[1], row[2]
        return table.dtype, flops_gemm(m, k, n), bytes_gemm(m, k, n, table.dtype)
    h, kvh, d = table.shape
    if table.kind == PREFILL:
        dtype, b, s = row[0], row[1], row[2]
        return dtype, flops_prefill(b, s, h, d), None
    dtype, kvd, b, L = row[0], row[1], row[2], row[3]
    return dtype, flops_decode(b, L, h, d), bytes_decode(b, L, h, kvh, d, dtype, kvd)


def _key(table: Table, row: tuple) -> tuple:
    return row[:3] if table.kind != DECODE else row[:4]


def check_parsed(table: Table, prov: Provenance | None, report: CheckReport) -> None:
    """Table-level checks on parsed rows: duplicates, units (MFU vs latency), bandwidth, GEMM trend."""
    name = str(table.path)
    seen: dict[tuple, int] = {}
    bandwidth = prov.bandwidth_Bps() if prov is not None else None
    if prov is None:
        report.warnings.append(f"{name}: no {PROVENANCE_FILE} beside it: unit and bandwidth checks skipped")
    elif bandwidth is None and table.kind != PREFILL:
        report.warnings.append(f"{name}: GPU bandwidth unknown ({prov.gpu}): bandwidth check skipped")
    missing_peaks: set[str] = set()
    l2 = _checks.l2_of(prov)
    for row, line in zip(table.rows, table.lines):
        where = f"{name}:{line}"
        key = _key(table, row)
        if key in seen:
            report.problems.append(f"{where}: duplicate key {key} (first at line {seen[key]})")
            continue
        seen[key] = line
        if prov is None:
            continue
        lat_s = row[-2] * 1e-6
        dtype, flops, nbytes = _row_flops_bytes(table, row)
        peak = prov.peak_flops(dtype)
        if peak is None:
            if dtype not in missing_peaks:
                report.problems.append(f"{where}: provenance peak_tflops has no entry for dtype {dtype}")
                missing_peaks.add(dtype)
            continue
        mfu_calc = flops / (lat_s * peak)
        if mfu_calc > 1.0:
            report.problems.append(
                f"{where}: achieved {flops / lat_s / 1e12:.1f} TFLOP/s exceeds the {dtype} peak "
                f"{peak / 1e12:.1f} (MFU {mfu_calc:.3f} > 1)"
            )
        elif abs(row[-1] - mfu_calc) > max(MFU_COLUMN_REL_TOL * mfu_calc, MFU_COLUMN_ABS_TOL):
            report.problems.append(
                f"{where}: mfu {row[-1]:.4g} disagrees with FLOPs/(latency x peak) = {mfu_calc:.4g} "
                "(latency must be microseconds, MFU relative to provenance peak_tflops)"
            )
        if nbytes is not None and bandwidth is not None:
            _checks.check_bandwidth(where, nbytes, nbytes / lat_s, bandwidth, l2, report)
    if table.kind == GEMM:
        _checks.check_gemm_trend(table, report)
    _checks.check_latency_order(table, report)


def check_table(path, kind: str, provenance: Provenance | None = None) -> CheckReport:
    """Check one CSV of ``kind`` ('gemm', 'attention_prefill', 'attention_decode').

    The provenance is read from ``provenance.json`` in the file's folder or its parent when not given.
    """
    report = CheckReport()
    path = Path(path)
    if provenance is None:
        prov_path = _find_provenance(path)
        if prov_path is not None:
            try:
                provenance = read_provenance(prov_path)
            except BlisInputError as exc:
                report.problems.append(f"{exc}")
    table = parse_table(path, kind, report)
    if table is not None:
        check_parsed(table, provenance, report)
        report.tables.append(_checks.summary(table))
    return report


def gpu_folders(path) -> list[Path]:
    """The GPU folders under ``path``: ``path`` itself if it holds provenance.json, else its subfolders."""
    path = Path(path)
    if (path / PROVENANCE_FILE).is_file():
        return [path]
    if not path.is_dir():
        return []
    return sorted(p for p in path.iterdir() if p.is_dir() and (p / PROVENANCE_FILE).is_file())


def _table_files(folder: Path, report: CheckReport | None) -> list[tuple[Path, str]]:
    files: list[tuple[Path, str]] = []
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.suffix == ".csv":
            files.append((p, GEMM))
        elif p.is_dir() and p.name in (PREFILL, DECODE):
            for q in sorted(p.iterdir()):
                if q.suffix == ".csv":
                    files.append((q, p.name))
                elif report is not None:
                    report.warnings.append(f"{q}: not a table, ignored")
        elif report is not None and p.name not in (PROVENANCE_FILE, "comm") and p.suffix != ".md":
            report.warnings.append(f"{p}: not part of the bench_data format, ignored")
    return files


def check_bench_dir(path) -> CheckReport:
    """Check a bench_data root (``<root>/<gpu>/...``) or one GPU folder: every table and the provenance."""
    report = CheckReport()
    path = Path(path)
    folders = gpu_folders(path)
    if not folders:
        report.problems.append(f"{path}:0: no {PROVENANCE_FILE} here or in a subfolder: not a bench_data folder")
        return report
    for folder in folders:
        try:
            prov = read_provenance(folder / PROVENANCE_FILE)
        except BlisInputError as exc:
            report.problems.append(str(exc))
            continue
        files = _table_files(folder, report)
        if not files:
            report.problems.append(f"{folder}:0: no tables")
        for p, kind in files:
            table = parse_table(p, kind, report)
            if table is not None:
                check_parsed(table, prov, report)
                report.tables.append(_checks.summary(table))
    return report


@dataclass
class BenchData:
    """All tables of one GPU folder, checked. Rows as in `Table.rows` (latency in microseconds)."""

    folder: Path
    provenance: Provenance
    gemm: dict[str, list[tuple]]  # dtype -> [(m, k, n, latency_us, mfu)]
    prefill: dict[tuple[int, int, int], list[tuple]]  # shape -> [(dtype, b, s, latency_us, mfu)]
    decode: dict[tuple[int, int, int], list[tuple]]  # shape -> [(dtype, kv_dtype, b, L, latency_us, mfu)]
    warnings: list[str] = field(default_factory=list)


def load_bench_dir(folder) -> BenchData:
    """Read one GPU folder after checking it; any problem is an error (BlisInputError listing them)."""
    folder = Path(folder)
    if not (folder / PROVENANCE_FILE).is_file():
        raise BlisInputError(f"bench_data_path: {folder} has no {PROVENANCE_FILE} (not a bench_data GPU folder)")
    report = CheckReport()
    prov = read_provenance(folder / PROVENANCE_FILE)
    gemm: dict = {}
    prefill: dict = {}
    decode: dict = {}
    for p, kind in _table_files(folder, report):
        table = parse_table(p, kind, report)
        if table is None:
            continue
        check_parsed(table, prov, report)
        if kind == GEMM:
            gemm[table.dtype] = table.rows
        elif kind == PREFILL:
            prefill[table.shape] = table.rows
        else:
            decode[table.shape] = table.rows
    if not report.ok:
        shown = "; ".join(report.problems[:3])
        more = f" (and {len(report.problems) - 3} more)" if len(report.problems) > 3 else ""
        raise BlisInputError(
            f"bench_data_path: {folder} fails the check: {shown}{more}; run `blis bench-data check {folder}`"
        )
    return BenchData(folder, prov, gemm, prefill, decode, report.warnings)


from blis.bench_data import checks as _checks  # noqa: E402  (physics checks; imports this module)
