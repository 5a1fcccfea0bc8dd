"""`tokenroll version`: the package version, Python, and installed optional extras."""

from __future__ import annotations

import argparse
import importlib.util
import platform

import tokenroll

# extra name -> the module whose presence means the extra is installed
_EXTRAS = {
    "local": "torch",
    "vllm": "vllm",
    "viewer": "playwright",
    "dev": "pytest",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    help_text = "print tokenroll's version, Python's, and which optional extras are installed"
    parser = subparsers.add_parser("version", help=help_text, description=help_text)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    print(f"tokenroll {tokenroll.__version__}")
    print(f"python {platform.python_version()} ({platform.python_implementation()})")
    for extra, module in _EXTRAS.items():
        installed = importlib.util.find_spec(module) is not None
        print(f"extra [{extra}]: {'installed' if installed else 'not installed'}")
    return 0
