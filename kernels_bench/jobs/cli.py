"""``python -m kernels_bench jobs plan|render|submit|status|collect|run-shard``.

    jobs plan    --gpu h100 --shards 8 --out plan.json [--family all] [--models ...] [--tp 1,2] [--quick]
    jobs render  --gpu h100 --shards 8 --image IMG --namespace NS --out DIR [--plan plan.json]
                 [--storage emptydir|pvc] [--node-selector k=v] [--toleration key=value:NoSchedule] [--dockerfile]
    jobs submit  --manifests DIR [--cli kubectl|oc|PATH]
    jobs status  --manifests DIR [--json]
    jobs collect --manifests DIR --out bench_data/h100 [--work DIR]
    jobs run-shard --plan /plan/plan.json --out /out [--index I]   (what each pod runs)

Every command takes ``--dry-run``: it prints what it would write or run and changes nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from kernels_bench.jobs import manifests, shards

SWEEP_FAMILIES = ("gemm", "attention-prefill", "attention-decode", "all")


def _out(line: str) -> None:
    print(line, file=sys.stdout)


def _err(line: str) -> None:
    print(line, file=sys.stderr)


def _add_plan_args(p: argparse.ArgumentParser, required: bool) -> None:
    from kernels_bench.__main__ import _add_timing_args, _dtype_list, _name_list, _positive_int, _tp_list

    p.add_argument("--gpu", required=required, help="GPU name in blis's hardware table (e.g. h100)")
    p.add_argument("--shards", type=_positive_int, required=required, help="number of shards (pods), >= 1")
    p.add_argument("--family", choices=SWEEP_FAMILIES, default="all", help="kernel families to sweep (default all)")
    p.add_argument("--models", type=_name_list, default=None, help="registered models (default: every one)")
    p.add_argument("--tp", type=_tp_list, default=None, help="tensor-parallel degrees (default 1,2,4,8)")
    p.add_argument("--dtype", type=_dtype_list, default=None, help="bf16,fp8 (default both)")
    p.add_argument("--quick", action="store_true", help="a few points per table (smoke run)")
    _add_timing_args(p)


def _sweep_argv(args: argparse.Namespace) -> list[str]:
    argv = [args.family, "--gpu", args.gpu]
    if args.models:
        argv += ["--models", ",".join(args.models)]
    if args.tp:
        argv += ["--tp", ",".join(map(str, args.tp))]
    if args.dtype:
        argv += ["--dtype", ",".join(args.dtype)]
    if args.quick:
        argv.append("--quick")
    argv += ["--warmup", str(args.warmup), "--min-reps", str(args.min_reps), "--max-reps", str(args.max_reps),
             "--target-ms", f"{args.target_ms:g}"]
    return argv


def sweep_points(sweep_argv: list[str], out: str = "/out", only: Any = None) -> tuple[argparse.Namespace, list]:
    """The sweep's parsed arguments and its points in measurement order (datasheet memory, FP8 assumed
    available: the pod's own run drops what its device cannot measure, and coverage shows it)."""
    from kernels_bench.__main__ import _models_and_sheet, build_parser
    from kernels_bench.plan import make_plan

    args = build_parser().parse_args([*sweep_argv, "--out", out])
    models, sheet = _models_and_sheet(args)
    plan = make_plan(args, models, sheet.memory_bytes)
    return args, [p for pts in plan.points.values() for p in pts]


def make_shard_plan(args: argparse.Namespace) -> dict[str, Any]:
    from kernels_bench.__main__ import _models_and_sheet
    from kernels_bench.jobs.shards import Timing

    argv = _sweep_argv(args)
    sweep_args, points = sweep_points(argv)
    _, sheet = _models_and_sheet(sweep_args)
    timing = Timing(args.warmup, args.min_reps, args.max_reps, args.target_ms)
    return shards.build_plan(argv, points, args.shards, sheet.peak_flops, sheet.bandwidth_Bps, timing,
                             args.gpu.lower())


