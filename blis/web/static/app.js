// blis roofline page: roofline per hardware, validation table, spot check. Plotly is served by the app.
"use strict";
const PREC_COLOURS = {fp64: "#7f7f7f", fp32: "#8c564b", tf32: "#9467bd", bf16: "#1f77b4", fp16: "#17becf",
  fp8: "#d62728", fp8_e4m3: "#d62728", fp8_e5m2: "#e377c2", int8: "#ff7f0e", int4: "#bcbd22",
  mxfp8: "#e377c2", mxfp4: "#2ca02c", nvfp4: "#2ca02c"};
const state = {hardware: [], current: null, results: []};

function colour(prec) { return PREC_COLOURS[String(prec).toLowerCase()] || "#333"; }
function band(errPct) { const a = Math.abs(errPct); return a < 10 ? "ok" : (a <= 25 ? "warn" : "bad"); }
function fmt(x, d) { return (x === null || x === undefined) ? "-" : Number(x).toFixed(d); }

async function loadHardware() {
  const r = await fetch("/api/hardware");
  state.hardware = await r.json();
  const sel = document.getElementById("hardware");
  for (const hw of state.hardware) {
    const o = document.createElement("option"); o.value = hw.name; o.textContent = hw.name; sel.appendChild(o);
  }
  sel.value = state.hardware.some(h => h.name === "GB10") ? "GB10" : state.hardware[0].name;
  sel.addEventListener("change", () => selectHardware(sel.value));
  selectHardware(sel.value);
}

function selectHardware(name) {
  state.current = state.hardware.find(h => h.name === name);
  document.getElementById("export-link").href = "/api/export-benchmark?hardware=" + encodeURIComponent(name);
  const hw = state.current;
  document.getElementById("hw-note").textContent = `${hw.name}: ${fmt(hw.bandwidth_gb_s, 0)} GB/s` +
    (hw.l2_bytes ? `, L2 ${(hw.l2_bytes / 1048576).toFixed(0)} MiB at ${fmt(hw.l2_bandwidth_gb_s, 0)} GB/s (warm-cache ceiling)` : "") +
    `. Source: ${hw.source}`;
  drawRoofline();
}

function rooflineTraces(hw) {
  const traces = [];
  const xs = []; for (let e = -1; e <= 4.01; e += 0.05) xs.push(Math.pow(10, e));
  // one ceiling per distinct peak; precisions sharing it (bf16/fp16, fp8/int8/mxfp8...) share the line
  const groups = new Map();
  for (const [prec, peak] of Object.entries(hw.peak_tflops)) {
    if (prec === "fp8_e4m3" || prec === "fp8_e5m2") continue; // the fp8 entry stands for both
    if (!groups.has(peak)) groups.set(peak, []);
    groups.get(peak).push(prec);
  }
  const bw = hw.bandwidth_gb_s / 1000; // TB/s: TFLOP/s per FLOP/byte
  for (const [peak, precs] of groups) {
    const label = precs.join(" / "), c = colour(precs[0]);
    traces.push({type: "scatter", mode: "lines", name: `${label} ceiling`, x: xs,
      y: xs.map(x => Math.min(peak, bw * x)), line: {color: c, width: 1.5},
      hovertemplate: `${label}: peak ${peak} TFLOP/s<br>AI %{x:.2f} FLOP/B: %{y:.2f} TFLOP/s<extra></extra>`});
    const ridge = hw.ridge_points[precs[0]];
    traces.push({type: "scatter", mode: "markers", name: `${label} ridge`, showlegend: false,
      x: [ridge], y: [peak], marker: {symbol: "diamond-open", size: 10, color: c},
      hovertemplate: `${label} ridge point: %{x:.1f} FLOP/byte<extra></extra>`});
  }
  if (hw.l2_bandwidth_gb_s) {
    const l2 = hw.l2_bandwidth_gb_s / 1000;
    const top = Math.max(...Object.values(hw.peak_tflops));
    traces.push({type: "scatter", mode: "lines", name: "L2 bandwidth (warm)", x: xs,
      y: xs.map(x => Math.min(top, l2 * x)), line: {color: "#999", dash: "dot", width: 1}});
  }
  return traces;
}

