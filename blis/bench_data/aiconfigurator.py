"""NVIDIA aiconfigurator tables (PyPI ``aiconfigurator-core``, ``pip install 'blis[aic]'``), read in place.

Layout (learned from the package files, see docs/roofline_v2.md): ``aiconfigurator_core/systems/data/
<system>/<op>/<backend>/<version>/<table>.parquet`` with a ``collection_meta.yaml``. Used here:

- ``gemm/<b>/<v>/gemm_perf``: ``gemm_dtype`` (bfloat16, fp8, fp8_block, ...), ``m, n, k`` ((m x k) @ (k x n)),
  ``latency`` in **milliseconds**;
- ``attention/<b>/<v>/context_attention_perf``: ``batch_size, isl`` (causal prefill of isl tokens),
  ``num_heads, num_key_value_heads, head_dim`` per GPU, ``attn_dtype, kv_cache_dtype, window_size``,
  ``kernel_source``, ``latency`` ms;
- ``attention/<b>/<v>/generation_attention_perf``: one decode token per sequence over ``isl + step`` cached
  keys (isl = 1), same columns;
- ``comm/<b>/<v>/custom_allreduce_perf``: ``num_gpus, message_size`` (**elements** of ``allreduce_dtype``),
  ``backend`` (vllm_graph / vllm_eager), ``latency`` ms.

`load` converts the rows to our units (microseconds, bf16/fp8 names) and runs the same checks as our own
format (``blis.bench_data.format.check_parsed``); `write_folder` writes them in our format. pandas reads the
parquet files (pyarrow comes with the package); nothing here is imported unless a spec names aiconfigurator.
"""

from __future__ import annotations

import importlib.util
import json
import re
from dataclasses import dataclass
from pathlib import Path

from blis.bench_data import checks
from blis.bench_data import format as bdf
from blis.errors import BlisInputError

PREFIX = "aiconfigurator"
INSTALL_HINT = "pip install 'blis[aic]' (the aiconfigurator-core package)"
MS_TO_US = 1000.0
# aiconfigurator dtype names -> ours; others (fp8_block, int4_wo, nvfp4, ...) have no counterpart
_DTYPES = {"bfloat16": "bf16", "float16": "fp16", "fp8": "fp8"}
# blis hardware name (lower case) -> aiconfigurator system folder
SYSTEMS = {"h100-sxm": "h100_sxm", "h200": "h200_sxm", "a100-80gb": "a100_sxm", "l40s": "l40s", "b200": "b200_sxm"}
_VERSION_RE = re.compile(r"(\d+)")


@dataclass(frozen=True)
class AicRef:
    """One resolved table set: data root, system folder, backend, version."""

    root: Path
    system: str
    backend: str
    version: str

    @property
    def label(self) -> str:
        return f"{PREFIX}:{self.system}/{self.backend}/{self.version}"

    def op_dir(self, op: str) -> Path | None:
        """The folder of ``op`` at this version, else the newest older version that has it (None if none)."""
        d = self.root / self.system / op / self.backend
        if (d / self.version).is_dir():
            return d / self.version
        older = [v for v in _versions(d) if version_key(v) <= version_key(self.version)]
        return d / older[-1] if older else None


def is_spec(text: str | None) -> bool:
    return bool(text) and (text == PREFIX or text.startswith(PREFIX + ":"))


def installed() -> bool:
    return importlib.util.find_spec("aiconfigurator_core") is not None


def data_root() -> Path:
    """``aiconfigurator_core/systems/data`` of the installed package (found without importing it)."""
    spec = importlib.util.find_spec("aiconfigurator_core")
    if spec is None or not spec.submodule_search_locations:
        raise BlisInputError(f"bench_data_path: aiconfigurator tables need {INSTALL_HINT}")
    root = Path(list(spec.submodule_search_locations)[0]) / "systems" / "data"
    if not root.is_dir():
        raise BlisInputError(f"bench_data_path: {root} not found in the installed aiconfigurator-core")
    return root


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("aiconfigurator-core")
    except PackageNotFoundError:
        return "unknown"


def version_key(v: str) -> tuple:
    """Sort key of a version folder name: numbers compared as numbers (0.24.0 > 0.5.14 > 0.5.6.post2)."""
    return tuple(int(x) for x in _VERSION_RE.findall(v))


def _versions(d: Path) -> list[str]:
    if not d.is_dir():
        return []
    return sorted((p.name for p in d.iterdir() if p.is_dir() and any(p.glob("*.parquet"))), key=version_key)


def system_for(hardware: str) -> str | None:
    """The aiconfigurator system folder for a blis hardware name (None when blis knows no mapping)."""
    try:
        from blis.physics.hardware import get_hardware

        name = get_hardware(hardware).name.lower()
    except BlisInputError:
        name = hardware.lower()
    return SYSTEMS.get(name)


