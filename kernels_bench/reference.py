"""fp32 reference attention, to check the measured kernels compute the right thing.

Inputs are ``[seq, heads, head_dim]`` tensors of one sequence (any float dtype); the reference upcasts to
float32 with TF32 off and works in head chunks so the score matrix stays under ``max_bytes``.
"""

from __future__ import annotations

import math
from typing import Any

DEFAULT_TOLERANCE = 1e-2


def relative_error(out: Any, ref: Any) -> float:
    """``||out - ref|| / ||ref||`` (Frobenius), in float32; NaN anywhere gives NaN."""
    import torch

    out32, ref32 = out.float(), ref.float()
    denom = torch.linalg.vector_norm(ref32)
    return float(torch.linalg.vector_norm(out32 - ref32) / denom)


def attention_fp32(q: Any, k: Any, v: Any, causal: bool, max_bytes: int = 1 << 30) -> Any:
    """Softmax attention ``softmax(q k^T / sqrt(d)) v`` of one sequence in float32.

    q: ``[sq, heads, d]``; k, v: ``[skv, kv_heads, d]`` (heads a multiple of kv_heads; query head h uses
    KV head ``h // (heads / kv_heads)``). Causal masking aligns the last query with the last key (for
    decode, sq = 1 sees every key). Returns ``[sq, heads, d]`` float32.
    """
    import torch

    sq, heads, d = q.shape
    skv, kv_heads, _ = k.shape
    group = heads // kv_heads
    prev = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        qf = q.float().transpose(0, 1)  # [heads, sq, d]
        kf = k.float().transpose(0, 1).repeat_interleave(group, dim=0)  # [heads, skv, d]
        vf = v.float().transpose(0, 1).repeat_interleave(group, dim=0)
        chunk = max(1, int(max_bytes // max(1, sq * skv * 4)))
        mask = None
        if causal and sq > 1:
            offset = skv - sq
            rows = torch.arange(sq, device=q.device)[:, None]
            cols = torch.arange(skv, device=q.device)[None, :]
            mask = cols > rows + offset
        outs = []
        scale = 1.0 / math.sqrt(d)
        for h0 in range(0, heads, chunk):
            s = torch.matmul(qf[h0:h0 + chunk], kf[h0:h0 + chunk].transpose(-1, -2)) * scale
            if mask is not None:
                s = s.masked_fill(mask, float("-inf"))
            outs.append(torch.matmul(torch.softmax(s, dim=-1), vf[h0:h0 + chunk]))
        return torch.cat(outs, dim=0).transpose(0, 1)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = prev
