"""The one place blis reads user files (text, JSON, YAML, CSV) and checks output paths.

Every failure is one ``BlisInputError`` line naming the field (``what``, e.g. ``trace``), the file, the line
when there is one, and what was expected: a missing file, a folder, an unreadable or binary file, invalid
JSON/YAML, a wrong top-level shape. Output paths are checked before any work (``check_output``), so a
long simulation is never lost to a typo in ``--requests-out``.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from blis.errors import BlisInputError, InputFileNotFoundError, one_line

STRUCTURED_SUFFIXES = (".json", ".yaml", ".yml")


def _prefix(what: str | None, path: Path) -> str:
    return f"{what}: {path}" if what else str(path)


def read_text(path: str | Path, what: str | None = None) -> str:
    """The file's text (UTF-8); missing, folder, unreadable and binary files are one-line errors."""
    path = Path(path)
    where = _prefix(what, path)
    if not path.exists():
        raise InputFileNotFoundError(f"{where}: file not found")
    if path.is_dir():
        raise BlisInputError(f"{where}: is a folder, expected a file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BlisInputError(f"{where}: cannot read ({exc.strerror or exc})") from None
    nul = data.find(b"\x00")
    if nul >= 0:
        raise BlisInputError(f"{where}: not a text file (binary byte at offset {nul})")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BlisInputError(f"{where}: not a UTF-8 text file (byte {exc.start})") from None


def parse_json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BlisInputError(f"{where}:{exc.lineno}: invalid JSON: {exc.msg}") from None
    except (ValueError, RecursionError) as exc:  # e.g. numbers too long to convert
        raise BlisInputError(f"{where}: invalid JSON: {one_line(exc)}") from None


def parse_yaml(text: str, where: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or (str(exc).splitlines() or ["?"])[0]
        raise BlisInputError(f"{where}{line}: invalid YAML: {one_line(problem)}") from None
    except (ValueError, RecursionError, OverflowError) as exc:
        raise BlisInputError(f"{where}: invalid YAML: {one_line(exc)}") from None


def read_json(path: str | Path, what: str | None = None) -> Any:
    return parse_json(read_text(path, what), _prefix(what, Path(path)))


def read_yaml(path: str | Path, what: str | None = None) -> Any:
    return parse_yaml(read_text(path, what), _prefix(what, Path(path)))


COMPACT_FILE = "_compact.json"  # precomputed JSON copies of the YAML files of a shipped folder
COMPACT_PAIRS = "__pairs__"  # a YAML mapping with non-string keys, in JSON: {"__pairs__": [[key, value], ...]}


def _compact_mapping(obj: dict) -> Any:
    return dict(map(tuple, obj[COMPACT_PAIRS])) if len(obj) == 1 and COMPACT_PAIRS in obj else obj


def read_shipped_yaml(path: str | Path) -> Any:
    """The data of a YAML file shipped inside blis (trusted, checked by the tests).

    Read from the JSON copy in ``_compact.json`` beside it (written by ``python -m tools.compact_yaml``) when
    that copy was made from this very text (its SHA-256 matches), so a run needs no YAML parser: importing
    PyYAML and parsing cost more than the rest of a small run's start-up after numpy and pydantic. The YAML
    stays the source of truth: an edited file without a fresh copy is parsed (libyaml's C parser when built).
    """
    import hashlib

    path = Path(path)
    raw = path.read_bytes()
    try:
        entry = json.loads((path.parent / COMPACT_FILE).read_bytes(), object_hook=_compact_mapping).get(path.name)
    except (OSError, ValueError, AttributeError):
        entry = None
    if isinstance(entry, dict) and entry.get("sha256") == hashlib.sha256(raw).hexdigest() and "data" in entry:
        return entry["data"]
    import yaml

    return yaml.load(raw.decode("utf-8-sig"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def read_structured(path: str | Path, what: str | None = None) -> Any:
    """JSON when the name ends in .json, else YAML (a superset of JSON)."""
    return read_json(path, what) if Path(path).suffix.lower() == ".json" else read_yaml(path, what)


def read_mapping(path: str | Path, what: str | None = None, *, empty_ok: bool = False) -> dict:
    """A JSON/YAML file whose top level is a mapping (an empty file is ``{}`` when ``empty_ok``)."""
    data = read_structured(path, what)
    if data is None and empty_ok:
        return {}
    if not isinstance(data, dict):
        kind = "empty" if data is None else f"a {type(data).__name__}"
        raise BlisInputError(f"{_prefix(what, Path(path))}: expected a mapping of fields at the top level, "
                             f"the file holds {kind}")
    return data


def read_csv(path: str | Path, what: str | None = None) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """(header, [(line number, cells), ...]) of a CSV file with a header; blank rows are skipped."""
    path = Path(path)
    where = _prefix(what, path)
    text = read_text(path, what)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None:
            raise BlisInputError(f"{where}: empty file (expected a header line)")
        rows = []
        for row in reader:
            if row and any(cell.strip() for cell in row):
                rows.append((reader.line_num, row))
    except csv.Error as exc:
        raise BlisInputError(f"{where}:{reader.line_num}: invalid CSV: {exc}") from None
    return [h.strip() for h in header], rows


# --- fields of parsed documents ---------------------------------------------------------------
def get_path(doc: Any, dotted: str, path: str | Path, *, required: bool = True, default: Any = None) -> Any:
    """``doc["a"]["b"]`` for ``dotted="a.b"``; a missing required key is an error naming file and key."""
    cur = doc
    for part in dotted.split("."):
        if not isinstance(cur, dict) or part not in cur or cur[part] is None:
            if required:
                raise BlisInputError(f"{path}: missing field {dotted!r}")
            return default
        cur = cur[part]
    return cur


def as_int(value: Any, what: str, path: str | Path, *, minimum: int | None = None,
           maximum: int | None = None) -> int:
    """An integer field (integral floats accepted), with optional bounds."""
    bad = BlisInputError(f"{path}: {what}: expected an integer, got {value!r}")
    if isinstance(value, bool):
        raise bad
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise bad from None
    if not number.is_integer():
        raise bad
    if minimum is not None and number < minimum:
        raise BlisInputError(f"{path}: {what}: must be >= {minimum}, got {value!r}")
    if maximum is not None and number > maximum:
        raise BlisInputError(f"{path}: {what}: must be <= {maximum}, got {value!r}")
    return int(number)


# --- outputs ----------------------------------------------------------------------------------
def check_output(path: str | Path, what: str, suffixes: tuple[str, ...]) -> Path:
    """Check, before any work, that ``path`` can be written as one of ``suffixes`` (e.g. ``(".csv",
    ".parquet")``): a known extension, an existing writable folder, not a folder itself, and pyarrow
    installed for Parquet. Nothing is left behind (a file that did not exist is created and removed)."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in suffixes:
        raise BlisInputError(f"{what}: {path}: unknown extension {suffix or '(none)'!r}; "
                             f"allowed: {', '.join(suffixes)}")
    if p.is_dir():
        raise BlisInputError(f"{what}: {path} is a folder, expected a file name")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise BlisInputError(f"{what}: folder {parent} does not exist" if not parent.exists() else
                             f"{what}: {parent} is not a folder")
    existed = p.exists()
    try:  # the only sure test (os.access says yes to root on a read-only file system)
        with open(p, "a"):
            pass
    except OSError as exc:
        raise BlisInputError(f"{what}: cannot write {path} ({exc.strerror or exc})") from None
    finally:
        if not existed and p.exists():
            p.unlink()
    if suffix == ".parquet":
        import importlib.util

        if importlib.util.find_spec("pyarrow") is None:
            raise BlisInputError(f"{what}: {path}: Parquet needs pyarrow (pip install 'blis[parquet]'), "
                                 "or write .csv")
    return p
