"""Typed, validated configuration: what to simulate (model, hardware, engine limits, workload).

Every scalar field here is also a ``python -m blis run`` flag (see ``blis/commands/_flags.py``): give a new
field a ``description`` with its unit and bounds (``ge``/``le``...) and the flag, its help and its checks follow.
"""

from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from blis.workload.spec import Workload

# vLLM's --block-size choices (vllm/config/cache.py BlockSize)
VLLM_BLOCK_SIZES = (1, 8, 16, 32, 64, 128)
MAX_TIME_US = 10**15  # the simulated clock is int64 microseconds; 31 years leaves room for sums
MAX_COEFF_US = 1e9  # a blackbox coefficient above 1000 s is a unit mistake


class EngineConfig(BaseModel):
    """vLLM-V1 scheduler and KV-cache settings of one serving instance (vLLM's names and defaults)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_num_seqs: int = Field(256, ge=1, le=65536, description="most running requests in a step")
    max_num_batched_tokens: int = Field(2048, ge=1, le=1_048_576, description="token budget of one step, tokens")
    long_prefill_token_threshold: int = Field(
        0, ge=0, le=1_048_576, description="cap on one request's prefill chunk per step, tokens; 0 = off"
    )
    block_size: int = Field(16, ge=1, le=1024, description="tokens per KV block",
                            json_schema_extra={"choices": list(VLLM_BLOCK_SIZES)})
    total_kv_blocks: Optional[int] = Field(
        None, ge=1, le=10**9, description="KV blocks on the instance (default: derived from model, hardware and TP)"
    )
    enable_prefix_caching: bool = Field(True, description="automatic prefix caching")
    max_model_len: Optional[int] = Field(
        None, ge=2, le=10**9, description="longest prompt+output in tokens; longer prompts are rejected"
    )
    gpu_memory_utilization: float = Field(0.9, gt=0.0, le=1.0, description="fraction of GPU memory vLLM may use")
    async_scheduling: bool = Field(
        True, description="vLLM async scheduling (default since vLLM 0.14): the next step is scheduled while "
        "the current one runs, so a request that arrives during a step joins one step later"
    )


class ServingConfig(BaseModel):
    """Fields every run has: the instance type (model on some hardware, engine, latency model), the workload
    and the horizon. `SimConfig` (one instance) and `blis.ClusterConfig` (many) are both made of these."""

    # defer_build: validators are built on first use, so a single-instance run never builds ClusterConfig's
    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=(), defer_build=True)

    model: str = Field("llama-2-7b", min_length=1, description="registry name or HuggingFace id")
    hardware: str = Field("H100", min_length=1, description="GPU name, e.g. H100, H200, A100-80GB")
    tp: int = Field(1, ge=1, le=64, description="tensor-parallel degree")
    # --- precision and expert parallelism (issue #13; blis.physics.precision) ---
    quantization: Optional[Literal["bf16", "fp16", "fp8", "mxfp4", "nvfp4", "int4"]] = Field(
        None, description="weight format as vLLM --quantization: fp8 (W8A8), mxfp4 / nvfp4 (4-bit block-scaled), "
        "int4 (weight-only, group 128); None = the checkpoint's (its quantization_config or registry entry)"
    )
    kv_cache_dtype: Literal["auto", "fp8"] = Field(
        "auto", description="KV-cache element type: auto = the model's dtype (2 bytes), fp8 = 1 byte per element"
    )
    ep: int = Field(1, ge=1, le=64, description="expert-parallel degree (GPUs the MoE experts are spread over; "
                    "divides tp; vLLM --enable-expert-parallel is ep = tp)")
    latency_model: Optional[str] = Field(
        None, description="latency model (default: chosen automatically, the reason goes to stderr)"
    )
    alpha_coeffs: Optional[tuple[float, float, float]] = Field(
        None, description="blackbox queueing delay a0 microseconds + a1 microseconds per input token; a2 "
        "microseconds added per output token"
    )
    beta_coeffs: Optional[tuple[float, float, float]] = Field(
        None, description="blackbox step time b0 microseconds + b1 per prefill token + b2 per decode token"
    )
    model_config_path: Optional[str] = Field(None, description="HuggingFace config.json to read")
    hardware_file: Optional[str] = Field(None, description="JSON/YAML file adding or overriding hardware")
    bench_data_path: Optional[str] = Field(
        None, description="roofline-v2 kernel tables: a bench_data/<gpu> folder, 'aiconfigurator' or "
                          "'aiconfigurator:<system>/<backend>/<version>'")
    calibration: str = Field(
        "auto", min_length=1, description="which fitted coefficients apply: auto (a shipped per-setup refit that "
        "passed leave-one-run-out validation, else the per-GPU physics), generic (per-GPU physics only), or the "
        "path of a file written by `blis calibrate` (roofline parameters or blackbox entries)"
    )
    calibration_file: Optional[str] = Field(
        None, description="older name for calibration=PATH (a coefficients file from `blis calibrate`; it implies "
        "its latency model)"
    )
    engine: EngineConfig = Field(default_factory=EngineConfig)
    workload: Workload = Field(default_factory=lambda: Workload.preset("chatbot"))
    horizon_us: Optional[int] = Field(
        None, ge=1, le=MAX_TIME_US, description="stop simulating at this time (us); unfinished requests are reported"
    )

    @model_validator(mode="before")
    @classmethod
    def _coefficients_mean_blackbox(cls, data: Any) -> Any:
        """Blackbox coefficients select the blackbox model; with another model they would be ignored: refused."""
        if isinstance(data, dict) and (data.get("alpha_coeffs") is not None or data.get("beta_coeffs") is not None):
            which = "alpha_coeffs" if data.get("alpha_coeffs") is not None else "beta_coeffs"
            chosen = data.get("latency_model")
            if chosen is None:
                data = {**data, "latency_model": "blackbox"}
            elif chosen != "blackbox":
                raise ValueError(f"{which}: blackbox coefficients do not apply to latency model {chosen!r}")
        return data

    @field_validator("calibration")
    @classmethod
    def _calibration_choice(cls, v: str) -> str:
        from blis.latency.calibration import check_choice

        return check_choice(v)

    @field_validator("alpha_coeffs", "beta_coeffs")
    @classmethod
    def _finite_non_negative(cls, v):
        if v is not None and any(not (0.0 <= c <= MAX_COEFF_US) for c in v):
            raise ValueError(f"coefficients must be finite, >= 0 and <= {MAX_COEFF_US:g} microseconds (got {v})")
        return v


class SimConfig(ServingConfig):
    """One simulation: a model on some hardware, an engine configuration, a latency model, a workload."""
