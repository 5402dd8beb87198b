"""Command-line flags generated from the pydantic configuration (``SimConfig``, ``EngineConfig``, ``Workload``,
``ClusterConfig``) and the registries (latency models, routing and admission policies, presets).

Every scalar field of those models is a flag: ``--field-name`` (underscores become dashes), its type, help,
allowed range, choices and default read from the field itself, its value passed back to the field by name.

How to add a flag: add the field, with a ``description`` that states its unit, to the config model (for
example ``quantization: str | None = Field(None, description="weight format: fp8, int4 ...")`` in
``SimConfig``, or ``concurrency: int | None = Field(None, ge=1, description="clients in flight")`` in
``Workload``). That is all: ``python -m blis run --quantization fp8`` now exists, its ``--help`` says what the
description says plus the range (from ``ge``/``gt``/``le``/``lt``), ``Literal`` values become choices, and
``json_schema_extra={"choices": [...]}`` restricts a number to a set (as ``block_size`` does). Only when the
default rule does not fit, add one line below: ``RENAME`` (another flag name), ``UNITS`` (the flag takes
another unit than the field), ``REGISTRIES`` (names come from a registry), ``AS_TEXT`` (a structured field
given as text and parsed by its own validator), ``SKIP`` (not a flag). A field whose flag a command already
defines by hand is left to that flag.
"""

from __future__ import annotations

import argparse
import math
import types
import typing
from dataclasses import dataclass
from typing import Any, Callable

from blis.errors import allowed_range

# field -> flag name, where it is not --field-name
RENAME = {
    "model_config_path": "--model-config",
    "enable_prefix_caching": "--prefix-caching",
    "horizon_us": "--horizon-s",
}
# field -> (multiplier from the flag's unit to the field's, the flag's unit, integer field)
UNITS = {"horizon_us": (1e6, "seconds", True)}


def _scorers_help() -> str:
    from blis.cluster.routing import available_scorers

    return f"NAME:WEIGHT,... with scorers {', '.join(available_scorers())}"


# fields read as text and parsed by the model's own validator -> what the text looks like (for the help)
AS_TEXT: dict[str, Callable[[], str]] = {"routing_scorers": _scorers_help}
# fields that are not flags: nested models, and the workload source (given by --workload / --trace)
SKIP = {"engine", "workload", "pools", "name", "preset_name", "trace_path"}
# the largest magnitude a numeric flag may take (beyond it int64 clocks and counters overflow)
MAX_NUMBER = 1e15


def _latency_models() -> list[str]:
    from blis.latency.base import latency_model_names

    return latency_model_names()


def _routers() -> list[str]:
    from blis.cluster.routing import available_routers

    return available_routers()


def _admission() -> list[str]:
    from blis.cluster.admission import available_admission_policies

    return available_admission_policies()


# field -> function listing the accepted names (checked when the flag is parsed)
REGISTRIES: dict[str, Callable[[], list[str]]] = {
    "latency_model": _latency_models,
    "routing": _routers,
    "admission": _admission,
}


# what an unknown name is called in the error ("unknown policy 'x'; known: ...")
NOUNS = {"routing": "policy", "admission": "policy"}


@dataclass(frozen=True)
class Flag:
    """One generated flag: ``option`` sets ``model.field`` (stored by argparse under ``dest``)."""

    model: type
    field: str
    option: str
    dest: str


