"""Request traces as CSV: read (with line-numbered errors) and write.

Header required. Columns (by name, any order; other columns are ignored):
- ``arrival_time_us`` (microseconds from the start; an integer, or a decimal rounded to the microsecond),
- ``input_tokens``, ``output_tokens`` (integers >= 1),
- optional ``prefix_group`` (integer id of a shared prefix, empty or -1 for none), ``prefix_len`` (tokens of
  that prefix; 0 when absent), ``prompt_id``, ``parent``, ``client``.
Rows are sorted by arrival time (stable) when they are not already.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np

from blis._files import read_text
from blis.workload.request_table import RequestTable

REQUIRED = ("arrival_time_us", "input_tokens", "output_tokens")
OPTIONAL = ("prefix_group", "prefix_len", "prompt_id", "parent", "client")
_MAX = 10**15  # microseconds or tokens: beyond it int64 sums overflow
_MIN = {"arrival_time_us": 0, "input_tokens": 1, "output_tokens": 1, "prefix_len": 0}


def _parse_int(text: str, column: str, where: str, blank: int | None) -> int:
    text = text.strip()
    if text == "" and blank is not None:
        return blank
    try:
        value = int(text)
    except ValueError:
        try:
            f = float(text)
        except ValueError:
            raise ValueError(f"{where}: {column} {text!r} is not a number") from None
        if not math.isfinite(f) or (column != "arrival_time_us" and f != int(f)):
            raise ValueError(f"{where}: {column} {text!r} is not an integer") from None
        value = math.floor(f + 0.5)
    low = _MIN.get(column)
    if low is not None and value < low:
        raise ValueError(f"{where}: {column} is {value}, must be >= {low}")
    if value > _MAX:
        raise ValueError(f"{where}: {column} is {value}, must be <= {_MAX}")
    return value


def read_trace_csv(path: str | Path) -> RequestTable:
    """Read a request trace; a malformed row raises ValueError naming the file and line."""
    path = Path(path)
    text = read_text(path, "trace")  # missing, binary and non-UTF-8 files: one line naming the file
    try:
        reader = csv.reader(io.StringIO(text, newline=""))
        header = next(reader, None)
        if header is None:
            raise ValueError(f"{path}: empty file (expected a header with {', '.join(REQUIRED)})")
        names = [h.strip() for h in header]
        missing = [c for c in REQUIRED if c not in names]
        if missing:
            raise ValueError(
                f"{path} line 1: missing column(s) {', '.join(missing)} (header must name "
                f"{', '.join(REQUIRED)}[, {', '.join(OPTIONAL)}])"
            )
        columns = [c for c in (*REQUIRED, *OPTIONAL) if c in names]
        index = [names.index(c) for c in columns]
        blanks = {
            c: (-1 if c in ("prefix_group", "parent") else 0 if c == "prefix_len" else None) for c in columns
        }
        values: list[list[int]] = [[] for _ in columns]
        for row in reader:
            line = reader.line_num
            if not row or all(not cell.strip() for cell in row):
                continue
            where = f"{path} line {line}"
            if len(row) < len(names):
                raise ValueError(f"{where}: {len(row)} fields, header has {len(names)}")
            for out, c, i in zip(values, columns, index):
                out.append(_parse_int(row[i], c, where, blanks[c]))
    except csv.Error as exc:
        raise ValueError(f"{path} line {reader.line_num}: not valid CSV ({exc})") from None
    data = {c: np.asarray(v, dtype=np.int64) for c, v in zip(columns, values)}
    if not len(data["arrival_time_us"]):
        raise ValueError(f"{path}: no requests after the header")
    n = len(data["arrival_time_us"])
    if "prompt_id" not in data:
        data["prompt_id"] = np.arange(n, dtype=np.int64)
    if "prefix_len" in data and "prefix_group" in data:
        bad = np.flatnonzero((data["prefix_len"] > 0) & (data["prefix_group"] < 0))
        if len(bad):
            raise ValueError(f"{path}: row {int(bad[0]) + 1}: prefix_len > 0 needs a prefix_group >= 0")
    table = RequestTable(
        arrival_us=data["arrival_time_us"],
        input_tokens=data["input_tokens"],
        output_tokens=data["output_tokens"],
        prefix_group=data.get("prefix_group"),
        prefix_len=data.get("prefix_len"),
        prompt_id=data["prompt_id"],
        parent=data.get("parent"),
        client=data.get("client"),
        client_names=[path.stem]
        if "client" not in data
        else [str(i) for i in range(int(data["client"].max()) + 1)],
    )
    if (np.diff(table.arrival_us) < 0).any():
        table = table.take(np.argsort(table.arrival_us, kind="stable"))
    try:
        table.validate()
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    return table


def write_trace_csv(table: RequestTable, path: str | Path) -> Path:
    """Write ``table`` as a trace CSV (all columns) that ``read_trace_csv`` reads back unchanged."""
    path = Path(path)
    cols = [
        table.arrival_us,
        table.input_tokens,
        table.output_tokens,
        table.prefix_group,
        table.prefix_len,
        table.prompt_id,
        table.parent,
        table.client,
    ]
    header = ",".join((*REQUIRED, *OPTIONAL))
    np.savetxt(path, np.column_stack(cols), fmt="%d", delimiter=",", header=header, comments="")
    return path
