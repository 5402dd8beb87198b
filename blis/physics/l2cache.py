"""L2 cache figures per GPU: size (bytes) and an upper bound of its read bandwidth (bytes/s).

Used to judge micro-benchmark tables (a kernel re-run on the same tensors finds a working set that fits in
L2 already there, so it may beat the DRAM roofline but never the L2 one) and by the kernel calculator's
``cache="warm"``. Kept apart from ``hardware.py`` (edited by others); keyed by the canonical hardware name.

Sources: L2 sizes from NVIDIA's architecture whitepapers (A100: 40 MB; H100 SXM5: 50 MB; H200 is the same
GH100 die). L2 bandwidth is not on datasheets: the A100 whitepaper gives 5120 bytes/clock of L2 read
bandwidth (108 SMs, 1410 MHz boost: 7.2 TB/s); for GH100 we scale that per SM (132 SMs) at the 1980 MHz
SXM5 boost clock: 6258 B/clk x 1.98 GHz = 12.4 TB/s. These are ceilings used to refuse impossible data,
not figures a model should run at.
"""

from __future__ import annotations

from typing import NamedTuple


class L2Figures(NamedTuple):
    bytes: float
    bandwidth_Bps: float


_A100 = L2Figures(40e6, 5120 * 1.41e9)
_GH100 = L2Figures(50e6, 5120 * 132 / 108 * 1.98e9)
# GB10: Hot Chips 2025 GB10 presentation (as reported, e.g. en.5iter.com/keji/58324.html): 24 MB GPU L2, plus
# a 16 MB system-level cache on the CPU die behind NVLink-C2C (~300 GB/s each way, about the DRAM rate: not
# modelled). L2 bandwidth not published; assumption: 64 bytes/clock/SM x 48 SMs (6,144 CUDA cores / 128) x
# 2.52 GHz (the clock implied by the published 31 TFLOP/s FP32 on 6,144 cores) = 7.74 TB/s.
_GB10 = L2Figures(24 * 1024**2, 64 * 48 * 2.52e9)
L2: dict[str, L2Figures] = {"a100-80gb": _A100, "h100-sxm": _GH100, "h200": _GH100, "gb10": _GB10}
SOURCES: dict[str, str] = {
    "gb10": "L2 size: Hot Chips 2025; L2 bandwidth: assumption (64 B/clk/SM x 48 SMs x 2.52 GHz)",
}


def l2_figures(hardware: str) -> L2Figures | None:
    """L2 size and bandwidth bound for a hardware name (aliases resolved), None when not recorded."""
    from blis.errors import BlisInputError
    from blis.physics.hardware import get_hardware

    try:
        name = get_hardware(hardware).name.lower()
    except BlisInputError:
        name = hardware.lower()
    return L2.get(name)
