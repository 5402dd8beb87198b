"""Which fitted coefficients apply to a simulation: ``SimConfig.calibration`` = auto | generic | PATH.

- ``generic``: the per-GPU physics only (``coefficients/roofline_<gpu>.json``; a GPU without its own file
  borrows the H100-SXM efficiencies with its own datasheet peaks). The blackbox model has no physics, so
  ``generic`` with ``--latency-model blackbox`` is an error.
- ``auto`` (default): a shipped per-setup refit (``roofline_models.yaml`` for roofline v1/v2,
  ``blackbox.yaml`` for blackbox) where one exists for this exact (model, hardware, TP); entries are shipped
  only when they passed the rule of docs/validation.md (leave-one-run-out error below the generic model's on
  every held-back run of the setup). Otherwise the per-GPU physics.
- ``PATH``: a file written by ``blis calibrate``: a ``roofline:`` mapping of parameters (applied on top of the
  per-GPU physics) or a list of blackbox entries. Without ``--latency-model`` the file's kind picks the model.

``SimConfig.calibration_file`` is the older name of PATH and still works (it wins over ``auto``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from blis.errors import BlisInputError

if TYPE_CHECKING:  # pragma: no cover
    from blis.config import SimConfig

COEFF_DIR = Path(__file__).resolve().parent / "coefficients"
KEYWORDS = ("auto", "generic")


def effective(config: SimConfig) -> str:
    """``auto``, ``generic`` or a path (``calibration_file`` wins over ``auto``; both set differently is an
    error)."""
    choice = getattr(config, "calibration", "auto") or "auto"
    legacy = getattr(config, "calibration_file", None)
    if legacy:
        if choice not in ("auto", legacy):
            raise BlisInputError(f"calibration: {choice!r} conflicts with calibration_file {legacy!r}; give one")
        return str(legacy)
    return choice


def check_choice(value: str) -> str:
    """Validator for the config field: a keyword, or a file that exists."""
    if value in KEYWORDS:
        return value
    if not Path(value).is_file():
        raise ValueError(f"must be auto, generic, or a file written by `blis calibrate`; {value!r} is not a file")
    return value


BLACKBOX_KEYS = frozenset({"model", "hardware", "tp", "alpha", "beta", "source", "validated"})
ROOFLINE_TOP_KEYS = frozenset({"roofline", "validated", "setups"})  # what blis/calibrate/output.py writes


def _read(path: str, what: str = "calibration") -> Any:
    from blis._files import read_structured

    return read_structured(path, what)


def file_kind(path: str, what: str = "calibration", strict: bool = False) -> str:
    """``blackbox`` (a list of entries) or ``roofline`` (a mapping of parameters) for a file written by
    ``blis calibrate``. ``strict`` (the CLI): misspelt keys are refused, naming ``what`` (the field or flag)
    and the file; the Python API reads the keys it knows and ignores the rest."""
    data = _read(path, what)
    if isinstance(data, list) and data and not strict:
        return "blackbox"
    if isinstance(data, Mapping) and data and not strict:
        return "roofline"
    if isinstance(data, list) and data:
        for i, entry in enumerate(data):
            if not isinstance(entry, Mapping):
                raise BlisInputError(f"{what}: {path}: entry {i} must be a mapping of "
                                     f"{', '.join(sorted(BLACKBOX_KEYS))}")
            unknown = sorted(set(entry) - BLACKBOX_KEYS)
            if unknown:
                raise BlisInputError(f"{what}: {path}: entry {i}: unknown key(s) {', '.join(unknown)}; "
                                     f"allowed: {', '.join(sorted(BLACKBOX_KEYS))}")
        return "blackbox"
    if isinstance(data, Mapping) and data:
        from blis.latency.roofline import RooflineParams

        section = data.get("roofline", data)
        names = set(RooflineParams.param_names())
        unknown = sorted(set(data) - ROOFLINE_TOP_KEYS) if "roofline" in data else []
        if isinstance(section, Mapping):
            unknown += sorted(set(section) - names)
        if unknown or not isinstance(section, Mapping):
            raise BlisInputError(f"{what}: {path}: unknown key(s) {', '.join(map(str, unknown))}; allowed: "
                                 f"{', '.join(sorted(ROOFLINE_TOP_KEYS))}, {', '.join(sorted(names))}")
        return "roofline"
    raise BlisInputError(f"{what}: {path}: expected the blackbox entries or the roofline parameters that "
                         "`blis calibrate` writes")


def latency_model_for(config: SimConfig) -> tuple[str, str] | None:
    """The latency model a calibration implies when ``--latency-model`` is not given, with the reason:
    a calibrate file's own kind; None for auto/generic (the usual automatic choice applies)."""
    if config.latency_model:
        return None
    choice = effective(config)
    if choice in KEYWORDS:
        return None
    kind = file_kind(choice)
    return kind, f"the calibration file {choice} was written for the {kind} model"


