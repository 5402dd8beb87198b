"""What a real serving run recorded: the requests that were sent, what the client measured, and the
server settings it ran with. Every reader in this package (run folders, OTLP traces, `vllm bench serve`
JSON) produces a `MeasuredRun`; replay and validation consume only this."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from blis.workload.request_table import RequestTable


@dataclass(frozen=True)
class ServerSettings:
    """The serving instance as it ran (vLLM's names). ``None`` = not recorded (the simulator's default
    applies; for ``total_kv_blocks`` it is derived from the model and hardware)."""

    model: str
    tp: int = 1
    hardware: str = "H100"
    max_num_seqs: int | None = None
    max_num_batched_tokens: int | None = None
    total_kv_blocks: int | None = None
    block_size: int | None = None
    max_model_len: int | None = None
    enable_prefix_caching: bool = True


@dataclass
class MeasuredRun:
    """One real run, request by request (N requests, arrays aligned with ``requests``).

    requests: what was sent: real arrival times (microseconds from the first arrival), prompt lengths,
        the number of tokens the server generated, and ``prompt_id`` (equal ids = identical prompts).
        Failed requests are included: they loaded the server.
    failed: the client recorded an error (timeout, HTTP error); their latencies are NaN.
    ttft_ms, e2e_ms: measured time to first token and end-to-end latency, milliseconds.
    stage: load stage of each request (0 when the run has one stage).
    client_timeout_s: the client gave up after this many seconds (None = no known timeout).
    measured_at: "client" (latencies include HTTP and streaming) or "server" (engine-side spans).
    """

    name: str
    path: Path
    kind: str
    server: ServerSettings
    requests: RequestTable
    failed: np.ndarray
    ttft_ms: np.ndarray
    e2e_ms: np.ndarray
    stage: np.ndarray
    client_timeout_s: float | None = None
    measured_at: str = "client"
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        n = len(self.requests)
        self.failed = np.asarray(self.failed, dtype=bool)
        self.ttft_ms = np.asarray(self.ttft_ms, dtype=np.float64)
        self.e2e_ms = np.asarray(self.e2e_ms, dtype=np.float64)
        self.stage = np.asarray(self.stage, dtype=np.int64)
        for name in ("failed", "ttft_ms", "e2e_ms", "stage"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name}: length {len(getattr(self, name))} != {n} requests")
        ok = ~self.failed
        if (self.ttft_ms[ok] < 0).any() or (self.e2e_ms[ok] < 0).any():
            raise ValueError(f"{self.path}: negative latency in a successful request")
        self.requests.validate()

    def __len__(self) -> int:
        return len(self.requests)

    @property
    def num_completed(self) -> int:
        return int((~self.failed).sum())

    @property
    def duration_s(self) -> float:
        """Seconds from the first to the last arrival."""
        a = self.requests.arrival_us
        return float(a[-1] - a[0]) / 1e6 if len(a) else 0.0
