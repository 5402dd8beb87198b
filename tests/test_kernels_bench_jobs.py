"""`python -m kernels_bench jobs`: shard plans, manifests checked against the official Kubernetes schema and
OpenShift's restricted SCC, and submit/status/collect against a kubectl stand-in (no cluster exists in CI;
tests/support/fake_kubectl.py records its arguments and serves canned JSON, logs and files)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import yaml

from kernels_bench import provenance
from kernels_bench.__main__ import EXIT_INCOMPLETE, main
from kernels_bench.jobs import archive, manifests, merge, shards
from kernels_bench.jobs.cli import sweep_points
from kernels_bench.jobs.kube import parse_indexes, shard_states
from kernels_bench.plan import Plan, restrict_plan
from kernels_bench.sweep import Budget, Peaks, run_sweep
from kernels_bench.writer import read_table

FAKE_KUBECTL = Path(__file__).parent / "support" / "fake_kubectl.py"
QUICK = ["--gpu", "h100", "--models", "llama-2-7b", "--tp", "1,2", "--quick"]
DEVICE = {"device": "NVIDIA H100 80GB HBM3", "driver": "550.54", "cuda": "12.4", "torch": "2.5.1", "detail": ""}


def test_split_longest_first_to_the_lightest_group():
    # 5 -> g0; 4 -> g1; 3 -> g1 (4 < 5); 3 -> g0 (5 < 7); 3 -> g1 (7 < 8). Totals 8 and 10.
    assert shards.split([5, 4, 3, 3, 3], 2) == [[0, 3], [1, 2, 4]]
    assert shards.split([1, 1, 1], 3) == [[0], [1], [2]]
    with pytest.raises(ValueError, match="more than the 2 points"):
        shards.split([1, 1], 3)


def test_point_seconds_from_the_roofline_and_the_timing_protocol():
    _, points = sweep_points(["gemm", *QUICK])
    p = next(p for p in points if p.precision == "bf16" and p.key["m"] == 1)
    peak, bw = {"bf16": 1e15}, 3e12
    kernel = max(p.flops / 1e15, p.nbytes / bw) * 1e6 + shards.LAUNCH_FLOOR_US
    assert shards.kernel_estimate_us(p, peak, bw) == pytest.approx(kernel)
    # a tiny kernel gets max_reps (100) timed calls, each after a 256 MiB flush written at 3 TB/s
    t = shards.Timing()
    expect = shards.SETUP_S + ((3 + 1 + 100) * kernel + 100 * (256 * 2**20 / bw * 1e6)) / 1e6
    assert shards.point_seconds(p, peak, bw, t) == pytest.approx(expect)


def _plan(tmp_path, n=3, extra=()):
    out = tmp_path / "plan.json"
    assert main(["jobs", "plan", *QUICK, "--shards", str(n), "--out", str(out), *extra]) == 0
    return shards.loads(out.read_text())


def test_plan_partitions_every_point_once_and_balances(tmp_path, capsys):
    plan = _plan(tmp_path, 3)
    _, points = sweep_points(plan["sweep_argv"])
    ids = [shards.shard_ids(plan, i) for i in range(3)]
    assert set().union(*ids) == {shards.point_id(p) for p in points}
    assert sum(len(s) for s in ids) == len(points) == plan["points"]
    secs = [s["expected_seconds"] for s in plan["shards"]]
    assert max(secs) / (sum(secs) / 3) < 1.05
    assert "3 shards" in capsys.readouterr().out


def test_plan_refuses_edits_and_other_documents(tmp_path):
    plan = _plan(tmp_path, 2)
    plan["shards"][0]["points"] += 1
    with pytest.raises(ValueError, match="digest mismatch"):
        shards.loads(json.dumps(plan))
    with pytest.raises(ValueError, match="not a kernels_bench shard plan"):
        shards.loads("{}")
    with pytest.raises(ValueError, match="outside 0..1"):
        shards.shard_ids(shards.loads((tmp_path / "plan.json").read_text()), 2)


def _render(tmp_path, storage="emptydir", extra=()):
    out = tmp_path / "manifests"
    rc = main(["jobs", "render", *QUICK, "--shards", "3", "--image", "registry.example/blis-kb:1",
               "--namespace", "gpu-bench", "--out", str(out), "--storage", storage,
               "--node-selector", "nvidia.com/gpu.product=NVIDIA-H100-80GB-HBM3",
               "--toleration", "nvidia.com/gpu:NoSchedule", *extra])
    assert rc == 0
    return out


def _docs(folder):
    return [yaml.safe_load(p.read_text()) for p in sorted(folder.glob("*.yaml"))]


@pytest.mark.parametrize("storage", ["emptydir", "pvc"])
def test_manifests_pass_the_official_schema_strictly(tmp_path, storage):
    if os.environ.get("CI", "").lower() == "true":
        import kubernetes_validate  # the dev extra installs it: CI must validate, never skip
    else:
        kubernetes_validate = pytest.importorskip("kubernetes_validate")
    docs = _docs(_render(tmp_path, storage))
    assert [d["kind"] for d in docs] == (["ConfigMap", "Job"] if storage == "emptydir"
                                         else ["ConfigMap", "PersistentVolumeClaim", "Pod", "Job"])
    for version in ("1.29.0", "1.30.0", kubernetes_validate.latest_version()):
        for doc in docs:
            kubernetes_validate.validate(doc, version, strict=True)
    bad = json.loads(json.dumps(docs[-1]))
    bad["spec"]["template"]["spec"]["containers"][0]["gpus"] = 1  # not a Kubernetes field
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, "1.29.0", strict=True)


def test_job_is_indexed_one_gpu_per_pod_and_openshift_restricted(tmp_path):
    folder = _render(tmp_path, "pvc", ["--dockerfile"])
    docs = _docs(folder)
    job = docs[-1]
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed" and spec["completions"] == 3
    pod = spec["template"]["spec"]
    c = pod["containers"][0]
    assert c["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert c["command"][-4:] == ["--plan", "/plan/plan.json", "--out", "/out"]
    assert pod["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}
    assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    for doc in docs:
        assert manifests.restricted_problems(doc) == []
    plan = shards.loads(docs[0]["data"]["plan.json"])
    assert len(plan["shards"]) == 3
    # the check can fail: a privileged, root, host-path pod is refused on several counts
    bad = json.loads(json.dumps(job))
    bad_pod = bad["spec"]["template"]["spec"]
    bad_pod["containers"][0]["securityContext"] = {"privileged": True, "runAsUser": 0}
    bad_pod["volumes"].append({"name": "host", "hostPath": {"path": "/"}})
    problems = manifests.restricted_problems(bad)
    assert any("privileged" in p for p in problems) and any("hostPath" in p for p in problems)
    assert any("allowPrivilegeEscalation" in p for p in problems) and any("root" in p for p in problems)
    assert "FROM ${BASE_IMAGE}" in (folder / "Dockerfile").read_text()


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--namespace", "Bad_NS"], "--namespace 'Bad_NS'"),
        (["--toleration", "gpu"], "--toleration 'gpu'"),
        (["--node-selector", "nolabel"], "--node-selector 'nolabel'"),
        (["--memory", "lots"], "--memory 'lots'"),
    ],
)
def test_render_bad_flags_exit_2_with_one_line(tmp_path, capsys, extra, needle):
    argv = ["jobs", "render", *QUICK, "--shards", "2", "--image", "img:1", "--namespace", "ns",
            "--out", str(tmp_path / "m"), *extra]
    rc = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and needle in err[0]
    assert not (tmp_path / "m").exists()


def test_dry_run_writes_and_runs_nothing(tmp_path, capsys):
    out = tmp_path / "m"
    assert main(["jobs", "render", *QUICK, "--shards", "2", "--image", "i:1", "--namespace", "ns",
                 "--out", str(out), "--dry-run"]) == 0
    assert not out.exists() and "would write" in capsys.readouterr().out
    folder = _render(tmp_path)
    assert main(["jobs", "submit", "--manifests", str(folder), "--cli", "oc", "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == f"would run: oc -n gpu-bench apply -f {folder / '03-job.yaml'}"


def test_indexes_and_shard_states():
    assert parse_indexes("0-2,5,7-8") == {0, 1, 2, 5, 7, 8} and parse_indexes(None) == set()
    job = {"status": {"completedIndexes": "0", "failedIndexes": "2"}}
    pods = [_pod("j-1-a", 1, "Running"), _pod("j-0-a", 0, "Failed", "t1"), _pod("j-0-b", 0, "Succeeded", "t0")]
    states = shard_states(job, pods, 4)
    assert [(s.index, s.state, s.pod) for s in states] == [
        (0, "succeeded", "j-0-b"), (1, "running", "j-1-a"), (2, "failed", None), (3, "pending", None)]


def _pod(name, index, phase, created="t0"):
    return {"metadata": {"name": name, "creationTimestamp": created,
                         "annotations": {"batch.kubernetes.io/job-completion-index": str(index)}},
            "spec": {"nodeName": "gpu-node"}, "status": {"phase": phase}}


def _measure_shard(plan, index, folder):
    """What a pod writes, without a GPU: the shard's points timed by a fake runner at half the roofline."""
    args, points = sweep_points(plan["sweep_argv"], str(folder))
    only = shards.shard_ids(plan, index)
    p = Plan(points={"all": points})
    sel = restrict_plan(p, only).points["all"]
    sheet = provenance.datasheet("h100")
    provenance.save(folder, provenance.new_provenance("h100", sheet, DEVICE, "jobs run-shard"))
    peaks = Peaks(flops=sheet.peak_flops, bandwidth_Bps=sheet.bandwidth_Bps)

    def runner(pt):
        return 2e6 * max(pt.flops / sheet.peak_flops[pt.precision], pt.nbytes / sheet.bandwidth_Bps) + 3.0

    res = run_sweep(sel, runner, folder, peaks, Budget(None))
    assert res.complete
    return len(sel)


