"""Small file readers shared by the trace parsers: every failure is one `BlisInputError` naming the
file, the line when there is one, and what was expected."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from blis.errors import BlisInputError


def read_json(path: Path) -> Any:
    try:
        text = path.read_text()
    except OSError as exc:
        raise BlisInputError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BlisInputError(f"{path}:{exc.lineno}: invalid JSON: {exc.msg}") from None


def read_yaml(path: Path) -> Any:
    try:
        text = path.read_text()
    except OSError as exc:
        raise BlisInputError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise BlisInputError(f"{path}{where}: invalid YAML: {problem}") from None


def get_path(doc: Any, dotted: str, path: Path, *, required: bool = True, default: Any = None) -> Any:
    """``doc["a"]["b"]`` for ``dotted="a.b"``; a missing required key is an error naming file and key."""
    cur = doc
    for part in dotted.split("."):
        if not isinstance(cur, dict) or part not in cur or cur[part] is None:
            if required:
                raise BlisInputError(f"{path}: missing field {dotted!r}")
            return default
        cur = cur[part]
    return cur


def as_int(value: Any, what: str, path: Path, *, minimum: int | None = None) -> int:
    """An integer field (integral floats accepted), with an optional lower bound."""
    if isinstance(value, bool):
        raise BlisInputError(f"{path}: {what}: expected an integer, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise BlisInputError(f"{path}: {what}: expected an integer, got {value!r}") from None
    if not number.is_integer():
        raise BlisInputError(f"{path}: {what}: expected an integer, got {value!r}")
    if minimum is not None and number < minimum:
        raise BlisInputError(f"{path}: {what}: must be >= {minimum}, got {value!r}")
    return int(number)
