"""The parts a ``Workload`` is built from: length distributions, load stages, shared-prefix prompt sets, the
length source every workload and client share, and the clients of a mixed workload (pydantic, frozen)."""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator

from blis.workload import arrivals as arr
from blis.workload.lengths import clamped_gaussian
from blis.workload.presets import PRESETS, available_presets

ArrivalName = Literal[
    "constant", "poisson", "gamma", "weibull", "inference-perf-constant", "inference-perf-poisson"
]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class LengthDist(_Frozen):
    """A length in tokens: clamped Gaussian ``round(clamp(N(mean, std), min, max))`` (``kind: gaussian``), or
    uniform integers in ``[min, max]`` (``kind: uniform``, what `vllm bench serve`'s random dataset draws)."""

    mean: float = Field(ge=0, description="mean, tokens")
    std: float = Field(0.0, ge=0, description="standard deviation, tokens (gaussian only)")
    min: int = Field(1, ge=1, description="smallest length, tokens")
    max: int = Field(ge=1, description="largest length, tokens")
    kind: Literal["gaussian", "uniform"] = Field("gaussian", description="gaussian (clamped) or uniform")

    @model_validator(mode="after")
    def _ordered(self) -> LengthDist:
        if self.min > self.max:
            raise ValueError(f"max: must be >= min (got min={self.min}, max={self.max})")
        return self

    @classmethod
    def vllm_random(cls, length: int, range_ratio: float = 0.0) -> LengthDist:
        """vLLM's random dataset: uniform integers in ``[floor(L(1-r)), ceil(L(1+r))]``, at least 1 token."""
        if not 0.0 <= range_ratio < 1.0:
            raise ValueError(f"range_ratio: must be in [0, 1) (got {range_ratio})")
        if length < 1:
            raise ValueError(f"input_len/output_len: must be >= 1 token (got {length})")
        lo = max(1, math.floor(length * (1 - range_ratio)))
        hi = max(lo, math.ceil(length * (1 + range_ratio)))
        return cls(mean=(lo + hi) / 2, min=lo, max=hi, kind="uniform")

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` lengths (int64 tokens); a fixed length (min == max) draws nothing."""
        if self.kind == "uniform":
            if self.min == self.max:
                return np.full(n, self.min, dtype=np.int64)
            return rng.integers(self.min, self.max + 1, n).astype(np.int64)
        return clamped_gaussian(rng, n, self.mean, self.std, self.min, self.max)


class Stage(_Frozen):
    """One load stage: ``rate`` requests/s for ``duration_s`` seconds (YAML may say ``duration``)."""

    rate: float = Field(gt=0, le=1e7, description="requests per second")
    duration_s: float = Field(
        gt=0, le=1e8, validation_alias=AliasChoices("duration_s", "duration"), description="seconds"
    )


class SharedPrefix(_Frozen):
    """G groups x P prompts sharing a system prompt per group (inference-perf ``shared_prefix``).

    Lengths in tokens. ``token_inflation``/``token_noise``/``bos_tokens`` model how a client that decodes
    random token ids to text and tokenizes again ends up with longer, slightly varying prompts; the defaults
    give exact lengths (input = system_prompt_len + question_len).
    """

    num_groups: int = Field(10, ge=1, le=1_000_000, description="distinct system prompts")
    prompts_per_group: int = Field(10, ge=1, le=1_000_000, description="questions (users) per system prompt")
    system_prompt_len: int = Field(100, ge=0, le=10_000_000, description="tokens of each system prompt")
    question_len: int = Field(50, ge=0, le=10_000_000, description="tokens of each question")
    output_len: int = Field(50, ge=1, le=10_000_000, description="tokens generated per request")
    multi_turn: bool = Field(
        False, description="users' conversations grow turn by turn (parent = previous turn)"
    )
    shuffle: bool = Field(
        False, description="prompts cycle in a seeded random order instead of group by group"
    )
    token_inflation: float = Field(1.0, gt=0, le=10, description="re-tokenized / nominal length ratio")
    token_noise: float = Field(0.0, ge=0, le=100, description="length std per sqrt(nominal token)")
    bos_tokens: int = Field(0, ge=0, le=16, description="tokens the server adds at the start of each prompt")

    @model_validator(mode="after")
    def _non_empty(self) -> SharedPrefix:
        if self.bos_tokens + self.system_prompt_len + self.question_len < 1:
            raise ValueError("question_len: system_prompt_len + question_len must be >= 1 token")
        return self


class _Source(_Frozen):
    """Where request lengths come from (exactly one of preset, input+output, shared_prefix)."""

    preset_name: str | None = Field(
        None, validation_alias=AliasChoices("preset_name", "preset"), description="length preset"
    )
    input: LengthDist | None = Field(None, description="prompt length distribution (tokens)")
    output: LengthDist | None = Field(None, description="output length distribution (tokens)")
    prefix_tokens: int = Field(
        0, ge=0, le=10_000_000, description="tokens of one prefix shared by every request"
    )
    shared_prefix_spec: SharedPrefix | None = Field(
        None, validation_alias=AliasChoices("shared_prefix_spec", "shared_prefix")
    )

    @model_validator(mode="before")
    @classmethod
    def _lengths_shorthand(cls, data: Any) -> Any:
        # YAML convenience: ``lengths: chatbot`` or ``lengths: {input: {...}, output: {...}}``.
        if isinstance(data, dict) and "lengths" in data:
            data = dict(data)
            lengths = data.pop("lengths")
            if isinstance(lengths, str):
                data["preset"] = lengths
            elif isinstance(lengths, dict):
                data.update(lengths)
            else:
                raise ValueError("lengths: must be a preset name or a mapping with input and output")
        return data

    @field_validator("preset_name")
    @classmethod
    def _known_preset(cls, v: str | None) -> str | None:
        if v is not None and v not in PRESETS:
            raise ValueError(f"unknown preset {v!r}; known presets: {', '.join(available_presets())}")
        return v

    def _length_sources(self) -> list[str]:
        found = []
        if self.preset_name is not None:
            found.append("preset")
        if self.input is not None or self.output is not None:
            if self.input is None or self.output is None:
                raise ValueError("input/output: give both length distributions, or a preset")
            found.append("input+output")
        if self.shared_prefix_spec is not None:
            found.append("shared_prefix")
            if self.prefix_tokens:
                raise ValueError("prefix_tokens: not used with shared_prefix (set system_prompt_len instead)")
        return found

    def _lengths(self) -> tuple[LengthDist, LengthDist]:
        if self.preset_name is not None:
            (im, isd, ilo, ihi), (om, osd, olo, ohi) = PRESETS[self.preset_name]
            return (
                LengthDist(mean=im, std=isd, min=ilo, max=ihi),
                LengthDist(mean=om, std=osd, min=olo, max=ohi),
            )
        assert self.input is not None and self.output is not None
        return self.input, self.output


class Client(_Source):
    """One client of a mixed workload: its share of the aggregate rate, arrival process and lengths."""

    name: str = Field(min_length=1, description="label of this client's requests")
    rate_fraction: float = Field(1.0, gt=0, description="share of the workload rate (shares are normalized)")
    arrival: ArrivalName | None = Field(None, description="arrival process; None = the workload's")
    cv: float | None = Field(None, gt=0, le=100, description="gap coefficient of variation (gamma, weibull)")
    concurrency: int | None = Field(
        None, ge=1, le=10_000_000, description="closed loop: this client's users (in-flight requests)"
    )
    think_time_ms: float = Field(0.0, ge=0, le=1e9, description="closed loop: pause before a user's next request, ms")

    @model_validator(mode="after")
    def _one_source(self) -> Client:
        if self.think_time_ms and self.concurrency is None:
            raise ValueError(f"think_time_ms: only with concurrency (client {self.name!r} is open-loop)")
        found = self._length_sources()
        if len(found) != 1:
            raise ValueError(
                f"clients: client {self.name!r} needs exactly one of preset, input+output, shared_prefix "
                f"(got {', '.join(found) or 'none'})"
            )
        if self.cv is not None and self.arrival is not None and self.arrival not in arr.CV_PROCESSES:
            raise ValueError(
                f"cv: only used by gamma and weibull arrivals (client {self.name!r} uses {self.arrival})"
            )
        return self
