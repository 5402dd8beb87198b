"""Request and response bodies of the HTTP API (pydantic; they make the OpenAPI schema)."""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

from blis.config import SimConfig

CacheMode = Literal["cold", "warm"]


class Benchmark(BaseModel):
    """One measured kernel. Units: microseconds, TFLOP/s, GB/s, FLOP/byte. Extra fields are ignored."""

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)

    kernel_type: str = Field(max_length=64, description="gemv, gemm or attention")
    shape: list[int] = Field(min_length=1, max_length=6, description="gemv [N, K]; gemm [M, N, K]; attention "
                             "[batch, heads, kv_heads, q_len, kv_len, head_dim] or [batch, heads, seq_len, head_dim]")
    precision: str = Field(max_length=32, description="e.g. FP16, BF16, FP8, TF32 (case-insensitive)")
    measured_time_us: float = Field(gt=0, le=1e12, description="median kernel time, microseconds")
    measured_tflops: Optional[float] = Field(None, ge=0, le=1e9, description="TFLOP/s (recomputed when absent)")
    measured_bandwidth_gb_s: Optional[float] = Field(None, ge=0, le=1e9, description="GB/s")
    ai: Optional[float] = Field(None, ge=0, le=1e12, description="arithmetic intensity, FLOP/byte")
    cache: Optional[CacheMode] = Field(None, description="cold (L2 flushed between calls) or warm")


class ValidateRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    hardware_key: str = Field(max_length=64, description="hardware name or alias, e.g. gb10, H100")
    benchmarks: list[Benchmark] = Field(min_length=1, max_length=2000)
    cache: Optional[CacheMode] = Field(None, description="default cache mode of the rows (default: warm where "
                                       "the hardware's L2 is known, else cold)")


class ValidateResult(BaseModel):
    kernel_type: str
    shape: list[int]
    precision: str
    predicted_time_us: float
    measured_time_us: float
    error_pct: float = Field(description="(predicted - measured) / measured x 100")
    predicted_tflops: float
    measured_tflops: Optional[float]
    bottleneck: str
    ai: float
    cache: str
    memory_level: str
    efficiency: float
    ideal_time_us: float


class ValidateSummary(BaseModel):
    mean_error_pct: float = Field(description="mean |error|, percent")
    max_error_pct: float = Field(description="largest |error|, percent")
    num_benchmarks: int


class ValidateResponse(BaseModel):
    hardware: str
    results: list[ValidateResult]
    summary: ValidateSummary


class RooflineRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hardware: str = Field("H100", max_length=64)
    kernel_type: str = Field("gemm", max_length=64)
    shape: list[int] = Field([4096, 4096, 4096], min_length=1, max_length=6)
    precision: str = Field("bf16", max_length=32)
    cache: CacheMode = "cold"


class SimulateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    config: SimConfig = Field(default_factory=SimConfig, description="what `blis run` simulates")
    sweep_rates: Optional[list[float]] = Field(None, min_length=1, max_length=16,
                                               description="request rates (per second) for a sweep")


class SpotCheckRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hardware: str = Field("H100", max_length=64, description="the hardware to predict for")
    shape: list[int] = Field([4096, 4096, 4096], min_length=2, max_length=3,
                             description="[M, N, K] GEMM or [N, K] GEMV")
    precision: str = Field("bf16", max_length=32, description="a precision, or 'all'")
    repetitions: int = Field(20, ge=1, le=1000)
