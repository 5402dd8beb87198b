"""``Workload``: a frozen, validated description of the requests to simulate; ``generate()`` makes them.

One workload has exactly one source of requests:
- a length preset (``preset``: chatbot, contentgen, summarization, multidoc) or explicit clamped-Gaussian
  ``input``/``output`` lengths, optionally with ``prefix_tokens`` shared by every request;
- a shared-prefix prompt set (``shared_prefix``, inference-perf style, single- or multi-turn);
- a CSV trace (``trace``);
- several ``clients``, each with its own share of the rate, arrival process and lengths, merged in time.

Arrivals come from ``arrival`` at ``rate`` requests/s for ``num_requests`` requests, or, when ``stages`` are
given, from consecutive load stages (rate x duration) separated by ``stage_gap_s`` seconds. Generation is
deterministic for a given spec (``seed``) and independent of anything else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from blis.errors import BlisInputError, format_validation_error
from blis.workload import arrivals as arr
from blis.workload.lengths import clamped_gaussian
from blis.workload.presets import PRESETS, available_presets
from blis.workload.request_table import RequestTable
from blis.workload.shared_prefix import shared_prefix_columns

ArrivalName = Literal[
    "constant", "poisson", "gamma", "weibull", "inference-perf-constant", "inference-perf-poisson"
]
DEFAULT_NUM_REQUESTS = 100


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class LengthDist(_Frozen):
    """Clamped Gaussian length: ``round(clamp(N(mean, std), min, max))`` tokens."""

    mean: float = Field(ge=0, description="mean, tokens")
    std: float = Field(0.0, ge=0, description="standard deviation, tokens")
    min: int = Field(1, ge=1, description="smallest length, tokens")
    max: int = Field(ge=1, description="largest length, tokens")

    @model_validator(mode="after")
    def _ordered(self) -> LengthDist:
        if self.min > self.max:
            raise ValueError(f"max: must be >= min (got min={self.min}, max={self.max})")
        return self


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

    @model_validator(mode="after")
    def _one_source(self) -> Client:
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


class Workload(_Source):
    """What requests arrive, when, and how long they are. Frozen, hashable, JSON-serialisable.

    Build one with ``Workload.preset``, ``Workload.shared_prefix``, ``Workload.from_trace_csv``,
    ``Workload.from_yaml`` or ``Workload.from_inference_perf_profile``; ``generate()`` returns the requests.
    ``Workload()`` alone is the chatbot preset.
    """

    name: str = Field("", description="label; empty = derived from the source")
    trace_path: str | None = Field(
        None, validation_alias=AliasChoices("trace_path", "trace"), description="CSV trace to replay"
    )
    clients: tuple[Client, ...] = Field((), description="mixed workload: one entry per client")
    rate: float = Field(1.0, gt=0, le=1e7, description="aggregate requests per second (unused with stages)")
    num_requests: int | None = Field(
        None,
        ge=1,
        le=100_000_000,
        description="requests; None = 100, or all trace rows / stage arrivals (with stages: at most this)",
    )
    seed: int = Field(42, ge=0, le=2**63 - 1, description="random seed of every draw")
    arrival: ArrivalName = Field("constant", description="arrival process")
    cv: float = Field(1.0, gt=0, le=100, description="gap coefficient of variation (gamma, weibull only)")
    stages: tuple[Stage, ...] = Field(
        (), description="consecutive load stages; replace rate and num_requests"
    )
    stage_gap_s: float = Field(0.0, ge=0, le=1e6, description="idle seconds between stages")

    # ---- validation -------------------------------------------------------------------------------------
    @model_validator(mode="before")
    @classmethod
    def _defaults_and_client_rates(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        sources = (
            "preset",
            "preset_name",
            "input",
            "output",
            "shared_prefix",
            "shared_prefix_spec",
            "trace",
            "trace_path",
            "clients",
            "lengths",
        )
        if not any(data.get(k) is not None for k in sources):
            data["preset_name"] = "chatbot"
        clients = data.get("clients")
        if isinstance(clients, (list, tuple)) and any(isinstance(c, dict) and "rate" in c for c in clients):
            if not all(isinstance(c, dict) and "rate" in c and "rate_fraction" not in c for c in clients):
                raise ValueError(
                    "clients: give every client either a rate (req/s) or a rate_fraction, not a mix"
                )
            rates = [c["rate"] for c in clients]
            if not all(isinstance(r, (int, float)) and r > 0 for r in rates):
                raise ValueError("clients: each client rate must be a number > 0 requests/s")
            total = float(sum(rates))
            if data.get("rate") is not None and abs(float(data["rate"]) - total) > 1e-9 * total:
                raise ValueError(f"rate: {data['rate']} differs from the sum of the client rates ({total})")
            data["rate"] = total
            data["clients"] = [
                {**{k: v for k, v in c.items() if k != "rate"}, "rate_fraction": c["rate"] / total}
                for c in clients
            ]
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Workload:
        found = self._length_sources()
        if self.trace_path is not None:
            found.append("trace")
        if self.clients:
            found.append("clients")
            names = [c.name for c in self.clients]
            if len(set(names)) != len(names):
                raise ValueError(f"clients: client names must be distinct (got {names})")
        if len(found) != 1:
            raise ValueError(
                "workload: give exactly one of preset, input+output, shared_prefix, trace, clients "
                f"(got {', '.join(found)})"
            )
        if self.prefix_tokens and (self.trace_path is not None or self.clients):
            raise ValueError("prefix_tokens: only for preset or input+output workloads")
        if self.cv != 1.0 and self.arrival not in arr.CV_PROCESSES:
            raise ValueError(f"cv: only used by gamma and weibull arrivals (arrival is {self.arrival})")
        if self.trace_path is not None and self.stages:
            raise ValueError("stages: a trace has its own arrival times")
        return self

    # ---- constructors -----------------------------------------------------------------------------------
    @classmethod
    def preset(
        cls,
        name: str,
        rate: float = 1.0,
        num_requests: int = DEFAULT_NUM_REQUESTS,
        seed: int = 42,
        arrival: str = "constant",
        cv: float = 1.0,
        stages: list | None = None,
        stage_gap_s: float = 0.0,
    ) -> Workload:
        """A length preset (chatbot, contentgen, summarization, multidoc) at ``rate`` requests/s."""
        return cls.model_validate(
            {"preset_name": name, **_arrival_fields(rate, num_requests, seed, arrival, cv, stages, stage_gap_s)}
        )

    @classmethod
    def shared_prefix(
        cls,
        num_groups: int = 10,
        prompts_per_group: int = 10,
        system_prompt_len: int = 100,
        question_len: int = 50,
        output_len: int = 50,
        rate: float = 1.0,
        num_requests: int = DEFAULT_NUM_REQUESTS,
        multi_turn: bool = False,
        seed: int = 42,
        arrival: str = "constant",
        cv: float = 1.0,
        stages: list | None = None,
        stage_gap_s: float = 0.0,
        **prompt_options: Any,
    ) -> Workload:
        """inference-perf-style shared-prefix prompts (defaults are inference-perf's: 10 x 10, 100+50 -> 50).

        ``prompt_options``: shuffle, token_inflation, token_noise, bos_tokens (see ``SharedPrefix``).
        """
        spec = dict(
            num_groups=num_groups,
            prompts_per_group=prompts_per_group,
            system_prompt_len=system_prompt_len,
            question_len=question_len,
            output_len=output_len,
            multi_turn=multi_turn,
            **prompt_options,
        )
        return cls.model_validate(
            {"shared_prefix_spec": spec, **_arrival_fields(rate, num_requests, seed, arrival, cv, stages, stage_gap_s)}
        )

    @classmethod
    def from_trace_csv(cls, path: str | Path, num_requests: int | None = None) -> Workload:
        """Replay a CSV trace (``arrival_time_us,input_tokens,output_tokens[,prefix_group,...]``)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"trace: file not found: {path}")
        return cls(trace_path=str(path.resolve()), num_requests=num_requests)

    @classmethod
    def from_yaml(cls, path: str | Path) -> Workload:
        """A workload YAML file (one source or several ``clients``), or an inference-perf ``profile.yaml``."""
        from blis.workload.yaml_file import load_workload_yaml

        return _validate_file(cls, load_workload_yaml(path), path)

    @classmethod
    def from_inference_perf_profile(cls, path: str | Path, seed: int = 42, **options: Any) -> Workload:
        """Regenerate an inference-perf run's load from its ``profile.yaml`` (or ``results/config.yaml``).

        ``options`` (see ``blis.workload.yaml_file.inference_perf_profile_spec``): ``client_version``
        ("oct25", what the shared H100 runs used, or "v0.4"), ``stage_gap_s``, ``token_inflation``,
        ``token_noise``, ``bos_tokens``.
        """
        from blis.workload.yaml_file import inference_perf_profile_spec, read_yaml

        return _validate_file(cls, inference_perf_profile_spec(read_yaml(path), seed, path, **options), path)

    def with_overrides(
        self,
        rate: float | None = None,
        num_requests: int | None = None,
        seed: int | None = None,
        arrival: str | None = None,
        cv: float | None = None,
    ) -> Workload:
        """A copy with the given fields replaced (None keeps the current value); validated again."""
        if rate is not None and (self.stages or self.trace_path is not None):
            what = "load stages" if self.stages else "a trace"
            raise BlisInputError(f"rate: this workload's arrivals come from {what}; --rate does not apply")
        if (arrival is not None or cv is not None) and self.trace_path is not None:
            raise BlisInputError("arrival: a trace has its own arrival times; --arrival does not apply")
        data = self.model_dump()
        updates = {"rate": rate, "num_requests": num_requests, "seed": seed, "arrival": arrival, "cv": cv}
        data.update({k: v for k, v in updates.items() if v is not None})
        if arrival is not None and cv is None and arrival not in arr.CV_PROCESSES:
            data["cv"] = 1.0
        return type(self).model_validate(data)

    # ---- description ------------------------------------------------------------------------------------
    @property
    def kind(self) -> str:
        """'preset', 'lengths', 'shared_prefix', 'trace' or 'mix'."""
        if self.trace_path is not None:
            return "trace"
        if self.clients:
            return "mix"
        if self.shared_prefix_spec is not None:
            return "shared_prefix"
        return "preset" if self.preset_name is not None else "lengths"

    @property
    def label(self) -> str:
        """``name`` or a short description of the source."""
        if self.name:
            return self.name
        if self.kind == "trace":
            return Path(self.trace_path or "").stem
        return self.preset_name if self.kind == "preset" else self.kind

    # ---- generation -------------------------------------------------------------------------------------
    def generate(self) -> RequestTable:
        """The requests, sorted by arrival. Pure: the same spec always gives the same table."""
        if self.trace_path is not None:
            from blis.workload.trace_csv import read_trace_csv

            table = read_trace_csv(self.trace_path)
            if self.name:
                table.client_names = [self.name] if len(table.client_names) == 1 else table.client_names
        elif self.clients:
            table = self._generate_mix()
        else:
            n = self.num_requests or DEFAULT_NUM_REQUESTS
            table = _generate_source(
                self,
                self.label,
                self.rate,
                n,
                self._stage_list(1.0),
                self.arrival,
                self.cv,
                self.stage_gap_s,
                self.seed,
                0,
            )
        if self.num_requests is not None and len(table) > self.num_requests:
            table = table.take(np.arange(self.num_requests))
        table.validate()
        return table

    def _stage_list(self, share: float) -> list[tuple[float, float]]:
        return [(s.rate * share, s.duration_s) for s in self.stages]

    def _generate_mix(self) -> RequestTable:
        fractions = np.array([c.rate_fraction for c in self.clients])
        shares = fractions / fractions.sum()
        total = self.num_requests or DEFAULT_NUM_REQUESTS
        counts = _largest_remainder(total, shares)
        tables = []
        for i, (client, share, n) in enumerate(zip(self.clients, shares, counts)):
            arrival = client.arrival or self.arrival
            cv = client.cv if client.cv is not None else (self.cv if arrival in arr.CV_PROCESSES else 1.0)
            tables.append(
                _generate_source(
                    client,
                    client.name,
                    self.rate * share,
                    int(n),
                    self._stage_list(float(share)),
                    arrival,
                    cv,
                    self.stage_gap_s,
                    self.seed,
                    i + 1,
                )
            )
        return RequestTable.concat(tables)


