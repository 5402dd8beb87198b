"""Kubernetes/OpenShift manifests for a sharded kernel sweep, and the image recipe.

`render` writes, into one folder:
- ``00-configmap.yaml``: the shard plan (``plan.json``), mounted read-only at /plan in every pod;
- ``01-pvc.yaml`` (``--storage pvc``): a volume every shard writes ``/out/shard-<i>/`` into, so a retried
  pod resumes its tables, and ``02-collector.yaml``, an idle pod mounting it for ``kubectl cp``;
- ``03-job.yaml``: an Indexed Job, one completion per shard, one GPU per pod; the shard index comes from
  ``JOB_COMPLETION_INDEX``, which Kubernetes sets in every pod of an Indexed Job;
- ``blis-jobs.json``: what `submit`, `status` and `collect` need (names, namespace, storage, plan).

The pod security settings satisfy Kubernetes' "restricted" Pod Security Standard and OpenShift's
``restricted-v2`` SCC: non-root with no fixed UID (OpenShift assigns one), no privilege escalation, every
capability dropped, the RuntimeDefault seccomp profile, a read-only root file system (scratch in an
emptyDir at /tmp), only configMap/emptyDir/PVC volumes. `restricted_problems` checks exactly that.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

META_FILE = "blis-jobs.json"
LABEL = "app.kubernetes.io/name"
APP = "blis-kernels-bench"
PLAN_MOUNT = "/plan"
OUT_MOUNT = "/out"
DEFAULT_BASE_IMAGE = "pytorch/pytorch:2.5.1-cuda12.4-cudnn9-devel"
_DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|Ki|Mi|Gi|Ti|M|G|T)?$")


@dataclass
class RenderOptions:
    """What `render` needs besides the plan. Names follow the Kubernetes fields they fill."""

    name: str
    namespace: str
    image: str
    shards: int
    parallelism: int | None = None
    storage: str = "emptydir"  # or "pvc"
    pvc_size: str = "20Gi"
    storage_class: str | None = None
    access_mode: str = "ReadWriteMany"
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: list[dict[str, str]] = field(default_factory=list)
    cpu: str = "4"
    memory: str = "32Gi"
    backoff_limit_per_index: int = 2
    active_deadline_seconds: int | None = None
    image_pull_policy: str = "IfNotPresent"

    def check(self) -> None:
        """ValueError naming the flag for anything Kubernetes would refuse."""
        for flag, value in (("--name", self.name), ("--namespace", self.namespace)):
            if len(value) > 52 or not _DNS1123.match(value):
                raise ValueError(f"{flag} {value!r}: lower-case letters, digits and '-', at most 52 characters")
        if not self.image.strip() or any(c.isspace() for c in self.image):
            raise ValueError(f"--image {self.image!r}: an image reference without spaces")
        if self.storage not in ("emptydir", "pvc"):
            raise ValueError(f"--storage {self.storage!r}: emptydir or pvc")
        for flag, q in (("--cpu", self.cpu), ("--memory", self.memory), ("--pvc-size", self.pvc_size)):
            if not _QUANTITY.match(q):
                raise ValueError(f"{flag} {q!r}: a Kubernetes quantity such as 4, 500m, 32Gi")
        if self.access_mode not in ("ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"):
            raise ValueError(f"--access-mode {self.access_mode!r}: ReadWriteMany, ReadWriteOnce or ReadWriteOncePod")
        if self.parallelism is not None and self.parallelism < 1:
            raise ValueError(f"--parallelism must be >= 1, got {self.parallelism}")


def parse_node_selector(items: Sequence[str]) -> dict[str, str]:
    """``key=value`` strings as a dict (ValueError naming the bad one)."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--node-selector {item!r}: expected key=value")
        out[key] = value
    return out


def parse_toleration(text: str) -> dict[str, str]:
    """``key[=value]:Effect`` (or ``key:Effect``) as a toleration; Effect is NoSchedule, PreferNoSchedule or
    NoExecute. ``Exists`` is used when no value is given."""
    body, sep, effect = text.rpartition(":")
    if not sep or effect not in ("NoSchedule", "PreferNoSchedule", "NoExecute") or not body:
        raise ValueError(f"--toleration {text!r}: expected key[=value]:NoSchedule|PreferNoSchedule|NoExecute")
    key, eq, value = body.partition("=")
    if eq:
        return {"key": key, "operator": "Equal", "value": value, "effect": effect}
    return {"key": key, "operator": "Exists", "effect": effect}


def _pod_security() -> dict[str, Any]:
    return {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}


def _container_security() -> dict[str, Any]:
    return {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
            "readOnlyRootFilesystem": True, "runAsNonRoot": True}


def _labels(opts: RenderOptions, gpu: str) -> dict[str, str]:
    return {LABEL: APP, "app.kubernetes.io/instance": opts.name, "blis.dev/gpu": gpu}


