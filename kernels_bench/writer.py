"""Append-only CSV tables that survive interruption, and the provenance JSON beside them.

A sweep appends one row per measured point and flushes it to disk at once, so a run that is killed loses
at most the point in flight. Opening a table again reads the keys already there (the set of done points)
and drops a torn last line; the sweep then skips those points. When a table is complete it is rewritten
sorted by its key columns (atomically: write a temporary file, then rename).
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any


def format_value(value: Any) -> str:
    """CSV text of a cell: ints as is, floats with 6 significant digits, strings unchanged."""
    if isinstance(value, bool):
        raise TypeError("booleans are not table values")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format(value, ".6g")
    return str(value)


def _sort_key(cell: str) -> tuple[int, float, str]:
    try:
        return (0, float(cell), "")
    except ValueError:
        return (1, 0.0, cell)


def _drop_torn_last_line(path: Path) -> None:
    """Cut a last line that has no newline (a write interrupted halfway)."""
    with path.open("rb+") as fh:
        data = fh.read()
        if not data or data.endswith(b"\n"):
            return
        fh.truncate(data.rfind(b"\n") + 1)


class TableWriter:
    """One CSV table opened for appending.

    path: the CSV file (created with its header if absent; parent folders too).
    columns: the header, in order. key_columns: the columns that identify a point (a subset of columns).
    """

    def __init__(self, path: Path, columns: Sequence[str], key_columns: Sequence[str]):
        missing = [c for c in key_columns if c not in columns]
        if missing:
            raise ValueError(f"key columns {missing} are not among the columns {list(columns)}")
        self.path = Path(path)
        self.columns = tuple(columns)
        self.key_columns = tuple(key_columns)
        self.done: set[tuple[str, ...]] = set()
        self._fh: IO[str] | None = None
        if self.path.exists() and self.path.stat().st_size > 0:
            _drop_torn_last_line(self.path)
            rows = read_table(self.path)
            header = _read_header(self.path)
            if tuple(header) != self.columns:
                raise ValueError(
                    f"{self.path}: header {','.join(header)} differs from {','.join(self.columns)}; "
                    "move the file away to start this table again"
                )
            self.done = {tuple(r[c] for c in self.key_columns) for r in rows}

    def key_of(self, values: Mapping[str, Any]) -> tuple[str, ...]:
        """The key of a row or point, formatted as it is written."""
        return tuple(format_value(values[c]) for c in self.key_columns)

    def has(self, values: Mapping[str, Any]) -> bool:
        """True when a row with this key is already in the table."""
        return self.key_of(values) in self.done

    def append(self, row: Mapping[str, Any]) -> None:
        """Write one row (a mapping with every column) and flush it to disk."""
        absent = [c for c in self.columns if c not in row]
        if absent:
            raise ValueError(f"{self.path.name}: row lacks columns {absent}")
        key = self.key_of(row)
        if key in self.done:
            raise ValueError(f"{self.path.name}: duplicate row for {dict(zip(self.key_columns, key))}")
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            new = not self.path.exists() or self.path.stat().st_size == 0
            self._fh = self.path.open("a", newline="")
            if new:
                self._fh.write(",".join(self.columns) + "\n")
        self._fh.write(",".join(format_value(row[c]) for c in self.columns) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self.done.add(key)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def _read_header(path: Path) -> list[str]:
    with path.open(newline="") as fh:
        return next(csv.reader(fh), [])


def read_table(path: Path) -> list[dict[str, str]]:
    """Rows of a CSV table as dicts of strings (empty list when the file is absent or empty)."""
    path = Path(path)
    if not path.exists():
        return []
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def sort_table(path: Path, key_columns: Sequence[str]) -> None:
    """Rewrite a table sorted by its key columns (numbers numerically), atomically."""
    path = Path(path)
    header = _read_header(path)
    rows = read_table(path)
    rows.sort(key=lambda r: tuple(_sort_key(r[c]) for c in key_columns))
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="") as fh:
        fh.write(",".join(header) + "\n")
        for r in rows:
            fh.write(",".join(r[c] for c in header) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def write_json_atomic(path: Path, data: Mapping[str, Any]) -> None:
    """Write JSON (sorted keys, indented) through a temporary file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
