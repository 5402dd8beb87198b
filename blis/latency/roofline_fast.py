"""Roofline v1's step time as one closure over a model's constants: the hot path of issue #17.

`fused_step` performs the same float operations in the same order as `StepComposition` over
`RooflineModel`'s kernel methods (dense GEMMs, element-wise, all-reduce, prefill and decode attention, LM
head), so every step time is identical to the composition's (`tests/test_solo_clock.py` checks the floats);
only the calls and attribute reads are gone. `RooflineModel._fuse` uses it for uniform dense models of its own
class and the composition otherwise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from blis.latency.base import StepBatch

if TYPE_CHECKING:  # pragma: no cover
    from blis.latency.roofline import RooflineModel


def prefill_pairs(chunks) -> tuple[float, int, int]:
    """Causal (query, key) pairs of a step's prompt chunks ``(new_tokens, context_before)``, the context
    tokens before them and their new tokens (tokens)."""
    pairs = 0.0
    ctx = 0
    new = 0
    for n, c0 in chunks:
        pairs += n * c0 + n * (n + 1) * 0.5
        ctx += c0
        new += n
    return pairs, ctx, new


def fused_step(model: RooflineModel, rounded: bool = True) -> Callable[[StepBatch], float]:
    """The step time (us) of ``model`` as a closure: rounded to an int, or the float (``rounded=False``)."""
    comp = model._composition
    fixed, prefill_fixed = comp.fixed_us, comp.prefill_fixed_us
    dense = model._dense
    elem, ar_fixed, ar_tok = model._elem, model._ar_fixed, model._ar_tok
    attn_pf, attn_df, kv_read, new_tok = model._attn_pf, model._attn_df, model._kv_read, model._new_tok
    lm_f, lm_w, lm_a = model._lm_f, model._lm_w, model._lm_a

    # ``x if x > y else y`` is ``max(y, x)`` (the first of equals, as max keeps), without a call
    def step(batch: StepBatch) -> float:
        P = batch.num_prefill_tokens
        D = batch.num_decode_tokens
        T = P + D
        t = fixed
        if T:
            g = 0.0
            for cp, cd, mw, ma in dense:
                c = cp * P + cd * D
                m = mw + ma * T
                g += c if c > m else m
            t += g + elem * T + (ar_fixed + ar_tok * T)
        chunks = batch.prefill_chunks
        if chunks:
            if len(chunks) == 1:  # `prefill_pairs` of one chunk (0.0 + x is x)
                new, ctx = chunks[0]
                pairs = new * ctx + new * (new + 1) * 0.5
            else:
                pairs, ctx, new = prefill_pairs(chunks)
            m = kv_read * (ctx + new) + new_tok * new
            c = attn_pf * pairs
            t += (c if c > m else m) + prefill_fixed
        if D:
            keys = batch.sum_decode_context + D
            m = kv_read * keys + new_tok * D
            c = attn_df * keys
            t += c if c > m else m
        S = batch.num_sampled
        if S:
            m = lm_w + lm_a * S
            c = lm_f * S
            t += c if c > m else m
        return round(t) if rounded else t

    return step
