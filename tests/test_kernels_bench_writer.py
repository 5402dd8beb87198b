"""Append-only CSV tables: resume keys, torn last lines, header and duplicate refusal, sorting."""

from __future__ import annotations

import pytest

from kernels_bench.writer import TableWriter, format_value, read_table, sort_table

COLS = ("m", "k", "n", "latency_us", "mfu")
KEY = ("m", "k", "n")


def _row(m, lat=10.0, mfu=0.5):
    return {"m": m, "k": 64, "n": 32, "latency_us": lat, "mfu": mfu}


def test_format_value():
    assert format_value(128) == "128"
    assert format_value(8.988) == "8.988"
    assert format_value(1.23456789e-7) == "1.23457e-07"
    assert format_value("bf16") == "bf16"
    with pytest.raises(TypeError):
        format_value(True)


def test_reopen_reads_done_keys(tmp_path):
    path = tmp_path / "sub" / "gemm_bf16.csv"
    w = TableWriter(path, COLS, KEY)
    w.append(_row(1))
    w.append(_row(16))
    w.close()
    assert path.read_text().splitlines() == ["m,k,n,latency_us,mfu", "1,64,32,10,0.5", "16,64,32,10,0.5"]
    again = TableWriter(path, COLS, KEY)
    assert again.has({"m": 16, "k": 64, "n": 32})
    assert not again.has({"m": 2, "k": 64, "n": 32})
    with pytest.raises(ValueError, match="duplicate row"):
        again.append(_row(1))


def test_torn_last_line_is_dropped(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("m,k,n,latency_us,mfu\n1,64,32,10,0.5\n16,64,3")
    w = TableWriter(path, COLS, KEY)
    assert w.done == {("1", "64", "32")}
    w.append(_row(16))
    w.close()
    assert [r["m"] for r in read_table(path)] == ["1", "16"]


def test_other_header_is_refused(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("m,k,n,latency_ms,mfu\n1,64,32,10,0.5\n")
    with pytest.raises(ValueError, match="header"):
        TableWriter(path, COLS, KEY)


def test_row_must_have_every_column(tmp_path):
    w = TableWriter(tmp_path / "t.csv", COLS, KEY)
    with pytest.raises(ValueError, match="lacks columns"):
        w.append({"m": 1, "k": 2, "n": 3, "latency_us": 1.0})


def test_sort_is_numeric(tmp_path):
    path = tmp_path / "t.csv"
    w = TableWriter(path, COLS, KEY)
    for m in (128, 16, 1024, 2):
        w.append(_row(m))
    w.close()
    sort_table(path, KEY)
    assert [r["m"] for r in read_table(path)] == ["2", "16", "128", "1024"]