def _unwrap(annotation: Any) -> Any:
    """``X`` of ``Optional[X]`` (and of ``X | None``)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Union or isinstance(annotation, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0] if len(args) == 1 else annotation
    return annotation


def _check_number(field: str, value: float | int) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{field}: must be a finite number (got {value!r})")
    if abs(value) > MAX_NUMBER:
        shown = str(value) if len(str(value)) <= 24 else str(value)[:21] + "..."
        raise argparse.ArgumentTypeError(f"{field}: {shown} is out of range (at most {MAX_NUMBER:g} in size)")


def _int_type(field: str, choices: list | None = None, bounded: bool = False) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"{field}: must be an integer (got {text!r})") from None
        if not bounded:  # the field's own upper bound speaks otherwise
            _check_number(field, value)
        if choices is not None and value not in choices:
            raise argparse.ArgumentTypeError(f"{field}: must be one of {', '.join(map(str, choices))} "
                                             f"(got {value})")
        return value

    return parse


def float_type(field: str) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{field}: must be a number (got {text!r})") from None
        _check_number(field, value)
        return value

    return parse


def _unit_type(field: str, scale: float, unit: str, integer: bool) -> Callable[[str], float]:
    flag_field = RENAME.get(field, field).lstrip("-").replace("-", "_")

    def parse(text: str):
        value = float_type(flag_field)(text)
        if not value > 0:
            raise argparse.ArgumentTypeError(f"{flag_field}: must be > 0 {unit} (got {text})")
        out = value * scale
        if abs(out) > MAX_NUMBER:
            raise argparse.ArgumentTypeError(f"{flag_field}: must be <= {MAX_NUMBER / scale:g} {unit} (got {text})")
        return max(1, int(out)) if integer else out

    return parse


def _tuple_type(field: str, n: int) -> Callable[[str], tuple]:
    def parse(text: str) -> tuple:
        try:
            values = tuple(float(x) for x in text.split(","))
        except ValueError:
            values = ()
        if len(values) != n:
            raise argparse.ArgumentTypeError(f"{field}: expected {n} comma-separated numbers (got {text!r})")
        for v in values:
            _check_number(field, v)
        return values

    return parse


def _name_type(field: str, known: Callable[[], list[str]]) -> Callable[[str], str]:
    def parse(text: str) -> str:
        names = list(known())
        if text not in names:
            raise argparse.ArgumentTypeError(f"{field}: unknown {NOUNS.get(field, field.replace('_', ' '))} {text!r}; "
                                             f"known: {', '.join(map(str, names))}")
        return text

    return parse


def text_type(field: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if not text.strip():
            raise argparse.ArgumentTypeError(f"{field}: must not be empty")
        return text

    return parse


def _help(info, extra: str = "", default_text: str | None = None) -> str:
    text = info.description or ""
    rng = "" if extra.startswith("one of") else allowed_range(info)
    bits = [b for b in (extra, rng and f"allowed {rng}", default_text) if b]
    return f"{text} ({'; '.join(bits)})" if bits else text


def _default_text(name: str, info) -> str | None:
    default = info.get_default(call_default_factory=False) if not info.is_required() else None
    if default is None or name in UNITS:
        return None
    if isinstance(default, bool):
        return f"default {'on' if default else 'off'}"
    return f"default {default:g}" if isinstance(default, float) else f"default {default}"


def add_model_flags(group, model: type, *, exclude: set[str] = frozenset(),
                    defaults: dict[str, str] | None = None) -> list[Flag]:
    """Add a flag for every scalar field of ``model`` not excluded and not already defined by hand.

    ``defaults``: help text for the default of fields whose default is decided elsewhere (e.g. the workload).
    Every flag's argparse default is None ("not given"); returns the flags added."""
    taken = set(group._option_string_actions)  # shared by a parser and its groups
    flags = []
    for name, info in model.model_fields.items():
        if name in SKIP or name in exclude:
            continue
        option = RENAME.get(name, "--" + name.replace("_", "-"))
        if option in taken:
            continue
        kind = _unwrap(info.annotation)
        origin = typing.get_origin(kind)
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        default_text = (defaults or {}).get(name) or _default_text(name, info)
        kw: dict[str, Any] = {"default": None, "dest": f"{model.__name__}__{name}"}
        choices_text = ""
        if name in UNITS:
            scale, unit, integer = UNITS[name]
            kw["type"] = _unit_type(name, scale, unit, integer)
            kw["metavar"] = unit[0].upper()
            text = (info.description or "").replace(" (us)", "").replace("(us)", "")
            help_text = f"{text} ({unit}, > 0)"
        elif name in REGISTRIES:
            kw["type"] = _name_type(name, REGISTRIES[name])
            kw["metavar"] = "NAME"
            try:
                choices_text = "one of " + ", ".join(REGISTRIES[name]())
            except ImportError:  # pragma: no cover - the registries ship with blis
                choices_text = ""
            help_text = _help(info, choices_text, default_text)
        elif name in AS_TEXT or kind is str:
            kw["type"] = text_type(name)
            kw["metavar"] = "PATH" if name.endswith(("_path", "_file")) else "TEXT" if name in AS_TEXT else "NAME"
            help_text = _help(info, AS_TEXT[name]() if name in AS_TEXT else "", default_text)
        elif kind is bool:
            kw["action"] = argparse.BooleanOptionalAction
            help_text = _help(info, "", default_text)
        elif kind is int:
            choices = extra.get("choices")
            kw["type"] = _int_type(name, choices, bounded=any(
                getattr(m, "le", None) is not None or getattr(m, "lt", None) is not None for m in info.metadata))
            kw["metavar"] = "N"
            if choices:
                choices_text = "one of " + ", ".join(map(str, choices))
            help_text = _help(info, choices_text, default_text)
        elif kind is float:
            kw["type"] = float_type(name)
            kw["metavar"] = "X"
            help_text = _help(info, "", default_text)
        elif origin is typing.Literal:
            values = [str(v) for v in typing.get_args(kind)]
            kw["type"] = _name_type(name, lambda values=values: values)
            kw["metavar"] = "NAME"
            help_text = _help(info, "one of " + ", ".join(values), default_text)
        elif origin is tuple and typing.get_args(kind) and all(a is float for a in typing.get_args(kind)):
            n = len(typing.get_args(kind))
            kw["type"] = _tuple_type(name, n)
            kw["metavar"] = ",".join(["X"] * n)
            help_text = _help(info, f"{n} comma-separated numbers", default_text)
        else:
            continue  # a structured field: set it in a file (workload YAML, cluster file)
        group.add_argument(option, help=help_text.replace("%", "%%"), **kw)
        taken.add(option)
        flags.append(Flag(model, name, option, kw["dest"]))
    return flags


