"""Fit roofline v1 parameters for H100-SXM from the shared data; print the fit and optionally write it.

    python -m tools.fit_roofline [--data DIR] [--write]

Stage 1, kernels (shared/data/kernels/h100-vllm-layer-profiles: per-layer timings through vLLM 0.14 on H100
SXM), with the FLOP and byte counts of ``blis.physics.step_cost``; "floor + x" fits are least squares on
log time:
  - bw_efficiency and the GEMM floor: per-layer GEMM time at m <= 64 token rows (memory-bound) as
    floor + bytes / (bandwidth x efficiency);
  - mfu_prefill: GEMM time at m >= 1024 as floor + FLOPs / (peak x mfu) (robust soft-L1 loss);
  - mfu_decode: the per-GEMM roofline over 128 <= m <= 512 (where decode batches turn compute-bound);
  - the attention floor: all decode-attention calls as floor + KV bytes / (bandwidth x efficiency);
    bw_efficiency_attention: the same fit over the calls whose ideal KV read takes >= 50 us;
  - mfu_attention_prefill: context-attention calls of 512..4096-token prompts (<= 8192 tokens per call) as
    attention floor + FLOPs / (peak x mfu) (robust loss);
  - allreduce_latency_us, interconnect_efficiency: latency + ring bytes / (link x efficiency) over the TP>1
    all-reduce tables;
  - layer_overhead_us = GEMM floor + attention floor.
Stage 2, end to end (shared/data/reference/sync13_*.csv, 13 single-request runs on H100), stage 1 fixed:
step_overhead_us, queueing_base_us and queueing_per_token_us by least squares of log(predicted / measured)
over the 13 TTFTs and 13 TPOTs, each run predicted for one representative request (``sync13_cases``).
prefill_step_overhead_us and output_token_processing_us cannot be told apart from queueing and step
overheads with single-request data and stay 0.
"""

from __future__ import annotations

import argparse
import csv
import glob
import json
import math
import os
import statistics
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from blis.latency.roofline import RooflineModel, RooflineParams, calibration_path
from blis.physics.hardware import get_hardware
from blis.physics.model_spec import get_model
from blis.physics.step_cost import (
    attention_decode_counts,
    attention_prefill_counts,
    gemm_shapes,
    ring_allreduce_traffic,
)

HW = "H100-SXM"
PEAK_TFLOPS = 989.5  # H100 SXM dense BF16 (datasheet 1,979 with sparsity)
PEAK_TBPS = 3.35
BLOCK = 16
DECODE_ATTN_MIN_IDEAL_US = 50.0  # decode-attention calls whose ideal KV-read time is at least this
SYNC13_BUDGET = 8192  # vLLM's default max_num_batched_tokens on an 80 GB H100 (the sync13 runs do not record it)


def default_data_dir() -> Path:
    root = Path(__file__).resolve().parents[2]
    return Path(os.environ.get("BLIS_SHARED_DATA", root.parent / "shared" / "data"))


def _profiles(data: Path) -> list[dict]:
    import yaml

    out, seen = [], set()
    for f in sorted(glob.glob(str(data / "kernels" / "h100-vllm-layer-profiles" / "*.yaml"))):
        with open(f) as fh:
            d = yaml.safe_load(fh)
        key = (d["model"], d["tp"])
        if key in seen or d.get("num_moe_layers"):  # Llama-4-Scout (FP8, interleaved MoE) is not supported
            continue
        seen.add(key)
        d["_spec"] = get_model(d["model"])
        out.append(d)
    return out


def _gemm_layer_time(spec, tp: int, m: int, mfu: float, bw_eff: float, floor_us: float) -> float:
    peak, bw = PEAK_TFLOPS * 1e12, PEAK_TBPS * 1e12
    t = 0.0
    for g in gemm_shapes(spec, tp):
        c = 2.0 * m * g.k * g.n / (peak * mfu)
        b = (g.k * g.n * spec.weight_bytes_per_param + m * (g.k + g.n) * 2.0) / (bw * bw_eff)
        t += max(c, b)
    return floor_us + t * 1e6


