"""Roofline v2 latency model (``--latency-model roofline-v2``): roofline v1's step with measured kernels.

The step is composed exactly as roofline v1's (``blis.latency.composition``: weight GEMMs incl. MoE experts,
element-wise kernels, TP all-reduces, prefill and decode attention, LM head, step CPU costs); v2 replaces a
kernel family's analytic time by the measured latency, interpolated in the table's grid
(``blis.bench_data.lookup``), wherever its tables cover it:

- weight GEMMs and the LM head: the GEMM table of the model's dtype (else another dtype at equal MFU);
- prefill / decode attention: the attention tables (nearest measured per-GPU shape when not measured);
- TP all-reduce: the measured all-reduce table for the TP degree (``blis.bench_data.comm``).

A family without tables keeps v1's analytic time. A measured kernel carries no launch or per-layer
overhead (its share of v1's ``layer_overhead_us`` is dropped; ``allreduce_latency_us`` is not added to a
measured all-reduce); it is floored only by physics (bytes / peak bandwidth, FLOPs / peak), which binds
where the table is extrapolated below its grid. With no family measured v2 equals v1 exactly.

Shapes: GEMM token rows m = prefill + decode tokens of the step (the LM head: sampled tokens; MoE experts:
tokens x experts_per_token spread over the experts expected to be hit). Prefill attention of chunks
[(n new, c cached)] is looked up as one varlen kernel of batch = number of chunks and the causal
seq_len s with the same work per sequence (s^2 / 2 = n c + n (n + 1) / 2 pairs); decode attention at
(batch = decoding requests, kv_len = mean context + 1). All-reduce: tokens x hidden x 2 bytes, the CUDA-graph
measurement for steps up to 512 tokens, the eager one above.

Speed: per-step totals are cached by token count (GEMMs, LM head, all-reduce) and by (batch, quantised
length) (attention, lengths kept to 7 significant bits: <= 0.8 % off), so a repeated shape costs a dict hit.
Each cache entry counts its uses; ``describe()["lookup_coverage"]`` multiplies them out.
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING

from blis.bench_data import format as bdf
from blis.bench_data.comm import GRAPH_MAX_TOKENS
from blis.bench_data.lookup import EXACT, EXTRAPOLATED, INTERPOLATED, Curve, Grid2D, MfuDatabase
from blis.latency.base import LatencyModelError, StepBatch, register_latency_model
from blis.latency.composition import StepComposition, layer_overhead_share
from blis.latency.roofline import RooflineModel, compute_precision, create_roofline
from blis.latency.selection import find_bench_source
from blis.physics.step_cost import (
    ACT_BYTES,
    allreduce_bytes,
    gemm_shapes,
    heads_per_gpu,
    kv_token_bytes_per_layer,
    lm_head_shape,
)

if TYPE_CHECKING:  # pragma: no cover
    from blis.config import SimConfig

_CLASSES = (EXACT, INTERPOLATED, EXTRAPOLATED)
_CACHE_LIMIT = 200_000  # entries per cache; cleared (not grown) beyond it


class BenchDataWarning(UserWarning):
    """A measured table stands in for a shape or dtype that was not measured."""


def _quantise(x: int) -> int:
    """``x`` rounded to the nearest multiple of 2^(bits - 7): 7 significant bits, <= 0.8 % off; exact
    below 128 and on values with at most 7 significant bits (powers of two, 1536, 3072, ...)."""
    s = x.bit_length() - 7
    if s <= 0:
        return x
    return ((x + (1 << (s - 1))) >> s) << s


def _kv_dtype(model) -> str:
    return "fp8" if model.kv_bytes_per_element <= 1.0 else "bf16"


class _GemmOp:
    """One weight GEMM (k, n) of a layer: measured curve over m, scale factors, v1 memory terms."""

    __slots__ = ("a_us", "curve", "f_us", "name", "nearest", "scale", "w_us")

    def __init__(self, name: str, curve: Curve, scale: float, nearest: bool, w_us: float, a_us: float,
                 f_us: float) -> None:
        self.name = name
        self.curve = curve
        self.scale = scale  # (k n) / (k' n') for a stand-in pair, times the dtype peak ratio
        self.nearest = nearest
        self.w_us = w_us  # us to read the weights once at peak bandwidth
        self.a_us = a_us  # us per token row of activations in and out, at peak bandwidth
        self.f_us = f_us  # us per token row at 100 % of peak FLOP/s (MFU can never exceed 1)


class RooflineV2Model:
    """Measured-kernel roofline; built by `create_roofline_v2` from a SimConfig. Implements
    `blis.latency.composition.KernelTimes` (measured families) and delegates the rest to roofline v1."""

    name = "roofline-v2"

    def __init__(self, v1: RooflineModel, db: MfuDatabase, folder) -> None:
        self.v1 = v1
        self.db = db
        self.folder = folder
        self.source = db.label or str(folder)
        self.notes: list[str] = []
        model, tp, p = v1.model, v1.tp, v1.params
        self.model = model
        L = model.num_layers
        self.num_layers = L
        # physical floors of a measured kernel: peak bandwidth and peak FLOP/s (no fitted efficiency)
        us_b = 1e6 / v1.bandwidth_Bps
        us_f = 1e6 / v1.peak_flops
        wb = model.weight_bytes_of("attn")  # the layers' one format (checked by the factory)
        self.precision = compute_precision(model, v1.hardware)

        shapes = gemm_shapes(model, tp)
        self.gemm_dtype, dtype_scale = self._gemm_dtype()
        self.gemms_measured = self.gemm_dtype is not None
        if self.gemms_measured:
            gemm_table = db.gemm[self.gemm_dtype]

            def op(shape, wb=wb) -> _GemmOp:
                pair = gemm_table.nearest_pair(shape.k, shape.n)
                nearest = pair != (shape.k, shape.n)
                if nearest:
                    self.notes.append(f"GEMM {shape.name} (k={shape.k}, n={shape.n}) not measured: using "
                                      f"(k={pair[0]}, n={pair[1]}) scaled by FLOPs")
                scale = dtype_scale * (shape.k * shape.n) / (pair[0] * pair[1])
                return _GemmOp(shape.name, gemm_table.curves[pair], scale, nearest,
                               shape.k * shape.n * wb * us_b, (shape.k + shape.n) * ACT_BYTES * us_b,
                               2.0 * shape.k * shape.n * us_f)

            self._dense = [op(s) for s in shapes if not s.name.startswith("expert_")]
            self._expert = [op(s) for s in shapes if s.name.startswith("expert_")]
            self._lm = op(lm_head_shape(model, tp), model.weight_bytes_of("embed"))  # LM head stays 16-bit
        self._num_experts = float(model.num_experts)
        self._k_e = float(model.experts_per_token)
        self._miss = 1.0 - model.experts_per_token / model.num_experts if model.is_moe else 1.0

        # attention: measured grids for this model's per-GPU shape (or the nearest measured shape)
        hg = heads_per_gpu(model, tp)
        self.attention_shape = (hg, model.kv_heads_per_gpu(tp), model.head_dim)
        kvd = _kv_dtype(model)
        self._prefill = self._attention(db.prefill, ("bf16",))
        self._decode = self._attention(db.decode, ("bf16", kvd))
        kvb = kv_token_bytes_per_layer(model, tp)
        qo = 2.0 * hg * model.head_dim * ACT_BYTES
        self._kv_read = kvb * L * us_b  # us per context token read, all layers, at peak bandwidth
        self._new_tok = (kvb + qo) * L * us_b  # us per new token: K,V write + Q read + O write

        # all-reduce: measured for this TP degree when the tables have it
        self._ar_curve = None
        self._ar_bytes_per_token = allreduce_bytes(model, 1)
        if tp > 1 and db.allreduce is not None:
            graph, eager = db.allreduce.curve_for(tp, True), db.allreduce.curve_for(tp, False)
            if graph is not None:
                self._ar_curve = (graph, eager)
            else:
                self.notes.append(f"no measured all-reduce for {tp} GPUs: roofline v1's")

        attention_measured = self._prefill is not None or self._decode is not None
        share = layer_overhead_share(len(shapes), self.gemms_measured, attention_measured)
        self._fixed = p.step_overhead_us + L * p.layer_overhead_us * share
        self._composition = StepComposition(self, self._fixed, p.prefill_step_overhead_us)
        families = [("GEMMs", self.gemms_measured), ("prefill attention", self._prefill is not None),
                    ("decode attention", self._decode is not None), ("all-reduce", self._ar_curve is not None)]
        if tp == 1:
            families.pop()
        self.measured_families = [f for f, m in families if m]
        self.analytic_families = [f for f, m in families if not m]

        # caches: key -> [time_us, uses, coverage tuple]
        self._gemm_cache: dict[int, list] = {}
        self._lm_cache: dict[int, list] = {}
        self._ar_cache: dict[int, list] = {}
        self._prefill_cache: dict[tuple[int, int], list] = {}
        self._decode_cache: dict[tuple[int, int], list] = {}
        self._floor_hits = [0, 0]  # attention lookups where bytes / bandwidth beat the table (prefill, decode)
        self._v1_calls = 0  # kernel families timed by v1 because no table covers them
        self._retired = [0, 0, 0, 0, 0]  # coverage counts of cache entries dropped at _CACHE_LIMIT
        if self.notes:
            warnings.warn(f"roofline-v2 tables stand in for what was not measured: {'; '.join(self.notes)}",
                          BenchDataWarning, stacklevel=3)

    # --- construction helpers -------------------------------------------------------------------
    def _gemm_dtype(self) -> tuple[str | None, float]:
        """The GEMM table's dtype and the latency factor to the model's precision (1.0 when they match);
        (None, 1.0) when there is no GEMM table (v1's GEMM times are used)."""
        db = self.db
        if not db.gemm:
            self.notes.append("no GEMM tables: roofline v1's GEMM times")
            return None, 1.0
        if self.precision in db.gemm:
            return self.precision, 1.0
        other = min(db.gemm)
        ratio = db.peak_ratio(other, self.precision)
        if ratio is None:
            raise LatencyModelError(
                f"bench_data_path: no gemm_{self.precision}.csv in {self.source}, and no peak figures to scale "
                f"gemm_{other}.csv by"
            )
        self.notes.append(f"no gemm_{self.precision}.csv: gemm_{other}.csv used at equal MFU (latency x "
                          f"{ratio:g}, the {other}/{self.precision} peak ratio)")
        return other, ratio

    def _attention(self, tables, key: tuple[str, ...]) -> tuple[Grid2D, float, bool, int] | None:
        """(grid, latency scale, stood in by another shape, batch multiplier) or None without tables."""
        phase = tables.phase
        if not tables.grids:
            self.notes.append(f"no {phase} tables: roofline v1's {phase} time")
            return None
        h, kv, d = self.attention_shape
        # the same kernel split differently: (h, kv, d) at batch b does the work of (h/r, kv/r, d) at batch r b
        same_group = [s for s in tables.grids if s[2] == d and s[0] * kv == h * s[1] and kv % s[1] == 0]
        if self.attention_shape not in tables.grids and same_group:
            shape = max(same_group, key=lambda s: s[1])
            bmul = kv // shape[1]
            self.notes.append(f"{phase} {h}-{kv}-{d} not measured: {shape[0]}-{shape[1]}-{d} at {bmul}x the batch "
                              "(same work)")
            grids = tables.grids[shape]
            if key not in grids:
                key = min(grids)
            return grids[key], 1.0, False, bmul
        shape = tables.nearest_shape(self.attention_shape)
        near = shape != self.attention_shape
        scale = tables.shape_scale(self.attention_shape, shape) if near else 1.0
        if near:
            h, kv, d = self.attention_shape
            self.notes.append(f"{phase} {h}-{kv}-{d} not measured: using {shape[0]}-{shape[1]}-{shape[2]} "
                              f"scaled by {'FLOPs' if phase == bdf.PREFILL else 'KV bytes'} (x{scale:.3g})")
        grids = tables.grids[shape]
        if key not in grids:
            have = min(grids)
            self.notes.append(f"{phase}: no {'/'.join(key)} rows for {shape}: using {'/'.join(have)}")
            key = have
        return grids[key], scale, near, 1

    # --- cache fillers --------------------------------------------------------------------------
    def _gemm_entry(self, T: int) -> list:
        cover = [0, 0, 0, 0, 0]  # exact, interpolated, extrapolated, nearest_shape, roofline_floor
        per_layer = 0.0
        for g in self._dense:
            per_layer += self._op_time(g, T, 1.0, cover)
        if self._expert:
            active = self._num_experts * (1.0 - self._miss**T)
            rows = T * self._k_e / active
            for g in self._expert:
                per_layer += self._op_time(g, rows, active, cover)
        return [per_layer * self.num_layers, 0, tuple(cover)]

    def _op_time(self, g: _GemmOp, m: float, copies: float, cover: list) -> float:
        lat, where = g.curve(m)
        table = lat * g.scale * copies
        floor = max(g.f_us * m, g.w_us + g.a_us * m) * copies
        cover[_CLASSES.index(where)] += 1
        cover[3] += g.nearest
        if floor > table:
            cover[4] += 1
            return floor
        return table

    def _lm_entry(self, S: int) -> list:
        cover = [0, 0, 0, 0, 0]
        return [self._op_time(self._lm, S, 1.0, cover), 0, tuple(cover)]

    def _ar_entry(self, T: int) -> list:
        graph, eager = self._ar_curve
        curve = graph if T <= GRAPH_MAX_TOKENS or eager is None else eager
        lat, where = curve(T * self._ar_bytes_per_token)
        cover = [0, 0, 0, 0, 0]
        cover[_CLASSES.index(where)] += 1
        return [2 * self.num_layers * lat, 0, tuple(cover)]

    def _attn_entry(self, attn: tuple, b: int, x: float) -> list:
        grid, scale, near, bmul = attn
        lat, where = grid(b * bmul, x)
        cover = [0, 0, 0, int(near), 0]
        cover[_CLASSES.index(where)] += 1
        return [lat * scale * self.num_layers, 0, tuple(cover)]

    # --- kernel families (blis.latency.composition.KernelTimes) -----------------------------------
    def gemms_us(self, P: int, D: int, T: int) -> float:
        if not self.gemms_measured:
            self._v1_calls += 1
            return self.v1.gemms_us(P, D, T)
        e = self._gemm_cache.get(T)
        if e is None:
            e = self._fill(self._gemm_cache, T, self._gemm_entry, T)
        e[1] += 1
        return e[0]

    def elementwise_us(self, T: int) -> float:
        return self.v1.elementwise_us(T)

    def allreduce_us(self, T: int) -> float:
        if self._ar_curve is None:
            return self.v1.allreduce_us(T)
        e = self._ar_cache.get(T)
        if e is None:
            e = self._fill(self._ar_cache, T, self._ar_entry, T)
        e[1] += 1
        return e[0]

    def prefill_attention_us(self, chunks) -> float:
        if self._prefill is None:
            self._v1_calls += 1
            return self.v1.prefill_attention_us(chunks)
        pairs = 0.0
        read = 0
        new = 0
        for n, c0 in chunks:
            pairs += n * c0 + n * (n + 1) * 0.5
            read += c0 + n
            new += n
        nc = len(chunks)
        q = int(math.sqrt(2.0 * pairs / nc)) or 1
        s = q.bit_length() - 7
        if s > 0:  # inline _quantise
            q = ((q + (1 << (s - 1))) >> s) << s
        key = (nc, q)
        e = self._prefill_cache.get(key)
        if e is None:
            e = self._fill(self._prefill_cache, key, self._prefill_entry, key)
        e[1] += 1
        floor = self._kv_read * read + self._new_tok * new
        if floor > e[0]:
            self._floor_hits[0] += 1
            return floor
        return e[0]

    def decode_attention_us(self, D: int, keys: int) -> float:
        if self._decode is None:
            self._v1_calls += 1
            return self.v1.decode_attention_us(D, keys)
        q = keys // D
        s = q.bit_length() - 7
        if s > 0:  # inline _quantise
            q = ((q + (1 << (s - 1))) >> s) << s
        key = (D, q)
        e = self._decode_cache.get(key)
        if e is None:
            e = self._fill(self._decode_cache, key, self._decode_entry, key)
        e[1] += 1
        floor = self._kv_read * keys + self._new_tok * D
        if floor > e[0]:
            self._floor_hits[1] += 1
            return floor
        return e[0]

    def lm_head_us(self, S: int) -> float:
        if not self.gemms_measured:
            self._v1_calls += 1
            return self.v1.lm_head_us(S)
        e = self._lm_cache.get(S)
        if e is None:
            e = self._fill(self._lm_cache, S, self._lm_entry, S)
        e[1] += 1
        return e[0]

    # --- the LatencyModel protocol ----------------------------------------------------------------
    def step_time_us(self, batch: StepBatch) -> int:
        return round(self._composition.step_time_float_us(batch))

    def step_time_float_us(self, batch: StepBatch) -> float:
        """Unrounded step time (microseconds)."""
        return self._composition.step_time_float_us(batch)

    def _fill(self, cache: dict, key, make, arg) -> list:
        if len(cache) >= _CACHE_LIMIT:
            self._retire(cache)
        e = cache[key] = make(arg)
        return e

    def _prefill_entry(self, key: tuple[int, int]) -> list:
        return self._attn_entry(self._prefill, key[0], key[1])

    def _decode_entry(self, key: tuple[int, int]) -> list:
        return self._attn_entry(self._decode, key[0], key[1])

    def _retire(self, cache: dict) -> None:
        """Fold a full cache's counts into the retired totals and empty it (bounded memory)."""
        for _, uses, cover in cache.values():
            for i, c in enumerate(cover):
                self._retired[i] += uses * c
        cache.clear()

    predict_request = RooflineModel.predict_request  # one request alone on the instance (same method as v1)

    @property
    def params(self):
        return self.v1.params

    def queueing_time_us(self, input_tokens: int) -> int:
        return self.v1.queueing_time_us(input_tokens)

    def queueing_times_us(self, input_tokens):
        return self.v1.queueing_times_us(input_tokens)

    def output_token_processing_time_us(self) -> int:
        return self.v1.output_token_processing_time_us()

    def scheduling_processing_time_us(self) -> int:
        return self.v1.scheduling_processing_time_us()

    def preemption_processing_time_us(self) -> int:
        return self.v1.preemption_processing_time_us()

    def lookup_coverage(self) -> dict:
        """Table lookups made so far, by class. Each step looks up every weight GEMM of a layer, the LM head
        when it samples, the all-reduce under TP, and prefill / decode attention when present. exact +
        interpolated + extrapolated = lookups; nearest_shape counts those served by another shape;
        roofline_floor those where bytes / peak bandwidth (or FLOPs / peak) exceeded the table; v1_fallback
        the kernel-family times taken from roofline v1 because no table covers them."""
        tot = list(self._retired)
        for cache in (self._gemm_cache, self._lm_cache, self._ar_cache, self._prefill_cache, self._decode_cache):
            for _, uses, cover in cache.values():
                for i, c in enumerate(cover):
                    tot[i] += uses * c
        tot[4] += self._floor_hits[0] + self._floor_hits[1]
        return {"lookups": tot[0] + tot[1] + tot[2], "exact": tot[0], "interpolated": tot[1],
                "extrapolated": tot[2], "nearest_shape": tot[3], "roofline_floor": tot[4],
                "v1_fallback": self._v1_calls}

    def describe(self) -> dict:
        prov = self.db.bench.provenance
        v1 = self.v1.describe()
        return {
            "name": self.name,
            "model": self.model.name,
            "hardware": self.v1.hardware.name,
            "tp": self.v1.tp,
            "precision": self.precision,
            "bench_data": self.source,
            "bench_device": prov.device,
            "bench_source": prov.source,
            "gemm_table": f"gemm_{self.gemm_dtype}" if self.gemm_dtype else None,
            "attention_shape": "-".join(str(x) for x in self.attention_shape),
            "measured": self.measured_families,
            "analytic": self.analytic_families,
            "notes": list(self.notes),
            "lookup_coverage": self.lookup_coverage(),
            "v1_params": v1.get("params"),
            "v1_source": v1.get("source"),
        }


@register_latency_model("roofline-v2")
def create_roofline_v2(config: SimConfig) -> RooflineV2Model:
    """Factory: the kernel tables for the hardware (``bench_data_path``: a folder, ``aiconfigurator[:...]``,
    or the repository's bench_data/<gpu>/), checked and loaded; roofline v1 (model, hardware, calibration)
    for the rest."""
    source = find_bench_source(config)
    if source is None:
        raise LatencyModelError(
            f"bench_data_path: no measured kernel tables for {config.hardware} (give --bench-data-path DIR or "
            "aiconfigurator, or use --latency-model roofline)"
        )
    v1 = create_roofline(config)
    m = v1.model
    from blis.latency.roofline_general import uniform_gap

    why = uniform_gap(m, v1.ep)
    if why:
        raise LatencyModelError(f"latency_model: roofline-v2 composes uniform GQA layers only; {m.name} has {why} "
                                "(use --latency-model roofline)")
    db = MfuDatabase.from_source(str(source), config.hardware)
    return RooflineV2Model(v1, db, source)
