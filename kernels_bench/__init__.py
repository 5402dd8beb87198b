"""kernels_bench: time GEMM and attention kernels on a GPU and write blis ``bench_data/<gpu>/`` tables.

Run ``python -m kernels_bench --help``. Everything here imports without torch; the functions that touch
the GPU import torch (and flash-attn, flashinfer) themselves. The pure parts (FLOP and byte counts, shape
enumeration, CSV writing and resume, the budgeted sweep loop) are what the CPU tests cover.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
