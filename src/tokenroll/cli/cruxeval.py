"""`tokenroll cruxeval score-output`: CRUXEval-O pass@1/pass@5, as the official evaluator."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    help_text = "CRUXEval benchmark tools"
    parser = subparsers.add_parser("cruxeval", help=help_text, description=help_text)
    commands = parser.add_subparsers(dest="cruxeval_command", metavar="COMMAND", required=True)
    score_help = ('score output predictions {"sample_0": ["pred", ...], ...} and print '
                  "pass@1 and pass@5")
    score = commands.add_parser("score-output", help=score_help, description=score_help)
    score.add_argument("generations", type=Path, help="JSON file of predictions per sample")
    score.add_argument("--data", type=Path, help="CRUXEval JSONL (default: the shipped copy)")
    score.add_argument("--scored-results", type=Path, metavar="FILE",
                       help="also write each prediction's result to FILE")
    score.add_argument("--python", help="interpreter for the sandbox (default: this one)")
    score.set_defaults(run=run_score_output)


def run_score_output(args: argparse.Namespace) -> int:
    from tokenroll.sandbox import SandboxError, SandboxPool
    from tokenroll.traces.cruxeval import CHECK_LIMITS, load_generations, score_output_predictions
    from tokenroll.traces.tasks import TaskFileError, load_cruxeval

    try:
        generations = load_generations(args.generations)
        tasks = load_cruxeval(args.data)
        with SandboxPool(2, limits=CHECK_LIMITS, python=args.python) as pool:
            score = score_output_predictions(generations, tasks, pool=pool)
    except (TaskFileError, SandboxError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.scored_results is not None:
        args.scored_results.write_text(json.dumps({
            "raw_generations": generations, "raw_scored_generations": score.results,
            "pass_at_1": score.pass_at_1, "pass_at_5": score.pass_at_5}))
    print(json.dumps(score.summary()))
    return 0
