"""GPU figures for the roofline: memory, bandwidths and dense peak throughput per precision.

Every number carries a one-line source. Peak throughputs are *dense* (NVIDIA datasheets print the
2:4-sparsity figure first; dense is half of it). ``memory_bytes`` is the device memory CUDA reports as
total, which is what vLLM multiplies by ``gpu_memory_utilization``; it is a little below the marketed
capacity (driver reservations), so where a logged value was available we use it.

Users add or override entries with ``load_hardware_file(path)`` and pass the result to ``get_hardware``
as ``extra`` (no global registry is modified).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from blis.errors import BlisInputError

GiB = 1024**3
TERA = 1e12

PRECISIONS: tuple[str, ...] = (
    "fp64", "fp32", "tf32", "bf16", "fp16", "fp8", "fp8_e4m3", "fp8_e5m2",
    "int8", "int4", "mxfp8", "mxfp4", "nvfp4",
)  # fmt: skip

# Storage bytes per element, block-scale overhead included.
BYTES_PER_ELEMENT: dict[str, float] = {
    "fp64": 8.0,
    "fp32": 4.0,
    "tf32": 4.0,  # stored as fp32; only the tensor-core math is reduced
    "bf16": 2.0,
    "fp16": 2.0,
    "fp8": 1.0,
    "fp8_e4m3": 1.0,
    "fp8_e5m2": 1.0,
    "int8": 1.0,
    "int4": 0.5,
    "mxfp8": (8 + 8 / 32) / 8,  # OCP MX: 8-bit E8M0 scale per 32-element block -> 8.25 bits
    "mxfp4": (4 + 8 / 32) / 8,  # OCP MX: 8-bit E8M0 scale per 32 -> 4.25 bits
    "nvfp4": (4 + 8 / 16 + 32 / 1024) / 8,  # FP8 E4M3 scale per 16 + FP32 tensor scale per 1024 -> 4.53 bits
    "nf4": (4 + 16 / 64) / 8,  # bitsandbytes NF4: 16-bit absmax per 64 -> 4.25 bits
}

# Storage-only formats whose math runs in another precision (weights are dequantised on the fly).
COMPUTE_PRECISION: dict[str, str] = {"nf4": "bf16"}


@dataclass(frozen=True)
class HardwareSpec:
    """One accelerator.

    memory_bytes: device memory CUDA reports as total (bytes).
    memory_bandwidth_Bps: peak DRAM/HBM bandwidth (bytes/s).
    interconnect_bandwidth_Bps: per-GPU tensor-parallel link bandwidth, one direction (bytes/s).
    interconnect_latency_us: fixed cost of one small all-reduce over that link (microseconds).
    peak_flops: dense peak throughput per precision (FLOP/s or OP/s); a precision that is missing or
        0 is unsupported on this hardware.
    """

    name: str
    memory_bytes: float
    memory_bandwidth_Bps: float
    interconnect_bandwidth_Bps: float
    interconnect_latency_us: float
    peak_flops: Mapping[str, float] = field(hash=False)
    aliases: tuple[str, ...] = ()
    source: str = ""

    def __post_init__(self) -> None:
        for fname in ("memory_bytes", "memory_bandwidth_Bps", "interconnect_bandwidth_Bps"):
            v = getattr(self, fname)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise BlisInputError(f"hardware {self.name}: {fname} must be a finite number > 0, got {v!r}")
        lat = self.interconnect_latency_us
        if not (isinstance(lat, (int, float)) and math.isfinite(lat) and lat >= 0):
            raise BlisInputError(f"hardware {self.name}: interconnect_latency_us must be >= 0, got {lat!r}")
        flops = {}
        for prec, v in dict(self.peak_flops).items():
            if prec not in PRECISIONS:
                raise BlisInputError(
                    f"hardware {self.name}: peak_flops precision {prec!r} unknown; allowed: {', '.join(PRECISIONS)}"
                )
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise BlisInputError(f"hardware {self.name}: peak_flops[{prec}] must be >= 0, got {v!r}")
            flops[prec] = float(v)
        object.__setattr__(self, "peak_flops", MappingProxyType(flops))

    def peak(self, precision: str) -> float:
        """Dense peak FLOP/s for ``precision``; a clear error if unsupported."""
        prec = COMPUTE_PRECISION.get(precision, precision)
        if prec not in PRECISIONS:
            allowed = ", ".join(sorted(set(PRECISIONS) | set(COMPUTE_PRECISION)))
            raise BlisInputError(f"precision: unknown {precision!r}; allowed: {allowed}")
        value = self.peak_flops.get(prec, 0.0)
        if value <= 0.0:
            have = ", ".join(p for p in PRECISIONS if self.peak_flops.get(p, 0.0) > 0)
            raise BlisInputError(
                f"precision: {precision} is not supported on {self.name} (no peak throughput figure); "
                f"supported: {have}"
            )
        return value

    def critical_intensity(self, precision: str) -> float:
        """Arithmetic intensity (FLOP/byte) where compute time equals memory time at peak."""
        return self.peak(precision) / self.memory_bandwidth_Bps

    def supported_precisions(self) -> list[str]:
        return [p for p in PRECISIONS if self.peak_flops.get(p, 0.0) > 0]


def bytes_per_element(precision: str) -> float:
    try:
        return BYTES_PER_ELEMENT[precision]
    except KeyError:
        raise BlisInputError(
            f"precision: unknown {precision!r}; allowed: {', '.join(BYTES_PER_ELEMENT)}"
        ) from None


def _fp8(dense: float) -> dict[str, float]:
    return {"fp8": dense, "fp8_e4m3": dense, "fp8_e5m2": dense}


# --- the built-in table ------------------------------------------------------------------------
_H100_TC = {
    "fp64": 67 * TERA,  # datasheet 2430615 (shared/data/reference/h100-sxm.json): FP64 Tensor Core 67 TF
    "fp32": 67 * TERA,  # same datasheet: FP32 67 TF
    "tf32": 989 / 2 * TERA,  # datasheet TF32 Tensor Core 989 TF with sparsity -> 494.5 dense
    "bf16": 1979 / 2 * TERA,  # datasheet BF16 1,979 TF with sparsity -> 989.5 dense
    "fp16": 1979 / 2 * TERA,  # datasheet FP16 1,979 TF with sparsity -> 989.5 dense
    **_fp8(3958 / 2 * TERA),  # datasheet FP8 3,958 TF with sparsity -> 1,979 dense (E4M3 and E5M2 alike)
    "int8": 3958 / 2 * TERA,  # datasheet INT8 3,958 TOPS with sparsity -> 1,979 dense
    # Hopper has no INT4 or block-scaled (MX/NV) FP4/FP8 tensor-core formats: absent.
}

_BUILTIN: tuple[HardwareSpec, ...] = (
    HardwareSpec(
        name="H100-SXM",
        aliases=("H100", "H100-SXM5", "H100-80GB", "H100_SXM"),
        # 80 GB HBM3 (datasheet); CUDA reports 79.11 GiB (vLLM memory-profiling log lines on H100 80GB).
        memory_bytes=79.11 * GiB,
        memory_bandwidth_Bps=3.35e12,  # datasheet: 3.35 TB/s HBM3
        interconnect_bandwidth_Bps=450e9,  # datasheet: NVLink 900 GB/s bidirectional -> 450 GB/s per direction
        interconnect_latency_us=4.5,  # measured: vLLM all-reduce of 1 token, TP2/TP4 (h100-vllm-layer-profiles)
        peak_flops=_H100_TC,
        source="NVIDIA H100 Tensor Core GPU datasheet (SXM5), shared/data/reference/h100-sxm.json",
    ),
    HardwareSpec(
        name="H200",
        aliases=("H200-SXM", "H200-141GB"),
        # 141 GB HBM3e (datasheet); CUDA reports 139.81 GiB ("total capacity of 139.81 GiB" in PyTorch and
        # TensorRT-LLM logs on H200, public; checked 2026-11).
        memory_bytes=139.81 * GiB,
        memory_bandwidth_Bps=4.8e12,  # datasheet: 4.8 TB/s
        interconnect_bandwidth_Bps=450e9,  # datasheet: NVLink 900 GB/s bidirectional
        interconnect_latency_us=4.5,  # assumed equal to H100 (same NVLink 4 generation)
        # datasheet (H200 SXM): FP8 3,958 TF and BF16 1,979 TF with sparsity, INT8 3,958 TOPS: the H100 SXM
        # figures (same GH100 die), dense = half; no FP4 / MX formats on Hopper
        peak_flops=dict(_H100_TC),
        source="NVIDIA H200 Tensor Core GPU datasheet (SXM)",
    ),
    HardwareSpec(
        name="A100-80GB",
        aliases=("A100", "A100-SXM", "A100-80", "A100-SXM4-80GB"),
        # 80 GB HBM2e (datasheet); torch reports 79.2 GiB total on A100-SXM4-80GB.
        memory_bytes=79.2 * GiB,
        memory_bandwidth_Bps=2.039e12,  # datasheet: 2,039 GB/s (80GB SXM)
        interconnect_bandwidth_Bps=300e9,  # datasheet: NVLink 600 GB/s bidirectional -> 300 per direction
        interconnect_latency_us=4.5,  # assumed equal to H100's measured NVLink all-reduce latency
        peak_flops={
            "fp64": 19.5 * TERA,  # datasheet: FP64 Tensor Core 19.5 TF
            "fp32": 19.5 * TERA,  # datasheet: FP32 19.5 TF
            "tf32": 156 * TERA,  # datasheet: TF32 156 TF dense (312 sparse)
            "bf16": 312 * TERA,  # datasheet: BF16 312 TF dense (624 sparse)
            "fp16": 312 * TERA,  # datasheet: FP16 312 TF dense (624 sparse)
            "int8": 624 * TERA,  # datasheet: INT8 624 TOPS dense (1,248 sparse)
            "int4": 1248 * TERA,  # datasheet: INT4 1,248 TOPS dense (2,496 sparse)
            # Ampere has no FP8 or FP4 tensor cores: absent.
        },
        source="NVIDIA A100 Tensor Core GPU datasheet (80GB SXM)",
    ),
    HardwareSpec(
        name="L40S",
        aliases=("L40S-48GB",),
        # 48 GB GDDR6 with ECC (datasheet); CUDA reports 44.39 GiB (vLLM memory-profiling log on L40S).
        memory_bytes=44.39 * GiB,
        memory_bandwidth_Bps=864e9,  # datasheet: 864 GB/s
        interconnect_bandwidth_Bps=32e9,  # datasheet: PCIe Gen4 x16, 64 GB/s bidirectional; no NVLink
        interconnect_latency_us=10.0,  # assumption: PCIe all-reduce latency (not measured)
        peak_flops={
            "fp32": 91.6 * TERA,  # datasheet: FP32 91.6 TF
            "tf32": 183 * TERA,  # datasheet: TF32 Tensor Core 183 TF dense (366 sparse)
            "bf16": 362.05 * TERA,  # datasheet: BF16 362.05 TF dense (733 sparse)
            "fp16": 362.05 * TERA,  # datasheet: FP16 362.05 TF dense (733 sparse)
            **_fp8(733 * TERA),  # datasheet: FP8 733 TF dense (1,466 sparse)
            "int8": 733 * TERA,  # datasheet: INT8 733 TOPS dense (1,466 sparse)
            "int4": 733 * TERA,  # datasheet: INT4 733 TOPS dense (1,466 sparse)
            # FP64 is not listed on the L40S datasheet; no MX/NV FP4 formats on Ada: absent.
        },
        source="NVIDIA L40S datasheet",
    ),
    HardwareSpec(
        name="B200",
        aliases=("B200-SXM", "HGX-B200"),
        # datasheet (HGX B200): 1,440 GB HBM3e for 8 GPUs -> 180 GB each; torch/CUDA reports a total capacity
        # of 178.35 GiB per B200 (PyTorch out-of-memory messages on 8x B200 nodes, public logs; checked 2026-11)
        memory_bytes=178.35 * GiB,
        memory_bandwidth_Bps=8e12,  # datasheet (HGX B200): 64 TB/s for 8 GPUs -> 8 TB/s each
        interconnect_bandwidth_Bps=900e9,  # datasheet: NVLink 5, 1.8 TB/s bidirectional per GPU
        interconnect_latency_us=4.5,  # assumed equal to H100's measured NVLink all-reduce latency
        peak_flops={
            "fp64": 40 * TERA,  # datasheet (HGX B200): FP64 / FP64 Tensor Core 40 TF
            "fp32": 80 * TERA,  # GB200 NVL72 datasheet: FP32 5,760 TF / 72 GPUs (HGX B200 sheet lists none)
            "tf32": 2.2e15 / 2,  # datasheet: TF32 Tensor Core 2.2 PF with sparsity -> 1.1 PF dense
            "bf16": 4.5e15 / 2,  # datasheet: FP16/BF16 4.5 PF with sparsity -> 2.25 PF dense
            "fp16": 4.5e15 / 2,  # datasheet: FP16/BF16 4.5 PF with sparsity -> 2.25 PF dense
            **_fp8(9e15 / 2),  # datasheet: FP8/FP6 9 PF with sparsity -> 4.5 PF dense
            "int8": 9e15 / 2,  # datasheet: INT8 9 POPS with sparsity -> 4.5 dense
            "mxfp8": 9e15 / 2,  # block-scaled FP8 runs at the FP8 rate on Blackwell tensor cores
            "mxfp4": 18e15 / 2,  # datasheet: FP4 18 PF with sparsity -> 9 PF dense
            "nvfp4": 18e15 / 2,  # datasheet: FP4 18 PF with sparsity -> 9 PF dense
            # no INT4 tensor-core figure is published for Blackwell: absent.
        },
        source="NVIDIA HGX B200 datasheet (per GPU)",
    ),
    HardwareSpec(
        name="GB10",
        aliases=("DGX-Spark", "DGX_Spark", "Spark"),
        memory_bytes=128e9,  # datasheet (DGX Spark): 128 GB LPDDR5x unified memory, shared with the CPU
        memory_bandwidth_Bps=287e9,  # project issue figure (~287 GB/s); the DGX Spark datasheet lists 273 GB/s
        interconnect_bandwidth_Bps=25e9,  # datasheet: ConnectX-7 200 Gb/s between two Sparks
        interconnect_latency_us=10.0,  # assumption: RDMA all-reduce latency (not measured)
        peak_flops={
            "bf16": 62 * TERA,  # project issue figure (dense BF16, FP32 accumulate)
            "fp16": 62 * TERA,  # project issue figure, same rate as BF16
            # FP8/INT8 are not published; derived: FP4 dense / 2 (Blackwell FP4:FP8 = 2:1, cf. B200). FP8 with
            # FP32 accumulate runs at full rate on GeForce-class parts (sm_12x) while FP16 with FP32 accumulate
            # runs at half, hence 4x the 62 TF BF16 figure. The measured 4096^3 FP8 GEMM (165 TF/s) rules out 124.
            **_fp8(1e15 / 4),
            "int8": 1e15 / 4,  # derived: FP8 rate; not published
            "mxfp8": 1e15 / 4,  # derived: FP8 rate; not published
            "fp32": 31 * TERA,  # Hot Chips 2025 (GB10 presentation): 31 TFLOP/s FP32
            "tf32": 31 * TERA,  # derived: BF16 / 2 as on every NVIDIA tensor core (= the published 31 TF FP32)
            "mxfp4": 1e15 / 2,  # datasheet: 1 PFLOP FP4 with sparsity -> 500 TF dense
            "nvfp4": 1e15 / 2,  # datasheet: 1 PFLOP FP4 with sparsity -> 500 TF dense
            # FP64/FP32-tensor/INT4 figures are not published for GB10: absent.
        },
        source="NVIDIA DGX Spark datasheet; BF16 figure from the project issue",
    ),
)


def _index(specs: Mapping[str, HardwareSpec] | tuple[HardwareSpec, ...]) -> dict[str, HardwareSpec]:
    items = specs.values() if isinstance(specs, Mapping) else specs
    out: dict[str, HardwareSpec] = {}
    for spec in items:
        for key in (spec.name, *spec.aliases):
            out[key.lower()] = spec
    return out


_BY_KEY = _index(_BUILTIN)


def available_hardware(extra: Mapping[str, HardwareSpec] | None = None) -> list[str]:
    """Canonical names of the built-in hardware plus any in ``extra``."""
    names = {s.name for s in _BUILTIN}
    if extra:
        names |= {s.name for s in extra.values()}
    return sorted(names)


def get_hardware(name: str | HardwareSpec, extra: Mapping[str, HardwareSpec] | None = None) -> HardwareSpec:
    """Look ``name`` up (case-insensitive, aliases too); entries in ``extra`` win over built-ins."""
    if isinstance(name, HardwareSpec):
        return name
    key = str(name).strip().lower()
    if extra:
        found = _index(extra).get(key)
        if found is not None:
            return found
    found = _BY_KEY.get(key)
    if found is None:
        raise BlisInputError(
            f"hardware: unknown {name!r}; available: {', '.join(available_hardware(extra))} "
            "(add one with --hardware-file)"
        )
    return found


# --- user files --------------------------------------------------------------------------------
_UNIT_FIELDS = {
    # file key: (spec field, multiplier)
    "memory_bytes": ("memory_bytes", 1.0),
    "memory_gib": ("memory_bytes", GiB),
    "memory_gb": ("memory_bytes", 1e9),
    "memory_bandwidth_Bps": ("memory_bandwidth_Bps", 1.0),
    "memory_bandwidth_tbps": ("memory_bandwidth_Bps", 1e12),
    "memory_bandwidth_gbps": ("memory_bandwidth_Bps", 1e9),
    "interconnect_bandwidth_Bps": ("interconnect_bandwidth_Bps", 1.0),
    "interconnect_bandwidth_gbps": ("interconnect_bandwidth_Bps", 1e9),
    "interconnect_latency_us": ("interconnect_latency_us", 1.0),
}
_OTHER_FIELDS = {"name", "base", "aliases", "source", "peak_flops", "peak_tflops"}


def hardware_from_dict(entry: Mapping[str, Any], known: Mapping[str, HardwareSpec] | None = None) -> HardwareSpec:
    """Build one spec from a file entry. ``base`` (or an existing ``name``) supplies missing fields."""
    if not isinstance(entry, Mapping):
        raise BlisInputError(f"hardware file: each entry must be a mapping, got {type(entry).__name__}")
    unknown = set(entry) - set(_UNIT_FIELDS) - _OTHER_FIELDS
    if unknown:
        allowed = ", ".join(sorted(set(_UNIT_FIELDS) | _OTHER_FIELDS))
        raise BlisInputError(f"hardware file: unknown field(s) {', '.join(sorted(unknown))}; allowed: {allowed}")
    name = entry.get("name")
    if not name:
        raise BlisInputError("hardware file: every entry needs a 'name'")
    base_name = entry.get("base")
    base: HardwareSpec | None = None
    if base_name:
        base = get_hardware(base_name, known)
    else:
        try:
            base = get_hardware(name, known)  # overriding an existing entry
        except BlisInputError:
            base = None
    values: dict[str, Any] = {}
    for key, (fname, mult) in _UNIT_FIELDS.items():
        if key in entry:
            v = entry[key]
            if not isinstance(v, (int, float)) or isinstance(v, bool):
                raise BlisInputError(f"hardware file: {name}.{key} must be a number, got {v!r}")
            values[fname] = float(v) * mult
    flops = dict(base.peak_flops) if base else {}
    for key, mult in (("peak_flops", 1.0), ("peak_tflops", TERA)):
        given = entry.get(key)
        if given is None:
            continue
        if not isinstance(given, Mapping):
            raise BlisInputError(f"hardware file: {name}.{key} must map precision -> number")
        for prec, v in given.items():
            if not isinstance(v, (int, float)) or isinstance(v, bool):
                raise BlisInputError(f"hardware file: {name}.{key}.{prec} must be a number, got {v!r}")
            flops[str(prec).lower()] = float(v) * mult
    required = ("memory_bytes", "memory_bandwidth_Bps", "interconnect_bandwidth_Bps", "interconnect_latency_us")
    for fname in required:
        if fname not in values:
            if base is None:
                raise BlisInputError(f"hardware file: {name} is missing {fname} (or give 'base: <known hardware>')")
            values[fname] = getattr(base, fname)
    aliases = tuple(entry.get("aliases") or (base.aliases if base and base.name == name else ()))
    source = str(entry.get("source") or (f"user file (base: {base.name})" if base else "user file"))
    if base is not None and base.name.lower() == str(name).lower():
        return replace(base, **values, peak_flops=flops, aliases=aliases, source=source)
    return HardwareSpec(name=str(name), peak_flops=flops, aliases=aliases, source=source, **values)


def load_hardware_file(path: str | Path) -> dict[str, HardwareSpec]:
    """Read a JSON or YAML file of hardware entries; returns {canonical name: spec}.

    Accepted shapes: a list of entries, ``{"hardware": [entries]}``, a single entry (has ``name``), or a
    mapping ``{name: entry}``. Entry fields: name, base (existing hardware to start from), memory_gib |
    memory_gb | memory_bytes, memory_bandwidth_tbps | _gbps | _Bps, interconnect_bandwidth_gbps | _Bps,
    interconnect_latency_us, peak_tflops {precision: TFLOP/s dense} or peak_flops {precision: FLOP/s},
    aliases, source.
    """
    from blis._files import read_structured

    data = read_structured(path, "hardware_file")
    if isinstance(data, Mapping) and "hardware" in data:
        data = data["hardware"]
    if isinstance(data, Mapping) and "name" in data:
        entries = [data]
    elif isinstance(data, Mapping):
        bad = [k for k, v in data.items() if v is not None and not isinstance(v, Mapping)]
        if bad:
            raise BlisInputError(f"hardware_file: {path}: entry {bad[0]!r} must be a mapping of hardware fields")
        entries = [{"name": k, **(v or {})} for k, v in data.items()]
    elif isinstance(data, list):
        entries = data
    else:
        raise BlisInputError(f"hardware_file: {path} must hold a list or mapping of hardware entries")
    out: dict[str, HardwareSpec] = {}
    for entry in entries:
        spec = hardware_from_dict(entry, out)
        out[spec.name] = spec
    return out


def register_hardware(spec: HardwareSpec) -> None:
    """Make ``spec`` a built-in GPU for this process (``--hardware NAME`` or an alias; replaces an entry of
    the same name). A GPU everyone should have goes into ``_BUILTIN`` above instead."""
    global _BUILTIN, _BY_KEY
    _BUILTIN = tuple(s for s in _BUILTIN if s.name != spec.name) + (spec,)
    _BY_KEY = _index(_BUILTIN)
