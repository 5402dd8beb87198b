"""Roofline v1's kernel terms against measured kernel tables, per kernel family and size range; and a fit of
v1's per-GPU efficiencies to such tables (fit on one system, report on another).

v1's time of one kernel (microseconds, no per-layer overhead; ``blis.latency.roofline``):
- GEMM (m, k, n), bf16: max(2 m k n / (peak x mfu), (k n + m (k + n)) x 2 B / (bandwidth x bw_efficiency)),
  mfu = ``mfu_decode`` below `PREFILL_M` token rows (decode-sized steps), ``mfu_prefill`` from it on;
- prefill attention (batch b, causal seq_len s, h heads, kv heads, head_dim d):
  max(4 h d b s (s + 1) / 2 / (peak x mfu_attention_prefill), KV bytes / (bandwidth x bw_efficiency_attention));
- decode attention (b sequences over L keys): max(4 h d b L / (peak x mfu_decode), KV bytes / (bandwidth x
  bw_efficiency_attention)).
plus a launch floor per kernel (``gemm_floor_us``, ``attention_floor_us``): v1 charges launch and tail time
per layer (``layer_overhead_us`` = one GEMM floor + one attention floor, ``tools.fit_roofline``), so at kernel
level its floors are the ``floors_us`` recorded in the calibration's provenance. KV bytes and Q/O bytes are
those of ``blis.physics.step_cost``. Errors are (v1 - measured) / measured.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from blis.bench_data import format as bdf

PREFILL_M = 1024
EFFICIENCIES = ("mfu_prefill", "mfu_decode", "mfu_attention_prefill", "bw_efficiency", "bw_efficiency_attention")
FLOORS = ("gemm_floor_us", "attention_floor_us")
FITTED = EFFICIENCIES + FLOORS
RANGES = {
    "gemm": ("m", (1, 16, 128, 1024, 8192, math.inf)),
    "attention_prefill": ("seq_len", (1, 256, 1024, 4096, math.inf)),
    "attention_decode": ("batch x kv_len", (1, 4096, 65536, 1048576, math.inf)),
}


@dataclass
class Family:
    """Measured rows of one kernel family as arrays (microseconds, FLOPs, bytes)."""

    name: str
    x: np.ndarray  # the size the ranges are over (m, seq_len, batch x kv_len)
    measured: np.ndarray
    flops: np.ndarray
    bytes: np.ndarray
    big: np.ndarray  # GEMM rows at m >= PREFILL_M (mfu_prefill); unused elsewhere


def families(bench: bdf.BenchData) -> list[Family]:
    """bf16 GEMMs, bf16 prefill attention and bf16/bf16-KV decode attention of a checked table set."""
    out = []
    rows = bench.gemm.get("bf16", [])
    if rows:
        a = np.array([r[:4] for r in rows], dtype=float)
        m, k, n = a[:, 0], a[:, 1], a[:, 2]
        out.append(Family("gemm", m, a[:, 3], 2 * m * k * n, (k * n + m * (k + n)) * 2.0, m >= PREFILL_M))
    for phase, tables in ((bdf.PREFILL, bench.prefill), (bdf.DECODE, bench.decode)):
        xs, lat, fl, by = [], [], [], []
        for (h, kv, d), trows in tables.items():
            kvb = 2.0 * kv * d * 2.0  # K and V of one token, bf16
            qo = 2.0 * h * d * 2.0
            for r in trows:
                if phase == bdf.PREFILL:
                    if r[0] != "bf16":
                        continue
                    b, s = r[1], r[2]
                    xs.append(s)
                    fl.append(4.0 * h * d * b * s * (s + 1) / 2.0)
                    by.append(b * (s * kvb + s * (kvb + qo)))
                else:
                    if r[0] != "bf16" or r[1] != "bf16":
                        continue
                    b, L = r[2], r[3]
                    xs.append(b * L)
                    fl.append(4.0 * h * d * b * L)
                    by.append(b * L * kvb + b * (kvb + qo))
                lat.append(r[-2])
        if lat:
            x = np.array(xs, dtype=float)
            out.append(Family(phase, x, np.array(lat), np.array(fl), np.array(by), np.zeros(len(x), bool)))
    return out


def shipped_kernel_params(hardware) -> dict[str, float]:
    """v1's shipped calibration for ``hardware`` as kernel parameters (efficiencies and the floors of its
    provenance; 0 when not recorded)."""
    import json

    from blis.latency.roofline import DEFAULT_CALIBRATION, calibration_path, load_calibration

    params, _ = load_calibration(hardware)
    out = {k: getattr(params, k) for k in EFFICIENCIES}
    floors = {}
    path = calibration_path(hardware.name)
    if not path.is_file():  # borrowed, as load_calibration does
        path = calibration_path(DEFAULT_CALIBRATION)
    if path.is_file():
        floors = (json.loads(path.read_text()).get("provenance", {}).get("points", {}) or {}).get("floors_us", {})
    out["gemm_floor_us"] = float(floors.get("gemm", 0.0))
    out["attention_floor_us"] = float(floors.get("attention", 0.0))
    return out


def v1_times(f: Family, p: dict[str, float], peak: float, bw: float) -> np.ndarray:
    """v1's kernel time (microseconds) of every row of ``f``."""
    if f.name == "gemm":
        mfu = np.where(f.big, p["mfu_prefill"], p["mfu_decode"])
        t = np.maximum(f.flops / (peak * mfu), f.bytes / (bw * p["bw_efficiency"]))
        return t * 1e6 + p["gemm_floor_us"]
    mfu = p["mfu_attention_prefill"] if f.name == bdf.PREFILL else p["mfu_decode"]
    t = np.maximum(f.flops / (peak * mfu), f.bytes / (bw * p["bw_efficiency_attention"]))
    return t * 1e6 + p["attention_floor_us"]


