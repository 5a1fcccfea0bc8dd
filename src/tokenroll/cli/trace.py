"""`tokenroll trace run|score`: ground-truth CWM traces, and scoring of predicted traces."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    help_text = "CWM-format execution traces: produce ground truth, score predictions"
    parser = subparsers.add_parser("trace", help=help_text, description=help_text)
    commands = parser.add_subparsers(dest="trace_command", metavar="COMMAND", required=True)

    run_help = "trace one call of a function in FILE and print the trace"
    run = commands.add_parser("run", help=run_help, description=run_help)
    run.add_argument("file", type=Path, help="Python source file defining the function")
    run.add_argument("--call", required=True, help='the call to trace, e.g. "f(1, 2)"')
    run.add_argument("--json", action="store_true", help="print frames as JSON instead of text")
    _add_sandbox_options(run)
    run.set_defaults(run=run_trace)

    score_help = "score full-trace generations (JSONL: id, code, input, generation)"
    score = commands.add_parser("score", help=score_help, description=score_help)
    score.add_argument("generations", type=Path, help="JSONL file of generations")
    score.add_argument("--per-sample", type=Path, metavar="FILE",
                       help="also write one JSON line per sample to FILE")
    _add_sandbox_options(score)
    score.set_defaults(run=run_score)


def _add_sandbox_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--python", help="CPython 3.11 interpreter for the sandbox "
                                         "(default: this one if 3.11, else python3.11)")
    parser.add_argument("--timeout", type=float, default=10.0,
                        help="seconds allowed per traced call (default: 10)")
    parser.add_argument("--workers", type=int, default=2, help="sandbox workers (default: 2)")


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def run_trace(args: argparse.Namespace) -> int:
    from tokenroll.traces import TraceError, Tracer, frames_to_text

    try:
        code = args.file.read_text(encoding="utf-8")
    except OSError as exc:
        return _fail(f"cannot read {args.file}: {exc.strerror}")
    try:
        with Tracer(workers=1, python=args.python, timeout=args.timeout) as tracer:
            trace = tracer.trace_call(code, args.call)
    except TraceError as exc:
        return _fail(str(exc))
    if args.json:
        frames = [{"event": f.event.value, "source": f.source, "state": f.state, "value": f.value}
                  for f in trace.frames]
        print(json.dumps({"outcome": trace.outcome.value, "error": trace.error,
                          "frames": frames}, ensure_ascii=False, indent=1))
    else:
        sys.stdout.write(frames_to_text(trace.frames, end=trace.complete))
        sys.stdout.write("\n")
    if not trace.complete:
        print(f"error: incomplete trace ({trace.outcome.value}): {trace.error}", file=sys.stderr)
        return 1
    return 0


def run_score(args: argparse.Namespace) -> int:
    from tokenroll.traces import TaskFileError, TraceError, Tracer, score_generations
    from tokenroll.traces.scoring import load_generation_samples

    try:
        samples = load_generation_samples(args.generations)
    except (TaskFileError, OSError) as exc:
        return _fail(str(exc))
    try:
        with Tracer(workers=args.workers, python=args.python, timeout=args.timeout) as tracer:
            report = score_generations(samples, tracer=tracer)
    except TraceError as exc:
        return _fail(str(exc))
    if args.per_sample is not None:
        with args.per_sample.open("w", encoding="utf-8") as handle:
            for sample in report.samples:
                handle.write(json.dumps(sample.to_json()) + "\n")
    print(json.dumps(report.summary()))
    return 0
