"""Workloads: what requests arrive, when, and how long they are (presets, arrival processes, shared-prefix
prompt sets, CSV traces, YAML mixes, closed-loop users). Every source produces a ``RequestTable``
(sweeps over concurrency or rate points live in `blis.sweep`)."""

from blis.workload.presets import PRESETS, available_presets
from blis.workload.request_table import RequestTable
from blis.workload.spec import Client, LengthDist, SharedPrefix, Stage, Workload
from blis.workload.trace_csv import read_trace_csv, write_trace_csv

__all__ = [
    "PRESETS",
    "Client",
    "LengthDist",
    "RequestTable",
    "SharedPrefix",
    "Stage",
    "Workload",
    "available_presets",
    "read_trace_csv",
    "write_trace_csv",
]
