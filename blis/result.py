"""`SimResult`: the summary (the CLI's JSON) plus per-request and per-step tables as pandas DataFrames."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np


@dataclass
class SimResult:
    """Outcome of one simulation.

    summary: flat dict of metrics (times in ms, rates per second), the same fields as the CLI JSON.
    requests: one row per request (times in ms from the start of the run; NaN where it never happened).
    steps: one row per engine step (start and duration in microseconds, token counts, KV blocks used).
    instances: one row per instance (for a single-instance run built on first access).
    """

    summary: dict
    request_columns: dict[str, np.ndarray]
    step_columns: dict[str, np.ndarray]
    model_description: dict = field(default_factory=dict)
    instance_rows: list[dict] = field(default_factory=list)
    instance_rows_factory: Optional[Callable[["SimResult"], list[dict]]] = field(default=None, repr=False,
                                                                                  compare=False)

    @property
    def requests(self):
        import pandas as pd

        return pd.DataFrame(self.request_columns)

    @property
    def steps(self):
        import pandas as pd

        return pd.DataFrame(self.step_columns)

    @property
    def instances(self):
        import pandas as pd

        if not self.instance_rows and self.instance_rows_factory is not None:
            self.instance_rows = self.instance_rows_factory(self)
        return pd.DataFrame(self.instance_rows)

    def to_json(self, indent: int | None = 2) -> str:
        """The summary as JSON (keys in a fixed order; identical for identical runs)."""
        return json.dumps(self.summary, indent=indent, allow_nan=False)

    def write_requests(self, path: str) -> None:
        """Per-request table to ``path``: CSV, or Parquet when it ends in .parquet (needs pyarrow)."""
        df = self.requests
        if str(path).endswith(".parquet"):
            try:
                df.to_parquet(path, index=False)
            except ImportError as exc:
                raise ValueError("requests_out: Parquet needs pyarrow (pip install 'blis[parquet]')") from exc
        else:
            df.to_csv(path, index=False)

    def __repr__(self) -> str:  # notebooks: a short readable line
        s: dict[str, Any] = self.summary
        return (f"SimResult(completed={s.get('completed_requests')}, ttft_mean_ms={s.get('ttft_mean_ms')}, "
                f"e2e_mean_ms={s.get('e2e_mean_ms')}, latency_model={s.get('latency_model')!r})")