def score(fams: list[Family], p: dict[str, float], peak: float, bw: float) -> list[dict]:
    """Per family and size range: rows, median and p90 of |v1 - measured| / measured (percent), and the
    median signed error (bias)."""
    out = []
    for f in fams:
        err = (v1_times(f, p, peak, bw) / f.measured - 1.0) * 100.0
        axis, edges = RANGES[f.name]
        for lo, hi in zip(edges, edges[1:]):
            sel = (f.x >= lo) & (f.x < hi)
            if sel.any():
                e = err[sel]
                out.append({"family": f.name, "range": f"{axis} {lo:.0f}..{'' if hi == math.inf else f'{hi:.0f}'}",
                            "n": int(sel.sum()), "median_pct": float(np.median(np.abs(e))),
                            "p90_pct": float(np.percentile(np.abs(e), 90)), "bias_pct": float(np.median(e))})
        out.append({"family": f.name, "range": "all", "n": len(err), "median_pct": float(np.median(np.abs(err))),
                    "p90_pct": float(np.percentile(np.abs(err), 90)), "bias_pct": float(np.median(err))})
    return out


def fit_kernel_params(fams: list[Family], start: dict[str, float], peak: float, bw: float) -> dict[str, float]:
    """v1's five efficiencies and two launch floors fitted to the tables: robust least squares of
    log(v1 / measured) over every row (each family weighs the same); efficiencies in [0.02, 1], floors in
    [0, 100] microseconds."""
    from scipy.optimize import least_squares

    weights = {f.name: 1.0 / math.sqrt(len(f.measured)) for f in fams}

    def res(x):
        q = dict(zip(FITTED, (float(v) for v in x)))
        return np.concatenate([weights[f.name] * np.log(v1_times(f, q, peak, bw) / f.measured) for f in fams])

    x0 = [min(max(start[k], 0.05), 1.0) for k in EFFICIENCIES] + [min(max(start[k], 1.0), 50.0) for k in FLOORS]
    lo = [0.02] * len(EFFICIENCIES) + [0.0] * len(FLOORS)
    hi = [1.0] * len(EFFICIENCIES) + [100.0] * len(FLOORS)
    sol = least_squares(res, x0=x0, bounds=(lo, hi), loss="soft_l1", f_scale=0.1)
    return dict(zip(FITTED, (round(float(v), 4) for v in sol.x)))
