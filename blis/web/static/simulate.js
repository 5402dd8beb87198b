// blis simulation page: posts a SimConfig to /api/simulate and draws the figures it returns.
"use strict";
async function fill(id, url, key, preferred) {
  const sel = document.getElementById(id);
  const rows = await (await fetch(url)).json();
  for (const r of rows) { const o = document.createElement("option"); o.textContent = r[key]; sel.appendChild(o); }
  if (rows.some(r => r[key] === preferred)) sel.value = preferred;
}

function errorText(body) {
  if (typeof body.detail === "string") return body.detail;
  if (Array.isArray(body.detail)) return body.detail.map(d => `${(d.loc || []).join(".")}: ${d.msg}`).join("; ");
  return JSON.stringify(body);
}

async function run() {
  const err = document.getElementById("sim-error"); err.textContent = "";
  document.getElementById("sim-summary").textContent = "simulating...";
  const v = id => document.getElementById(id).value;
  const body = {config: {model: v("model"), hardware: v("hardware"), tp: Number(v("tp")),
    workload: {preset: v("preset"), rate: Number(v("rate")), num_requests: Number(v("num")), seed: Number(v("seed"))}}};
  const sweep = v("sweep").split(",").map(s => s.trim()).filter(s => s).map(Number);
  if (sweep.length) body.sweep_rates = sweep;
  const r = await fetch("/api/simulate", {method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify(body)});
  const data = await r.json();
  if (!r.ok) { err.textContent = `${r.status}: ${errorText(data)}`; document.getElementById("sim-summary").textContent = ""; return; }
  const s = data.run.summary;
  document.getElementById("sim-summary").textContent =
    `${s.completed_requests}/${s.total_requests} requests, latency model ${s.latency_model}; TTFT p50 ` +
    `${s.ttft_p50_ms} ms, p99 ${s.ttft_p99_ms} ms; E2E p50 ${s.e2e_p50_ms} ms; ${s.tokens_per_sec} output tokens/s`;
  const f = data.figures;
  Plotly.react("cdf", f.cdf.data, f.cdf.layout);
  Plotly.react("timeline", f.timeline.data, f.timeline.layout);
  if (f.sweep) Plotly.react("sweep-plot", f.sweep.data, f.sweep.layout);
  else Plotly.purge("sweep-plot");
}

document.getElementById("run-btn").addEventListener("click", run);
fill("model", "/api/models", "name", "llama-2-7b");
fill("hardware", "/api/hardware", "name", "H100-SXM");
