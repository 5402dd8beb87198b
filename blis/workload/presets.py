"""Named length presets (the reference simulator's ``--workload`` presets).

Each preset is a pair of clamped Gaussians ``(mean, std, min, max)`` in tokens: prompt, then output.
"""

from __future__ import annotations

# name -> ((input mean, std, min, max), (output mean, std, min, max)); tokens
PRESETS: dict[str, tuple[tuple[int, int, int, int], tuple[int, int, int, int]]] = {
    "chatbot": ((256, 100, 2, 800), (256, 100, 1, 1024)),
    "contentgen": ((1024, 150, 10, 2048), (1024, 200, 10, 2048)),
    "summarization": ((4096, 500, 100, 8192), (512, 150, 10, 2048)),
    "multidoc": ((10240, 1200, 500, 20480), (1536, 300, 50, 4096)),
}


def available_presets() -> list[str]:
    """Names accepted by ``Workload.preset``."""
    return sorted(PRESETS)
