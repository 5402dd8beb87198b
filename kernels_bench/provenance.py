"""``provenance.json`` of a GPU folder: device, software versions, the peaks MFU is relative to, and the
measured ceilings (peak GEMM rate, device-to-device copy bandwidth).

The file follows `blis.bench_data.format.Provenance` (fields are fixed there): ``peak_tflops``
holds the datasheet dense peaks (the MFU denominators) and ``peak_memory_bandwidth_GBps`` the datasheet
bandwidth; what the format has no field for goes into ``notes`` as ``"key: value"`` lines (measured
peaks, copy bandwidth, the kernel behind each table, the timing method). A later invocation reads these
notes back, so the device is measured once and a folder never mixes kernels or devices.
"""

from __future__ import annotations

import datetime as _dt
import json
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from kernels_bench.writer import write_json_atomic

PROVENANCE_FILE = "provenance.json"
PEAK_GEMM_SIZE = 8192
COPY_BYTES = 1 << 30


@dataclass(frozen=True)
class Datasheet:
    """Datasheet figures of the --gpu from blis's hardware table: dense FLOP/s per dtype, HBM bytes/s."""

    hardware: str
    peak_flops: Mapping[str, float]
    bandwidth_Bps: float
    memory_bytes: float


def datasheet(gpu: str) -> Datasheet:
    """Figures of ``gpu`` from ``blis.physics.hardware`` (ValueError naming the known GPUs if unknown)."""
    from blis.physics import hardware

    try:
        spec = hardware.get_hardware(gpu)
    except (KeyError, ValueError) as exc:
        known = ", ".join(hardware.available_hardware())
        raise ValueError(f"--gpu: unknown GPU {gpu!r}; known: {known}") from exc
    flops = {k: float(v) for k, v in spec.peak_flops.items() if k in ("bf16", "fp8") and v}
    if "bf16" not in flops:
        raise ValueError(f"--gpu: {spec.name} has no bf16 peak in blis's hardware table")
    return Datasheet(spec.name, flops, float(spec.memory_bandwidth_Bps), float(spec.memory_bytes))


def package_version(name: str) -> str:
    """Installed version of a distribution, or 'not installed'."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def parse_notes(notes: list[str]) -> dict[str, str]:
    """``"key: value"`` notes as a dict (other notes are ignored)."""
    out = {}
    for line in notes:
        key, sep, value = line.partition(": ")
        if sep and key and " " not in key:
            out[key] = value
    return out


def set_note(notes: list[str], key: str, value: str) -> list[str]:
    """Notes with ``key`` set to ``value`` (replacing an earlier line for the key, else appended)."""
    out = [n for n in notes if not n.startswith(f"{key}: ")]
    out.append(f"{key}: {value}")
    return out


def load(out_dir: Path) -> dict[str, Any] | None:
    """The folder's provenance as a dict, or None when there is none yet."""
    path = Path(out_dir) / PROVENANCE_FILE
    if not path.exists():
        return None
    return json.loads(path.read_text())


def validate(prov: Mapping[str, Any]) -> None:
    """Check against the bench_data schema when blis's format module is importable (ValueError if not)."""
    try:
        from blis.bench_data.format import Provenance
    except ImportError:
        return
    from pydantic import ValidationError

    try:
        Provenance.model_validate(dict(prov))
    except ValidationError as exc:
        err = exc.errors()[0]
        raise ValueError(f"provenance {'.'.join(map(str, err['loc']))}: {err['msg']}") from None


def save(out_dir: Path, prov: Mapping[str, Any]) -> None:
    validate(prov)
    write_json_atomic(Path(out_dir) / PROVENANCE_FILE, prov)


