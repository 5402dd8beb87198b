"""`python -m blis`: the command-line entry point. Subcommands live in `blis/commands/`.

Bad input ends with exactly one line on stderr, ``blis: error: <field or file>: <what is allowed>``, exit
code 2, nothing on stdout and no traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys

from pydantic import ValidationError

from blis.commands import COMMANDS
from blis.errors import BlisInputError, format_validation_error, one_line

__all__ = ["build_parser", "console", "format_validation_error", "main"]
# the thread counts OpenBLAS (numpy's BLAS) reads when it loads
BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS")


class _Parser(argparse.ArgumentParser):
    """argparse that reports errors as one line and exit code 2 (argparse's own convention)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        # "argument --rate: rate: must be ..." -> "rate: must be ..." (our flag types name the field)
        m = re.match(r"argument [^:]+: (\w+: .*)$", message, re.S)
        sys.stderr.write(f"blis: error: {one_line(m.group(1) if m else message)}\n")
        raise SystemExit(2)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every subcommand, or, when ``command`` names one, of that one alone with the others
    listed by name and help only (what ``main`` parses with: flags are built for the command that runs)."""
    parser = _Parser(
        prog="blis",
        description="Simulate LLM inference serving: vLLM-V1-style instances, pluggable latency models.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name, (module, help_text) in COMMANDS.items():
        if command is None or name == command:
            importlib.import_module(f"blis.commands.{module}").register(sub)
        else:  # listed only: never parses (main gives it argv only when it is the command)
            sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    # the command is the first argument (the top level has no options besides --help)
    parser = build_parser(argv[0] if argv and argv[0] in COMMANDS else None)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a flag error (2, already reported)
        return int(exc.code or 0)
    try:
        return int(args.handler(args) or 0)
    except ValidationError as exc:
        sys.stderr.write(f"blis: error: {format_validation_error(exc)}\n")
    except (BlisInputError, ValueError, OSError, OverflowError) as exc:
        text = str(exc) if not isinstance(exc, OSError) or not exc.filename else \
            f"{exc.filename}: {exc.strerror or exc}"
        sys.stderr.write(f"blis: error: {one_line(text)}\n")
    except KeyboardInterrupt:
        sys.stderr.write("blis: interrupted\n")
        return 130
    return 2


def console() -> int:
    """The ``blis`` command and ``python -m blis``: `main` in a process of its own.

    blis does no heavy linear algebra, yet numpy's OpenBLAS starts a thread per core when numpy loads (20-60 ms
    of a short run on a 2-core machine, more on a big one), so the command asks for one thread, unless the user
    set a count or numpy is already loaded. Child processes (calibration workers, local Ray workers) inherit it.
    """
    if "numpy" not in sys.modules and not any(v in os.environ for v in BLAS_THREAD_VARIABLES):
        os.environ["OPENBLAS_NUM_THREADS"] = "1"
    return main()
