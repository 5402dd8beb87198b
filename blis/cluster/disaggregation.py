"""Prefill/decode disaggregation: a request prefills on a prefill instance, its KV cache moves to a decode
instance, which streams the output.

Follows vLLM's disaggregated serving with a KV connector (NixlConnector) behind a proxy:
1. The prefill instance runs the request with ``max_tokens=1``: it computes the prompt and finishes.
2. The KV of the prompt moves to a decode instance: ``transfer_latency + bytes / bandwidth`` with
   ``bytes = kv_bytes_per_token(tp) x tp x prompt tokens`` (every TP rank sends its shard).
3. The decode instance gets the request after its API server's queueing delay and the transfer; it holds
   the prompt's KV without computing it, recomputes the last prompt token (as vLLM does with a remote
   prefill) and samples the first token the client sees, then decodes the rest.

So TTFT = prefill queueing + prefill + transfer + decode queueing + one decode-side step: the transfer is in
TTFT, and every inter-token gap comes from the decode instance. Simplifications: the prefill instance
frees the request's blocks when it finishes (vLLM keeps them until the decode side has read them), and the
decode instance allocates the blocks when it schedules the request, after the transfer (vLLM allocates
them before pulling).
"""

from __future__ import annotations

from collections.abc import Callable

from blis.config import SimConfig
from blis.engine.timeline import RequestLog
from blis.errors import BlisInputError


def kv_bytes_per_token(config: SimConfig, override: float | None = None) -> tuple[float, str]:
    """KV bytes one prompt token occupies summed over the TP GPUs of ``config``, and where it came from."""
    if override is not None:
        return float(override), "pd_kv_bytes_per_token"
    from blis.physics.model_spec import get_model, load_hf_config

    try:
        spec = load_hf_config(config.model_config_path) if config.model_config_path else get_model(config.model)
    except BlisInputError as exc:
        raise BlisInputError(f"pd_kv_bytes_per_token: cannot size the KV transfer ({exc}); "
                             "give --pd-kv-bytes-per-token") from None
    return float(spec.kv_bytes_per_token(config.tp) * config.tp), f"model spec {spec.name} tp{config.tp}"


def transfer_time_us(prompt_tokens: int, bytes_per_token: float, bandwidth_gb_s: float, latency_ms: float) -> int:
    """Time (us) to move the KV of ``prompt_tokens`` tokens at ``bandwidth_gb_s`` (1e9 bytes/s)."""
    if not bandwidth_gb_s > 0:
        raise BlisInputError(f"pd_transfer_bandwidth: must be > 0 GB/s (got {bandwidth_gb_s})")
    return round(latency_ms * 1000.0 + prompt_tokens * bytes_per_token / (bandwidth_gb_s * 1e3))


class PrefillLog(RequestLog):
    """The prefill side's request log: a finished prefill hands the request over (``handoff(idx)``, called
    at the end of the engine step that finished it)."""

    def __init__(self, num_requests: int, handoff: Callable[[int], None]) -> None:
        super().__init__(num_requests)
        self._handoff = handoff

    def on_finished(self, idx: int, step: int) -> None:
        self.finish_step[idx] = step
        self._handoff(idx)