def configmap(opts: RenderOptions, plan_text: str, gpu: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": f"{opts.name}-plan", "namespace": opts.namespace, "labels": _labels(opts, gpu)},
            "data": {"plan.json": plan_text}}


def pvc(opts: RenderOptions, gpu: str) -> dict[str, Any]:
    spec: dict[str, Any] = {"accessModes": [opts.access_mode],
                            "resources": {"requests": {"storage": opts.pvc_size}}}
    if opts.storage_class:
        spec["storageClassName"] = opts.storage_class
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": f"{opts.name}-out", "namespace": opts.namespace, "labels": _labels(opts, gpu)},
            "spec": spec}


def _out_volume(opts: RenderOptions) -> dict[str, Any]:
    if opts.storage == "pvc":
        return {"name": "out", "persistentVolumeClaim": {"claimName": f"{opts.name}-out"}}
    return {"name": "out", "emptyDir": {}}


def collector(opts: RenderOptions, gpu: str) -> dict[str, Any]:
    """An idle pod (no GPU) that mounts the output volume so `collect` can ``kubectl cp`` from it."""
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"{opts.name}-collector", "namespace": opts.namespace,
                         "labels": {**_labels(opts, gpu), "blis.dev/role": "collector"}},
            "spec": {"restartPolicy": "Always", "securityContext": _pod_security(),
                     "containers": [{"name": "collector", "image": opts.image,
                                     "imagePullPolicy": opts.image_pull_policy,
                                     "command": ["sleep", "infinity"],
                                     "resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                                                   "limits": {"cpu": "500m", "memory": "512Mi"}},
                                     "securityContext": _container_security(),
                                     "volumeMounts": [{"name": "out", "mountPath": OUT_MOUNT, "readOnly": True}]}],
                     "volumes": [_out_volume(opts)]}}


def job(opts: RenderOptions, gpu: str) -> dict[str, Any]:
    """The Indexed Job: completion i measures shard i into ``/out/shard-<i>/`` and prints the shard as an
    archive on its log (the fallback `collect` uses when the volume is gone)."""
    resources = {"cpu": opts.cpu, "memory": opts.memory, "nvidia.com/gpu": "1"}
    container = {
        "name": "bench", "image": opts.image, "imagePullPolicy": opts.image_pull_policy,
        "command": ["python", "-m", "kernels_bench", "jobs", "run-shard",
                    "--plan", f"{PLAN_MOUNT}/plan.json", "--out", OUT_MOUNT],
        "env": [{"name": "HOME", "value": "/tmp"}, {"name": "XDG_CACHE_HOME", "value": "/tmp/.cache"},
                {"name": "PYTHONUNBUFFERED", "value": "1"}],
        "resources": {"requests": dict(resources), "limits": dict(resources)},
        "securityContext": _container_security(),
        "volumeMounts": [{"name": "plan", "mountPath": PLAN_MOUNT, "readOnly": True},
                         {"name": "out", "mountPath": OUT_MOUNT},
                         {"name": "tmp", "mountPath": "/tmp"},
                         {"name": "dshm", "mountPath": "/dev/shm"}],
    }
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never", "securityContext": _pod_security(), "containers": [container],
        "volumes": [{"name": "plan", "configMap": {"name": f"{opts.name}-plan"}}, _out_volume(opts),
                    {"name": "tmp", "emptyDir": {}}, {"name": "dshm", "emptyDir": {"medium": "Memory"}}],
    }
    if opts.node_selector:
        pod_spec["nodeSelector"] = dict(opts.node_selector)
    if opts.tolerations:
        pod_spec["tolerations"] = [dict(t) for t in opts.tolerations]
    spec: dict[str, Any] = {
        "completionMode": "Indexed", "completions": opts.shards,
        "parallelism": min(opts.parallelism or opts.shards, opts.shards),
        "backoffLimitPerIndex": opts.backoff_limit_per_index, "maxFailedIndexes": opts.shards,
        "template": {"metadata": {"labels": _labels(opts, gpu)}, "spec": pod_spec},
    }
    if opts.active_deadline_seconds:
        spec["activeDeadlineSeconds"] = opts.active_deadline_seconds
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": opts.name, "namespace": opts.namespace, "labels": _labels(opts, gpu)},
            "spec": spec}


def dockerfile(base_image: str = DEFAULT_BASE_IMAGE) -> str:
    """An image with CUDA, torch, flash-attn, flashinfer and this package (build context: the repo root)."""
    return f"""# Image for `python -m kernels_bench jobs`: CUDA + torch (from the base), flash-attn, flashinfer, blis.
# Build from the repository root:  docker build -f <this file> -t <registry>/blis-kernels-bench:<tag> .
ARG BASE_IMAGE={base_image}
FROM ${{BASE_IMAGE}}
ENV PIP_NO_CACHE_DIR=1 HOME=/tmp PYTHONUNBUFFERED=1
# flash-attn compiles against the base image's torch and CUDA (a devel base has nvcc); this takes a while.
RUN pip install ninja packaging && MAX_JOBS=8 pip install flash-attn --no-build-isolation \\
    && pip install flashinfer-python
COPY . /opt/blis
# OpenShift runs the container as an arbitrary UID in group 0: give the group what the owner has.
RUN pip install /opt/blis && chgrp -R 0 /opt/blis && chmod -R g=u /opt/blis
USER 1001
WORKDIR /tmp
"""


