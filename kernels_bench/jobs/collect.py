"""Bring a Job's shards home: fetch each finished shard once, merge, check, report coverage.

State lives in the work folder (default ``<manifests>/collected``): ``shard-<i>/`` per fetched shard and
``collected.json`` listing the indexes fetched for this plan's digest. Running `collect` again fetches only
what is still missing (shards that finished since, or that failed to copy), then merges everything fetched
into the output GPU folder (idempotent) and checks it with blis's bench_data checker.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kernels_bench.jobs import archive, merge, shards
from kernels_bench.jobs.kube import Kube, KubeError, shard_states
from kernels_bench.jobs.manifests import OUT_MOUNT

STATE_FILE = "collected.json"


@dataclass
class CollectOutcome:
    fetched: list[int] = field(default_factory=list)  # this call
    have: list[int] = field(default_factory=list)  # all fetched so far
    waiting: dict[int, str] = field(default_factory=dict)  # index -> state (running/pending/failed/copy error)
    check_ok: bool | None = None
    coverage: list[tuple[str, int, int]] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.waiting


def _load_state(work: Path, digest: str) -> set[int]:
    path = work / STATE_FILE
    if not path.exists():
        return set()
    state = json.loads(path.read_text())
    if state.get("digest") != digest:
        raise ValueError(f"{path}: collected for another plan ({state.get('digest')}); use another --work folder")
    return set(state.get("shards", []))


def _save_state(work: Path, digest: str, have: set[int]) -> None:
    work.mkdir(parents=True, exist_ok=True)
    (work / STATE_FILE).write_text(json.dumps({"digest": digest, "shards": sorted(have)}, indent=1) + "\n")


def fetch_shard(kube: Kube, meta: dict[str, Any], index: int, pod: str | None, dest: Path) -> str:
    """Copy shard ``index`` into ``dest``: from the collector pod's volume (PVC), else from the pod log.
    Returns how it came ('volume' or 'log'). Raises KubeError/ValueError when neither works."""
    tmp = dest.with_name(dest.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    errors = []
    if meta.get("collector"):
        try:
            kube.copy_from(meta["collector"], f"{OUT_MOUNT}/shard-{index}", tmp)
            if (tmp / "provenance.json").exists():
                shutil.rmtree(dest, ignore_errors=True)
                tmp.rename(dest)
                return "volume"
            errors.append("volume copy holds no provenance.json")
        except KubeError as exc:
            errors.append(str(exc))
        shutil.rmtree(tmp, ignore_errors=True)
    if pod is None:
        raise ValueError(f"shard {index}: no pod left to read the log of ({'; '.join(errors) or 'no volume'})")
    try:
        archive.unpack(kube.logs(pod), index, tmp)
    except ValueError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ValueError("; ".join([*errors, str(exc)])) from None
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return "log"


def collect(kube: Kube, meta: dict[str, Any], work: Path, out: Path,
            log: Callable[[str], None], check: Callable[[Path, list[str]], int] | None = None) -> CollectOutcome:
    """Fetch finished shards not fetched yet, merge all fetched ones into ``out``, check and cover."""
    plan = meta["plan"]
    digest = plan["digest"]
    have = _load_state(work, digest)
    res = CollectOutcome()
    states = shard_states(kube.job(meta["name"]), kube.job_pods(meta["name"]), len(plan["shards"]))
    if kube.dry_run:
        log("dry run: nothing fetched or merged")
        return res
    for st in states:
        if st.index in have:
            continue
        if st.state != "succeeded":
            res.waiting[st.index] = st.state
            continue
        try:
            how = fetch_shard(kube, meta, st.index, st.pod, work / f"shard-{st.index}")
        except (KubeError, ValueError) as exc:
            res.waiting[st.index] = f"copy failed: {exc}"
            log(f"shard {st.index}: {exc}")
            continue
        have.add(st.index)
        res.fetched.append(st.index)
        _save_state(work, digest, have)
        log(f"shard {st.index}: fetched from the {how}")
    res.have = sorted(have)
    if have:
        dirs = [work / f"shard-{i}" for i in res.have]
        m = merge.merge(dirs, out, shards.key_columns(plan), digest)
        log(f"merged {m.shards} shards into {out}: {sum(m.added.values())} rows added, "
            f"{sum(m.duplicates.values())} already there")
        if check is not None:
            res.check_ok = check(out, sorted(m.added) or merge.shard_tables(out)) == 0
        res.coverage = merge.coverage(out, shards.planned_rows(plan))
    for i, state in sorted(res.waiting.items()):
        log(f"shard {i}: {state}")
    return res
