"""One probe: simulate a candidate at one offered load with one seed, in-process, and measure its window.

`ProbeTask` is a small picklable value; `run_probe` is a pure function of it (the same task gives the same
`SeedStats` in any process, locally or as a Ray task)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

from blis.errors import BlisInputError
from blis.plan.spec import SLO, Candidate, SearchSettings
from blis.plan.stability import SeedStats, judge_seed

CAPACITY_RATE = 1e6  # "everything at once": the capacity probe's arrival rate, requests/s


@dataclass(frozen=True)
class Load:
    """How the planner sets the offered load of a workload.

    ``scalable``: the workload has a rate (`with_overrides(rate=...)` works): probes set rate, request count
    and seed. Otherwise its load is fixed (a trace, load stages, a closed loop): probes run it as it is, and a
    search over the rate per instance time-scales its generated arrivals (when it can generate them)."""

    workload: object  # blis.Workload
    scalable: bool
    native_rate: Optional[float]  # requests/s of a fixed-load workload, when its arrivals can be generated

    @classmethod
    def of(cls, workload) -> Load:
        closed = bool(getattr(workload, "closed_loop", False))  # its users, not a rate, set the load
        if not closed:
            try:
                workload.with_overrides(rate=1.0)
                return cls(workload, True, None)
            except BlisInputError:
                pass
        if closed:
            return cls(workload, False, None)
        native = None
        try:
            table = workload.generate()
            span_s = (float(table.arrival_us[-1]) - float(table.arrival_us[0])) / 1e6
            if len(table) > 1 and span_s > 0:
                native = (len(table) - 1) / span_s
        except Exception:  # noqa: BLE001 - a closed-loop workload may not pre-generate arrivals
            native = None
        return cls(workload, False, native)

    def seeds(self, settings: SearchSettings) -> list[int]:
        if not self.scalable and getattr(self.workload, "kind", "") == "trace":
            return [settings.seed]  # one realisation: no seeds to vary
        return [settings.seed + i for i in range(settings.seeds)]

    def num_requests(self, rate: float, settings: SearchSettings, units: int = 1, seconds: float = 0.0) -> int:
        """Requests per probe and seed: ``seconds`` (at least ``probe_seconds``) of arrivals, within
        [min_requests, max_requests x units]."""
        n = math.ceil(rate * max(seconds, settings.probe_seconds))
        return int(min(max(n, settings.min_requests), settings.max_requests * units))


@dataclass(frozen=True)
class ProbeTask:
    """Simulate ``candidate`` with ``units`` serving units at ``rate`` requests/s (None = the workload's own
    load) with workload seed ``seed``. ``capacity``: all requests at once (measures throughput only)."""

    candidate: Candidate
    base: dict  # SimConfig fields shared by every candidate (latency model, files, engine defaults)
    load: Load
    slo: SLO
    settings: SearchSettings
    rate: Optional[float]
    seed: int
    units: int = 1
    capacity: bool = False
    seconds: float = 0.0  # arrivals to simulate (at least settings.probe_seconds)


def build_config(task: ProbeTask):
    """The SimConfig (one plain instance) or ClusterConfig of a task, and the request table replacing the
    workload (fixed-load workloads time-scaled to ``rate``), or None."""
    import blis

    cand, load, settings = task.candidate, task.load, task.settings
    requests = None
    if load.scalable:
        rate = CAPACITY_RATE if task.capacity else task.rate
        n = settings.min_requests if task.capacity else load.num_requests(task.rate, settings, task.units, task.seconds)
        workload = load.workload.with_overrides(rate=rate, num_requests=n, seed=task.seed)
    else:
        workload = load.workload
        if load.workload.kind != "trace":
            workload = workload.with_overrides(seed=task.seed)
        if task.rate is not None or task.capacity:
            if load.native_rate is None:
                raise BlisInputError("workload: its arrivals cannot be generated up front (a closed loop), so "
                                     "its rate cannot be scaled")
            table = workload.generate()
            target = CAPACITY_RATE if task.capacity else task.rate
            factor = load.native_rate / target
            requests = blis.RequestTable(
                (table.arrival_us - table.arrival_us[0]) * factor // 1, table.input_tokens, table.output_tokens,
                table.prefix_group, table.prefix_len, table.prompt_id, table.parent, table.client,
                table.client_names)
    engine = dict(task.base.get("engine", {}))
    if cand.max_num_seqs is not None:
        engine["max_num_seqs"] = cand.max_num_seqs
    if cand.max_num_batched_tokens is not None:
        engine["max_num_batched_tokens"] = cand.max_num_batched_tokens
    fields = {**{k: v for k, v in task.base.items() if k != "engine"}, "model": cand.model,
              "hardware": cand.hardware, "tp": cand.tp, "engine": blis.EngineConfig(**engine), "workload": workload}
    if cand.pd is None and task.units == 1:
        return blis.SimConfig(**fields), requests
    cluster = {"routing": cand.routing}
    if cand.pd is None:
        cluster["num_instances"] = task.units
    else:
        cluster["prefill_instances"] = cand.pd[0] * task.units
        cluster["decode_instances"] = cand.pd[1] * task.units
    return blis.ClusterConfig(**fields, **cluster), requests


def simulate_task(task: ProbeTask):
    import blis

    config, requests = build_config(task)
    if isinstance(config, blis.ClusterConfig):
        return blis.simulate_cluster(config, requests=requests)
    return blis.simulate(config, requests=requests)


def run_probe(task: ProbeTask) -> SeedStats | tuple[float, float]:
    """Simulate the task and judge its measured window (see `blis.plan.stability`). A capacity task returns
    (completed requests/s, seconds one request spends decoding at full batches: mean TPOT x mean output)."""
    result = simulate_task(task)
    if task.capacity:
        s = result.summary
        mean_out = s["tokens_per_sec"] / s["responses_per_sec"] if s["responses_per_sec"] else 0.0
        return float(s["responses_per_sec"]), float((s.get("tpot_mean_ms") or 0.0) * mean_out / 1000.0)
    return judge_seed(result, task.slo, task.settings.warmup_fraction, task.seed)