def _describe(plan: dict[str, Any]) -> None:
    secs = [s["expected_seconds"] for s in plan["shards"]]
    _out(f"plan {plan['digest']}: {plan['points']} points of `python -m kernels_bench {' '.join(plan['sweep_argv'])}` "
         f"in {len(secs)} shards; expected {plan['expected_seconds'] / 60:.1f} GPU-minutes in all, "
         f"{max(secs) / 60:.1f} min for the longest shard (imbalance {max(secs) / (sum(secs) / len(secs)):.3f})")
    for s in plan["shards"]:
        _out(f"  shard {s['index']}: {s['points']} points in {len(s['tables'])} tables, "
             f"~{s['expected_seconds'] / 60:.1f} min")


def cmd_plan(args: argparse.Namespace) -> int:
    plan = make_shard_plan(args)
    text = shards.dumps(plan)
    _describe(plan)
    if args.dry_run:
        _out(f"would write {args.out} ({len(text)} bytes)")
        return 0
    Path(args.out).write_text(text + "\n")
    return 0


def _read_plan(path: Path) -> dict[str, Any]:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ValueError(f"--plan {path}: {exc.strerror}") from None
    return shards.loads(text, f"--plan {path}")


def cmd_render(args: argparse.Namespace) -> int:
    if args.plan is not None:
        plan = _read_plan(args.plan)
        if args.gpu and args.gpu.lower() != plan["gpu"]:
            raise ValueError(f"--gpu {args.gpu} but --plan is for {plan['gpu']}")
        if args.shards and args.shards != len(plan["shards"]):
            raise ValueError(f"--shards {args.shards} but --plan has {len(plan['shards'])} shards")
    else:
        if not args.gpu or not args.shards:
            raise ValueError("render needs --plan, or --gpu and --shards to make one")
        plan = make_shard_plan(args)
    gpu = plan["gpu"]
    opts = manifests.RenderOptions(
        name=args.name or f"kernels-bench-{gpu}", namespace=args.namespace, image=args.image,
        shards=len(plan["shards"]), parallelism=args.parallelism, storage=args.storage, pvc_size=args.pvc_size,
        storage_class=args.storage_class, access_mode=args.access_mode,
        node_selector=manifests.parse_node_selector(args.node_selector or []),
        tolerations=[manifests.parse_toleration(t) for t in args.toleration or []], cpu=args.cpu,
        memory=args.memory, backoff_limit_per_index=args.backoff_limit_per_index,
        active_deadline_seconds=args.active_deadline_seconds)
    opts.check()
    text = shards.dumps(plan)
    _describe(plan)
    if args.dry_run:
        names = ["00-configmap.yaml", *(["01-pvc.yaml", "02-collector.yaml"] if opts.storage == "pvc" else []),
                 "03-job.yaml", manifests.META_FILE, *(["Dockerfile"] if args.dockerfile else [])]
        for n in names:
            _out(f"would write {Path(args.out) / n}")
        return 0
    paths = manifests.render(opts, text, gpu, Path(args.out), args.base_image if args.dockerfile else None)
    for p in paths:
        _out(f"wrote {p}")
    if args.dockerfile:
        _out(f"wrote {Path(args.out) / 'Dockerfile'}; build it from the repository root: "
             f"docker build -f {Path(args.out) / 'Dockerfile'} -t {args.image} .")
    return 0


def _kube(args: argparse.Namespace, meta: dict[str, Any]):
    from kernels_bench.jobs.kube import Kube

    return Kube(cli=args.cli, namespace=args.namespace or meta["namespace"], dry_run=args.dry_run, echo=_out)


