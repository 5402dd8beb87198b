"""Typed, validated configuration: what to simulate (model, hardware, engine limits, workload)."""

from __future__ import annotations

from typing import Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator

from blis.workload.spec import Workload


class EngineConfig(BaseModel):
    """vLLM-V1 scheduler and KV-cache settings of one serving instance (vLLM's names and defaults)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_num_seqs: int = Field(256, ge=1, le=65536, description="most running requests in a step")
    max_num_batched_tokens: int = Field(2048, ge=1, le=1_048_576, description="token budget of one step")
    long_prefill_token_threshold: int = Field(
        0, ge=0, description="cap on one request's prefill chunk per step; 0 = off"
    )
    block_size: int = Field(16, ge=1, le=1024, description="tokens per KV block")
    total_kv_blocks: Optional[int] = Field(
        None, ge=1, description="KV blocks on the instance; None = derived from model and hardware"
    )
    enable_prefix_caching: bool = True
    max_model_len: Optional[int] = Field(
        None, ge=2, description="longest prompt+output in tokens; longer prompts are rejected"
    )
    gpu_memory_utilization: float = Field(0.9, gt=0.0, le=1.0)
    async_scheduling: bool = Field(
        True, description="vLLM async scheduling (default since vLLM 0.14): the next step is scheduled while "
        "the current one runs, so a request that arrives during a step joins one step later"
    )


class SimConfig(BaseModel):
    """One simulation: a model on some hardware, an engine configuration, a latency model, a workload."""

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())

    model: str = Field("llama-2-7b", min_length=1, description="registry name or HuggingFace id")
    hardware: str = Field("H100", min_length=1)
    tp: int = Field(1, ge=1, le=64, description="tensor-parallel degree")
    latency_model: Optional[str] = Field(None, description="registry name; None = choose automatically")
    alpha_coeffs: Optional[tuple[float, float, float]] = Field(
        None, description="blackbox a0 (us), a1 (us/input token), a2 (us/output token)"
    )
    beta_coeffs: Optional[tuple[float, float, float]] = Field(
        None, description="blackbox b0 (us/step), b1 (us/prefill token), b2 (us/decode token)"
    )
    model_config_path: Optional[str] = Field(None, description="HuggingFace config.json to read")
    hardware_file: Optional[str] = Field(None, description="JSON/YAML file adding or overriding hardware")
    bench_data_path: Optional[str] = Field(None, description="bench_data/<gpu> folder for roofline-v2")
    calibration: str = Field(
        "auto", min_length=1, description="which fitted coefficients apply: auto (a shipped per-setup refit that "
        "passed leave-one-run-out validation, else the per-GPU physics), generic (per-GPU physics only), or the "
        "path of a file written by `blis calibrate` (roofline parameters or blackbox entries)"
    )
    calibration_file: Optional[str] = Field(
        None, description="older name for calibration=PATH (a coefficients file from `blis calibrate`)"
    )
    engine: EngineConfig = Field(default_factory=EngineConfig)
    workload: Workload = Field(default_factory=lambda: Workload.preset("chatbot"))
    horizon_us: Optional[int] = Field(
        None, ge=1, description="stop simulating at this time (us); unfinished requests are reported"
    )

    @field_validator("calibration")
    @classmethod
    def _calibration_choice(cls, v: str) -> str:
        from blis.latency.calibration import check_choice

        return check_choice(v)

    @field_validator("alpha_coeffs", "beta_coeffs")
    @classmethod
    def _finite_non_negative(cls, v):
        if v is not None and any(not (c >= 0.0) or c == float("inf") for c in v):
            raise ValueError("coefficients must be finite and >= 0 microseconds")
        return v
