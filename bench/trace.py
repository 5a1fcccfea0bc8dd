"""Benchmark: ground-truth tracing of all 800 CRUXEval samples, and scoring 800 generations.

    .venv/bin/python bench/trace.py [--workers 2]

Prints events per second of our tracer next to a bare `sys.settrace` hook that records only
(event, line) on the same programs in the same warm workers, their ratio, the wall-clock
time of all 800 ground-truth traces, and the time to score 800 generations.
This file is also loaded into the sandbox workers as a plugin (for `bare_trace`), so its
top level imports only the standard library.
"""

from __future__ import annotations

import argparse
import sys
import time

_FILENAME = "<cwm-trace-context>"


def bare_trace(context: str, entry: str = "main") -> dict:
    """Run `context`'s `entry` under a hook that records only (event, line) of its frames."""
    namespace = {"__name__": "__main__"}
    exec(compile(context, _FILENAME, "exec"), namespace)
    function = namespace[entry]
    events: list[tuple[str, int]] = []

    def local(frame, event, arg):
        events.append((event, frame.f_lineno))
        return local

    def on_call(frame, event, arg):
        if frame.f_code.co_filename != _FILENAME:
            return None
        events.append((event, frame.f_lineno))
        return local

    sys.settrace(on_call)
    try:
        function()
    finally:
        sys.settrace(None)
    return {"events": len(events)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    from tokenroll.sandbox import Job
    from tokenroll.traces import (
        GenerationSample,
        Tracer,
        full_trace_completion,
        load_cruxeval,
        parse_trace,
        score_generations,
        score_trace,
    )

    tasks = load_cruxeval()
    calls = [(task.code, task.call) for task in tasks]

    started = time.perf_counter()
    tracer = Tracer(workers=args.workers)
    startup = time.perf_counter() - started
    # the bare hook runs in the same kind of warm workers, as a plugin of this file
    from tokenroll.sandbox import SandboxPool

    bare_pool = SandboxPool(args.workers, python=tracer.pool.python,
                            plugins={"bench": __file__})
    try:
        started = time.perf_counter()
        traces = tracer.trace_calls(calls)
        trace_wall = time.perf_counter() - started
        assert all(trace.complete for trace in traces)
        ours_events = sum(len(trace.frames) for trace in traces)

        bare_jobs = [Job(plugin="bench", function="bare_trace",
                         kwargs={"context": task.context, "entry": "main"}) for task in tasks]
        started = time.perf_counter()
        bare_results = bare_pool.map(bare_jobs)
        bare_wall = time.perf_counter() - started
        bare_events = sum(result.value["events"] for result in bare_results)
        bare_seconds = sum(result.seconds for result in bare_results)

        # in-worker time of our tracer for the same calls (one more pass, job time only)
        ours_jobs = [Job(plugin="tracer", function="trace_context",
                         kwargs={"context": task.context, "entry": "main"}) for task in tasks]
        ours_seconds = sum(result.seconds for result in tracer.pool.map(ours_jobs))

        generations = [GenerationSample(task.id, task.code, task.call,
                                        full_trace_completion(trace), task.expected_output)
                       for task, trace in zip(tasks, traces)]
        started = time.perf_counter()
        report = score_generations(generations, tracer=tracer)
        score_wall = time.perf_counter() - started
        assert report.summary()["state_exact_match"] == 100.0

        started = time.perf_counter()
        for trace, sample in zip(traces, generations):
            score_trace(trace.frames[1:], parse_trace(sample.generation))
        metrics_only = time.perf_counter() - started
    finally:
        tracer.close()
        bare_pool.close()

    print(f"python {tracer.pool.python_version}  workers {args.workers}")
    print(f"worker start-up:                         {startup:8.3f} s")
    print(f"800 ground-truth traces (wall, warm):    {trace_wall:8.3f} s   "
          f"({ours_events} events, {ours_events / trace_wall:,.0f} events/s)")
    print(f"bare (event, line) hook (wall, warm):    {bare_wall:8.3f} s   "
          f"({bare_events} events, {bare_events / bare_wall:,.0f} events/s)")
    ours_rate, bare_rate = ours_events / ours_seconds, bare_events / bare_seconds
    # job time inside the workers: compile + exec of the context + the traced call
    print(f"in-worker events/s: ours {ours_rate:,.0f}  bare {bare_rate:,.0f}  "
          f"ratio ours/bare {ours_rate / bare_rate:.3f}")
    print(f"score 800 generations (ground truth, parse, metrics, pass@1 checks): "
          f"{score_wall:.3f} s")
    print(f"  of which parse + metrics only:         {metrics_only:8.3f} s")


if __name__ == "__main__":
    main()
