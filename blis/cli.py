"""`python -m blis`: the command-line entry point. Subcommands live in `blis/commands/`."""

from __future__ import annotations

import argparse
import importlib
import sys

from pydantic import ValidationError

from blis.commands import COMMAND_MODULES
from blis.errors import BlisInputError


class _Parser(argparse.ArgumentParser):
    """argparse that reports errors as one line and exit code 2 (argparse's own convention)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="blis",
        description="Simulate LLM inference serving: vLLM-V1-style instances, pluggable latency models.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"blis.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"blis.commands.{name}":
                continue  # command not built yet
            raise
        module.register(sub)
    return parser


def format_validation_error(exc: ValidationError) -> str:
    """First pydantic error as 'field: message'."""
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"]) or "config"
    msg = str(err["msg"]).removeprefix("Value error, ")
    return msg if msg.split(":", 1)[0].strip() in loc.split(".") else f"{loc}: {msg}"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except ValidationError as exc:
        sys.stderr.write(f"blis: error: {format_validation_error(exc)}\n")
        return 2
    except (BlisInputError, ValueError, FileNotFoundError) as exc:
        sys.stderr.write(f"blis: error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("blis: interrupted\n")
        return 130
