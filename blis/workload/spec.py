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

Closed loop (``concurrency`` N, or per client): N users each send their next request when the previous one
has finished (plus ``think_time_ms``); with a ``rate`` as well, requests are also held back to the rate's
schedule (vllm bench serve's ``--request-rate`` with ``--max-concurrency``). ``generate()`` then gives the
schedule (zeros without a rate); the real send times are decided during the run (``blis.workload.closed_loop``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from pydantic import AliasChoices, Field, ValidationError, model_validator

from blis.errors import BlisInputError, format_validation_error
from blis.workload import arrivals as arr
from blis.workload.request_table import RequestTable
from blis.workload.shared_prefix import shared_prefix_columns
from blis.workload.sources import (  # noqa: F401  (re-exported: the models used to live here)
    ArrivalName,
    Client,
    LengthDist,
    SharedPrefix,
    Stage,
    _Source,
)

DEFAULT_NUM_REQUESTS = 100


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
    rate: float | None = Field(
        1.0, gt=0, le=1e7,
        description="aggregate requests per second (unused with stages); closed loop: a cap, None = no cap",
    )
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
    concurrency: int | None = Field(
        None, ge=1, le=10_000_000,
        description="closed loop: users, each sending its next request when its previous one finishes",
    )
    think_time_ms: float = Field(0.0, ge=0, le=1e9, description="closed loop: a user's pause before its next "
                                 "request, milliseconds")
    ramp_s: float = Field(0.0, ge=0, le=1e8, description="closed loop: users start evenly spread over this "
                          "many seconds (user u at u * ramp_s / concurrency)")

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
        if data.get("concurrency") is not None and "rate" not in data:
            data["rate"] = None  # closed loop without a rate cap
        clients = data.get("clients")
        if (isinstance(clients, (list, tuple)) and "rate" not in data and clients
                and all(isinstance(c, dict) and c.get("concurrency") is not None and "rate" not in c
                        for c in clients)):
            data["rate"] = None  # every client closed-loop and none capped
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
        _check_closed_loop(self)
        return self

    # ---- constructors -----------------------------------------------------------------------------------
    @classmethod
    def preset(
        cls,
        name: str,
        rate: float | None = None,
        num_requests: int = DEFAULT_NUM_REQUESTS,
        seed: int = 42,
        arrival: str = "constant",
        cv: float = 1.0,
        stages: list | None = None,
        stage_gap_s: float = 0.0,
        **closed_loop: Any,
    ) -> Workload:
        """A length preset (chatbot, contentgen, summarization, multidoc) at ``rate`` requests/s (default 1).

        ``closed_loop``: ``concurrency``, ``think_time_ms``, ``ramp_s`` (then ``rate`` is a cap, default none).
        """
        return cls.model_validate({"preset_name": name, **_arrival_fields(
            rate, num_requests, seed, arrival, cv, stages, stage_gap_s, closed_loop)})

    @classmethod
    def random(
        cls,
        input_len: int = 1024,
        output_len: int = 128,
        range_ratio: float = 0.0,
        prefix_len: int = 0,
        rate: float | None = None,
        num_requests: int = DEFAULT_NUM_REQUESTS,
        seed: int = 42,
        arrival: str = "constant",
        cv: float = 1.0,
        **closed_loop: Any,
    ) -> Workload:
        """`vllm bench serve`'s random dataset: prompt = ``prefix_len`` shared tokens + U[floor(L(1-r)),
        ceil(L(1+r))] tokens; output likewise (defaults are vLLM's: 1024 -> 128, ratio 0)."""
        try:
            inp, out = LengthDist.vllm_random(input_len, range_ratio), LengthDist.vllm_random(output_len, range_ratio)
        except ValueError as exc:
            raise BlisInputError(str(exc)) from None
        return cls.model_validate({"input": inp, "output": out, "prefix_tokens": prefix_len, **_arrival_fields(
            rate, num_requests, seed, arrival, cv, None, 0.0, closed_loop)})

    @classmethod
    def shared_prefix(
        cls,
        num_groups: int = 10,
        prompts_per_group: int = 10,
        system_prompt_len: int = 100,
        question_len: int = 50,
        output_len: int = 50,
        rate: float | None = None,
        num_requests: int = DEFAULT_NUM_REQUESTS,
        multi_turn: bool = False,
        seed: int = 42,
        arrival: str = "constant",
        cv: float = 1.0,
        stages: list | None = None,
        stage_gap_s: float = 0.0,
        concurrency: int | None = None,
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
        closed = {"concurrency": concurrency} if concurrency is not None else {}
        return cls.model_validate({"shared_prefix_spec": spec, **_arrival_fields(
            rate, num_requests, seed, arrival, cv, stages, stage_gap_s, closed)})

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
        concurrency: int | None = None,
        think_time_ms: float | None = None,
        ramp_s: float | None = None,
    ) -> Workload:
        """A copy with the given fields replaced (None keeps the current value); validated again.

        Making an open-loop workload closed-loop (``concurrency``) without a ``rate`` drops its rate: the
        users send as fast as their responses come back (no cap)."""
        if rate is not None and (self.stages or self.trace_path is not None):
            what = "load stages" if self.stages else "a trace"
            raise BlisInputError(f"rate: this workload's arrivals come from {what}; --rate does not apply")
        if (arrival is not None or cv is not None) and self.trace_path is not None:
            raise BlisInputError("arrival: a trace has its own arrival times; --arrival does not apply")
        data = self.model_dump()
        updates = {"rate": rate, "num_requests": num_requests, "seed": seed, "arrival": arrival, "cv": cv,
                   "concurrency": concurrency, "think_time_ms": think_time_ms, "ramp_s": ramp_s}
        data.update({k: v for k, v in updates.items() if v is not None})
        if concurrency is not None and rate is None and not self.closed_loop:
            data["rate"] = None
        if arrival is not None and cv is None and arrival not in arr.CV_PROCESSES:
            data["cv"] = 1.0
        return type(self).model_validate(data)

    # ---- description ------------------------------------------------------------------------------------
    @property
    def closed_loop(self) -> bool:
        """True when some requests wait for earlier ones to finish (``concurrency``, here or on a client)."""
        return self.concurrency is not None or any(c.concurrency is not None for c in self.clients)

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
                    None if self.rate is None else self.rate * share,
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


def _arrival_fields(rate, num_requests, seed, arrival, cv, stages, stage_gap_s, closed_loop=None) -> dict:
    """The arrival part of a Workload spec (with stages, num_requests is only a cap and left unset; the rate
    defaults to 1 request/s open-loop and to no cap closed-loop)."""
    closed_loop = dict(closed_loop or {})
    unknown = set(closed_loop) - {"concurrency", "think_time_ms", "ramp_s"}
    if unknown:
        raise TypeError(f"unexpected keyword argument(s): {', '.join(sorted(unknown))}")
    if rate is None and closed_loop.get("concurrency") is None:
        rate = 1.0
    return {"rate": rate, "num_requests": None if stages else num_requests, "seed": seed, "arrival": arrival,
            "cv": cv, "stages": tuple(stages or ()), "stage_gap_s": stage_gap_s, **closed_loop}


def _check_closed_loop(wl: Workload) -> None:
    """Closed-loop fields only where they mean something (ValueError names the field)."""
    if wl.think_time_ms and wl.concurrency is None:
        raise ValueError("think_time_ms: only with concurrency (clients give their own think_time_ms)")
    if wl.ramp_s and not wl.closed_loop:
        raise ValueError("ramp_s: only with concurrency (a closed-loop workload)")
    if wl.concurrency is not None and wl.clients:
        raise ValueError("concurrency: give each client its own concurrency in a mixed workload")
    if wl.closed_loop and wl.stages:
        raise ValueError("stages: not used with concurrency (closed-loop users set the pace)")
    if wl.rate is None:
        open_clients = [c.name for c in wl.clients if c.concurrency is None]
        if not wl.closed_loop or open_clients:
            who = f" (open-loop clients: {', '.join(open_clients)})" if open_clients else ""
            raise ValueError(f"rate: required for open-loop requests{who}")


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
    rate: float | None,
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
    elif rate is None:  # closed loop without a rate cap: every request is ready at once
        t = np.zeros(n)
        slot = np.arange(n)
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
            "input_tokens": p + inp.sample(length_rng, m),
            "output_tokens": out.sample(length_rng, m),
            "prefix_group": np.full(m, 0 if p else -1, dtype=np.int64),
            "prefix_len": np.full(m, p, dtype=np.int64),
        }
    return RequestTable(arrival_us=arr.to_us(t), **cols, client_names=[name])
