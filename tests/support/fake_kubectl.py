#!/usr/bin/env python3
"""A stand-in for kubectl/oc in tests (no cluster can exist in CI): records its arguments and serves canned
answers from the folder in $FAKE_KUBE_DIR.

  calls.jsonl          one JSON list of arguments per call (appended)
  job.json, pods.json  what `get job ... -o json` and `get pods ... -o json` print
  logs/<pod>.log       what `logs <pod>` prints (missing file: exit 1, as for a deleted pod)
  volume/<path>        what `cp <pod>:/out/<path> DEST` copies (missing: exit 1, as for a gone volume)
`apply -f FILE` prints "<kind>/<name> created" after reading the file's kind and metadata.name.
"""
import json
import os
import shutil
import sys
from pathlib import Path

root = Path(os.environ["FAKE_KUBE_DIR"])
args = sys.argv[1:]
with (root / "calls.jsonl").open("a") as fh:
    fh.write(json.dumps(args) + "\n")
if args[:1] == ["-n"]:
    args = args[2:]
if args[:2] == ["get", "job"]:
    sys.stdout.write((root / "job.json").read_text())
elif args[:2] == ["get", "pods"]:
    sys.stdout.write((root / "pods.json").read_text())
elif args[:1] == ["logs"]:
    path = root / "logs" / f"{args[1]}.log"
    if not path.exists():
        sys.stderr.write(f'Error from server (NotFound): pods "{args[1]}" not found\n')
        sys.exit(1)
    sys.stdout.write(path.read_text())
elif args[:1] == ["cp"]:
    remote = args[1].split(":", 1)[1]
    src = root / "volume" / remote.removeprefix("/out/")
    if not src.exists():
        sys.stderr.write(f"error: {remote}: No such file or directory\n")
        sys.exit(1)
    shutil.copytree(src, args[2])
elif args[:2] == ["apply", "-f"]:
    text = Path(args[2]).read_text()
    kind = next(line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("kind:"))
    name = next(line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("  name:"))
    print(f"{kind.lower()}/{name} created")
else:
    sys.stderr.write(f"fake kubectl: unsupported call {args}\n")
    sys.exit(1)