def _fit_floor_eff(points: list[tuple[float, float]], scale: float, loss: str = "linear") -> tuple[float, float]:
    """(floor_us, efficiency) of t = floor + amount / (scale x efficiency), least squares on log t."""
    import numpy as np
    from scipy.optimize import least_squares

    x = np.array([p[0] for p in points])
    y = np.array([p[1] for p in points])
    sol = least_squares(lambda v: np.log((v[0] + x / (scale * v[1]) * 1e6) / y), x0=[5.0, 0.8],
                        bounds=([0.0, 0.01], [500.0, 1.0]), loss=loss, f_scale=0.1)  # fmt: skip
    return float(sol.x[0]), float(sol.x[1])


def _fit_eff(points: list[tuple[float, float]], scale: float, floor_us: float, loss: str = "soft_l1") -> float:
    """Efficiency of t = floor_us + amount / (scale x efficiency) with the floor fixed (robust loss)."""
    import numpy as np
    from scipy.optimize import least_squares

    x = np.array([p[0] for p in points])
    y = np.array([p[1] for p in points])
    sol = least_squares(lambda v: np.log((floor_us + x / (scale * v[0]) * 1e6) / y), x0=[0.5],
                        bounds=([0.01], [1.0]), loss=loss, f_scale=0.1)  # fmt: skip
    return float(sol.x[0])


def fit_kernels(data: Path) -> dict:
    """Stage 1: efficiencies and per-layer floors from the per-layer kernel tables."""
    import numpy as np
    from scipy.optimize import least_squares, minimize_scalar

    profiles = _profiles(data)
    peak, bw = PEAK_TFLOPS * 1e12, PEAK_TBPS * 1e12
    mem_pts, comp_pts, mid_pts, dec_pts, pre_pts, ar_pts = [], [], [], [], [], []
    for d in profiles:
        spec, tp = d["_spec"], d["tp"]
        shapes = gemm_shapes(spec, tp)
        for m, lat in zip(d["gemm"]["tokens"], d["gemm"]["latency_us"]):
            m = int(m)
            nbytes = sum(g.k * g.n * spec.weight_bytes_per_param + m * (g.k + g.n) * 2.0 for g in shapes)
            flops = sum(2.0 * m * g.k * g.n for g in shapes)
            if m <= 64:
                mem_pts.append((nbytes, lat))
            elif m >= 1024:
                comp_pts.append((flops, lat))
            if 128 <= m <= 512:
                mid_pts.append((spec, tp, m, lat))
        ga = d["generation_attention"]
        for i, ctx in enumerate(ga["context"]):
            for j, b in enumerate(ga["tokens"]):
                _, nbytes = attention_decode_counts(spec, tp, int(b), int(b * (ctx - 1)))
                dec_pts.append((nbytes, ga["latency_us"][i][j]))
        ca = d["context_attention"]
        for i, isl in enumerate(ca["isl"]):
            for j, b in enumerate(ca["batch_size"]):
                if 512 <= isl <= 4096 and isl * b <= 8192:
                    f, _ = attention_prefill_counts(spec, tp, [(int(isl), 0)] * int(b))
                    pre_pts.append((f, ca["latency_us"][i][j]))
        if tp > 1:
            for tok, lat in zip(d["allreduce"]["tokens"], d["allreduce"]["latency_us"]):
                ar_pts.append((ring_allreduce_traffic(tok * spec.hidden_size * 2.0, tp), lat))
    gemm_floor, bw_eff = _fit_floor_eff(mem_pts, bw)
    mfu_prefill = _fit_eff(comp_pts, peak, gemm_floor)

    def mid_loss(x: float) -> float:
        return sum(math.log(_gemm_layer_time(s, tp, m, x, bw_eff, gemm_floor) / lat) ** 2 for s, tp, m, lat in mid_pts)

    mfu_decode = float(minimize_scalar(mid_loss, bounds=(0.05, 1.0), method="bounded").x)
    attn_floor, _ = _fit_floor_eff(dec_pts, bw)
    # The bandwidth that matters for step time is the one of the large (bandwidth-bound) calls.
    _, bw_attn = _fit_floor_eff([p for p in dec_pts if p[0] / bw * 1e6 >= DECODE_ATTN_MIN_IDEAL_US], bw)
    mfu_attn = _fit_eff(pre_pts, peak, attn_floor)
    link = get_hardware(HW).interconnect_bandwidth_Bps
    x = np.array([p[0] for p in ar_pts])
    y = np.array([p[1] for p in ar_pts])
    ar = least_squares(lambda v: np.log((v[0] + x / (link * v[1]) * 1e6) / y), x0=[5.0, 0.6],
                       bounds=([0.0, 0.01], [100.0, 1.0]))  # fmt: skip
    return {
        "bw_efficiency": round(bw_eff, 4),
        "bw_efficiency_attention": round(bw_attn, 4),
        "mfu_prefill": round(mfu_prefill, 4),
        "mfu_decode": round(mfu_decode, 4),
        "mfu_attention_prefill": round(mfu_attn, 4),
        "allreduce_latency_us": round(float(ar.x[0]), 3),
        "interconnect_efficiency": round(float(ar.x[1]), 4),
        "layer_overhead_us": round(gemm_floor + attn_floor, 3),
        "_floors_us": {"gemm": round(gemm_floor, 3), "attention": round(attn_floor, 3)},
        "_n": {"gemm_memory_points": len(mem_pts), "gemm_compute_points": len(comp_pts),
               "gemm_mid_points": len(mid_pts), "decode_attention_points": len(dec_pts),
               "prefill_attention_points": len(pre_pts), "allreduce_points": len(ar_pts),
               "profiles": [f"{d['model']} tp{d['tp']}" for d in profiles]},
    }  # fmt: skip