def new_provenance(gpu: str, sheet: Datasheet, device: Mapping[str, str], command: str) -> dict[str, Any]:
    """A fresh provenance for ``gpu`` measured on ``device`` (see `device_info`)."""
    return {
        "gpu": gpu,
        "device": device["device"],
        "driver": device.get("driver", "unknown"),
        "cuda": device.get("cuda", "unknown"),
        "torch": device.get("torch", "unknown"),
        "flash_attn": package_version("flash-attn"),
        "flashinfer": package_version("flashinfer-python"),
        "date": _dt.date.today().isoformat(),
        "dtype": "bf16",
        "peak_tflops": {k: v / 1e12 for k, v in sorted(sheet.peak_flops.items())},
        "peak_memory_bandwidth_GBps": sheet.bandwidth_Bps / 1e9,
        "source": command,
        "notes": [
            (f"mfu_reference: datasheet dense peaks of {sheet.hardware} (peak_tflops); measured_peak_* "
             "notes give what a large GEMM reaches on this device"),
            f"device_detail: {device.get('detail', '')}",
        ],
    }


def check_same_device(prov: Mapping[str, Any], gpu: str, device_name: str) -> None:
    """Refuse to add to a folder measured on another device or for another --gpu (ValueError)."""
    if prov.get("gpu") != gpu:
        raise ValueError(f"--out holds tables for --gpu {prov.get('gpu')!r}, not {gpu!r}")
    if prov.get("device") != device_name:
        raise ValueError(
            f"--out holds tables measured on {prov.get('device')!r}; this device is {device_name!r}: "
            "use another --out"
        )


def check_same_kernel(prov: Mapping[str, Any], key: str, description: str) -> None:
    """Refuse to extend a table family measured with another kernel (ValueError)."""
    before = parse_notes(prov.get("notes", [])).get(key)
    if before is not None and before != description:
        raise ValueError(
            f"--out: {key} was measured with '{before}', this run would use '{description}'; "
            "install the same packages or use another --out"
        )


def matches_gpu_family(gpu: str, device_name: str) -> bool:
    """True when the --gpu family token (e.g. 'h100' of 'H100-SXM') appears in the device's name."""
    family = gpu.lower().replace("_", "-").split("-")[0]
    return family in device_name.lower()


# --- on the device (torch) -------------------------------------------------------------------------


def device_info() -> dict[str, str]:
    """Name, driver, CUDA and torch versions, and a detail line (capability, SMs, memory, L2)."""
    import torch

    props = torch.cuda.get_device_properties(torch.cuda.current_device())
    l2 = getattr(props, "L2_cache_size", 0)
    return {
        "device": torch.cuda.get_device_name(),
        "driver": _driver_version(),
        "cuda": str(torch.version.cuda),
        "torch": torch.__version__,
        "detail": (
            f"compute capability {props.major}.{props.minor}, {props.multi_processor_count} SMs, "
            f"{props.total_memory / 2**30:.1f} GiB, L2 {l2 / 2**20:.0f} MiB"
        ),
        "total_memory": str(props.total_memory),
    }


def _driver_version() -> str:
    try:
        res = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20, check=False)
        return res.stdout.strip().splitlines()[0] if res.returncode == 0 and res.stdout.strip() else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def measure_peak_gemm(dtype: str, timer: Any, size: int = PEAK_GEMM_SIZE) -> float:
    """FLOP/s of a ``size``-cubed GEMM (bf16 matmul or fp8 _scaled_mm) on random data, median latency."""
    from kernels_bench.gemm import make_launcher, random_matrix
    from kernels_bench.timing import median_latency_us

    a = random_matrix(size, size, dtype)
    w = random_matrix(size, size, dtype)
    lat = median_latency_us(make_launcher(a, w, dtype), timer)
    return 2.0 * size**3 / (lat * 1e-6)


def measure_copy_bandwidth(timer: Any, nbytes: int = COPY_BYTES) -> float:
    """Device-to-device copy rate in bytes/s, counting bytes read plus bytes written."""
    import torch

    from kernels_bench.timing import median_latency_us

    src = torch.randint(0, 255, (nbytes,), dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)
    lat = median_latency_us(lambda: dst.copy_(src), timer)
    return 2.0 * nbytes / (lat * 1e-6)
