"""Blackbox latency model: linear regressions fitted to real traces (all microseconds).

step = b0 + b1 * prefill_tokens + b2 * decode_tokens
queueing delay = a0 + a1 * input_tokens; a2 is added to every output token as the client sees it.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING

import numpy as np

from blis.latency.base import LatencyModelError, StepBatch, register_latency_model

if TYPE_CHECKING:  # pragma: no cover
    from blis.config import SimConfig


@dataclass(frozen=True)
class BlackboxModel:
    alpha: tuple[float, float, float]
    beta: tuple[float, float, float]
    source: str = "user"
    name: str = "blackbox"

    def __post_init__(self) -> None:
        for label, coeffs in (("alpha_coeffs", self.alpha), ("beta_coeffs", self.beta)):
            if len(coeffs) != 3 or any(not np.isfinite(c) or c < 0 for c in coeffs):
                raise LatencyModelError(f"{label}: need 3 finite coefficients >= 0 (microseconds), got {coeffs}")

    def step_time_us(self, batch: StepBatch) -> int:
        b0, b1, b2 = self.beta
        return int(b0 + b1 * batch.num_prefill_tokens + b2 * batch.num_decode_tokens)

    def decode_stretch_us(self, num_decode: int, sum_context: int, n: int) -> list[int] | None:
        """``step_time_us`` of ``n`` consecutive decode-only steps of ``num_decode`` requests (the optional
        fast path of the latency-model protocol, see `blis.latency.base`): constant here."""
        if type(self).step_time_us is not BlackboxModel.step_time_us:
            return None  # a subclass prices steps its own way
        b0, b1, b2 = self.beta
        return [int(b0 + b1 * 0 + b2 * num_decode)] * n

    def queueing_time_us(self, input_tokens: int) -> int:
        return int(self.alpha[0] + self.alpha[1] * input_tokens)

    def queueing_times_us(self, input_tokens: np.ndarray) -> np.ndarray:
        """Vectorised ``queueing_time_us`` for all requests at once."""
        return (self.alpha[0] + self.alpha[1] * input_tokens.astype(np.float64)).astype(np.int64)

    def output_token_processing_time_us(self) -> int:
        return int(self.alpha[2])

    def scheduling_processing_time_us(self) -> int:
        return 0

    def preemption_processing_time_us(self) -> int:
        return 0

    def describe(self) -> dict:
        return {"name": self.name, "alpha": list(self.alpha), "beta": list(self.beta), "source": self.source}


def load_coefficient_table() -> list[dict]:
    """Entries of the shipped table (`blis/latency/coefficients/blackbox.yaml`)."""
    from blis._files import read_shipped_yaml  # its JSON copy: no YAML parser on the run path

    with resources.as_file(resources.files("blis.latency").joinpath("coefficients/blackbox.yaml")) as path:
        return read_shipped_yaml(path) or []


def canonical_model_name(name: str) -> str:
    """HuggingFace id (lower case) of a registry name or id; the name itself when unknown."""
    try:
        from blis.physics.model_spec import get_model

        return get_model(name).hf_id.lower()
    except Exception:  # registry absent or name unknown: "org/name-hf" and "name" match
        short = name.lower().rsplit("/", 1)[-1]
        return short[:-3] if short.endswith("-hf") else short


def canonical_hardware_name(name: str) -> str:
    try:
        from blis.physics.hardware import get_hardware

        return get_hardware(name).name.upper()
    except Exception:
        return name.upper()


def lookup_coefficients(model: str, hardware: str, tp: int) -> dict | None:
    m, h = canonical_model_name(model), canonical_hardware_name(hardware)
    for entry in load_coefficient_table():
        if (canonical_model_name(entry["model"]) == m and canonical_hardware_name(entry["hardware"]) == h
                and int(entry["tp"]) == tp):
            return entry
    return None


def available_coefficients() -> list[str]:
    return [f"{e['model']}/{e['hardware']}/tp{e['tp']}" for e in load_coefficient_table()]


def _check_precision(config: "SimConfig", entry: dict) -> None:
    """Shipped coefficients were fitted on one precision (``quantization`` / ``kv_cache_dtype`` keys of the
    entry; absent = the checkpoint's 16-bit weights and an auto KV cache) and with ep = 1; a deployment
    that differs would reuse step times of another precision, so it is refused."""
    want_q = getattr(config, "quantization", None)
    want_kv = getattr(config, "kv_cache_dtype", "auto")
    have_q, have_kv = entry.get("quantization"), entry.get("kv_cache_dtype", "auto")
    same_q = want_q is None or want_q == have_q or (have_q is None and want_q in ("bf16", "fp16"))
    if not same_q or want_kv != have_kv or getattr(config, "ep", 1) != int(entry.get("ep", 1)):
        have = f"quantization={have_q or 'checkpoint (16-bit)'}, kv_cache_dtype={have_kv}, ep={entry.get('ep', 1)}"
        want = f"quantization={want_q or 'checkpoint'}, kv_cache_dtype={want_kv}, ep={getattr(config, 'ep', 1)}"
        raise LatencyModelError(
            f"quantization/kv_cache_dtype/ep: the blackbox coefficients for {entry['model']}/{entry['hardware']}/"
            f"tp{entry['tp']} were fitted with {have}; this run asks for {want} (give --alpha-coeffs/--beta-coeffs "
            "fitted on it, or use --latency-model roofline)"
        )


@register_latency_model("blackbox")
def build_blackbox(config: "SimConfig") -> BlackboxModel:
    alpha, beta, source = config.alpha_coeffs, config.beta_coeffs, "--alpha-coeffs/--beta-coeffs"
    if alpha is None or beta is None:
        from blis.latency.calibration import blackbox_coefficients

        chosen = blackbox_coefficients(config)
        if chosen is not None:
            alpha, beta, source = alpha or chosen[0], beta or chosen[1], chosen[2]
    if alpha is None or beta is None:
        entry = lookup_coefficients(config.model, config.hardware, config.tp)
        if entry is None:
            have = available_coefficients()
            raise LatencyModelError(
                f"model/hardware/tp: no blackbox coefficients for {config.model}/{config.hardware}/tp{config.tp}; "
                + (f"available: {', '.join(have)}" if have else "the shipped table has none (no fit passed "
                   "cross-validation, docs/validation.md)")
                + " (give --alpha-coeffs and --beta-coeffs, or use --latency-model roofline)"
            )
        _check_precision(config, entry)
        alpha = alpha or tuple(entry["alpha"])
        beta = beta or tuple(entry["beta"])
        source = entry.get("source", "blis/latency/coefficients/blackbox.yaml")
    return BlackboxModel(alpha=tuple(map(float, alpha)), beta=tuple(map(float, beta)), source=source)
