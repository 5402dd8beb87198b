"""Automatic choice of the latency model for a configuration, with the reason (for the summary and stderr).

Order: ``--latency-model`` when given; ``roofline-v2`` when measured kernel tables exist for the GPU
(``--bench-data-path DIR`` or ``aiconfigurator[:system/backend/version]``, else the repository's
``bench_data/<gpu>/``; aiconfigurator's tables are picked automatically only where `AUTO_AICONFIGURATOR`
says so, see docs/roofline_v2.md); ``roofline`` (v1) when the model's architecture (registry or
``--model-config``) and the hardware are known; else ``blackbox`` (fitted coefficients table).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from blis.bench_data.format import PROVENANCE_FILE, gpu_folders, package_bench_data_dir
from blis.errors import BlisInputError

if TYPE_CHECKING:  # pragma: no cover
    from blis.config import SimConfig


def _hardware_extra(config: SimConfig):
    if not config.hardware_file:
        return None
    from blis.physics.hardware import load_hardware_file

    return load_hardware_file(config.hardware_file)


def _canonical_gpu(name: str, extra=None) -> str:
    """Canonical hardware name when blis knows ``name`` (aliases fold together), else ``name`` lower-cased."""
    try:
        from blis.physics.hardware import get_hardware

        return get_hardware(name, extra).name.lower()
    except (ImportError, BlisInputError):
        return name.strip().lower()


def _folder_gpu(folder: Path) -> str:
    """The GPU a folder's provenance names (falls back to the folder name if unreadable)."""
    import json

    try:
        return str(json.loads((folder / PROVENANCE_FILE).read_text()).get("gpu") or folder.name)
    except (OSError, ValueError, AttributeError):
        return folder.name


def find_bench_folder(config: SimConfig) -> Path | None:
    """The bench_data GPU folder for ``config.hardware``: under ``config.bench_data_path`` when given (a GPU
    folder or a root of them), else under the repository's bench_data/. None when there is none.

    An explicit path without tables for the hardware is an error (BlisInputError), not a silent fallback.
    """
    extra = _hardware_extra(config)
    want = _canonical_gpu(config.hardware, extra)

    def matches(folder: Path) -> bool:
        return want in (_canonical_gpu(folder.name, extra), _canonical_gpu(_folder_gpu(folder), extra))

    if config.bench_data_path:
        root = Path(config.bench_data_path)
        if not root.is_dir():
            raise BlisInputError(f"bench_data_path: {root} is not a folder")
        folders = gpu_folders(root)
        if not folders:
            raise BlisInputError(f"bench_data_path: {root} has no {PROVENANCE_FILE} (here or in a subfolder)")
        found = [f for f in folders if matches(f)]
        if not found:
            have = ", ".join(_folder_gpu(f) for f in folders)
            raise BlisInputError(
                f"bench_data_path: {root} has tables for {have}, not for hardware {config.hardware}"
            )
        return found[0]
    for folder in gpu_folders(package_bench_data_dir()):
        if matches(folder):
            return folder
    return None


# Systems whose aiconfigurator tables roofline-v2 uses without being asked (when the package is installed
# and no --bench-data-path is given). Empty: on the shared H100 runs v2 on aiconfigurator's tables is not yet
# as accurate as v1 with its shipped refits (docs/roofline_v2.md), so the default stays v1.
AUTO_AICONFIGURATOR: frozenset[str] = frozenset()


def find_bench_source(config: SimConfig) -> Path | str | None:
    """Where roofline-v2's tables come from: a GPU folder (Path), an aiconfigurator spec (str, resolved to
    ``aiconfigurator:<system>/<backend>/<version>``), or None. An explicit source without tables for the
    hardware is an error (BlisInputError)."""
    from blis.bench_data import aiconfigurator as aic

    path = config.bench_data_path
    if aic.is_spec(path):
        return aic.resolve(path, config.hardware).label
    folder = find_bench_folder(config)
    if folder is not None or path:
        return folder
    system = aic.system_for(config.hardware)
    if system in AUTO_AICONFIGURATOR and aic.installed():
        return aic.resolve(aic.PREFIX, config.hardware).label
    return None


def _physics_known(config: SimConfig) -> tuple[bool, str]:
    try:
        from blis.physics.hardware import get_hardware
        from blis.physics.model_spec import get_model, load_hf_config
    except ImportError:
        return False, "the roofline's model and hardware tables are not installed"
    try:
        if config.model_config_path:
            load_hf_config(config.model_config_path)
        else:
            get_model(config.model)
    except BlisInputError:
        return False, f"model {config.model!r} is not in the registry and no --model-config was given"
    try:
        get_hardware(config.hardware, _hardware_extra(config))
    except BlisInputError:
        return False, f"hardware {config.hardware!r} is unknown (no --hardware-file entry)"
    return True, ""


def _v2_gap(config: SimConfig) -> str:
    """Why roofline-v2 cannot compose the configured model (MLA, windows, EP, ...); '' when it can."""
    try:
        from blis.latency.roofline_general import uniform_gap
        from blis.physics.model_spec import model_for_config

        return uniform_gap(model_for_config(config), getattr(config, "ep", 1))
    except (ImportError, BlisInputError):
        return ""


def choose_latency_model(config: SimConfig) -> tuple[str, str]:
    """(registered latency-model name, one-line reason) for ``config``."""
    if config.latency_model:
        return config.latency_model, "chosen by --latency-model"
    source = find_bench_source(config)
    gap = _v2_gap(config) if source is not None else ""
    if source is not None and not gap:
        return "roofline-v2", f"measured kernel tables for {config.hardware} in {source}"
    known, why_not = _physics_known(config)
    if known:
        source = f"config {config.model_config_path}" if config.model_config_path else "the model registry"
        tables = (f"roofline-v2 does not compose this model ({gap})" if gap
                  else f"no measured kernel tables for {config.hardware}")
        return "roofline", f"{tables}; model architecture from {source} and hardware {config.hardware} are known"
    return "blackbox", f"no kernel tables and no roofline: {why_not}; using the fitted coefficients table"
