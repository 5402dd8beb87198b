"""CLI subcommands: each module here has ``register(subparsers)`` adding one ``python -m blis NAME``.

`COMMANDS` lists them in the order ``blis --help`` shows: command name -> (module, one-line help). The CLI
imports and registers only the invoked command's module (a run does not pay for the others' flags); the
others appear in the listing with the help given here, which must be the one their ``register`` passes
(tests/test_startup.py checks it).
"""

COMMANDS = {
    "run": ("run", "simulate a workload and print metrics"),
    "roofline": ("roofline", "roofline of one kernel (GEMV, GEMM, attention) or the KV-cache capacity"),
    "bench-data": ("bench_data", "import, check and evaluate kernel timing tables (bench_data/<gpu>/)"),
    "kernels": ("kernels", "compare measured kernel tables with the kernel roofline"),
    "replay": ("replay", "replay a real run (its arrivals, prompts, server settings) and compare"),
    "validate": ("validate", "replay real runs and report the simulator's error (CI gate)"),
    "calibrate": ("calibrate", "fit a latency model's parameters to real runs, validated across runs"),
    "serve": ("serve", "serve the web page and HTTP API (needs the 'web' extra)"),
    "report": ("report", "write a finished run's charts as one HTML file"),
    "plan": ("plan", "find the cheapest deployments meeting latency SLOs"),
    "list": ("list", "list the models, hardware, presets, latency models or policies blis knows"),
}
COMMAND_MODULES = tuple(module for module, _ in COMMANDS.values())
