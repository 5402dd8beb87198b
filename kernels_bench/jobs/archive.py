"""A shard folder as framed base64 on a pod's log, and back.

When the Job's output volume is an emptyDir (or a PVC that is gone), the pod log is the only copy left:
`run-shard` ends by printing its folder as a gzip'd tar between two marker lines, with the archive's
sha256, and `collect` finds the block in ``kubectl logs`` and unpacks it after checking the digest.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import tarfile
from pathlib import Path

BEGIN = "=== kernels_bench shard {index} begin sha256={sha} ==="
END = "=== kernels_bench shard {index} end ==="
LINE = 76


def pack(folder: Path, index: int) -> str:
    """The framed block for ``folder`` (files only, names relative to it, sorted, mtimes zeroed)."""
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz, tarfile.open(fileobj=gz, mode="w") as tar:
        for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
            info = tar.gettarinfo(str(path), arcname=path.relative_to(folder).as_posix())
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            with path.open("rb") as fh:
                tar.addfile(info, fh)
    data = buf.getvalue()
    text = base64.b64encode(data).decode()
    lines = [BEGIN.format(index=index, sha=hashlib.sha256(data).hexdigest())]
    lines += [text[i:i + LINE] for i in range(0, len(text), LINE)]
    lines.append(END.format(index=index))
    return "\n".join(lines) + "\n"


def unpack(log: str, index: int, dest: Path) -> int:
    """Find shard ``index``'s last complete block in ``log`` and extract it into ``dest``; return the number
    of files. ValueError when there is no complete block or its digest does not match."""
    begin_prefix = BEGIN.split("{sha}")[0].format(index=index)
    end_line = END.format(index=index)
    lines = log.splitlines()
    block: tuple[str, list[str]] | None = None
    i = 0
    while i < len(lines):
        if lines[i].startswith(begin_prefix):
            sha = lines[i][len(begin_prefix):].split(" ", 1)[0]
            body = []
            j = i + 1
            while j < len(lines) and lines[j] != end_line:
                body.append(lines[j].strip())
                j += 1
            if j < len(lines):
                block = (sha, body)
            i = j
        i += 1
    if block is None:
        raise ValueError(f"shard {index}: no complete archive on the pod log")
    sha, body = block
    data = base64.b64decode("".join(body))
    if hashlib.sha256(data).hexdigest() != sha:
        raise ValueError(f"shard {index}: archive on the pod log is corrupt (sha256 mismatch)")
    dest.mkdir(parents=True, exist_ok=True)
    count = 0
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for member in tar.getmembers():
            target = (dest / member.name).resolve()
            if not member.isfile() or not str(target).startswith(str(dest.resolve())):
                raise ValueError(f"shard {index}: archive member {member.name!r} is not a plain file inside the shard")
            target.parent.mkdir(parents=True, exist_ok=True)
            src = tar.extractfile(member)
            assert src is not None
            target.write_bytes(src.read())
            count += 1
    return count
