"""Errors shown to users as one line (CLI exit code 2), and the one formatter of pydantic validation errors.

``format_validation_error(exc)`` turns the first error of a pydantic ``ValidationError`` into
``field.path: must be > 0 and <= 1e+07 (got -1)``: the field, the whole allowed range (read from the model's
field constraints, not only the bound that was crossed) and the value given. Non-finite numbers get
"must be a finite number". Every module that validates user input reports through it.
"""

from __future__ import annotations

import math
import types
import typing
from typing import Any

_BOUNDS = (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<="))
_BOUND_ERRORS = {"greater_than", "greater_than_equal", "less_than", "less_than_equal", "finite_number"}


class BlisInputError(ValueError):
    """Bad user input: the message names the field and what is allowed."""


class InputFileNotFoundError(BlisInputError, FileNotFoundError):
    """A file named in the input does not exist (a BlisInputError and a FileNotFoundError)."""


def one_line(text: str) -> str:
    """``text`` on one line (newlines and runs of blanks folded)."""
    return " ".join(str(text).split()) if "\n" in str(text) else str(text)


def _num(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def _got(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _model_by_name(name: str):
    """The pydantic model class called ``name`` (blis's own first), for the field's full range."""
    from pydantic import BaseModel

    seen, todo, found = set(), list(BaseModel.__subclasses__()), []
    while todo:
        cls = todo.pop()
        if cls in seen:
            continue
        seen.add(cls)
        todo.extend(cls.__subclasses__())
        if cls.__name__ == name:
            found.append(cls)
    found.sort(key=lambda c: not c.__module__.startswith("blis"))
    return found[0] if found else None


def _inner_models(annotation: Any) -> list:
    """Pydantic model classes inside an annotation (Optional[X], tuple[X, ...], list[X])."""
    from pydantic import BaseModel

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    origin = typing.get_origin(annotation)
    if origin is None and not isinstance(annotation, types.UnionType):
        return []
    out = []
    for arg in typing.get_args(annotation):
        out.extend(_inner_models(arg))
    return out


def _aliases(info) -> tuple:
    alias = info.validation_alias
    if alias is None:
        return (info.alias,) if info.alias else ()
    return tuple(str(c) for c in getattr(alias, "choices", (alias,)))


def field_info(model, loc: tuple):
    """(FieldInfo, owning model class) of the field at ``loc`` under ``model``; (None, None) when not found."""
    cls, info, owner = model, None, None
    for part in loc:
        if isinstance(part, int):
            continue
        if cls is None:
            return None, None
        fields = cls.model_fields
        info = fields.get(part) or next((f for f in fields.values() if part in _aliases(f)), None)
        if info is None:
            return None, cls
        owner = cls
        inner = _inner_models(info.annotation)
        cls = inner[0] if inner else None
    return info, owner


def allowed_range(info) -> str:
    """``> 0 and <= 1e+07`` from a field's constraints; empty when it has none."""
    parts = []
    for meta in getattr(info, "metadata", ()):
        for attr, sign in _BOUNDS:
            v = getattr(meta, attr, None)
            if v is not None:
                parts.append(f"{sign} {_num(v)}")
    return " and ".join(parts)


def format_validation_error(exc, where: str | None = None) -> str:
    """First error of a pydantic ValidationError as one line naming the field and the allowed range;
    ``where`` (a file) is put in front."""
    err = exc.errors()[0]
    loc = tuple(err.get("loc") or ())
    field = ".".join(str(p) for p in loc)
    kind = err.get("type", "")
    value = err.get("input")
    msg = str(err.get("msg", "")).removeprefix("Value error, ")
    model = _model_by_name(getattr(exc, "title", "") or "")
    info, owner = field_info(model, loc) if model is not None and loc else (None, None)
    if kind in _BOUND_ERRORS or (kind.endswith("_parsing") and isinstance(value, float)):
        rng = allowed_range(info) if info is not None else ""
        if isinstance(value, float) and not math.isfinite(value):
            msg = "must be a finite number" + (f" {rng}" if rng else "") + f" (got {_got(value)})"
        else:
            if not rng:
                ctx = err.get("ctx") or {}
                rng = " and ".join(f"{sign} {_num(ctx[a])}" for a, sign in _BOUNDS if a in ctx)
            msg = f"{msg} (allowed {rng}; got {_got(value)})" if rng else f"{msg} (got {_got(value)})"
    elif kind == "extra_forbidden":
        allowed = ", ".join(owner.model_fields) if info is None and owner is not None else ""
        msg = f"unknown field ({msg})" + (f"; allowed: {allowed}" if allowed else "")
    elif kind == "missing":
        msg = f"required field missing ({msg})"
    elif kind not in ("value_error", "assertion_error") and "input" in err:
        msg = f"{msg} (got {_got(value)})"
    if not field or msg.split(":", 1)[0].strip() in (field, loc[-1] if loc else ""):
        line = msg
    else:
        line = f"{field}: {msg}"
    return one_line(f"{where}: {line}" if where else line)