def cmd_submit(args: argparse.Namespace) -> int:
    meta = manifests.load_meta(args.manifests)
    paths = [Path(args.manifests) / n for n in meta["manifests"]]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise ValueError(f"--manifests: {missing[0]} is missing (render the folder again)")
    _kube(args, meta).apply(paths)
    if not args.dry_run:
        _out(f"submitted Job {meta['name']} ({meta['shards']} shards) in namespace {meta['namespace']}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from kernels_bench.jobs.kube import shard_states

    meta = manifests.load_meta(args.manifests)
    kube = _kube(args, meta)
    job = kube.job(meta["name"])
    states = shard_states(job, kube.job_pods(meta["name"]), meta["shards"])
    if args.dry_run:
        return 0
    counts: dict[str, int] = {}
    for s in states:
        counts[s.state] = counts.get(s.state, 0) + 1
    if args.json:
        _out(json.dumps({"job": meta["name"], "namespace": kube.namespace, "counts": counts,
                         "shards": [s.__dict__ for s in states]}, indent=1))
    else:
        _out(f"Job {meta['name']} in {kube.namespace}: " + ", ".join(
            f"{counts.get(k, 0)} {k}" for k in ("succeeded", "running", "pending", "failed")) +
             f" of {meta['shards']} shards")
        for s in states:
            where = f" (pod {s.pod}" + (f" on {s.node}" if s.node else "") + ")" if s.pod else ""
            _out(f"  shard {s.index}: {s.state}{where}")
    return 0


def cmd_collect(args: argparse.Namespace) -> int:
    from kernels_bench.__main__ import EXIT_INCOMPLETE, check_written
    from kernels_bench.jobs.collect import collect
    from kernels_bench.jobs.merge import coverage_lines

    meta = manifests.load_meta(args.manifests)
    work = Path(args.work) if args.work else Path(args.manifests) / "collected"
    res = collect(_kube(args, meta), meta, work, Path(args.out), _err, check=check_written)
    if args.dry_run:
        return 0
    for line in coverage_lines(res.coverage):
        _out(line)
    _out(f"shards collected: {len(res.have)}/{meta['shards']}" + (
        f"; run collect again when shards {sorted(res.waiting)} finish" if res.waiting else ""))
    if res.check_ok is False:
        return 1
    return 0 if res.complete else EXIT_INCOMPLETE


def cmd_run_shard(args: argparse.Namespace) -> int:
    """What a pod runs: its shard's points into ``<out>/shard-<index>``, then the folder on the log."""
    from kernels_bench.__main__ import cmd_sweep
    from kernels_bench.jobs import archive

    plan = _read_plan(args.plan)
    index = args.index
    if index is None:
        env = os.environ.get("JOB_COMPLETION_INDEX")
        if env is None or not env.isdigit():
            raise ValueError("--index not given and JOB_COMPLETION_INDEX is not set (not in an Indexed Job)")
        index = int(env)
    only = shards.shard_ids(plan, index)
    folder = Path(args.out) / f"shard-{index}"
    sweep_args, _ = sweep_points(plan["sweep_argv"], str(folder))
    sweep_args.only = only
    sweep_args.dry_run = args.dry_run
    _err(f"shard {index} of plan {plan['digest']}: {len(only)} points into {folder}")
    rc = cmd_sweep(sweep_args)
    if not args.dry_run and not args.no_log_archive and folder.is_dir():
        sys.stdout.write(archive.pack(folder, index))
        sys.stdout.flush()
    return rc


def _bad_input_is_usage(fn: Any) -> Any:
    """Handlers raise ValueError for bad flags or files: exit 2 with one line (kubectl failures stay exit 1)."""
    def run(args: argparse.Namespace) -> int:
        from kernels_bench.__main__ import UsageError

        try:
            return fn(args)
        except ValueError as exc:
            raise UsageError(str(exc)) from None

    return run


def register(sub: Any) -> None:
    from kernels_bench.__main__ import _Parser, _positive_int

    jobs = sub.add_parser("jobs", help="shard a sweep over a GPU cluster (Kubernetes/OpenShift Jobs)")
    jsub = jobs.add_subparsers(dest="jobs_command", metavar="JOBS_COMMAND", parser_class=_Parser)
    jsub.required = True

    p = jsub.add_parser("plan", help="split a sweep into shards of similar expected duration")
    _add_plan_args(p, required=True)
    p.add_argument("--out", required=True, help="plan JSON file to write")
    p.add_argument("--dry-run", action="store_true", help="print the shards, write nothing")
    p.set_defaults(handler=_bad_input_is_usage(cmd_plan))

    p = jsub.add_parser("render", help="write the Job, ConfigMap, volume and Dockerfile for a plan")
    _add_plan_args(p, required=False)
    p.add_argument("--plan", type=Path, help="plan JSON from `jobs plan` (else made from --gpu/--shards)")
    p.add_argument("--image", required=True, help="container image with torch and this package")
    p.add_argument("--namespace", required=True, help="Kubernetes namespace / OpenShift project")
    p.add_argument("--out", required=True, help="folder for the manifests")
    p.add_argument("--name", help="Job name (default kernels-bench-<gpu>)")
    p.add_argument("--parallelism", type=_positive_int, help="pods at once (default: one per shard)")
    p.add_argument("--storage", choices=("emptydir", "pvc"), default="emptydir",
                   help="output volume: emptydir (collected from pod logs) or pvc (resumable; collector pod)")
    p.add_argument("--pvc-size", default="20Gi", help="PVC size (default 20Gi)")
    p.add_argument("--storage-class", help="PVC storage class (default: the cluster's)")
    p.add_argument("--access-mode", default="ReadWriteMany", help="PVC access mode (default ReadWriteMany)")
    p.add_argument("--node-selector", action="append", metavar="KEY=VALUE", help="node label to require (repeat)")
    p.add_argument("--toleration", action="append", metavar="KEY[=VALUE]:EFFECT", help="taint to tolerate (repeat)")
    p.add_argument("--cpu", default="4", help="CPU request and limit per pod (default 4)")
    p.add_argument("--memory", default="32Gi", help="memory request and limit per pod (default 32Gi)")
    p.add_argument("--backoff-limit-per-index", type=int, default=2, help="retries per shard (default 2)")
    p.add_argument("--active-deadline-seconds", type=_positive_int, help="stop the Job after this many seconds")
    p.add_argument("--dockerfile", action="store_true", help="also write a Dockerfile for --image")
    p.add_argument("--base-image", default=manifests.DEFAULT_BASE_IMAGE, help="Dockerfile base (CUDA + torch)")
    p.add_argument("--dry-run", action="store_true", help="print the files it would write, write nothing")
    p.set_defaults(handler=_bad_input_is_usage(cmd_render))

    for name, handler, helptext in (("submit", cmd_submit, "kubectl apply the rendered manifests"),
                                    ("status", cmd_status, "shards done, running, pending, failed"),
                                    ("collect", cmd_collect, "fetch finished shards, merge, check, coverage")):
        p = jsub.add_parser(name, help=helptext)
        p.add_argument("--manifests", type=Path, required=True, help="folder written by `jobs render`")
        p.add_argument("--cli", default="kubectl", help="kubectl, oc, or a path to either (default kubectl)")
        p.add_argument("--namespace", help="override the rendered namespace")
        p.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
        if name == "status":
            p.add_argument("--json", action="store_true", help="print JSON")
        if name == "collect":
            p.add_argument("--out", required=True, help="GPU folder to merge into, e.g. bench_data/h100")
            p.add_argument("--work", help="where fetched shards are kept (default <manifests>/collected)")
        p.set_defaults(handler=_bad_input_is_usage(handler))

    p = jsub.add_parser("run-shard", help="measure one shard (run inside a pod of the Job)")
    p.add_argument("--plan", type=Path, required=True, help="plan JSON")
    p.add_argument("--out", required=True, help="folder; the shard goes into <out>/shard-<index>")
    p.add_argument("--index", type=int, help="shard index (default $JOB_COMPLETION_INDEX)")
    p.add_argument("--no-log-archive", action="store_true", help="do not print the shard folder on stdout")
    p.add_argument("--dry-run", action="store_true", help="list the shard's tables, measure nothing")
    p.set_defaults(handler=_bad_input_is_usage(cmd_run_shard))
