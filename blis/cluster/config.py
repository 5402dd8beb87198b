"""`ClusterConfig`: many serving instances behind one router (the `ServingConfig` fields plus cluster fields).

The base fields (those of a `SimConfig`) describe the instance type used when no ``pools`` are given
(``num_instances`` identical instances, or ``prefill_instances`` + ``decode_instances`` for
prefill/decode disaggregation). ``pools`` describe a heterogeneous cluster: each pool overrides some of the
base fields (model, hardware, tp, latency model, engine limits) for ``count`` instances.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from blis.config import EngineConfig, ServingConfig, SimConfig
from blis.errors import BlisInputError

Role = Literal["mixed", "prefill", "decode"]

DEFAULT_SCORERS = "prefix-affinity:2,queue-depth:1,kv-utilization:1"

# SimConfig fields a pool may override (the workload and horizon belong to the whole cluster).
POOL_FIELDS = ("model", "hardware", "tp", "latency_model", "alpha_coeffs", "beta_coeffs", "model_config_path",
               "hardware_file", "bench_data_path", "calibration_file")


class PoolConfig(BaseModel):
    """``count`` identical instances; fields left as None take the cluster's base value.

    ``engine``: EngineConfig fields to override (e.g. ``{max_num_seqs: 128, total_kv_blocks: 5000}``);
    ``max_model_len`` is cluster-wide (set it in the base engine).
    ``role``: "mixed" (prefill and decode), or "prefill"/"decode" for disaggregation.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=(), defer_build=True)

    name: str = Field("", description="label in the per-instance breakdown; empty = pool<i>")
    count: int = Field(1, ge=1, le=4096, description="instances in this pool")
    role: Role = "mixed"
    model: str | None = Field(None, min_length=1)
    hardware: str | None = Field(None, min_length=1)
    tp: int | None = Field(None, ge=1, le=64)
    latency_model: str | None = None
    alpha_coeffs: tuple[float, float, float] | None = None
    beta_coeffs: tuple[float, float, float] | None = None
    model_config_path: str | None = None
    hardware_file: str | None = None
    bench_data_path: str | None = None
    calibration_file: str | None = None
    engine: dict[str, Any] = Field(default_factory=dict, description="EngineConfig fields to override")

    @field_validator("engine")
    @classmethod
    def _engine_fields(cls, v: dict) -> dict:
        unknown = sorted(set(v) - set(EngineConfig.model_fields))
        if unknown:
            raise ValueError(f"unknown engine field(s) {', '.join(unknown)}; "
                             f"allowed: {', '.join(EngineConfig.model_fields)}")
        if "max_model_len" in v:
            raise ValueError("max_model_len is cluster-wide: set it in the base engine, not per pool")
        return v

    def sim_config(self, base: SimConfig) -> SimConfig:
        """The base configuration with this pool's overrides (validated again)."""
        data = {name: getattr(base, name) for name in SimConfig.model_fields}
        for name in POOL_FIELDS:
            value = getattr(self, name)
            if value is not None:
                data[name] = value
        if self.engine:
            data["engine"] = EngineConfig(**{**base.engine.model_dump(), **self.engine})
        return SimConfig(**data)


def parse_scorers(value: Any) -> tuple[tuple[str, float], ...]:
    """``"prefix-affinity:2,queue-depth:1"`` (or a mapping, or a list of pairs/strings) -> ((name, weight), ...).

    A scorer without ``:weight`` gets weight 1. Weights must be finite numbers >= 0, at least one > 0."""
    from blis.cluster.routing import available_scorers

    if isinstance(value, str):
        items: list = [part for part in value.split(",") if part.strip()]
    elif isinstance(value, dict):
        items = list(value.items())
    else:
        items = list(value)
    pairs: list[tuple[str, float]] = []
    for item in items:
        if isinstance(item, str):
            name, _, weight = item.partition(":")
            name, weight = name.strip(), weight.strip() or "1"
        else:
            name, weight = item
        try:
            w = float(weight)
        except (TypeError, ValueError):
            raise ValueError(f"weight {weight!r} of scorer {name!r} is not a number") from None
        if not (w >= 0.0) or w == float("inf"):
            raise ValueError(f"weight of scorer {name!r} must be a finite number >= 0 (got {weight!r})")
        if name not in available_scorers():
            raise ValueError(f"unknown scorer {name!r}; available: {', '.join(available_scorers())}")
        if any(name == seen for seen, _ in pairs):
            raise ValueError(f"scorer {name!r} given twice")
        pairs.append((name, w))
    if not pairs:
        raise ValueError("give at least one scorer, e.g. 'prefix-affinity:2,queue-depth:1'")
    if not any(w > 0 for _, w in pairs):
        raise ValueError("at least one scorer weight must be > 0")
    return tuple(pairs)


