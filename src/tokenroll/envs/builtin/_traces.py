"""What the trace environments share: task rows, ground truth traced once per row, metric readers."""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tokenroll.core.trajectory import Trajectory
from tokenroll.traces.ground_truth import TraceError, Tracer
from tokenroll.traces.frames import Trace
from tokenroll.traces.scoring import output_check
from tokenroll.traces.tasks import load_cruxeval


def task_rows(path: str | Path | None = None) -> list[dict[str, Any]]:
    """Rows `{id, code, call, expected_output}`: CRUXEval's, or a JSONL file in its layout."""
    return [{"id": task.id, "code": task.code, "call": task.call, "expected_output": task.expected_output}
            for task in load_cruxeval(path)]


class GroundTruth:
    """Ground-truth traces, each (code, call) traced once, in sandbox workers off the event loop.

    The tracer starts on first use (or is the one given, which is then not closed here); at
    most `workers` sandbox jobs run at a time per event loop.
    """

    def __init__(self, tracer: Tracer | None = None, *, workers: int = 2, timeout: float = 10.0) -> None:
        self._tracer = tracer
        self._owned = tracer is None
        self._workers = workers
        self._timeout = timeout
        self._start = threading.Lock()
        self._traces: dict[tuple[str, str], Trace] = {}
        self._pending: dict[tuple[str, str], asyncio.Future[Trace]] = {}
        # Semaphores belong to one event loop; each loop that uses this gets its own.
        self._gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary())

    async def trace(self, code: str, call: str) -> Trace:
        """The complete ground-truth trace of `call` on `code`; TraceError when there is none."""
        key = (code, call)
        trace = self._traces.get(key)
        if trace is None:
            pending = self._pending.get(key)
            if pending is None or pending.get_loop() is not asyncio.get_running_loop():
                pending = self._pending[key] = asyncio.ensure_future(self._trace(key))
            # Shielded: a rollout that times out does not cancel the tracing others wait for.
            trace = await asyncio.shield(pending)
        if not trace.complete:
            raise TraceError(f"no ground truth for {call}: {trace.outcome.value}: {trace.error}")
        return trace

    async def check_output(self, code: str, expected: str | None, predicted: str | None) -> float | None:
        """CRUXEval's pass@1 check of a predicted output (None when nothing is expected)."""
        if expected is None:
            return None
        job = output_check(code, expected, predicted)
        if job is None:
            return 0.0
        async with self._gate():
            tracer = await asyncio.to_thread(self._tracer_started)
            result = (await asyncio.to_thread(tracer.pool.map, [job]))[0]
        return 1.0 if result.ok else 0.0

    def close(self) -> None:
        """Stop the tracer's workers, if this started them."""
        if self._owned and self._tracer is not None:
            self._tracer.close()
            self._tracer = None

    async def _trace(self, key: tuple[str, str]) -> Trace:
        try:
            async with self._gate():
                tracer = await asyncio.to_thread(self._tracer_started)
                trace = await asyncio.to_thread(tracer.trace_call, *key)
            self._traces[key] = trace  # incomplete ones too: tracing them again would fail again
            return trace
        finally:
            self._pending.pop(key, None)

    def _tracer_started(self) -> Tracer:
        with self._start:
            if self._tracer is None:
                self._tracer = Tracer(workers=self._workers, timeout=self._timeout)
            return self._tracer

    def _gate(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        gate = self._gates.get(loop)
        if gate is None:
            gate = self._gates[loop] = asyncio.Semaphore(self._workers)
        return gate


def state_metric(name: str, field: str = "metrics") -> Callable[[dict[str, Any]], float]:
    """A reward function reading `state[field][name]` (0 when the rollout got no score)."""

    def metric(state: dict[str, Any]) -> float:
        value = state.get(field, {}).get(name)
        return 0.0 if value is None else float(value)

    metric.__name__ = metric.__qualname__ = name
    return metric


def move_trace(trajectory: Trajectory) -> None:
    """Move the frames out of the state into `extras["trace"]`, where viewers read them."""
    trace = trajectory.extras.get("state", {}).pop("trace", None)
    if trace is not None:
        trajectory.extras["trace"] = trace
