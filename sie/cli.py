"""`sie` command line: `inspect` a file, `write` a 4I file from JSON, print a year's `balances`.

Each subcommand lives in its own module exposing `register(subparsers)`, which adds its
parser and sets `handler` (a function `argparse.Namespace -> int`). A new subcommand is
added by writing such a module and listing it in `_COMMANDS`. Exit codes: 0 no error-level
finding, 1 error-level findings, 2 usage error or unreadable input.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from sie import cli_balances, cli_inspect, cli_write
from sie.collector import streaming_collector

Register = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]
_COMMANDS: tuple[Register, ...] = (
    cli_inspect.register,
    cli_write.register,
    cli_balances.register,
)


def build_parser() -> argparse.ArgumentParser:
    """The `sie` parser with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="fortnox-bridge sie",
        description="Read, check and write SIE files (types 1-4, 4E/4I).",
        epilog="Exit codes: 0 no errors, 1 error-level findings, 2 usage or I/O error.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in _COMMANDS:
        register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the `sie` command line; return the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # argparse exits 2 on usage errors, 0 on --help
        return int(stop.code or 0)
    handler: Callable[[argparse.Namespace], int] = args.handler
    with streaming_collector():
        return handler(args)
