"""CLI subcommands: each module here has ``register(subparsers)`` adding one ``python -m blis NAME``."""

COMMAND_MODULES = (
    "run",
    "roofline",
    "bench_data",
    "kernels",
    "replay",
    "validate",
    "calibrate",
    "serve",
    "report",
    "plan",
    "list",
)
