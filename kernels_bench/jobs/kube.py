"""`kubectl` / `oc` as a subprocess: apply manifests, read a Job and its pods, copy files, read logs.

Every call goes through `Kube.run`, which prints the command instead of running it under ``--dry-run``.
Nothing here knows about sweeps; `kernels_bench.jobs.collect` builds on it.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"


class KubeError(RuntimeError):
    """A kubectl/oc call failed: the message names the command and its first error line."""


@dataclass
class Kube:
    """A kubectl-compatible CLI bound to a namespace.

    cli: ``kubectl``, ``oc`` or a path to either. dry_run: print ``would run: ...`` lines on ``echo``
    instead of running anything (reads then return empty results).
    """

    cli: str = "kubectl"
    namespace: str = "default"
    dry_run: bool = False
    echo: Callable[[str], None] = field(default=lambda line: print(line, file=sys.stdout))

    def command(self, args: Sequence[str]) -> list[str]:
        return [self.cli, "-n", self.namespace, *args]

    def run(self, args: Sequence[str], *, reads: bool = False) -> str:
        """Run ``cli -n NS args``; return stdout. ``reads``: a query (still printed under dry-run)."""
        cmd = self.command(args)
        if self.dry_run:
            self.echo(f"would run: {shlex.join(cmd)}")
            return ""
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        except FileNotFoundError:
            raise KubeError(f"{self.cli}: not found (install it or pass --cli PATH)") from None
        if proc.returncode != 0:
            first = (proc.stderr.strip().splitlines() or ["(no message)"])[0]
            raise KubeError(f"{shlex.join(cmd)} failed (exit {proc.returncode}): {first}")
        return proc.stdout

    def get_json(self, args: Sequence[str]) -> dict[str, Any]:
        text = self.run([*args, "-o", "json"], reads=True)
        if not text:
            return {}
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            raise KubeError(f"{shlex.join(self.command(args))}: output is not JSON") from None

    def apply(self, paths: Sequence[Path]) -> None:
        for p in paths:
            out = self.run(["apply", "-f", str(p)])
            if out:
                self.echo(out.rstrip())

    def job(self, name: str) -> dict[str, Any]:
        return self.get_json(["get", "job", name])

    def job_pods(self, name: str) -> list[dict[str, Any]]:
        return list(self.get_json(["get", "pods", "-l", f"job-name={name}"]).get("items", []))

    def copy_from(self, pod: str, remote: str, local: Path) -> None:
        self.run(["cp", f"{pod}:{remote}", str(local)])

    def logs(self, pod: str) -> str:
        return self.run(["logs", pod], reads=True)


def parse_indexes(text: str | None) -> set[int]:
    """Kubernetes' compressed index list (``"0-2,5,7-8"``) as a set; empty for None or ''."""
    out: set[int] = set()
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        out.update(range(int(lo), int(hi) + 1) if sep else {int(lo)})
    return out


@dataclass(frozen=True)
class ShardState:
    """One shard's state as the Job reports it: 'succeeded', 'failed', 'running' or 'pending'."""

    index: int
    state: str
    pod: str | None = None
    node: str | None = None


def shard_states(job: dict[str, Any], pods: Sequence[dict[str, Any]], shards: int) -> list[ShardState]:
    """Per shard index: the Job's completed/failed indexes first, then the newest pod's phase."""
    status = job.get("status", {}) or {}
    done = parse_indexes(status.get("completedIndexes"))
    failed = parse_indexes(status.get("failedIndexes"))
    best: dict[int, dict[str, Any]] = {}
    for pod in pods:
        meta = pod.get("metadata", {})
        idx = (meta.get("annotations") or {}).get(INDEX_ANNOTATION) or (meta.get("labels") or {}).get(
            INDEX_ANNOTATION)
        if idx is None:
            continue
        i = int(idx)
        phase = pod.get("status", {}).get("phase")
        prev = best.get(i)
        # prefer a Succeeded pod (its log holds the shard), else the newest
        if prev is None or phase == "Succeeded" or (
                prev.get("status", {}).get("phase") != "Succeeded"
                and meta.get("creationTimestamp", "") >= prev["metadata"].get("creationTimestamp", "")):
            best[i] = pod
    out = []
    for i in range(shards):
        pod = best.get(i)
        name = pod["metadata"]["name"] if pod else None
        node = pod.get("spec", {}).get("nodeName") if pod else None
        phase = pod.get("status", {}).get("phase") if pod else None
        if i in done:
            state = "succeeded"
        elif i in failed:
            state = "failed"
        elif phase == "Running":
            state = "running"
        else:
            state = "pending"
        out.append(ShardState(i, state, name, node))
    return out
