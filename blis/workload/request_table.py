"""Columnar request arrays: the one format every workload source produces and the engine consumes."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class RequestTable:
    """N requests as parallel numpy int64 arrays, sorted by ``arrival_us`` (stable).

    arrival_us: arrival time at the server, microseconds from the start of the run.
    input_tokens: prompt length in tokens (>= 1).
    output_tokens: tokens to generate (>= 1); the request finishes after exactly this many.
    prefix_group: id of a shared prefix (system prompt) or -1; requests of one group share their
        first ``prefix_len`` tokens.
    prefix_len: tokens of the shared prefix (0 when prefix_group is -1).
    prompt_id: requests with equal prompt_id have identical prompts (same content, so full prefix-cache
        hits); a workload without repeats uses the request index.
    parent: index of an earlier request whose prompt plus output tokens are the start of this prompt
        (multi-turn chat), or -1.
    client: index into ``client_names`` (mixed workloads), 0 otherwise.
    """

    arrival_us: np.ndarray
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    prefix_group: np.ndarray = None  # type: ignore[assignment]
    prefix_len: np.ndarray = None  # type: ignore[assignment]
    prompt_id: np.ndarray = None  # type: ignore[assignment]
    parent: np.ndarray = None  # type: ignore[assignment]
    client: np.ndarray = None  # type: ignore[assignment]
    client_names: list[str] = field(default_factory=lambda: ["default"])

    def __post_init__(self) -> None:
        n = len(self.arrival_us)
        self.arrival_us = np.asarray(self.arrival_us, dtype=np.int64)
        self.input_tokens = np.asarray(self.input_tokens, dtype=np.int64)
        self.output_tokens = np.asarray(self.output_tokens, dtype=np.int64)
        defaults = {
            "prefix_group": lambda: np.full(n, -1, dtype=np.int64),
            "prefix_len": lambda: np.zeros(n, dtype=np.int64),
            "prompt_id": lambda: np.arange(n, dtype=np.int64),
            "parent": lambda: np.full(n, -1, dtype=np.int64),
            "client": lambda: np.zeros(n, dtype=np.int64),
        }
        for name, make in defaults.items():
            value = getattr(self, name)
            setattr(self, name, make() if value is None else np.asarray(value, dtype=np.int64))
        for name in ("input_tokens", "output_tokens", *defaults):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name}: length {len(getattr(self, name))} != {n} requests")

    def __len__(self) -> int:
        return len(self.arrival_us)

    def validate(self) -> None:
        """Raise ValueError naming the first impossible field (negative time, empty prompt, ...)."""
        if len(self) == 0:
            raise ValueError("num_requests: the workload has no requests (must be >= 1)")
        if (self.arrival_us < 0).any():
            raise ValueError("arrival_us: arrival times must be >= 0")
        if (np.diff(self.arrival_us) < 0).any():
            raise ValueError("arrival_us: requests must be sorted by arrival time")
        if (self.input_tokens < 1).any():
            raise ValueError("input_tokens: every prompt must have >= 1 token")
        if (self.output_tokens < 1).any():
            raise ValueError("output_tokens: every request must generate >= 1 token")
        if ((self.prefix_len < 0) | (self.prefix_len > self.input_tokens)).any():
            raise ValueError("prefix_len: must be in [0, input_tokens]")
        idx = np.arange(len(self))
        if ((self.parent >= idx) & (self.parent >= 0)).any():
            raise ValueError("parent: must name an earlier request")

    def take(self, index: np.ndarray) -> "RequestTable":
        """Rows at ``index`` (parent references outside the selection become -1)."""
        index = np.asarray(index, dtype=np.int64)
        remap = np.full(len(self), -1, dtype=np.int64)
        remap[index] = np.arange(len(index))
        parent = self.parent[index]
        parent = np.where(parent >= 0, remap[np.maximum(parent, 0)], -1)
        return RequestTable(
            arrival_us=self.arrival_us[index],
            input_tokens=self.input_tokens[index],
            output_tokens=self.output_tokens[index],
            prefix_group=self.prefix_group[index],
            prefix_len=self.prefix_len[index],
            prompt_id=self.prompt_id[index],
            parent=parent,
            client=self.client[index],
            client_names=list(self.client_names),
        )

    @staticmethod
    def concat(tables: list["RequestTable"]) -> "RequestTable":
        """Merge tables (e.g. several clients) into one sorted by arrival; ids stay distinct."""
        names: list[str] = []
        parts = []
        offset = 0
        prompt_offset = 0
        group_offset = 0
        for t in tables:
            client = t.client + len(names)
            names.extend(t.client_names)
            parent = np.where(t.parent >= 0, t.parent + offset, -1)
            group = np.where(t.prefix_group >= 0, t.prefix_group + group_offset, -1)
            parts.append((t.arrival_us, t.input_tokens, t.output_tokens, group, t.prefix_len,
                          t.prompt_id + prompt_offset, parent, client))
            offset += len(t)
            prompt_offset += int(t.prompt_id.max()) + 1 if len(t) else 0
            group_offset += int(t.prefix_group.max()) + 1 if len(t) else 0
        cols = [np.concatenate([p[i] for p in parts]) for i in range(8)]
        merged = RequestTable(*cols, client_names=names)
        order = np.argsort(merged.arrival_us, kind="stable")
        return merged.take(order)