@dataclass(frozen=True)
class Sync13Case:
    """One single-request run, reduced to a representative request (means of the run's distributions)."""

    experiment: str
    model: str
    tp: int
    input_tokens: int
    cached_tokens: int
    output_tokens: int
    ttft_ms: float
    tpot_ms: float


def sync13_cases(data: Path) -> list[Sync13Case]:
    """Rows of sync13_h100_gt_from_h-roofline_h1.csv. The prompt is prefix_tokens + prompt_mean tokens;
    the shared prefix stays in vLLM's prefix cache between the sequential requests, so its whole blocks
    (floor(prefix / 16) * 16 tokens) are hits. Output = output_mean tokens."""
    path = data / "reference" / "sync13_h100_gt_from_h-roofline_h1.csv"
    cases = []
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            prefix = int(row["prefix_tokens"])
            cases.append(Sync13Case(
                experiment=row["experiment"], model=row["model"], tp=int(row["tp"]),
                input_tokens=prefix + round(float(row["prompt_mean"])),
                cached_tokens=(prefix // BLOCK) * BLOCK,
                output_tokens=round(float(row["output_mean"])),
                ttft_ms=float(row["gt_ttft_ms"]), tpot_ms=float(row["gt_tpot_ms"]),
            ))  # fmt: skip
    return cases


def predict_case(case: Sync13Case, params: RooflineParams) -> tuple[float, float]:
    """(TTFT ms, TPOT ms) the roofline predicts for the case's representative request."""
    model = RooflineModel(get_model(case.model), get_hardware(HW), case.tp, params)
    r = model.predict_request(case.input_tokens, case.output_tokens, case.cached_tokens, SYNC13_BUDGET)
    return r["ttft_us"] / 1e3, r["tpot_us"] / 1e3


def sync13_errors(cases: list[Sync13Case], params: RooflineParams) -> list[dict]:
    out = []
    for c in cases:
        ttft, tpot = predict_case(c, params)
        out.append({"experiment": c.experiment, "ttft_ms": ttft, "gt_ttft_ms": c.ttft_ms,
                    "ttft_err": ttft / c.ttft_ms - 1, "tpot_ms": tpot, "gt_tpot_ms": c.tpot_ms,
                    "tpot_err": tpot / c.tpot_ms - 1})  # fmt: skip
    return out


_STAGE2 = ("step_overhead_us", "queueing_base_us", "queueing_per_token_us")


def fit_overheads(data: Path, kernel: dict) -> dict:
    """Stage 2: overheads and API time from the single-request runs, kernel efficiencies fixed."""
    from scipy.optimize import least_squares

    cases = sync13_cases(data)
    base = {k: v for k, v in kernel.items() if not k.startswith("_")}

    def params_of(x) -> RooflineParams:
        return RooflineParams(**base, **dict(zip(_STAGE2, x)), prefill_step_overhead_us=0.0,
                              peak_tflops=PEAK_TFLOPS, peak_tbps=PEAK_TBPS)  # fmt: skip

    def res(x):
        p = params_of(x)
        r = []
        for c in cases:
            ttft, tpot = predict_case(c, p)
            r += [math.log(ttft / c.ttft_ms), math.log(tpot / c.tpot_ms)]
        return r

    sol = least_squares(res, x0=[500.0, 5000.0, 5.0], bounds=([0, 0, 0], [1e5, 1e5, 100.0]))
    return {k: round(float(v), 3) for k, v in zip(_STAGE2, sol.x)}


def fit(data: Path) -> tuple[RooflineParams, dict]:
    kernel = fit_kernels(data)
    over = fit_overheads(data, kernel)
    params = RooflineParams(
        **{k: v for k, v in kernel.items() if not k.startswith("_")}, **over,
        prefill_step_overhead_us=0.0, output_token_processing_us=0.0, scheduling_processing_us=0.0,
        preemption_processing_us=0.0, peak_tflops=PEAK_TFLOPS, peak_tbps=PEAK_TBPS,
    )  # fmt: skip
    return params, {**kernel["_n"], "floors_us": kernel["_floors_us"]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.fit_roofline", description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=default_data_dir(), help="shared data folder")
    ap.add_argument("--write", action="store_true", help=f"write coefficients/roofline_{HW.lower()}.json")
    args = ap.parse_args(argv)
    params, counts = fit(args.data)
    errs = sync13_errors(sync13_cases(args.data), params)
    for e in errs:
        line = (f"{e['experiment']:42s} TTFT {e['ttft_ms']:7.1f} vs {e['gt_ttft_ms']:7.1f} ({e['ttft_err']:+.1%})  "
                f"TPOT {e['tpot_ms']:6.2f} vs {e['gt_tpot_ms']:6.2f} ({e['tpot_err']:+.1%})")
        print(line, file=sys.stderr)
    med_ttft = statistics.median(abs(e["ttft_err"]) for e in errs)
    med_tpot = statistics.median(abs(e["tpot_err"]) for e in errs)
    print(f"sync13 median |error|: TTFT {med_ttft:.1%}, TPOT {med_tpot:.1%}", file=sys.stderr)
    doc = {
        "hardware": HW,
        "params": asdict(params),
        "provenance": {
            "script": "python -m tools.fit_roofline --write",
            "kernel_data": "shared/data/kernels/h100-vllm-layer-profiles "
            "(inference-sim/inference-sim 0ba6f03, vLLM 0.14.0)",
            "end_to_end_data": "shared/data/reference/sync13_h100_gt_from_h-roofline_h1.csv "
            "(13 single-request runs)",
            "points": counts,
            "sync13_median_abs_error": {"ttft": round(med_ttft, 4), "tpot": round(med_tpot, 4)},
            "notes": "peaks: H100 SXM datasheet dense BF16 989.5 TFLOP/s, 3.35 TB/s; see docs/roofline.md",
        },
    }
    print(json.dumps(doc, indent=2))
    if args.write:
        calibration_path(HW).write_text(json.dumps(doc, indent=2) + "\n")
        print(f"wrote {calibration_path(HW)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
