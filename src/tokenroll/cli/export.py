"""`tokenroll export`: a run's training data as Parquet samples, prime-rl JSONL or TRL JSONL."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

_FORMATS = ("samples-parquet", "prime-rl-jsonl", "trl")


def register(subparsers: argparse._SubParsersAction) -> None:
    help_text = "write a run's training data (token ids, loss mask, logprobs, advantages, attribution)"
    parser = subparsers.add_parser("export", help=help_text, description=help_text)
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a directory written by tokenroll eval")
    parser.add_argument("--format", required=True, choices=_FORMATS, dest="fmt")
    parser.add_argument("-o", "--output", type=Path, metavar="FILE",
                        help="file to write (default RUN_DIR/export-FORMAT.parquet|.jsonl)")
    parser.add_argument("--include-errored", action="store_true", help="also export errored rollouts")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tokenroll.runner.export import export_run

    try:
        target, count = export_run(args.run_dir, args.fmt, args.output, include_errored=args.include_errored)
    except (ImportError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {count} records to {target}")
    return 0