def render(opts: RenderOptions, plan_text: str, gpu: str, out_dir: Path,
           base_image: str | None = None) -> list[Path]:
    """Write the manifests (and the Dockerfile when ``base_image`` is given) into ``out_dir``; return the
    written manifest paths in apply order."""
    opts.check()
    out_dir.mkdir(parents=True, exist_ok=True)
    docs: list[tuple[str, dict[str, Any]]] = [("00-configmap.yaml", configmap(opts, plan_text, gpu))]
    if opts.storage == "pvc":
        docs += [("01-pvc.yaml", pvc(opts, gpu)), ("02-collector.yaml", collector(opts, gpu))]
    docs.append(("03-job.yaml", job(opts, gpu)))
    paths = []
    for fname, doc in docs:
        path = out_dir / fname
        path.write_text(yaml.safe_dump(doc, sort_keys=False, width=120))
        paths.append(path)
    meta = {"name": opts.name, "namespace": opts.namespace, "gpu": gpu, "shards": opts.shards,
            "storage": opts.storage, "collector": f"{opts.name}-collector" if opts.storage == "pvc" else None,
            "manifests": [p.name for p in paths], "plan": json.loads(plan_text)}
    (out_dir / META_FILE).write_text(json.dumps(meta, indent=1) + "\n")
    if base_image is not None:
        (out_dir / "Dockerfile").write_text(dockerfile(base_image))
    return paths


def load_meta(manifest_dir: Path) -> dict[str, Any]:
    """The ``blis-jobs.json`` that `render` wrote (ValueError naming the folder when absent or broken)."""
    path = Path(manifest_dir) / META_FILE
    if not path.is_file():
        raise ValueError(f"--manifests {manifest_dir}: no {META_FILE} (write the folder with `jobs render`)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not JSON ({exc.msg})") from None


_ALLOWED_VOLUMES = {"configMap", "emptyDir", "persistentVolumeClaim", "secret", "downwardAPI", "projected",
                    "ephemeral", "csi"}


def _pod_spec(doc: Mapping[str, Any]) -> Mapping[str, Any] | None:
    kind = doc.get("kind")
    if kind == "Pod":
        return doc.get("spec", {})
    if kind in ("Job", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"):
        return doc.get("spec", {}).get("template", {}).get("spec", {})
    return None


def restricted_problems(doc: Mapping[str, Any]) -> list[str]:
    """Why a manifest's pods would be refused by OpenShift's ``restricted-v2`` SCC / Kubernetes' restricted
    Pod Security Standard (empty when admitted). Other kinds have no pods and no problems."""
    spec = _pod_spec(doc)
    if spec is None:
        return []
    name = doc.get("metadata", {}).get("name", "?")
    out = []
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(flag):
            out.append(f"{name}: {flag} is not allowed")
    psc = spec.get("securityContext", {}) or {}
    for vol in spec.get("volumes", []) or []:
        kinds = set(vol) - {"name"}
        if not kinds <= _ALLOWED_VOLUMES:
            out.append(f"{name}: volume {vol.get('name')} of type {sorted(kinds - _ALLOWED_VOLUMES)} is not allowed")
    if psc.get("runAsUser") is not None:
        out.append(f"{name}: pod runAsUser is fixed (restricted-v2 assigns a UID from the namespace range)")
    for c in list(spec.get("containers", [])) + list(spec.get("initContainers", []) or []):
        cname = f"{name}/{c.get('name')}"
        sc = c.get("securityContext", {}) or {}
        if sc.get("privileged"):
            out.append(f"{cname}: privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            out.append(f"{cname}: allowPrivilegeEscalation must be false")
        caps = sc.get("capabilities", {}) or {}
        if "ALL" not in (caps.get("drop") or []):
            out.append(f"{cname}: capabilities must drop ALL")
        if set(caps.get("add") or []) - {"NET_BIND_SERVICE"}:
            out.append(f"{cname}: adds capabilities {sorted(set(caps['add']) - {'NET_BIND_SERVICE'})}")
        if not (sc.get("runAsNonRoot") or psc.get("runAsNonRoot")):
            out.append(f"{cname}: runAsNonRoot must be true")
        if sc.get("runAsUser") == 0:
            out.append(f"{cname}: runs as root")
        if sc.get("runAsUser") is not None:
            out.append(f"{cname}: runAsUser is fixed (restricted-v2 assigns a UID from the namespace range)")
        seccomp = (sc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            out.append(f"{cname}: seccompProfile must be RuntimeDefault or Localhost")
        for port in c.get("ports", []) or []:
            if port.get("hostPort"):
                out.append(f"{cname}: hostPort is not allowed")
    return out
