"""Weight and KV-cache precisions of a deployment: storage bytes, the tensor-core rate a GEMM runs at, and
what a HuggingFace ``quantization_config`` says.

Weights are grouped as vLLM quantises them: ``attn`` (attention projections), ``mlp`` (dense FFN layers and
shared experts) and ``experts`` (routed MoE experts). Embeddings and the LM head stay in the checkpoint's
16-bit dtype (vLLM does not quantise them by default).

Storage bytes per element (block scales included):
- bf16 / fp16: 2; fp8: 1 (per-tensor, per-channel or 128x128-block FP32 scales: < 0.03 %, left out);
- mxfp4: 4.25 bits and nvfp4: 4.53 bits (``BYTES_PER_ELEMENT`` of ``blis.physics.hardware``);
- int4: weight-only, one FP16 scale per group of 128 (GPTQ/AWQ default): 4 + 16/128 = 4.125 bits.

GEMM rate (``gemm_precision``), what vLLM's kernels do:
- fp8: W8A8 (dynamic per-token FP8 activations) at the FP8 peak; on hardware without FP8 tensor cores
  (A100) vLLM falls back to weight-only Marlin: BF16 peak.
- nvfp4: W4A4 at the NVFP4 peak where the hardware has one (Blackwell), else weight-only at BF16.
- mxfp4: W4A8 at the FP8 peak where the hardware has MXFP4 (Blackwell, FlashInfer's path for gpt-oss),
  else weight-only at BF16 (Hopper: Marlin/Triton kernels).
- int4: weight-only (W4A16) at the BF16 peak.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from blis.errors import BlisInputError
from blis.physics.hardware import BYTES_PER_ELEMENT, HardwareSpec

QUANTIZATIONS: tuple[str, ...] = ("bf16", "fp16", "fp8", "mxfp4", "nvfp4", "int4")
KV_CACHE_DTYPES: tuple[str, ...] = ("auto", "fp8")
INT4_GROUP = 128

WEIGHT_BYTES: dict[str, float] = {
    "bf16": 2.0,
    "fp16": 2.0,
    "fp32": 4.0,
    "fp8": 1.0,
    "mxfp4": BYTES_PER_ELEMENT["mxfp4"],
    "nvfp4": BYTES_PER_ELEMENT["nvfp4"],
    "int4": (4 + 16 / INT4_GROUP) / 8,
}
_DTYPE_NAMES = {"float16": "fp16", "bfloat16": "bf16", "float32": "fp32", "fp16": "fp16", "bf16": "bf16",
                "half": "fp16"}  # fmt: skip


def dtype_name(torch_dtype: str) -> str:
    """'bfloat16' -> 'bf16' (the short names of the precision catalogue)."""
    return _DTYPE_NAMES.get(str(torch_dtype).lower(), str(torch_dtype).lower())


def weight_bytes(fmt: str) -> float:
    try:
        return WEIGHT_BYTES[fmt]
    except KeyError:
        raise BlisInputError(f"quantization: unknown {fmt!r}; allowed: {', '.join(QUANTIZATIONS)}") from None


def gemm_precision(fmt: str, hardware: HardwareSpec) -> str:
    """The tensor-core precision (a key of ``HardwareSpec.peak_flops``) a GEMM with ``fmt`` weights runs at."""
    have = hardware.peak_flops
    if fmt in ("fp8",) and have.get("fp8", 0) > 0:
        return "fp8"
    if fmt == "nvfp4" and have.get("nvfp4", 0) > 0:
        return "nvfp4"
    if fmt == "mxfp4" and have.get("mxfp4", 0) > 0 and have.get("fp8", 0) > 0:
        return "fp8"
    if fmt == "fp32":
        return "fp32"
    if fmt == "fp16":
        return "fp16"
    return "bf16"


def kv_element_bytes(kv_cache_dtype: str, model_dtype_bytes: float) -> float:
    """Bytes per cached K/V element: 'auto' keeps the model's activation dtype; 'fp8' is 1 byte (vLLM's
    fp8 KV cache with per-tensor scales)."""
    if kv_cache_dtype == "auto":
        return model_dtype_bytes
    if kv_cache_dtype in ("fp8", "fp8_e4m3", "fp8_e5m2"):
        return 1.0
    raise BlisInputError(f"kv_cache_dtype: unknown {kv_cache_dtype!r}; allowed: {', '.join(KV_CACHE_DTYPES)}")


# --- HuggingFace quantization_config -----------------------------------------------------------
_ATTN_MARKERS = ("self_attn", "attn", "attention")
_EXPERT_MARKERS = ("experts",)


def _covers(patterns: Any, markers: tuple[str, ...]) -> bool:
    """Whether a list of module names / regexes mentions any of ``markers`` (vision towers aside)."""
    for p in patterns or ():
        s = str(p).lower()
        if "vision" in s or "visual" in s:
            continue
        if any(m in s for m in markers):
            return True
    return False


def _format_of_scheme(weights: Mapping[str, Any], fmt_hint: str, where: str) -> str:
    bits = weights.get("num_bits")
    kind = str(weights.get("type", "int")).lower()
    group = weights.get("group_size")
    if bits == 8 and kind == "float":
        return "fp8"
    if bits == 4 and kind == "float":
        return "nvfp4" if (group in (16, None) or "nvfp4" in fmt_hint) else "mxfp4"
    if bits == 4 and kind == "int":
        return "int4"
    raise BlisInputError(
        f"model config {where}: quantization_config weights num_bits={bits} type={kind} is not modelled "
        "(supported: 8-bit float, 4-bit float, 4-bit int)"
    )


def quantization_from_hf(quant: Mapping[str, Any] | None, base: str, where: str) -> dict[str, str]:
    """{'attn', 'mlp', 'experts', 'method'} weight formats from a config's ``quantization_config``;
    ``base`` (the torch dtype's short name) where nothing is quantised. Errors name the field."""
    plain = {"attn": base, "mlp": base, "experts": base, "method": base}
    if not quant:
        return plain
    method = str(quant.get("quant_method", "")).lower()
    if method == "fp8":
        skip = quant.get("modules_to_not_convert") or quant.get("ignored_layers") or ()
        attn = base if _covers(skip, _ATTN_MARKERS) else "fp8"
        return {"attn": attn, "mlp": "fp8", "experts": "fp8", "method": "fp8"}
    if method == "mxfp4":  # gpt-oss: MoE experts only; attention, router, embeddings stay 16-bit
        return {"attn": base, "mlp": base, "experts": "mxfp4", "method": "mxfp4"}
    if method in ("awq", "gptq", "auto-round", "autoround"):
        bits = quant.get("bits", quant.get("w_bit", 4))
        if bits != 4:
            raise BlisInputError(f"model config {where}: quantization_config.bits {bits} not modelled (only 4)")
        return {"attn": "int4", "mlp": "int4", "experts": "int4", "method": "int4"}
    if method == "modelopt":
        algo = str(quant.get("quant_algo", "")).upper()
        fmt = {"FP8": "fp8", "NVFP4": "nvfp4", "W4A16_AWQ": "int4"}.get(algo)
        if fmt is None:
            raise BlisInputError(f"model config {where}: quantization_config.quant_algo {algo!r} not modelled "
                                 "(FP8, NVFP4, W4A16_AWQ)")
        skip = quant.get("exclude_modules") or ()
        attn = base if _covers(skip, _ATTN_MARKERS) else fmt
        return {"attn": attn, "mlp": fmt, "experts": fmt, "method": fmt}
    if method == "compressed-tensors":
        groups = quant.get("config_groups") or {}
        if not groups:
            raise BlisInputError(f"model config {where}: quantization_config.config_groups is empty")
        hint = str(quant.get("format", "")).lower()
        out = dict(plain)
        for g in groups.values():
            fmt = _format_of_scheme(g.get("weights") or {}, hint, where)
            targets = [str(t).lower() for t in g.get("targets") or ["linear"]]
            only_experts = all(_covers([t], _EXPERT_MARKERS) for t in targets)
            out["experts"] = fmt
            out["method"] = fmt
            if not only_experts:
                out["mlp"] = fmt
                out["attn"] = fmt
        ignore = quant.get("ignore") or ()
        if _covers(ignore, _ATTN_MARKERS):
            out["attn"] = base
        if _covers(ignore, ("shared_expert", "mlp.gate_proj", "dense")):
            out["mlp"] = base
        return out
    raise BlisInputError(
        f"model config {where}: quantization_config.quant_method {method!r} not modelled; "
        "supported: fp8, mxfp4, compressed-tensors, modelopt, awq, gptq"
    )


def apply_quantization(formats: Mapping[str, str], quantization: str | None, moe: bool = True,
                       name: str = "model") -> dict[str, str]:
    """Formats after a deployment's ``quantization`` setting. None keeps the checkpoint's. A setting equal
    to the checkpoint's method keeps its per-group split (e.g. gpt-oss: MXFP4 experts, BF16 attention).
    Otherwise, as vLLM's methods: mxfp4 quantises the routed experts only (vLLM's Mxfp4 method leaves
    linear layers unquantised; an error on a dense model), the others every linear layer (online
    quantisation); a 16-bit name undoes the checkpoint's quantisation."""
    if quantization is None:
        return dict(formats)
    if quantization not in QUANTIZATIONS:
        raise BlisInputError(f"quantization: unknown {quantization!r}; allowed: {', '.join(QUANTIZATIONS)}")
    if quantization == formats.get("method"):
        return dict(formats)
    if quantization == "mxfp4":
        if not moe:
            raise BlisInputError(f"quantization: mxfp4 quantises MoE experts only (vLLM's Mxfp4 method); "
                                 f"{name} has none (use fp8, nvfp4 or int4)")
        base = "bf16" if formats.get("attn") in ("fp8", "mxfp4", "nvfp4", "int4") else formats.get("attn", "bf16")
        return {"attn": base, "mlp": base, "experts": "mxfp4", "method": "mxfp4"}
    return {"attn": quantization, "mlp": quantization, "experts": quantization, "method": quantization}