def _match(entries: list, model: str, hardware: str, tp: int) -> dict | None:
    from blis.latency.blackbox import canonical_hardware_name, canonical_model_name

    m, h = canonical_model_name(model), canonical_hardware_name(hardware)
    for e in entries or []:
        if (canonical_model_name(str(e["model"])) == m and canonical_hardware_name(str(e["hardware"])) == h
                and int(e["tp"]) == int(tp)):
            return e
    return None


def shipped_roofline_refit(model: str, hardware: str, tp: int) -> dict | None:
    """The shipped roofline refit for this exact setup (``coefficients/roofline_models.yaml``), or None."""
    from blis._files import read_shipped_yaml

    path = COEFF_DIR / "roofline_models.yaml"
    return _match(read_shipped_yaml(path), model, hardware, tp) if path.is_file() else None


def roofline_overrides(config: SimConfig) -> tuple[dict, str]:
    """Parameters to lay over the per-GPU physics for ``config``, and a note of their source ('' = none)."""
    choice = effective(config)
    if choice == "generic":
        return {}, ""
    if choice == "auto":
        if config.model_config_path:  # an architecture from a file is not the shipped setup
            return {}, ""
        entry = shipped_roofline_refit(config.model, config.hardware, config.tp)
        if entry is None:
            return {}, ""
        return dict(entry["params"]), f"roofline_models.yaml ({entry['model']} tp{entry['tp']})"
    if file_kind(choice) != "roofline":
        raise BlisInputError(f"calibration: {choice} holds blackbox coefficients; use --latency-model blackbox")
    from blis.latency.roofline import read_calibration_file

    return read_calibration_file(choice), choice


LINEARISED = "generic per-GPU physics linearised"


def physics_blackbox(config: SimConfig) -> tuple[tuple, tuple, str] | None:
    """Blackbox coefficients that stand for the generic per-GPU roofline of ``config``'s setup, or None when
    the model or GPU is unknown to the physics: a0, a1 = the roofline's queueing terms; b0, b1, b2 = a least
    squares fit (clipped at 0) of roofline v1 step times over decode batches of 1..max_num_seqs and prefill
    chunks of 0..max_num_batched_tokens tokens, at 1024 tokens of decode context."""
    import numpy as np

    from blis.latency.base import StepBatch
    from blis.latency.roofline import create_roofline

    try:
        model = create_roofline(config.model_copy(update={"latency_model": "roofline", "calibration": "generic",
                                                          "calibration_file": None}))
    except ValueError:  # BlisInputError, LatencyModelError: the physics does not know this setup
        return None
    if getattr(model, "general", None) is not None:
        # MLA, windowed, shared-expert, mixed-format or EP layers: a three-term line cannot stand for their
        # step times (context and expert terms dominate); no stand-in, so blackbox refuses and names roofline
        return None
    seqs = min(config.engine.max_num_seqs, 256)
    budget = config.engine.max_num_batched_tokens
    rows, ys = [], []
    for d in np.unique(np.linspace(1, seqs, 12).astype(int)):
        for p in (0, budget // 8, budget // 2, budget):
            b = StepBatch(num_prefill_tokens=p, num_decode_tokens=int(d), sum_decode_context=int(d) * 1024,
                          prefill_chunks=[(p, 0)] if p else [], num_sampled=int(d) + (1 if p else 0))
            rows.append([1.0, p, d])
            ys.append(model.step_time_float_us(b))
    beta = np.clip(np.linalg.lstsq(np.array(rows), np.array(ys), rcond=None)[0], 0.0, None)
    q = model.params
    alpha = (float(q.queueing_base_us), float(q.queueing_per_token_us), 0.0)
    return alpha, tuple(float(b) for b in beta), f"{LINEARISED} (no validated blackbox entry for this setup)"


def blackbox_coefficients(config: SimConfig) -> tuple[tuple, tuple, str] | None:
    """(alpha, beta, source) for the blackbox model from the calibration choice; None = use the shipped
    table. auto: the table's entry if this setup has one (it passed validation), else the generic physics
    linearised (`physics_blackbox`). ``generic`` and roofline files are errors: the blackbox model has no
    physics of its own."""
    choice = effective(config)
    if choice == "auto":
        from blis.latency.blackbox import lookup_coefficients

        if lookup_coefficients(config.model, config.hardware, config.tp) is not None:
            return None
        return physics_blackbox(config)
    if choice == "generic":
        raise BlisInputError("calibration: generic means the per-GPU physics, which the blackbox model does not "
                             "have; use --latency-model roofline, or --calibration auto or a blackbox file")
    if file_kind(choice) != "blackbox":
        raise BlisInputError(f"calibration: {choice} holds roofline parameters; use --latency-model roofline")
    from blis.traces.replay import blackbox_from_file

    alpha, beta = blackbox_from_file(choice, config.model, config.hardware, config.tp)
    return alpha, beta, f"calibration file {choice}"


def describe(config: SimConfig) -> str:
    """One word for summaries: auto, generic, or the file's path."""
    return effective(config)