def resolve(spec: str, hardware: str, root: Path | None = None) -> AicRef:
    """``aiconfigurator`` (system from ``hardware``, newest vLLM GEMM tables) or
    ``aiconfigurator:<system>/<backend>/<version>`` (exactly). BlisInputError naming what is missing."""
    root = data_root() if root is None else Path(root)
    systems = sorted(p.name for p in root.iterdir() if p.is_dir())
    if spec == PREFIX:
        system = system_for(hardware)
        if system is None or system not in systems:
            raise BlisInputError(
                f"bench_data_path: no aiconfigurator system for hardware {hardware}; name one as "
                f"aiconfigurator:<system>/<backend>/<version>, systems: {', '.join(systems)}"
            )
        versions = _versions(root / system / "gemm" / "vllm")
        if not versions:
            raise BlisInputError(f"bench_data_path: aiconfigurator has no vLLM GEMM tables for {system}")
        return AicRef(root, system, "vllm", versions[-1])
    parts = spec[len(PREFIX) + 1:].split("/")
    if len(parts) != 3 or not all(parts):
        raise BlisInputError(
            f"bench_data_path: {spec!r} must be 'aiconfigurator' or 'aiconfigurator:<system>/<backend>/<version>'"
        )
    system, backend, version = parts
    if system not in systems:
        raise BlisInputError(f"bench_data_path: aiconfigurator system {system!r} unknown; have {', '.join(systems)}")
    have = _versions(root / system / "gemm" / backend) or _versions(root / system / "attention" / backend)
    if version not in have:
        raise BlisInputError(
            f"bench_data_path: no aiconfigurator {backend} {version} tables for {system}; versions: "
            f"{', '.join(have) or 'none'}"
        )
    return AicRef(root, system, backend, version)


def catalogue(root: Path | None = None) -> list[str]:
    """Every ``system/backend/version`` that has GEMM or attention tables (for error messages and docs)."""
    root = data_root() if root is None else Path(root)
    out = set()
    for sysdir in sorted(p for p in root.iterdir() if p.is_dir()):
        for op in ("gemm", "attention"):
            for bdir in sorted((sysdir / op).glob("*")) if (sysdir / op).is_dir() else []:
                out |= {f"{sysdir.name}/{bdir.name}/{v}" for v in _versions(bdir)}
    return sorted(out)


# ---- reading ------------------------------------------------------------------------------------------


def _read(path: Path, columns: tuple[str, ...]):
    import pandas as pd

    df = pd.read_parquet(path)
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise BlisInputError(f"{path}: columns {', '.join(missing)} missing (aiconfigurator layout changed?)")
    lat = df["latency"]
    if lat.dtype.kind != "f":
        raise BlisInputError(f"{path}: latency column has dtype {lat.dtype}, expected float milliseconds")
    return df


def _dedupe(df, keys: list[str], what: str, notes: list[str]):
    """One row per key: repeated measurements of a key (older collections hold some) become their median."""
    dup = df.duplicated(keys, keep=False)
    if not dup.any():
        return df
    notes.append(f"{what}: {int(dup.sum())} rows repeat a key; the median latency of each key is used")
    return df.groupby(keys, as_index=False, sort=False).agg({"latency": "median"}).set_index(
        df.index[~df.duplicated(keys)])


def _one_source(df):
    """Rows of one kernel_source per key: the source with the most rows (ties: name order)."""
    if "kernel_source" not in df.columns or df["kernel_source"].nunique() <= 1:
        return df, None
    counts = df["kernel_source"].value_counts()
    best = sorted(counts.index, key=lambda s: (-counts[s], s))[0]
    return df[df["kernel_source"] == best], best


def _table(path: Path, kind: str, rows: list[tuple], lines: list[int], dtype=None, shape=None) -> bdf.Table:
    return bdf.Table(path, kind, dtype, shape, rows, lines)


def _bad_rows(df, path: Path, report: bdf.CheckReport) -> list:
    """Indices of rows with a NaN, infinite or non-positive latency (reported as problems)."""
    import numpy as np

    lat = df["latency"].to_numpy()
    bad = ~np.isfinite(lat) | (lat <= 0)
    for i in np.flatnonzero(bad)[:20]:
        report.problems.append(f"{path}:{int(i) + 2}: latency {lat[i]!r} ms must be finite and > 0")
    return list(np.flatnonzero(bad))