class ClusterConfig(ServingConfig):
    """A cluster: instances (identical or pools), routing, admission, optional P/D disaggregation.

    Times: ``snapshot_refresh_ms`` and ``pd_transfer_latency_ms`` in milliseconds; bandwidth in GB/s
    (1e9 bytes/s); token-bucket capacity in tokens and refill rate in tokens/s.
    """

    num_instances: int | None = Field(
        None, ge=1, le=4096, description="identical instances (no pools); None = 1, or P + D when disaggregated"
    )
    pools: tuple[PoolConfig, ...] = Field((), description="heterogeneous pools (replace num_instances)")
    routing: str = Field("round-robin", description="routing policy name")
    routing_scorers: tuple[tuple[str, float], ...] | None = Field(
        None, description=f"weighted routing: (scorer, weight) pairs; None = {DEFAULT_SCORERS}"
    )
    snapshot_refresh_ms: float = Field(
        50.0, ge=0.0, le=3.6e6, description="how often routers see fresh instance state (ms); 0 = always"
    )
    admission: str = Field("always-admit", description="admission policy name")
    token_bucket_capacity: float | None = Field(None, gt=0, description="token-bucket size (tokens)")
    token_bucket_rate: float | None = Field(None, ge=0, description="token-bucket refill rate (tokens/s)")
    prefill_instances: int | None = Field(None, ge=0, le=4096, description="P/D: prefill instances")
    decode_instances: int | None = Field(None, ge=0, le=4096, description="P/D: decode instances")
    pd_transfer_bandwidth: float = Field(
        50.0, gt=0.0, le=1e6, description="P/D KV transfer bandwidth (GB/s, 1e9 bytes/s) per request"
    )
    pd_transfer_latency_ms: float = Field(1.0, ge=0.0, le=1e6, description="P/D fixed cost per transfer (ms)")
    pd_kv_bytes_per_token: float | None = Field(
        None, gt=0, description="KV bytes per prompt token moved (all GPUs); None = from the model spec"
    )

    @field_validator("routing_scorers", mode="before")
    @classmethod
    def _scorers(cls, v: Any) -> Any:
        return None if v is None else parse_scorers(v)

    @field_validator("routing")
    @classmethod
    def _known_routing(cls, v: str) -> str:
        from blis.cluster.routing import available_routers

        if v not in available_routers():
            raise ValueError(f"unknown policy {v!r}; available: {', '.join(available_routers())}")
        return v

    @field_validator("admission")
    @classmethod
    def _known_admission(cls, v: str) -> str:
        from blis.cluster.admission import available_admission_policies

        if v not in available_admission_policies():
            raise ValueError(f"unknown policy {v!r}; available: {', '.join(available_admission_policies())}")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> ClusterConfig:
        if self.routing_scorers is not None and self.routing != "weighted":
            raise ValueError(f"routing_scorers: only used with routing 'weighted' (routing is {self.routing!r})")
        bucket = self.token_bucket_capacity is not None or self.token_bucket_rate is not None
        if self.admission == "token-bucket":
            if self.token_bucket_capacity is None or self.token_bucket_rate is None:
                raise ValueError("token_bucket_capacity/token_bucket_rate: token-bucket admission needs both "
                                 "(capacity in tokens, rate in tokens/s)")
        elif bucket:
            raise ValueError(f"token_bucket_capacity: only used with admission 'token-bucket' "
                             f"(admission is {self.admission!r})")
        p, d = self.prefill_instances, self.decode_instances
        if self.pools:
            if self.num_instances is not None and self.num_instances != sum(x.count for x in self.pools):
                raise ValueError(f"num_instances: {self.num_instances} does not match the pools' total "
                                 f"{sum(x.count for x in self.pools)}")
            roles = {x.role for x in self.pools}
            if "mixed" in roles and len(roles) > 1:
                raise ValueError("pools: mix 'prefill'/'decode' pools with 'mixed' pools is not supported")
            if roles != {"mixed"}:
                if roles != {"prefill", "decode"}:
                    raise ValueError("pools: disaggregation needs at least one 'prefill' and one 'decode' pool")
                np_ = sum(x.count for x in self.pools if x.role == "prefill")
                nd = sum(x.count for x in self.pools if x.role == "decode")
                if p is not None and p != np_:
                    raise ValueError(f"prefill_instances: {p} does not match the prefill pools' total {np_}")
                if d is not None and d != nd:
                    raise ValueError(f"decode_instances: {d} does not match the decode pools' total {nd}")
            elif p or d:
                raise ValueError("prefill_instances/decode_instances: the pools have no 'prefill'/'decode' role")
        elif p is not None or d is not None:
            if not p or not d:
                raise ValueError(f"prefill_instances/decode_instances: disaggregation needs both >= 1 "
                                 f"(got prefill_instances={p}, decode_instances={d})")
            if self.num_instances is not None and self.num_instances != p + d:
                raise ValueError(f"num_instances: {self.num_instances} does not match prefill_instances + "
                                 f"decode_instances = {p + d}")
        return self

    # ------------------------------------------------------------------ derived
    @property
    def disaggregated(self) -> bool:
        return bool(self.prefill_instances) or any(x.role != "mixed" for x in self.pools)

    def base_sim_config(self) -> SimConfig:
        """The SimConfig part (the instance type of a cluster without pools)."""
        return SimConfig(**{name: getattr(self, name) for name in SimConfig.model_fields})

    def resolved_pools(self) -> tuple[PoolConfig, ...]:
        """Pools as given, or the implied ones (identical instances; prefill + decode)."""
        if self.pools:
            return tuple(p if p.name else p.model_copy(update={"name": f"pool{i}"})
                         for i, p in enumerate(self.pools))
        if self.prefill_instances:
            return (PoolConfig(name="prefill", count=self.prefill_instances, role="prefill"),
                    PoolConfig(name="decode", count=self.decode_instances or 1, role="decode"))
        return (PoolConfig(name="default", count=self.num_instances or 1),)

    @property
    def total_instances(self) -> int:
        return sum(p.count for p in self.resolved_pools())


def load_cluster_file(path: str | Path) -> dict:
    """Read a cluster YAML file: ClusterConfig fields (pools, routing, admission, ...) as a mapping."""
    from blis._files import read_mapping

    path = Path(path)
    data = read_mapping(path, "cluster_file", empty_ok=True)
    if "cluster" in data and isinstance(data["cluster"], dict) and len(data) == 1:
        data = data["cluster"]
    unknown = sorted(set(data) - set(ClusterConfig.model_fields))
    if unknown:
        raise BlisInputError(f"cluster_file: unknown field(s) {', '.join(unknown)} in {path}; "
                             f"allowed: {', '.join(ClusterConfig.model_fields)}")
    return data
