"""Roofline v2 latency model (``--latency-model roofline-v2``): roofline v1 with measured kernel efficiency.

Step time (microseconds, one GPU of the TP group) =
    sum over weight GEMMs (per layer x layers, plus the LM head) and attention (prefill, decode) of
        max(measured latency at the kernel's shape, bytes / (bandwidth x bw_efficiency)
            [, GEMMs: FLOPs / peak])
  + roofline v1's other terms: element-wise kernels, TP all-reduces, step / layer / prefill overheads;
queueing, output-token, scheduling and preemption times are v1's. The measured latency is the MFU
table's: FLOPs / (peak x MFU(shape)) with MFU interpolated between measured shapes (see
``blis.bench_data.lookup``); the bandwidth term is v1's memory time, which takes over where the table
would be non-physical (e.g. GEMMs smaller than the smallest measured m), and FLOPs / peak keeps a table
borrowed from another dtype or shape from implying MFU > 1.

Shapes: GEMM token rows m = prefill + decode tokens of the step (the LM head: sampled tokens; MoE experts:
tokens x experts_per_token spread over the experts expected to be hit). Prefill attention of chunks
[(n new, c cached)] is looked up as one varlen kernel of batch = number of chunks and the causal
seq_len s with the same work per sequence (s^2 / 2 = n c + n (n + 1) / 2 pairs); decode attention at
(batch = decoding requests, kv_len = mean context + 1).

Speed: per-step totals are cached by token count (GEMMs, LM head) and by (batch, quantised length)
(attention, lengths kept to 7 significant bits: <= 0.8 % off), so a repeated shape costs a dict hit.
Each cache entry counts its uses; ``describe()["lookup_coverage"]`` multiplies them out.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from blis.bench_data import format as bdf
from blis.bench_data.lookup import EXACT, EXTRAPOLATED, INTERPOLATED, Curve, Grid2D, MfuDatabase
from blis.latency.base import LatencyModelError, StepBatch, register_latency_model
from blis.latency.roofline import RooflineModel, compute_precision, create_roofline
from blis.latency.selection import find_bench_folder
from blis.physics.step_cost import (
    ACT_BYTES,
    allreduce_bytes,
    elementwise_bytes_per_token,
    gemm_shapes,
    heads_per_gpu,
    kv_token_bytes_per_layer,
    lm_head_shape,
    ring_allreduce_traffic,
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
        self.w_us = w_us  # us to read the weights once (v1 memory term)
        self.a_us = a_us  # us per token row of activations in and out
        self.f_us = f_us  # us per token row at 100 % of peak FLOP/s (MFU can never exceed 1)


class RooflineV2Model:
    """Measured-MFU roofline; built by `create_roofline_v2` from a SimConfig."""

    name = "roofline-v2"

    def __init__(self, v1: RooflineModel, db: MfuDatabase, folder: Path) -> None:
        self.v1 = v1
        self.db = db
        self.folder = Path(folder)
        self.notes: list[str] = []
        model, tp, p = v1.model, v1.tp, v1.params
        self.model = model
        L = model.num_layers
        self.num_layers = L
        us_b = 1e6 / (v1.bandwidth_Bps * p.bw_efficiency)
        # v1 reads KV at its own efficiency when it has one
        us_kv = 1e6 / (v1.bandwidth_Bps * getattr(p, "bw_efficiency_attention", p.bw_efficiency))
        us_f = 1e6 / v1.peak_flops
        wb = model.weight_bytes_of("attn")  # the layers' one format (checked by the factory)
        self.precision = compute_precision(model, v1.hardware)

        self.gemm_dtype, dtype_scale = self._gemm_dtype()
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

        shapes = gemm_shapes(model, tp)
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
        self._prefill, self._prefill_scale, self._prefill_near = self._attention(db.prefill, ("bf16",))
        self._decode, self._decode_scale, self._decode_near = self._attention(db.decode, ("bf16", kvd))
        kvb = kv_token_bytes_per_layer(model, tp)
        qo = 2.0 * hg * model.head_dim * ACT_BYTES
        self._kv_read = kvb * L * us_kv  # us per context token read, all layers (v1's memory term)
        self._new_tok = (kvb + qo) * L * us_kv  # us per new token: K,V write + Q read + O write

        # v1's remaining terms, from the same public formulas and calibration as roofline v1
        self._elem = elementwise_bytes_per_token(model, tp) * L * us_b
        if tp > 1:
            link = v1.hardware.interconnect_bandwidth_Bps * p.interconnect_efficiency
            self._ar_fixed = 2 * L * p.allreduce_latency_us
            self._ar_tok = 2 * L * ring_allreduce_traffic(allreduce_bytes(model, 1), tp) / link * 1e6
        else:
            self._ar_fixed = self._ar_tok = 0.0
        self._fixed = p.step_overhead_us + L * p.layer_overhead_us
        self._prefill_fixed = p.prefill_step_overhead_us

        # caches: key -> [time_us, uses, coverage tuple]
        self._gemm_cache: dict[int, list] = {}
        self._lm_cache: dict[int, list] = {}
        self._prefill_cache: dict[tuple[int, int], list] = {}
        self._decode_cache: dict[tuple[int, int], list] = {}
        self._floor_hits = [0, 0]  # attention lookups where bytes / bandwidth beat the table (prefill, decode)
        self._retired = [0, 0, 0, 0, 0]  # coverage counts of cache entries dropped at _CACHE_LIMIT
        if self.notes:
            warnings.warn(f"roofline-v2 tables stand in for what was not measured: {'; '.join(self.notes)}",
                          BenchDataWarning, stacklevel=3)

    # --- construction helpers -------------------------------------------------------------------
    def _gemm_dtype(self) -> tuple[str, float]:
        """The GEMM table's dtype and the latency factor to the model's precision (1.0 when they match)."""
        db = self.db
        if not db.gemm:
            raise LatencyModelError(f"bench_data_path: {self.folder} has no gemm_<dtype>.csv table")
        if self.precision in db.gemm:
            return self.precision, 1.0
        other = min(db.gemm)
        ratio = db.peak_ratio(other, self.precision)
        if ratio is None:
            raise LatencyModelError(
                f"bench_data_path: no gemm_{self.precision}.csv in {self.folder}, and no peak figures to scale "
                f"gemm_{other}.csv by"
            )
        self.notes.append(f"no gemm_{self.precision}.csv: gemm_{other}.csv used at equal MFU (latency x "
                          f"{ratio:g}, the {other}/{self.precision} peak ratio)")
        return other, ratio

    def _attention(self, tables, key: tuple[str, ...]) -> tuple[Grid2D, float, bool]:
        phase = tables.phase
        shape = tables.nearest_shape(self.attention_shape)
        if shape is None:
            raise LatencyModelError(f"bench_data_path: {self.folder} has no {phase} tables")
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
        return grids[key], scale, near

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
        memory = g.w_us + g.a_us * m
        compute = g.f_us * m
        floor = max(compute, memory) * copies
        cover[_CLASSES.index(where)] += 1
        cover[3] += g.nearest
        if floor > table:
            cover[4] += 1
            return floor
        return table

    def _lm_entry(self, S: int) -> list:
        cover = [0, 0, 0, 0, 0]
        return [self._op_time(self._lm, S, 1.0, cover), 0, tuple(cover)]

    def _attn_entry(self, grid: Grid2D, scale: float, near: bool, b: int, x: float) -> list:
        lat, where = grid(b, x)
        cover = [0, 0, 0, int(near), 0]
        cover[_CLASSES.index(where)] += 1
        return [lat * scale * self.num_layers, 0, tuple(cover)]

    # --- the LatencyModel protocol ----------------------------------------------------------------
    def step_time_us(self, batch: StepBatch) -> int:
        return int(self.step_time_float_us(batch) + 0.5)

    def step_time_float_us(self, batch: StepBatch) -> float:
        """Unrounded step time (microseconds)."""
        D = batch.num_decode_tokens
        T = batch.num_prefill_tokens + D
        t = self._fixed
        if T:
            e = self._gemm_cache.get(T)
            if e is None:
                e = self._fill(self._gemm_cache, T, self._gemm_entry, T)
            e[1] += 1
            t += e[0] + self._elem * T + self._ar_fixed + self._ar_tok * T
        chunks = batch.prefill_chunks
        if chunks:
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
                t += floor + self._prefill_fixed
            else:
                t += e[0] + self._prefill_fixed
        if D:
            keys = batch.sum_decode_context + D
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
                t += floor
            else:
                t += e[0]
        S = batch.num_sampled
        if S:
            e = self._lm_cache.get(S)
            if e is None:
                e = self._fill(self._lm_cache, S, self._lm_entry, S)
            e[1] += 1
            t += e[0]
        return t

    def _fill(self, cache: dict, key, make, arg) -> list:
        if len(cache) >= _CACHE_LIMIT:
            self._retire(cache)
        e = cache[key] = make(arg)
        return e

    def _prefill_entry(self, key: tuple[int, int]) -> list:
        return self._attn_entry(self._prefill, self._prefill_scale, self._prefill_near, key[0], key[1])

    def _decode_entry(self, key: tuple[int, int]) -> list:
        return self._attn_entry(self._decode, self._decode_scale, self._decode_near, key[0], key[1])

    def _retire(self, cache: dict) -> None:
        """Fold a full cache's counts into the retired totals and empty it (bounded memory)."""
        for _, uses, cover in cache.values():
            for i, c in enumerate(cover):
                self._retired[i] += uses * c
        cache.clear()

    def queueing_time_us(self, input_tokens: int) -> int:
        return self.v1.queueing_time_us(input_tokens)

    def output_token_processing_time_us(self) -> int:
        return self.v1.output_token_processing_time_us()

    def scheduling_processing_time_us(self) -> int:
        return self.v1.scheduling_processing_time_us()

    def preemption_processing_time_us(self) -> int:
        return self.v1.preemption_processing_time_us()

    def lookup_coverage(self) -> dict:
        """Table lookups made so far, by class. Each step looks up every weight GEMM of a layer, the LM head
        when it samples, and prefill / decode attention when present. exact + interpolated + extrapolated =
        lookups; nearest_shape counts those served by another shape; roofline_floor those where bytes /
        bandwidth exceeded the table (the v1 memory term was used)."""
        tot = list(self._retired)
        for cache in (self._gemm_cache, self._lm_cache, self._prefill_cache, self._decode_cache):
            for _, uses, cover in cache.values():
                for i, c in enumerate(cover):
                    tot[i] += uses * c
        tot[4] += self._floor_hits[0] + self._floor_hits[1]
        return {"lookups": tot[0] + tot[1] + tot[2], "exact": tot[0], "interpolated": tot[1],
                "extrapolated": tot[2], "nearest_shape": tot[3], "roofline_floor": tot[4]}

    def describe(self) -> dict:
        prov = self.db.bench.provenance
        v1 = self.v1.describe()
        return {
            "name": self.name,
            "model": self.model.name,
            "hardware": self.v1.hardware.name,
            "tp": self.v1.tp,
            "precision": self.precision,
            "bench_data": str(self.folder),
            "bench_device": prov.device,
            "bench_source": prov.source,
            "gemm_table": f"gemm_{self.gemm_dtype}.csv",
            "attention_shape": "-".join(str(x) for x in self.attention_shape),
            "notes": list(self.notes),
            "lookup_coverage": self.lookup_coverage(),
            "v1_params": v1.get("params"),
            "v1_source": v1.get("source"),
        }


@register_latency_model("roofline-v2")
def create_roofline_v2(config: SimConfig) -> RooflineV2Model:
    """Factory: the bench_data folder for the hardware (``bench_data_path`` or the repository's
    bench_data/<gpu>/), checked and loaded; roofline v1 (model, hardware, calibration) for the rest."""
    folder = find_bench_folder(config)
    if folder is None:
        raise LatencyModelError(
            f"bench_data_path: no measured kernel tables for {config.hardware} (give --bench-data-path DIR, "
            "or use --latency-model roofline)"
        )
    v1 = create_roofline(config)
    m = v1.model
    from blis.latency.roofline_general import uniform_gap

    why = uniform_gap(m, v1.ep)
    if why:
        raise LatencyModelError(f"latency_model: roofline-v2 composes uniform GQA layers only; {m.name} has {why} "
                                "(use --latency-model roofline)")
    return RooflineV2Model(v1, MfuDatabase.load(folder), folder)