def _gemm(ref: AicRef, prov: bdf.Provenance, report: bdf.CheckReport, notes: list[str]) -> dict:
    d = ref.op_dir("gemm")
    if d is None or not (d / "gemm_perf.parquet").is_file():
        notes.append("no gemm_perf table")
        return {}
    path = d / "gemm_perf.parquet"
    df = _read(path, ("gemm_dtype", "m", "n", "k", "latency"))
    bad = set(_bad_rows(df, path, report))
    out: dict[str, list[tuple]] = {}
    skipped = sorted(set(df["gemm_dtype"]) - set(_DTYPES))
    if skipped:
        notes.append(f"gemm_perf: dtypes without a bench_data counterpart skipped: {', '.join(skipped)}")
    for src_dtype, dt in _DTYPES.items():
        sub = df[df["gemm_dtype"] == src_dtype]
        if sub.empty:
            continue
        sub, source = _one_source(sub)
        if source:
            notes.append(f"gemm {dt}: kernel_source {source}")
        sub = _dedupe(sub, ["m", "k", "n"], f"gemm {dt}", notes)
        peak = prov.peak_flops(dt)
        rows, lines = [], []
        for i, m, k, n, lat in zip(sub.index, sub["m"], sub["k"], sub["n"], sub["latency"]):
            if i in bad:
                continue
            us = float(lat) * MS_TO_US
            rows.append((int(m), int(k), int(n), us, bdf.flops_gemm(m, k, n) / (us * 1e-6 * peak)))
            lines.append(int(i) + 2)
        table = _table(path, bdf.GEMM, rows, lines, dtype=dt)
        bdf.check_parsed(table, prov, report)
        report.tables.append(checks.summary(table))
        out[dt] = rows
    return out


def _attention(ref: AicRef, prov: bdf.Provenance, report: bdf.CheckReport, notes: list[str], phase: str) -> dict:
    d = ref.op_dir("attention")
    name = "context_attention_perf" if phase == bdf.PREFILL else "generation_attention_perf"
    if d is None or not (d / f"{name}.parquet").is_file():
        notes.append(f"no {name} table")
        return {}
    path = d / f"{name}.parquet"
    cols = ("batch_size", "isl", "num_heads", "num_key_value_heads", "head_dim", "attn_dtype", "kv_cache_dtype",
            "latency")
    df = _read(path, cols + (("step",) if phase == bdf.DECODE else ()))
    bad = set(_bad_rows(df, path, report))
    if "window_size" not in df.columns:  # older collections (e.g. a100_sxm vllm 0.14.0): full attention only
        df = df.assign(window_size=0)
    df = df[(df["window_size"] == 0) & df["attn_dtype"].isin(list(_DTYPES)) & df["kv_cache_dtype"].isin(list(_DTYPES))]
    if phase == bdf.PREFILL:  # our prefill tables have no KV dtype: the bf16-cache rows
        df = df[df["kv_cache_dtype"] == "bfloat16"]
    df = df[df["num_heads"] % df["num_key_value_heads"] == 0]
    df, source = _one_source(df)
    if source:
        notes.append(f"{name}: kernel_source {source}")
    keys = ["num_heads", "num_key_value_heads", "head_dim", "attn_dtype", "kv_cache_dtype", "batch_size", "isl"]
    df = _dedupe(df, keys + (["step"] if phase == bdf.DECODE else []), name, notes)
    peak = prov.peak_flops("bf16")
    by_shape: dict[tuple, tuple[list, list]] = {}
    for i, r in zip(df.index, df.itertuples(index=False)):
        if i in bad:
            continue
        h, kv, hd = int(r.num_heads), int(r.num_key_value_heads), int(r.head_dim)
        us = float(r.latency) * MS_TO_US
        dt = _DTYPES[r.attn_dtype]
        b = int(r.batch_size)
        rows, lines = by_shape.setdefault((h, kv, hd), ([], []))
        if phase == bdf.PREFILL:
            s = int(r.isl)
            rows.append((dt, b, s, us, bdf.flops_prefill(b, s, h, hd) / (us * 1e-6 * peak)))
        else:
            L = int(r.isl) + int(r.step)  # keys seen by the new token: the prompt plus the generated ones
            rows.append((dt, _DTYPES[r.kv_cache_dtype], b, L, us, bdf.flops_decode(b, L, h, hd) / (us * 1e-6 * peak)))
        lines.append(int(i) + 2)
    out = {}
    for shape, (rows, lines) in sorted(by_shape.items()):
        table = _table(path, phase, rows, lines, shape=shape)
        bdf.check_parsed(table, prov, report)
        out[shape] = rows
    if by_shape:
        n = sum(len(v[0]) for v in by_shape.values())
        report.tables.append(bdf.TableSummary(str(path), phase, n, 0.0, 0.0, {"shapes": len(by_shape)}))
    return out


