"""Roofline v1 latency model (``--latency-model roofline``).

Step time (microseconds, per GPU of a TP group; composed by ``blis.latency.composition``, shared with v2) =
    sum over pieces of max(FLOPs / (peak x MFU), bytes / (bandwidth x bandwidth efficiency))
  + TP all-reduces (2 per layer: latency + ring traffic / (link bandwidth x interconnect_efficiency))
  + step_overhead_us + num_layers x layer_overhead_us (+ prefill_step_overhead_us when the step has
    prefill tokens).
The pieces are the ones of ``blis.physics.step_cost`` (weight GEMMs, MoE experts actually hit, prefill and
decode attention, element-wise kernels, LM head). GEMM FLOPs of prefill tokens run at ``mfu_prefill``,
those of decode tokens (and the LM head) at ``mfu_decode``; prefill attention at
``mfu_attention_prefill``. Weight, activation and element-wise bytes stream at ``bw_efficiency``, KV-cache
bytes (attention) at ``bw_efficiency_attention``. Parameters come from ``coefficients/roofline_<hardware>.json``
(fitted, see docs/roofline.md and ``tools.fit_roofline``), overridable by ``SimConfig.calibration_file``.

Per-model constants are computed once in ``__init__``; ``step_time_us`` is plain float arithmetic.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from blis.errors import BlisInputError
from blis.latency.base import StepBatch, register_latency_model
from blis.latency.composition import StepComposition
from blis.latency.roofline_fast import fused_step, prefill_pairs
from blis.physics.hardware import HardwareSpec, get_hardware, load_hardware_file
from blis.physics.model_spec import ModelSpec, check_ep, check_tp, model_for_config
from blis.physics.step_cost import (
    ACT_BYTES,
    allreduce_bytes,
    elementwise_bytes_per_token,
    gemm_shapes,
    heads_per_gpu,
    kv_token_bytes_per_layer,
    lm_head_shape,
    ring_allreduce_traffic,
)

if TYPE_CHECKING:  # pragma: no cover
    from blis.config import SimConfig

COEFF_DIR = Path(__file__).resolve().parent / "coefficients"
DEFAULT_CALIBRATION = "H100-SXM"

_FRACTIONS = ("mfu_prefill", "mfu_decode", "mfu_attention_prefill", "bw_efficiency", "bw_efficiency_attention",
              "interconnect_efficiency")


@dataclass(frozen=True)
class RooflineParams:
    """Efficiencies (fractions of peak, in (0, 1]) and overheads (microseconds) of roofline v1.

    peak_tflops / peak_tbps: dense 16-bit peak (TFLOP/s) and memory bandwidth (TB/s) the fractions are
        relative to; None = the hardware registry's figures.
    queueing_base_us + queueing_per_token_us x input_tokens: API-server time before a request is queued.
    output_token_processing_us: per output token, as ``LatencyModel.output_token_processing_time_us``.
    """

    mfu_prefill: float
    mfu_decode: float
    mfu_attention_prefill: float
    bw_efficiency: float
    bw_efficiency_attention: float
    interconnect_efficiency: float
    allreduce_latency_us: float
    step_overhead_us: float
    prefill_step_overhead_us: float
    layer_overhead_us: float
    queueing_base_us: float
    queueing_per_token_us: float
    output_token_processing_us: float = 0.0
    scheduling_processing_us: float = 0.0
    preemption_processing_us: float = 0.0
    peak_tflops: float | None = None
    peak_tbps: float | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if v is None and f.name in ("peak_tflops", "peak_tbps"):
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise BlisInputError(f"roofline parameter {f.name}: must be a finite number, got {v!r}")
            if f.name in _FRACTIONS:
                if not 0.0 < v <= 1.0:
                    raise BlisInputError(
                        f"roofline parameter {f.name}: {v} outside (0, 1]: a fraction of peak cannot exceed 1"
                        if v > 1.0 else f"roofline parameter {f.name}: must be in (0, 1], got {v}"
                    )
            elif f.name in ("peak_tflops", "peak_tbps"):
                if v <= 0.0:
                    raise BlisInputError(f"roofline parameter {f.name}: must be > 0, got {v}")
            elif v < 0.0:
                raise BlisInputError(f"roofline parameter {f.name}: must be >= 0 microseconds, got {v}")

    @classmethod
    def param_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    def updated(self, overrides: Mapping[str, Any]) -> RooflineParams:
        known = {k: v for k, v in overrides.items() if k in self.param_names()}
        return replace(self, **known)


def calibration_path(hardware_name: str) -> Path:
    return COEFF_DIR / f"roofline_{hardware_name.lower()}.json"


def load_calibration(hardware: HardwareSpec) -> tuple[RooflineParams, str]:
    """Shipped parameters for ``hardware`` and a note of where they came from. Hardware without its own
    file borrows the H100-SXM efficiencies and overheads, with its own peak figures."""
    path = calibration_path(hardware.name)
    borrowed = not path.is_file()
    if borrowed:
        path = calibration_path(DEFAULT_CALIBRATION)
    data = json.loads(path.read_text())
    params = RooflineParams(**data["params"])
    if borrowed:
        params = replace(params, peak_tflops=None, peak_tbps=None)
        return params, f"{path.name} (borrowed: no calibration for {hardware.name})"
    return params, path.name


def read_calibration_file(path: str | Path) -> dict:
    """Parameters from a calibration YAML/JSON (``blis calibrate``): a ``roofline:`` section if present,
    else the top level. Keys are RooflineParams names; other keys are ignored."""
    from blis._files import read_structured

    data = read_structured(path, "calibration_file")
    if not isinstance(data, Mapping):
        raise BlisInputError(f"calibration_file: {path} must hold a mapping of parameter: value")
    section = data.get("roofline", data)
    if not isinstance(section, Mapping):
        raise BlisInputError(f"calibration_file: {path}: 'roofline' must be a mapping of parameter: value")
    found = {k: v for k, v in section.items() if k in RooflineParams.param_names()}
    if not found:
        raise BlisInputError(
            f"calibration_file: {path} holds no roofline parameters; "
            f"expected some of {', '.join(RooflineParams.param_names())}"
        )
    return found


def compute_precision(model: ModelSpec, hardware: HardwareSpec | None = None) -> str:
    """Tensor-core precision of the weight GEMMs: from the stored weight width, or with ``hardware`` the
    rate the layers' one weight format runs at (``blis.physics.precision.gemm_precision``; fp16 counts as
    bf16, the same rate)."""
    if hardware is not None and model.layer_format is not None:
        from blis.physics.precision import gemm_precision

        prec = gemm_precision(model.layer_format, hardware)
        return "bf16" if prec == "fp16" else prec
    wb = model.weight_bytes_per_param
    if wb <= 1.0:
        return "fp8"
    if wb >= 4.0:
        return "fp32"
    return "bf16"


class RooflineModel:
    """Roofline v1: analytic step time from model and hardware figures with fitted efficiencies."""

    name = "roofline"

    def __init__(self, model: ModelSpec, hardware: HardwareSpec, tp: int, params: RooflineParams,
                 source: str = "", ep: int = 1) -> None:  # fmt: skip
        check_tp(model, tp)
        check_ep(model, tp, ep)
        self.ep = ep
        self.model = model
        self.hardware = hardware
        self.tp = tp
        self.params = params
        self.source = source
        self.precision = compute_precision(model)
        p = params
        peak = hardware.peak(self.precision)
        if p.peak_tflops is not None and self.precision == "bf16":
            peak = p.peak_tflops * 1e12
        bw = p.peak_tbps * 1e12 if p.peak_tbps is not None else hardware.memory_bandwidth_Bps
        self.peak_flops = peak
        self.bandwidth_Bps = bw
        L = model.num_layers
        # microseconds per FLOP (prefill / decode / prefill attention) and per DRAM byte
        us_fp = 1e6 / (peak * p.mfu_prefill)
        us_fd = 1e6 / (peak * p.mfu_decode)
        us_fa = 1e6 / (peak * p.mfu_attention_prefill)
        us_b = 1e6 / (bw * p.bw_efficiency)
        us_kv = 1e6 / (bw * p.bw_efficiency_attention)
        wb = model.weight_bytes_per_param
        dense, expert = [], []
        for g in gemm_shapes(model, tp):
            per_row = 2.0 * g.k * g.n * L
            row = (per_row * us_fp, per_row * us_fd, g.k * g.n * wb * L * us_b, (g.k + g.n) * ACT_BYTES * L * us_b)
            (expert if g.name.startswith("expert_") else dense).append(row)
        self._dense = tuple(dense)
        self._expert = tuple(expert)
        self._num_experts = float(model.num_experts)
        self._k_e = float(model.experts_per_token)
        self._miss = 1.0 - model.experts_per_token / model.num_experts if model.is_moe else 1.0
        hd = model.head_dim
        hg = heads_per_gpu(model, tp)
        kvb = kv_token_bytes_per_layer(model, tp)
        qo = 2.0 * hg * hd * ACT_BYTES
        flops_per_pair = 4.0 * hg * hd * L
        self._attn_pf = flops_per_pair * us_fa  # us per prefill (query, key) pair
        self._attn_df = flops_per_pair * us_fd  # us per decode key
        self._kv_read = kvb * L * us_kv  # us per context token read
        self._new_tok = (kvb + qo) * L * us_kv  # us per new token (K,V write + Q read + O write)
        self._elem = elementwise_bytes_per_token(model, tp) * L * us_b
        lm = lm_head_shape(model, tp)
        self._lm_f = 2.0 * lm.k * lm.n * us_fd
        self._lm_w = lm.k * lm.n * wb * us_b
        self._lm_a = (lm.k + lm.n) * ACT_BYTES * us_b
        if tp > 1:
            link = hardware.interconnect_bandwidth_Bps * p.interconnect_efficiency
            self._ar_fixed = 2 * L * p.allreduce_latency_us
            self._ar_tok = 2 * L * ring_allreduce_traffic(allreduce_bytes(model, 1), tp) / link * 1e6
        else:
            self._ar_fixed = 0.0
            self._ar_tok = 0.0
        self._fixed = p.step_overhead_us + L * p.layer_overhead_us
        self._prefill_fixed = p.prefill_step_overhead_us
        self._composition = StepComposition(self, self._fixed, self._prefill_fixed)
        self._stretch_parts: dict = {}  # decode batch size -> constant parts of its step time (decode_stretch_us)
        self._fused = None  # step_time_float_us as one closure, built on the first step (`_fuse`)
        self.general = None
        if ep != 1 or not model.is_uniform:  # MLA, windows, shared/dense layers, mixed formats, EP (issue #13)
            from blis.latency.roofline_general import PieceRoofline

            self.general = PieceRoofline(model, hardware, tp, ep, params, bw)
            self.step_time_float_us = self.general.step_time_float_us
            self.precision = self.general.summary()

    # --- the LatencyModel protocol ---------------------------------------------------------------
    def step_time_us(self, batch: StepBatch) -> int:
        return self.step_time_fn()(batch)

    def step_time_fn(self) -> Callable[[StepBatch], int]:
        """``step_time_us`` as one plain function (the optional fast path of `blis.latency.base`): the engine
        binds it once per run instead of calling the method every step."""
        fused = self._fused
        if fused is None:
            fused = self._fused = self._fuse()
        return fused

    def _own_formula(self) -> bool:
        """Whether the step time is this class's own composition, untouched (the fast paths' condition)."""
        cls = type(self)
        return (self.general is None and cls.step_time_us is RooflineModel.step_time_us
                and cls.step_time_float_us is RooflineModel.step_time_float_us
                and "step_time_float_us" not in self.__dict__ and type(self._composition) is StepComposition
                and self._composition.k is self)

    def _fuse(self, rounded: bool = True):
        """`step_time_us` as one closure over the model's constants (`blis.latency.roofline_fast.fused_step`);
        ``rounded=False``: the float before rounding. The composition itself where the formula is not this
        class's own."""
        if not self._own_formula() or self._expert or type(self) is not RooflineModel:
            float_us = self.step_time_float_us
            return (lambda batch: round(float_us(batch))) if rounded else float_us
        return fused_step(self, rounded)

    def step_time_float_us(self, batch: StepBatch) -> float:
        """Unrounded step time in microseconds (the fitting code needs the fraction)."""
        return self._composition.step_time_float_us(batch)

    def decode_stretch_us(self, num_decode: int, sum_context: int, n: int) -> list[int] | None:
        """``step_time_us`` of ``n`` consecutive decode-only steps of ``num_decode`` requests, step i reading
        ``sum_context + i * num_decode`` context tokens (the optional fast path of the latency-model protocol,
        `blis.latency.base`): the same float operations in the same order as `StepComposition`, so every
        step's rounded time is identical. None where the step formula is not this class's own."""
        D = num_decode
        parts = self._stretch_parts.get(D)
        if parts is None:
            if not self._own_formula():
                return None
            t = self._composition.fixed_us
            t += self.gemms_us(0, D, D) + self.elementwise_us(D) + self.allreduce_us(D)
            parts = self._stretch_parts[D] = (t, self._new_tok * D, self.lm_head_us(D))
        t, new, lm = parts
        kv, af = self._kv_read, self._attn_df
        first = sum_context + D
        if n <= 48:
            return [round((t + (c if (m := kv * keys + new) < (c := af * keys) else m)) + lm)
                    for keys in range(first, first + n * D, D)]
        import numpy as np

        keys = first + D * np.arange(n, dtype=np.float64)
        return np.rint((t + np.maximum(kv * keys + new, af * keys)) + lm).astype(np.int64).tolist()

    # --- kernel families (blis.latency.composition.KernelTimes), microseconds over all layers -------
    def gemms_us(self, P: int, D: int, T: int) -> float:
        t = 0.0
        for cp, cd, mw, ma in self._dense:
            c = cp * P + cd * D
            m = mw + ma * T
            t += max(m, c)
        if self._expert:
            ke = self._k_e
            active = self._num_experts * (1.0 - self._miss**T)
            for cp, cd, mw, ma in self._expert:
                c = (cp * P + cd * D) * ke
                m = mw * active + ma * T * ke
                t += max(m, c)
        return t

    def elementwise_us(self, T: int) -> float:
        return self._elem * T

    def allreduce_us(self, T: int) -> float:
        return self._ar_fixed + self._ar_tok * T

    def prefill_attention_us(self, chunks) -> float:
        pairs, ctx, new = prefill_pairs(chunks)
        c = self._attn_pf * pairs
        m = self._kv_read * (ctx + new) + self._new_tok * new
        return max(m, c)

    def decode_attention_us(self, D: int, keys: int) -> float:
        c = self._attn_df * keys
        m = self._kv_read * keys + self._new_tok * D
        return max(m, c)

    def lm_head_us(self, S: int) -> float:
        c = self._lm_f * S
        m = self._lm_w + self._lm_a * S
        return max(m, c)

    def queueing_time_us(self, input_tokens: int) -> int:
        p = self.params
        return round(p.queueing_base_us + p.queueing_per_token_us * input_tokens)

    def queueing_times_us(self, input_tokens):
        """``queueing_time_us`` for an array of prompt lengths (numpy int64 array; same rounding)."""
        import numpy as np

        p = self.params
        x = p.queueing_base_us + p.queueing_per_token_us * np.asarray(input_tokens, dtype=np.float64)
        return np.rint(x).astype(np.int64)

    def output_token_processing_time_us(self) -> int:
        return round(self.params.output_token_processing_us)

    def scheduling_processing_time_us(self) -> int:
        return round(self.params.scheduling_processing_us)

    def preemption_processing_time_us(self) -> int:
        return round(self.params.preemption_processing_us)

    def describe(self) -> dict:
        return {
            "name": self.name,
            "model": self.model.name,
            "hardware": self.hardware.name,
            "tp": self.tp,
            **({"ep": self.ep, "decomposition": "step pieces (blis.latency.roofline_general)"}
               if self.general is not None else {}),
            "precision": self.precision,
            "peak_tflops": self.peak_flops / 1e12,
            "peak_tbps": self.bandwidth_Bps / 1e12,
            "params": asdict(self.params),
            "source": self.source,
        }

    # --- helpers ---------------------------------------------------------------------------------
    def predict_request(self, input_tokens: int, output_tokens: int, cached_tokens: int = 0,
                        max_num_batched_tokens: int | None = None) -> dict[str, float]:  # fmt: skip
        """One request alone on the instance: TTFT, mean TPOT and E2E in microseconds (floats).

        TTFT = queueing + one step per prefill chunk (``cached_tokens`` prefix hits are skipped) + one
        output-token processing; TPOT = mean decode step (context grows by one per step) + output-token
        processing; E2E = TTFT + (output_tokens - 1) x TPOT.
        """
        if input_tokens < 1 or output_tokens < 1:
            raise BlisInputError("input_tokens and output_tokens must be >= 1")
        cached = max(0, min(int(cached_tokens), input_tokens - 1))
        budget = max_num_batched_tokens or input_tokens
        otp = self.params.output_token_processing_us
        ttft = self.params.queueing_base_us + self.params.queueing_per_token_us * input_tokens + otp
        done = cached
        while done < input_tokens:
            n = min(budget, input_tokens - done)
            last = done + n >= input_tokens
            ttft += self.step_time_float_us(
                StepBatch(num_prefill_tokens=n, prefill_chunks=[(n, done)], num_sampled=1 if last else 0)
            )
            done += n
        steps = output_tokens - 1
        total = 0.0
        for j in range(steps):
            total += self.step_time_float_us(
                StepBatch(num_decode_tokens=1, sum_decode_context=input_tokens + j, num_sampled=1)
            )
        tpot = total / steps + otp if steps else 0.0
        return {"ttft_us": ttft, "tpot_us": tpot, "e2e_us": ttft + steps * tpot}


