"""End to end in a real headless Chromium (Playwright driving the system `chromium`, e.g. Debian's package):
load the page from a live uvicorn server, paste the GB10 JSON, check the coloured table and the plotted
triangles; run a small simulation on the simulation page."""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
import time

import pytest

pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")
sync_api = pytest.importorskip("playwright.sync_api")

from blis.web.app import create_app, gb10_reference_body  # noqa: E402
from blis.web.sim import Limits  # noqa: E402


def _chromium() -> str | None:
    path = os.environ.get("BLIS_CHROMIUM")
    if path:
        return path
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


CHROMIUM = _chromium()
if CHROMIUM is None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("no chromium on PATH under CI=true (.ci/run installs Debian's chromium)", pytrace=False)
    pytest.skip("no chromium on PATH (apt-get install chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def server():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(create_app(Limits(max_requests=500, time_limit_s=60)), host="127.0.0.1", port=port,
                            log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not srv.started and time.time() < deadline:
        time.sleep(0.05)
    assert srv.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture()
def page(browser, server):
    ctx = browser.new_context()
    # offline: any request that leaves the server fails the test
    outside = []
    ctx.route("**/*", lambda route: (route.continue_() if route.request.url.startswith(server)
                                     else (outside.append(route.request.url), route.abort())))
    pg = ctx.new_page()
    errors = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    ctx.close()
    assert not outside, outside
    assert not errors, errors


GREEN, YELLOW, RED = "rgb(183, 240, 177)", "rgb(251, 232, 154)", "rgb(246, 165, 165)"


def test_paste_gb10_json_colours_table_and_plots_triangles(page, server):
    page.goto(server + "/")
    page.wait_for_function("document.querySelectorAll('#hardware option').length > 0")
    page.wait_for_selector("#roofline .main-svg")
    page.fill("#bench-json", json.dumps(gb10_reference_body()))
    page.click("#validate-btn")
    page.wait_for_selector("#validation-table tbody tr")
    rows = page.query_selector_all("#validation-table tbody tr")
    assert len(rows) == 5
    info = [(r.get_attribute("class"), r.query_selector("td.err").inner_text(),
             r.query_selector("td.err").evaluate("e => getComputedStyle(e).backgroundColor")) for r in rows]
    # GEMV FP16/FP8, GEMM FP16/FP8 within 10 % -> green; TF32 +20.4 % -> yellow
    assert [c for c, _, _ in info] == ["ok", "ok", "ok", "ok", "warn"]
    assert [bg for _, _, bg in info] == [GREEN] * 4 + [YELLOW]
    assert info[4][1] == "20.4"
    assert "max 20.4 %" in page.inner_text("#validate-summary")
    # triangles: one measured trace per precision, 5 triangle markers in all, at the measured TFLOP/s
    traces = page.evaluate("""() => document.getElementById('roofline').data
        .filter(t => t.marker && t.marker.symbol === 'triangle-up')
        .map(t => ({name: t.name, uid: t.uid, x: t.x, y: t.y}))""")
    assert sorted(t["name"] for t in traces) == ["measured fp16", "measured fp8", "measured tf32"]
    assert sum(len(t["y"]) for t in traces) == 5
    gemm_fp8 = next(t for t in traces if t["name"] == "measured fp8")
    assert max(gemm_fp8["y"]) == pytest.approx(2 * 4096**3 / 834e-6 / 1e12, rel=1e-6)
    # and they are drawn: each measured trace's SVG group holds one marker path per point
    drawn = page.evaluate("""() => Array.from(document.querySelectorAll('#roofline .scatterlayer .trace'))
        .map(g => g.__data__ && g.__data__[0] && g.__data__[0].trace)
        .filter(t => t && t.marker && t.marker.symbol === 'triangle-up').length""")
    assert drawn == 3
    n_points = page.evaluate("""() => Array.from(document.querySelectorAll('#roofline .scatterlayer .trace'))
        .filter(g => g.__data__[0].trace.marker && g.__data__[0].trace.marker.symbol === 'triangle-up')
        .reduce((n, g) => n + g.querySelectorAll('path.point').length, 0)""")
    assert n_points == 5
    # hover details on a measured point (plotly's own hover call: a mouse position can land nearer a ceiling)
    page.evaluate("""() => { const gd = document.getElementById('roofline');
        const i = gd.data.findIndex(t => t.name === 'measured tf32');
        Plotly.Fx.hover(gd, [{curveNumber: i, pointNumber: 0}]); }""")
    page.wait_for_function("document.querySelectorAll('#roofline .hoverlayer .hovertext').length > 0",
                           timeout=5000)
    text = page.evaluate("() => document.querySelector('#roofline .hoverlayer').textContent")
    assert "gemm 4096x4096x4096 TF32" in text and "error 20.4 %" in text


def test_bad_json_shows_the_422(page, server):
    page.goto(server + "/")
    page.wait_for_function("document.querySelectorAll('#hardware option').length > 0")
    body = gb10_reference_body()
    body["benchmarks"][0]["precision"] = "FP7"
    page.fill("#bench-json", json.dumps(body))
    page.click("#validate-btn")
    page.wait_for_function("document.getElementById('validate-error').textContent.length > 0")
    assert "422" in page.inner_text("#validate-error") and "FP7" in page.inner_text("#validate-error")


def test_spot_check_panel_reports_why_not(page, server):
    from blis.web.spot import gpu_reason

    if gpu_reason() is None:
        pytest.skip("a CUDA device is present")
    page.goto(server + "/")
    page.wait_for_function("document.querySelectorAll('#hardware option').length > 0")
    page.select_option("#spot-precision", "all")
    page.click("#spot-btn")
    page.wait_for_function("document.getElementById('spot-result').textContent.startsWith('409')")


def test_simulation_page_draws_cdfs_timeline_and_sweep(page, server):
    page.goto(server + "/simulate")
    page.wait_for_function("document.querySelectorAll('#model option').length > 0 && "
                           "document.querySelectorAll('#hardware option').length > 0")
    page.fill("#num", "60")
    page.fill("#sweep", "2,8")
    page.click("#run-btn")
    page.wait_for_selector("#sweep-plot .main-svg", timeout=60000)
    names = page.evaluate("() => document.getElementById('cdf').data.map(t => t.name)")
    assert names == ["TTFT", "E2E"]
    n = page.evaluate("() => document.getElementById('cdf').data[0].x.length")
    assert n == 60
    assert "60/60 requests" in page.inner_text("#sim-summary")
    assert page.evaluate("() => document.getElementById('timeline').data.length") == 3
    assert page.evaluate("() => document.getElementById('sweep-plot').data[0].x.length") == 2
