"""Physics checks of measured kernel tables (used by ``blis.bench_data.format.check_parsed``): bandwidth
against DRAM and L2, GEMM MFU trend in m, latency order along an axis. Warnings for what real micro-benchmarks
do (L2-resident working sets, MFU falling with m, warm-up rows); problems only for the impossible."""

from __future__ import annotations

from blis.bench_data.format import (
    BANDWIDTH_TOL,
    DECODE,
    GEMM,
    GEMM_MFU_DROP_WARN,
    LATENCY_ORDER_WARN,
    PREFILL,
    CheckReport,
    Provenance,
    Table,
    TableSummary,
)


def l2_of(prov: Provenance | None):
    """L2 figures of the provenance's GPU (None when unknown or no provenance)."""
    if prov is None:
        return None
    from blis.physics.l2cache import l2_figures

    return l2_figures(prov.gpu)


def check_bandwidth(where: str, nbytes: float, achieved: float, dram: float, l2, report: CheckReport) -> None:
    """Above DRAM bandwidth: a warning when the GPU's L2 could serve it (a micro-benchmark re-running the
    same tensors keeps a working set that fits in L2 warm), a problem above the L2 bound (or above DRAM
    when L2 figures are unknown)."""
    if achieved <= dram * (1.0 + BANDWIDTH_TOL):
        return
    msg = f"{where}: moves at least {achieved / 1e12:.2f} TB/s, above the GPU's {dram / 1e12:.2f} TB/s DRAM"
    if l2 is None:
        report.problems.append(msg + ": latency too small, or dtype wrong (no L2 figures for this GPU)")
    elif achieved > l2.bandwidth_Bps:
        report.problems.append(msg + f" and its {l2.bandwidth_Bps / 1e12:.1f} TB/s L2 bound: latency too small, "
                                     "or dtype wrong")
    elif (nbytes - l2.bytes) * achieved / nbytes > dram * (1.0 + BANDWIDTH_TOL):
        report.problems.append(msg + f": even with {l2.bytes / 1e6:.0f} MB served by L2 the rest of the "
                                     f"{nbytes / 1e6:.1f} MB working set beats DRAM")
    else:
        fits = "fits" if nbytes <= l2.bytes else "does not fit"
        report.warnings.append(msg + f": L2-resident (working set {nbytes / 1e6:.1f} MB {fits} in "
                                     f"{l2.bytes / 1e6:.0f} MB L2)")


def check_latency_order(table: Table, report: CheckReport) -> None:
    """Warn where a kernel is much slower than the next larger one on its axis (warm-up, timing noise)."""
    axis = {GEMM: "m", PREFILL: "seq_len", DECODE: "kv_len"}[table.kind]
    curves: dict[tuple, list[tuple[int, float, int]]] = {}
    for row, line in zip(table.rows, table.lines):
        if table.kind == GEMM:
            key, x = (row[1], row[2]), row[0]
        else:
            key, x = tuple(row[:-3]), row[-3]
        curves.setdefault(key, []).append((x, row[-2], line))
    for pts in curves.values():
        pts.sort()
        for (x0, lat0, line0), (x1, lat1, line1) in zip(pts, pts[1:]):
            if lat0 > LATENCY_ORDER_WARN * lat1:
                report.warnings.append(
                    f"{table.path}:{line0}: {lat0:g} us at {axis}={x0} is over {LATENCY_ORDER_WARN:g}x the "
                    f"{lat1:g} us of the larger {axis}={x1} (line {line1}): warm-up or timing noise?"
                )


def check_gemm_trend(table: Table, report: CheckReport) -> None:
    """GEMM MFU should not fall much as m grows for a fixed (k, n): a larger GEMM can always be split."""
    by_pair: dict[tuple, list[tuple[int, float, int]]] = {}
    for row, line in zip(table.rows, table.lines):
        by_pair.setdefault((row[1], row[2]), []).append((row[0], row[4], line))
    for (k, n), pts in by_pair.items():
        pts.sort()
        best = 0.0
        for m, mfu, line in pts:
            if best > 0 and mfu < best * (1.0 - GEMM_MFU_DROP_WARN):
                msg = f"{table.path}:{line}: MFU {mfu:.3g} at m={m} is {100 * (1 - mfu / best):.0f}% below " \
                      f"the best smaller-m MFU {best:.3g} for (k={k}, n={n})"
                report.warnings.append(msg)
            best = max(best, mfu)


def summary(table: Table) -> TableSummary:
    """Rows, MFU range and grid of one parsed table."""
    mfus = [r[-1] for r in table.rows] or [float("nan")]
    if table.kind == GEMM:
        ms = sorted({r[0] for r in table.rows})
        pairs = sorted({(r[1], r[2]) for r in table.rows})
        grid = {"kn_pairs": len(pairs), "m": f"{ms[0]}..{ms[-1]} ({len(ms)})" if ms else "-"}
    else:
        axis = "seq_len" if table.kind == PREFILL else "kv_len"
        bs = sorted({r[-4] for r in table.rows})
        xs = sorted({r[-3] for r in table.rows})
        grid = {
            "dtypes": "/".join(sorted({"-".join(r[:-4]) for r in table.rows})),
            "batch_size": ",".join(str(b) for b in bs),
            axis: f"{xs[0]}..{xs[-1]} ({len(xs)})" if xs else "-",
        }
    return TableSummary(str(table.path), table.kind, len(table.rows), min(mfus), max(mfus), grid)