def build_roofline(model: ModelSpec | str, hardware: HardwareSpec | str = "H100", tp: int = 1,
                   overrides: Mapping[str, Any] | None = None) -> RooflineModel:  # fmt: skip
    """Convenience constructor: built-in model/hardware names, shipped calibration, optional overrides."""
    from blis.physics.model_spec import get_model

    spec = get_model(model)
    hw = get_hardware(hardware)
    params, source = load_calibration(hw)
    if overrides:
        params = params.updated(overrides)
        source += " + overrides"
    return RooflineModel(spec, hw, tp, params, source)


def model_calibration(model: str, hardware: str, tp: int) -> dict | None:
    """Shipped per-(model, hardware, TP) refit of the roofline parameters (``coefficients/roofline_models.yaml``,
    written by ``blis calibrate --latency-model roofline`` on real runs of that setup), or None."""
    import yaml

    from blis.latency.blackbox import canonical_hardware_name, canonical_model_name

    path = COEFF_DIR / "roofline_models.yaml"
    if not path.is_file():
        return None
    m, h = canonical_model_name(model), canonical_hardware_name(hardware)
    for entry in yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or []:
        if (canonical_model_name(entry["model"]) == m and canonical_hardware_name(entry["hardware"]) == h
                and int(entry["tp"]) == tp):
            return entry
    return None


@register_latency_model("roofline")
def create_roofline(config: SimConfig) -> RooflineModel:
    """Factory: model (``model_config_path`` or registry), hardware (``hardware_file`` may add or override),
    shipped calibration for the hardware, then what ``config.calibration`` selects on top of it (a shipped
    refit for this exact setup, nothing, or a file; see ``blis.latency.calibration``)."""
    model = model_for_config(config)
    extra = load_hardware_file(config.hardware_file) if config.hardware_file else None
    hw = get_hardware(config.hardware, extra)
    params, source = load_calibration(hw)
    from blis.latency.calibration import roofline_overrides  # auto | generic | PATH (docs/validation.md)

    overrides, note = roofline_overrides(config)
    if overrides:
        params = params.updated(overrides)
        source += f" + {note}"
    return RooflineModel(model, hw, config.tp, params, source, ep=getattr(config, "ep", 1))