def _allreduce(ref: AicRef, report: bdf.CheckReport, notes: list[str]) -> list[tuple]:
    """[(backend, num_gpus, message_bytes, latency_us)] of the bf16 custom all-reduce."""
    d = ref.op_dir("comm")
    path = None if d is None else d / "custom_allreduce_perf.parquet"
    if path is None or not path.is_file():
        notes.append("no custom_allreduce_perf table: all-reduce from roofline v1")
        return []
    df = _read(path, ("allreduce_dtype", "num_gpus", "message_size", "backend", "latency"))
    bad = set(_bad_rows(df, path, report))
    df = df[df["allreduce_dtype"] == "bfloat16"]
    return [(str(r.backend), int(r.num_gpus), int(r.message_size) * 2, float(r.latency) * MS_TO_US)
            for i, r in zip(df.index, df.itertuples(index=False)) if i not in bad]


def provenance_for(ref: AicRef, gpu: str) -> bdf.Provenance:
    from blis.bench_data.importers import gpu_peaks

    peaks, bw = gpu_peaks(gpu)
    meta = {}
    d = ref.op_dir("gemm") or ref.op_dir("attention")
    if d is not None and (d / "collection_meta.yaml").is_file():
        import yaml

        meta = yaml.safe_load((d / "collection_meta.yaml").read_text()) or {}
    abi = ((meta.get("runtime") or {}).get("abi") or {}) if isinstance(meta, dict) else {}
    return bdf.Provenance(
        gpu=gpu, device=str(abi.get("gpu_name") or ref.system), date="unknown",
        driver=str(abi.get("driver", "unknown")), cuda=str(abi.get("cuda", "unknown")),
        torch=str(abi.get("torch", "unknown")), dtype="bf16",
        peak_tflops={k: float(v) for k, v in peaks.items()}, peak_memory_bandwidth_GBps=float(bw),
        source=f"{ref.label} (aiconfigurator-core {package_version()}, NVIDIA, Apache-2.0)",
    )


@dataclass
class AicTables:
    """Checked tables of one aiconfigurator system/backend/version in our units."""

    ref: AicRef
    bench: bdf.BenchData
    allreduce: list[tuple]  # (backend, num_gpus, message_bytes, latency_us)
    report: bdf.CheckReport


def read(ref: AicRef, gpu: str) -> AicTables:
    """Read and check every table we use; problems are left in ``report`` (see `load` to refuse them)."""
    prov = provenance_for(ref, gpu)
    report = bdf.CheckReport()
    notes: list[str] = []
    gemm = _gemm(ref, prov, report, notes)
    prefill = _attention(ref, prov, report, notes, bdf.PREFILL)
    decode = _attention(ref, prov, report, notes, bdf.DECODE)
    allreduce = _allreduce(ref, report, notes)
    prov = prov.model_copy(update={"notes": notes})
    bench = bdf.BenchData(ref.root / ref.system, prov, gemm, prefill, decode, report.warnings)
    return AicTables(ref, bench, allreduce, report)


_CACHE: dict[tuple, AicTables] = {}


def load(spec: str, hardware: str, root: Path | None = None) -> AicTables:
    """Resolve, read and check (BlisInputError on any problem). Cached per process by (ref, gpu): the
    tables are read-only and the parquet read takes about a second."""
    from blis.physics.hardware import get_hardware

    ref = resolve(spec, hardware, root)
    gpu = get_hardware(hardware).name.lower()
    key = (ref, gpu)
    if key not in _CACHE:
        t = read(ref, gpu)
        if not t.report.ok:
            shown = "; ".join(t.report.problems[:3])
            raise BlisInputError(f"bench_data_path: {ref.label} fails the check: {shown}")
        _CACHE[key] = t
    return _CACHE[key]


def write_folder(tables: AicTables, out: Path) -> Path:
    """Write the tables in our format under ``out/<gpu>/`` (with provenance) and return that folder."""
    from blis.bench_data.comm import write_allreduce

    bench = tables.bench
    dest = Path(out) / bench.provenance.gpu
    dest.mkdir(parents=True, exist_ok=True)
    for dt, rows in bench.gemm.items():
        _write_csv(dest / f"gemm_{dt}.csv", bdf.COLUMNS[bdf.GEMM], sorted(rows))
    for phase, tabs in ((bdf.PREFILL, bench.prefill), (bdf.DECODE, bench.decode)):
        for shape, rows in tabs.items():
            (dest / phase).mkdir(exist_ok=True)
            _write_csv(dest / phase / bdf.shape_file_name(*shape), bdf.COLUMNS[phase], sorted(rows))
    if tables.allreduce:
        write_allreduce(dest, tables.allreduce)
    prov = bench.provenance.model_dump()
    (dest / bdf.PROVENANCE_FILE).write_text(json.dumps(prov, indent=2) + "\n")
    return dest


def _write_csv(path: Path, header: tuple[str, ...], rows: list[tuple]) -> None:
    def cell(v) -> str:
        if isinstance(v, str):
            return v
        if isinstance(v, int):
            return str(v)
        return f"{v:.6g}"

    path.write_text(",".join(header) + "\n" + "".join(",".join(cell(v) for v in r) + "\n" for r in rows))