def _validate_file(cls: type[Workload], data: dict[str, Any], path: str | Path) -> Workload:
    """Validate fields read from a file; a bad field raises one line naming the file and the field."""
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise BlisInputError(format_validation_error(exc, where=str(path))) from None


def _arrival_fields(rate, num_requests, seed, arrival, cv, stages, stage_gap_s) -> dict:
    """The arrival part of a Workload spec (with stages, num_requests is only a cap and left unset)."""
    return {"rate": rate, "num_requests": None if stages else num_requests, "seed": seed, "arrival": arrival,
            "cv": cv, "stages": tuple(stages or ()), "stage_gap_s": stage_gap_s}


def _largest_remainder(total: int, shares: np.ndarray) -> np.ndarray:
    """Split ``total`` into integers proportional to ``shares`` (Hamilton's method)."""
    exact = total * shares
    counts = np.floor(exact).astype(np.int64)
    left = total - int(counts.sum())
    counts[np.argsort(-(exact - counts), kind="stable")[:left]] += 1
    return counts


def _generate_source(
    source: _Source,
    name: str,
    rate: float,
    n: int,
    stages: list[tuple[float, float]],
    arrival: str,
    cv: float,
    stage_gap_s: float,
    seed: int,
    key: int,
) -> RequestTable:
    """Requests of one source: arrivals from their own random stream, lengths from another."""
    arrival_rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(key, 0)))
    length_rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(key, 1)))
    if stages:
        t, stage = arr.staged_arrivals(arrival, arrival_rng, stages, stage_gap_s, cv)
        slot = np.arange(len(t)) - np.searchsorted(stage, stage, side="left")
    else:
        t = arr.arrivals_count(arrival, arrival_rng, n, rate, cv)
        slot = np.arange(len(t))
    m = len(t)
    if source.shared_prefix_spec is not None:
        cols = shared_prefix_columns(source.shared_prefix_spec, slot, length_rng)
    else:
        inp, out = source._lengths()
        p = source.prefix_tokens
        cols = {
            "input_tokens": p + clamped_gaussian(length_rng, m, inp.mean, inp.std, inp.min, inp.max),
            "output_tokens": clamped_gaussian(length_rng, m, out.mean, out.std, out.min, out.max),
            "prefix_group": np.full(m, 0 if p else -1, dtype=np.int64),
            "prefix_len": np.full(m, p, dtype=np.int64),
        }
    return RequestTable(arrival_us=arr.to_us(t), **cols, client_names=[name])
