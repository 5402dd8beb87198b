"""What to plan: SLOs, candidate axes and search settings (validated pydantic models at the edge)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from pydantic import BaseModel, ConfigDict, Field, model_validator

ROUTINGS_DEFAULT = ("least-loaded",)


class SLO(BaseModel):
    """Latency limits on the 99th percentile (milliseconds), over the measured (post-warm-up) requests.

    With ``goodput`` set, the test is instead: at least this fraction of measured requests meet every given
    limit individually (their own TTFT, TPOT and E2E)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ttft_p99_ms: Optional[float] = Field(None, gt=0, le=1e7, description="P99 time to first token, ms")
    tpot_p99_ms: Optional[float] = Field(None, gt=0, le=1e7, description="P99 time per output token, ms")
    e2e_p99_ms: Optional[float] = Field(None, gt=0, le=1e8, description="P99 end-to-end latency, ms")
    goodput: Optional[float] = Field(None, gt=0, le=1, description="fraction of requests meeting every limit")

    @model_validator(mode="after")
    def _some_limit(self) -> SLO:
        if not self.limits():
            raise ValueError("slo: give at least one of ttft_p99_ms, tpot_p99_ms, e2e_p99_ms "
                             "(--slo-ttft-p99-ms, --slo-tpot-p99-ms, --slo-e2e-p99-ms)")
        return self

    def limits(self) -> dict[str, float]:
        """metric ('ttft', 'tpot', 'e2e') -> limit in ms, for the limits given."""
        out = {}
        for metric in ("ttft", "tpot", "e2e"):
            v = getattr(self, f"{metric}_p99_ms")
            if v is not None:
                out[metric] = float(v)
        return out


class SearchSettings(BaseModel):
    """How hard the planner looks. Defaults are what `blis plan` uses."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seeds: int = Field(3, ge=1, le=32, description="workload seeds per probe (p99 confidence interval across them)")
    seed: int = Field(42, ge=0, description="first seed; probes use seed, seed+1, ...")
    probe_seconds: float = Field(40.0, gt=0, le=1e5, description="simulated seconds of arrivals per probe and "
                                 "seed (at least; probes last 8 full-batch request latencies when longer)")
    min_requests: int = Field(1500, ge=200, le=10_000_000, description="fewest requests per probe and seed")
    max_requests: int = Field(20000, ge=200, le=10_000_000, description="most requests per probe and seed")
    warmup_fraction: float = Field(0.2, ge=0.0, lt=0.9,
                                   description="first fraction of the arrival span discarded as warm-up")
    rate_tolerance: float = Field(0.02, gt=0.0, le=0.5,
                                  description="bisection stops when hi/lo <= 1 + this (relative rate)")
    max_rate: float = Field(1e5, gt=0, description="largest rate per instance considered, requests/s")
    min_rate: float = Field(0.05, gt=0, description="below this rate per instance a candidate is infeasible")
    reuse_brackets: bool = Field(True, description="start each TP's search from its smaller-TP neighbour's answer")

    @model_validator(mode="after")
    def _ordered(self) -> SearchSettings:
        if self.min_requests > self.max_requests:
            raise ValueError(f"max_requests: must be >= min_requests ({self.min_requests})")
        return self


@dataclass(frozen=True)
class Candidate:
    """One deployment shape: a model on a GPU type with TP, engine limits, optional P/D split, routing.

    ``pd``: (prefill instances, decode instances) in one serving unit, or None for plain instances. The
    planner's "instance" is one unit: 1 instance of ``tp`` GPUs, or P + D instances of ``tp`` GPUs each."""

    model: str
    hardware: str
    tp: int
    max_num_seqs: Optional[int] = None
    max_num_batched_tokens: Optional[int] = None
    pd: Optional[tuple[int, int]] = None
    routing: str = "least-loaded"

    @property
    def gpus_per_unit(self) -> int:
        return self.tp * (1 if self.pd is None else self.pd[0] + self.pd[1])

    @property
    def chain_key(self) -> tuple:
        """Candidates sharing this key differ only in TP: each one's search starts from its neighbour's."""
        return (self.model, self.hardware, self.max_num_seqs, self.max_num_batched_tokens, self.pd, self.routing)

    def label(self) -> str:
        parts = [self.model, self.hardware, f"TP{self.tp}"]
        if self.max_num_seqs is not None:
            parts.append(f"seqs{self.max_num_seqs}")
        if self.max_num_batched_tokens is not None:
            parts.append(f"btok{self.max_num_batched_tokens}")
        if self.pd is not None:
            parts.append(f"P{self.pd[0]}D{self.pd[1]}")
        return " ".join(parts)
