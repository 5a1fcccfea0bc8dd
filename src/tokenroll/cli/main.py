"""The `tokenroll` command: a thin argparse front over the library.

Each command module exposes `register(subparsers)` and keeps its heavy imports inside
the function that runs the command, so `tokenroll --help` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from tokenroll.cli import cruxeval, eval, export, serve, trace, version, view

_COMMAND_MODULES = [version, eval, export, view, trace, cruxeval, serve]


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with every command registered."""
    parser = argparse.ArgumentParser(
        prog="tokenroll",
        description="Token-exact rollouts for multi-turn, tool-using LLM environments.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in _COMMAND_MODULES:
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    return int(args.run(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