def given(args: argparse.Namespace, flags: list[Flag], model: type | None = None) -> dict[str, Any]:
    """{field: value} of the flags that were given (for ``model`` only, when named)."""
    out = {}
    for f in flags:
        if model is not None and f.model is not model:
            continue
        value = getattr(args, f.dest, None)
        if value is not None:
            out[f.field] = value
    return out


def option_of(flags: list[Flag], field: str) -> str:
    """The flag that sets ``field`` (for messages)."""
    return next((f.option for f in flags if f.field == field), "--" + field.replace("_", "-"))


def add_latency_model_flag(parser, *, required: bool = False, default_text: str = "chosen automatically") -> None:
    """``--latency-model NAME`` for commands without a SimConfig (replay, validate, calibrate): names from
    the registry, an unknown one refused with the known ones listed."""
    names = ", ".join(_latency_models())
    parser.add_argument("--latency-model", metavar="NAME", required=required,
                        type=_name_type("latency_model", _latency_models),
                        help=f"latency model: one of {names}" + ("" if required else f" (default: {default_text})"))


def add_output_flag(parser, option: str, suffixes: tuple[str, ...], help: str, **kw) -> None:
    """An output-file flag whose path is checked (extension, folder, permission) when the flags are parsed,
    before any work."""
    field = option.lstrip("-").replace("-", "_")

    def parse(text: str) -> str:
        from blis._files import check_output
        from blis.errors import BlisInputError

        try:
            check_output(text, field, suffixes)
        except BlisInputError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return text

    parser.add_argument(option, type=parse, metavar="PATH", help=f"{help} ({' or '.join(suffixes)})", **kw)