function pointTraces(results) {
  const traces = [];
  const precs = [...new Set(results.map(r => String(r.precision).toLowerCase()))];
  for (const prec of precs) {
    const rows = results.filter(r => String(r.precision).toLowerCase() === prec);
    const hover = rows.map(r => `${r.kernel_type} ${r.shape.join("x")} ${r.precision}<br>` +
      `predicted ${fmt(r.predicted_time_us, 1)} us, measured ${fmt(r.measured_time_us, 1)} us<br>` +
      `error ${fmt(r.error_pct, 1)} %, ${r.bottleneck}-bound (${r.memory_level})`);
    traces.push({type: "scatter", mode: "markers", name: `predicted ${prec}`, legendgroup: prec, uid: `predicted-${prec}`,
      x: rows.map(r => r.ai), y: rows.map(r => r.predicted_tflops), text: hover, hoverinfo: "text",
      marker: {symbol: "circle", size: 11, color: colour(prec)}});
    traces.push({type: "scatter", mode: "markers", name: `measured ${prec}`, legendgroup: prec, uid: `measured-${prec}`,
      x: rows.map(r => r.ai), y: rows.map(r => r.measured_tflops), text: hover, hoverinfo: "text",
      marker: {symbol: "triangle-up", size: 12, color: colour(prec), line: {color: "#000", width: 1}}});
  }
  return traces;
}

function drawRoofline() {
  const hw = state.current;
  const traces = rooflineTraces(hw).concat(pointTraces(state.results));
  Plotly.react("roofline", traces, {
    title: {text: `${hw.name} roofline (circles: predicted, triangles: measured)`},
    xaxis: {type: "log", title: {text: "arithmetic intensity (FLOP/byte)"}},
    yaxis: {type: "log", title: {text: "TFLOP/s"}},
    hovermode: "closest", margin: {l: 60, r: 20, t: 50, b: 50}});
}

function showResults(data) {
  state.results = data.results;
  const tbody = document.querySelector("#validation-table tbody");
  tbody.innerHTML = "";
  for (const r of data.results) {
    const tr = document.createElement("tr");
    tr.className = band(r.error_pct);
    const cells = [r.kernel_type, r.shape.join("x"), r.precision, `${r.cache} / ${r.memory_level}`,
      fmt(r.predicted_time_us, 1), fmt(r.measured_time_us, 1), fmt(r.error_pct, 1),
      fmt(r.predicted_tflops, 2), fmt(r.measured_tflops, 2), r.bottleneck];
    cells.forEach((c, i) => { const td = document.createElement("td"); td.textContent = c;
      if (i === 6) td.className = "err"; tr.appendChild(td); });
    tbody.appendChild(tr);
  }
  const s = data.summary;
  document.getElementById("validate-summary").textContent =
    `${s.num_benchmarks} kernels on ${data.hardware}: mean |error| ${fmt(s.mean_error_pct, 1)} %, ` +
    `max ${fmt(s.max_error_pct, 1)} %`;
  const sel = document.getElementById("hardware");
  if (data.hardware && sel.value !== data.hardware) { sel.value = data.hardware; selectHardware(data.hardware); }
  else drawRoofline();
}

function errorText(body) {
  if (typeof body.detail === "string") return body.detail;
  if (Array.isArray(body.detail)) return body.detail.map(d => `${(d.loc || []).join(".")}: ${d.msg}`).join("; ");
  return JSON.stringify(body);
}

async function validate() {
  const err = document.getElementById("validate-error"); err.textContent = "";
  let body;
  try { body = JSON.parse(document.getElementById("bench-json").value); }
  catch (e) { err.textContent = "not valid JSON: " + e.message; return; }
  const r = await fetch("/api/validate", {method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify(body)});
  const data = await r.json();
  if (!r.ok) { err.textContent = `${r.status}: ${errorText(data)}`; return; }
  showResults(data);
}

async function loadGb10() {
  const r = await fetch("/api/reference/gb10");
  document.getElementById("bench-json").value = JSON.stringify(await r.json(), null, 2);
}

async function spotCheck() {
  const out = document.getElementById("spot-result");
  out.textContent = "running...";
  const shape = document.getElementById("spot-shape").value.split(",").map(Number);
  const body = {hardware: state.current.name, shape, precision: document.getElementById("spot-precision").value};
  const r = await fetch("/api/spot-check", {method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify(body)});
  const data = await r.json();
  if (!r.ok) { out.textContent = `${r.status}: ${errorText(data)}`; return; }
  out.textContent = `measured on ${data.device}` + (data.skipped && data.skipped.length ? `; skipped ${data.skipped.join("; ")}` : "");
  showResults(data);
}

document.getElementById("validate-btn").addEventListener("click", validate);
document.getElementById("load-gb10").addEventListener("click", loadGb10);
document.getElementById("spot-btn").addEventListener("click", spotCheck);
loadHardware();