def _fake_cluster(tmp_path, monkeypatch, plan, done, storage):
    root = tmp_path / "kube"
    (root / "logs").mkdir(parents=True)
    monkeypatch.setenv("FAKE_KUBE_DIR", str(root))
    pods = []
    for i in range(len(plan["shards"])):
        phase = "Succeeded" if i in done else "Running"
        pods.append(_pod(f"kb-{i}", i, phase))
        if i in done:
            folder = tmp_path / "pod" / f"shard-{i}"
            _measure_shard(plan, i, folder)
            (root / "logs" / f"kb-{i}.log").write_text("shard starting\nprogress...\n" + archive.pack(folder, i))
            if storage == "pvc" and i != 0:  # shard 0's copy on the volume is gone: collect falls back to the log
                import shutil

                shutil.copytree(folder, root / "volume" / f"shard-{i}")
    (root / "pods.json").write_text(json.dumps({"items": pods}))
    compressed = ",".join(str(i) for i in sorted(done))
    (root / "job.json").write_text(json.dumps({"status": {"completedIndexes": compressed}}))
    return root


def _calls(root):
    return [json.loads(line) for line in (root / "calls.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("storage", ["emptydir", "pvc"])
def test_collect_resumes_merges_checks_and_covers(tmp_path, monkeypatch, capsys, storage):
    folder = _render(tmp_path, storage)
    plan = manifests.load_meta(folder)["plan"]
    out = tmp_path / "bench_data" / "h100"
    root = _fake_cluster(tmp_path, monkeypatch, plan, {0, 2}, storage)
    cli = ["--manifests", str(folder), "--cli", str(FAKE_KUBECTL)]

    assert main(["jobs", "status", *cli]) == 0
    assert "2 succeeded, 1 running, 0 pending, 0 failed of 3 shards" in capsys.readouterr().out

    rc = main(["jobs", "collect", *cli, "--out", str(out)])
    cap = capsys.readouterr()
    assert rc == EXIT_INCOMPLETE
    assert "shards collected: 2/3" in cap.out and "shard 1: running" in cap.err
    planned = shards.planned_rows(plan)
    have = sum(len(read_table(out / rel)) for rel in planned)
    assert have == sum(plan["shards"][i]["points"] for i in (0, 2))

    # shard 1 finishes; collecting again fetches it alone and completes the tables
    _fake_cluster(tmp_path / "later", monkeypatch, plan, {1}, storage)
    (tmp_path / "later" / "kube" / "job.json").write_text(json.dumps({"status": {"completedIndexes": "0-2"}}))
    pods = [_pod(f"kb-{i}", i, "Succeeded") for i in range(3)]
    (tmp_path / "later" / "kube" / "pods.json").write_text(json.dumps({"items": pods}))
    rc = main(["jobs", "collect", *cli, "--out", str(out)])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    later = _calls(tmp_path / "later" / "kube")
    fetched = [c for c in later if "logs" in c or "cp" in c]
    assert all("kb-1" in " ".join(c) or "shard-1" in " ".join(c) for c in fetched) and fetched
    for rel, n in planned.items():
        assert len(read_table(out / rel)) == n, rel
    assert "coverage: " in cap.out and "(100.0%)" in cap.out
    assert "bench-data check of" in cap.err and "OK" in cap.err
    if storage == "pvc":
        first = _calls(root)
        assert any(c[2] == "cp" and c[3].startswith("kernels-bench-h100-collector:") for c in first)


def test_merge_is_idempotent_and_refuses_another_device(tmp_path):
    plan = _plan(tmp_path, 2)
    dirs = [tmp_path / f"s{i}" for i in range(2)]
    counts = [_measure_shard(plan, i, d) for i, d in enumerate(dirs)]
    out = tmp_path / "out"
    keys = shards.key_columns(plan)
    res = merge.merge(dirs, out, keys, plan["digest"])
    assert sum(res.added.values()) == sum(counts)
    again = merge.merge(dirs, out, keys, plan["digest"])
    assert sum(again.added.values()) == 0 and sum(again.duplicates.values()) == sum(counts)
    other = tmp_path / "other"
    sheet = provenance.datasheet("h100")
    provenance.save(other, provenance.new_provenance("h100", sheet, {**DEVICE, "device": "NVIDIA H100 PCIe"}, "x"))
    with pytest.raises(ValueError, match="measured on"):
        merge.merge([dirs[0], other], tmp_path / "out2", keys, plan["digest"])


def test_archive_round_trip_and_corruption(tmp_path):
    src = tmp_path / "src"
    (src / "attention_decode").mkdir(parents=True)
    (src / "gemm_bf16.csv").write_text("m,k,n,latency_us,mfu\n1,2,3,4.5,0.1\n")
    (src / "attention_decode" / "8-8-128.csv").write_text("x\n")
    block = archive.pack(src, 4)
    assert archive.pack(src, 4) == block  # deterministic
    n = archive.unpack("noise\n" + block + "more noise\n", 4, tmp_path / "dst")
    assert n == 2 and (tmp_path / "dst" / "gemm_bf16.csv").read_text() == (src / "gemm_bf16.csv").read_text()
    lines = block.splitlines()
    lines[1] = ("A" if lines[1][0] != "A" else "B") + lines[1][1:]
    with pytest.raises(ValueError, match="corrupt"):
        archive.unpack("\n".join(lines), 4, tmp_path / "d2")
    with pytest.raises(ValueError, match="no complete archive"):
        archive.unpack("\n".join(block.splitlines()[:-1]), 4, tmp_path / "d3")
    with pytest.raises(ValueError, match="no complete archive"):
        archive.unpack(block, 5, tmp_path / "d4")


def test_run_shard_keeps_its_points_and_reads_the_completion_index(tmp_path, monkeypatch, capsys):
    plan = _plan(tmp_path, 2)
    path = tmp_path / "plan.json"
    monkeypatch.setenv("JOB_COMPLETION_INDEX", "1")
    assert main(["jobs", "run-shard", "--plan", str(path), "--out", str(tmp_path / "o"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    total = sum(int(m.group(1)) for m in re.finditer(r"^(?:gemm|attention_\w+): (\d+) points in ", out, re.M))
    assert total == plan["shards"][1]["points"]
    monkeypatch.delenv("JOB_COMPLETION_INDEX")
    assert main(["jobs", "run-shard", "--plan", str(path), "--out", str(tmp_path / "o")]) == 2
    assert "JOB_COMPLETION_INDEX is not set" in capsys.readouterr().err
