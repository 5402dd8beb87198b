"""Decode bandwidth sidecar and per-table summary lines, by hand."""

from __future__ import annotations

import json

import pytest

from kernels_bench.report import decode_bandwidths, table_summary, write_decode_bandwidth
from kernels_bench.sweep import TableOutcome, TableSpec


def _decode_table(tmp_path):
    folder = tmp_path / "attention_decode"
    folder.mkdir()
    (folder / "8-1-128.csv").write_text(
        "dtype,kv_dtype,batch_size,kv_len,latency_us,mfu\nbf16,bf16,2,1024,10,0.000847903\n")
    return folder / "8-1-128.csv"


def test_decode_bandwidth_by_hand(tmp_path):
    path = _decode_table(tmp_path)
    [(row, bw)] = decode_bandwidths("attention_decode/8-1-128.csv", [
        {"dtype": "bf16", "kv_dtype": "bf16", "batch_size": "2", "kv_len": "1024", "latency_us": "10"}])
    # K and V: 2 x 2 sequences x 1024 tokens x 1 KV head x 128 x 2 bytes = 1,048,576; Q in and O out:
    # 2 x 2 x 8 heads x 128 x 2 bytes = 8,192. In 10 us: 105.6768 GB/s.
    assert bw == pytest.approx(1_056_768 / 10e-6)
    write_decode_bandwidth(tmp_path, 3.35e12)
    side = json.loads((tmp_path / "attention_decode_bandwidth.json").read_text())
    assert side["tables"]["8-1-128"] == [{"dtype": "bf16", "kv_dtype": "bf16", "batch_size": 2, "kv_len": 1024,
                                         "bandwidth_GBps": 105.7, "fraction_of_peak": 0.0315}]
    spec = TableSpec("attention_decode/8-1-128.csv", (), ())
    line = table_summary(tmp_path, "attention_decode/8-1-128.csv", TableOutcome(spec, total=1, measured=1),
                         3.35e12)
    assert line.startswith("attention_decode/8-1-128.csv: 1 rows (+1 this run)")
    assert line.endswith("(3% of peak); complete")
    assert path.exists()
