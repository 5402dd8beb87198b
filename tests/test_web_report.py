"""`blis report --html`: a finished run's charts in one self-contained file; `blis serve` argument errors."""

from __future__ import annotations

import json
import re

import pytest

pytest.importorskip("plotly")

from blis.cli import main  # noqa: E402


def _figures(text: str) -> dict:
    return json.loads(re.search(r"const FIGS = (\{.*?\});\n", text, re.S).group(1))


def test_report_html_from_run_files(tmp_path, capsys):
    req, steps, summary, out = (tmp_path / n for n in ("r.csv", "s.csv", "summary.json", "out.html"))
    assert main(["run", "--workload", "chatbot", "--rate", "5", "--num-requests", "40", "--no-progress",
                 "--requests-out", str(req), "--steps-out", str(steps)]) == 0
    summary.write_text(capsys.readouterr().out)
    s = json.loads(summary.read_text())
    assert main(["report", "--html", str(out), "--requests", str(req), "--steps", str(steps),
                 "--summary", str(summary)]) == 0
    text = out.read_text()
    assert "<script src=" not in text and "Plotly.newPlot" in text  # plotly.js inlined: works offline
    figs = _figures(text)
    assert set(figs) == {"cdf", "timeline"}
    ttft = figs["cdf"]["data"][0]
    assert ttft["name"] == "TTFT" and len(ttft["x"]) == s["completed_requests"] == 40
    assert ttft["x"] == sorted(ttft["x"]) and ttft["y"][-1] == 1.0
    # the median of the CDF points is the summary's p50 (same numbers, same interpolation at odd/even n)
    assert sorted(ttft["x"])[19] <= s["ttft_p50_ms"] <= sorted(ttft["x"])[20]
    assert len(figs["timeline"]["data"][0]["x"]) == min(s["num_steps"], 1200)


def test_report_without_steps_and_bad_inputs(tmp_path, capsys):
    req = tmp_path / "r.csv"
    req.write_text("finished,ttft_ms,e2e_ms\nTrue,10,100\nFalse,,\nTrue,20,300\n")
    out = tmp_path / "o.html"
    assert main(["report", "--html", str(out), "--requests", str(req)]) == 0
    figs = _figures(out.read_text())
    assert figs["cdf"]["data"][0]["x"] == [10.0, 20.0] and figs["timeline"]["data"][0]["x"] == []
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    assert main(["report", "--html", str(out), "--requests", str(bad)]) == 2
    assert "lacks column(s) finished, ttft_ms, e2e_ms" in capsys.readouterr().err
    assert main(["report", "--html", str(out), "--requests", str(tmp_path / "none.csv")]) == 2


def test_serve_rejects_a_bad_port(capsys):
    assert main(["serve", "--port", "0"]) == 2
    assert "port: must be in 1-65535" in capsys.readouterr().err
