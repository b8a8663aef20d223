"""``fortnox-bridge serve | sandbox | sie``: dispatches to the tool, importing only that one."""

from __future__ import annotations

import sys
from collections.abc import Callable
from importlib import import_module

_COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("server.main", "run the gRPC service"),
    "sandbox": ("sandbox.cli", "run the local Fortnox sandbox (OAuth + REST API v3)"),
    "sie": ("sie.cli", "inspect, check and write SIE files"),
}


def _usage() -> str:
    lines = ["usage: fortnox-bridge COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<8} {help_}" for name, (_, help_) in _COMMANDS.items()]
    lines += ["", "`fortnox-bridge COMMAND --help` documents each command's flags."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Runs the command named by the first argument; exit code 2 on usage errors."""
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        print(_usage())
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command not in _COMMANDS:
        print(f"fortnox-bridge: unknown command {command!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    entry: Callable[[list[str]], int] = import_module(_COMMANDS[command][0]).main
    return entry(rest)


if __name__ == "__main__":
    sys.exit(main())
