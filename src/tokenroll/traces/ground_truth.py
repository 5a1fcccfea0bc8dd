"""Ground-truth traces: `tracer.py` run inside warm sandbox workers under CPython 3.11."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

from tokenroll.sandbox import Job, Limits, RunResult, SandboxError, SandboxPool, Status, find_python
from tokenroll.traces import tracer as _tracer
from tokenroll.traces.frames import Event, Frame, Outcome, Trace
from tokenroll.traces.prompts import ENTRY, build_context

GROUND_TRUTH_PYTHON = (3, 11)
_TRACER_FILE = Path(_tracer.__file__)


class TraceError(RuntimeError):
    """Ground truth cannot be produced here (no CPython 3.11, sandbox failure)."""


def _interpreter(python: str | None) -> str:
    if python is not None:
        return python
    try:
        found = find_python(GROUND_TRUTH_PYTHON)
    except SandboxError as exc:
        raise TraceError(f"CWM ground-truth traces need CPython 3.11: {exc}") from None
    if sys.version_info[:2] != GROUND_TRUTH_PYTHON:
        warnings.warn(
            f"tokenroll runs on Python {sys.version_info[0]}.{sys.version_info[1]}, but the CWM "
            f"trace format depends on 3.11 (comprehension frames); ground truth is produced by "
            f"{found}", stacklevel=3)
    return found


class Tracer:
    """Produces ground-truth traces, reusing warm sandbox workers.

    >>> with Tracer() as tracer:
    ...     trace = tracer.trace_call("def f(x):\\n    return x + 1", "f(1)")
    ...     trace.return_value
    '2'
    """

    def __init__(
        self,
        workers: int = 2,
        *,
        python: str | None = None,
        timeout: float = 10.0,
        memory_bytes: int | None = 1 << 30,
        max_frames: int = _tracer.DEFAULT_MAX_FRAMES,
        max_value_chars: int = _tracer.DEFAULT_MAX_VALUE_CHARS,
        max_depth: int = _tracer.DEFAULT_MAX_DEPTH,
        hash_seed: int = 0,
    ) -> None:
        self._options = {"max_frames": max_frames, "max_value_chars": max_value_chars,
                         "max_depth": max_depth}
        self._timeout = timeout
        interpreter = _interpreter(python)
        try:
            self._pool = SandboxPool(
                workers, python=interpreter, plugins={"tracer": _TRACER_FILE},
                limits=Limits(timeout=timeout, memory_bytes=memory_bytes), hash_seed=hash_seed,
            )
        except SandboxError as exc:
            raise TraceError(str(exc)) from None
        version = self._pool.python_version[:2]
        if version != GROUND_TRUTH_PYTHON:
            self._pool.close()
            raise TraceError(
                f"{interpreter} is Python {version[0]}.{version[1]}; CWM ground-truth traces "
                f"need CPython 3.11")

    @property
    def pool(self) -> SandboxPool:
        """The sandbox pool the tracer runs in; also usable for other jobs (e.g. checks)."""
        return self._pool

    def trace_context(self, context: str, entry: str = ENTRY) -> Trace:
        """Trace one call of the zero-argument function `entry` defined in `context`."""
        return self.trace_contexts([(context, entry)])[0]

    def trace_call(self, code: str, call: str) -> Trace:
        """Trace `call` (e.g. `f(1, 2)`) on `code`, through the `main` wrapper of the notes."""
        return self.trace_context(build_context(code, call))

    def trace_calls(self, items: Iterable[tuple[str, str]]) -> list[Trace]:
        """Trace many `(code, call)` pairs over all workers, in order."""
        return self.trace_contexts((build_context(code, call), ENTRY) for code, call in items)

    def trace_contexts(self, items: Iterable[tuple[str, str]]) -> list[Trace]:
        """Trace many `(context, entry)` pairs over all workers, in order."""
        items = list(items)
        jobs = [Job(plugin="tracer", function="trace_context", timeout=self._timeout,
                    kwargs={"context": context, "entry": entry, **self._options})
                for context, entry in items]
        return [_to_trace(context, entry, result)
                for (context, entry), result in zip(items, self._pool.map(jobs))]

    def close(self) -> None:
        self._pool.close()

    def __enter__(self) -> Tracer:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def frames_from_records(records: Sequence[Sequence]) -> list[Frame]:
    """Frames from the tracer's `[event, locals, action, value]` records."""
    return [Frame(event=Event(event), source=source, state=state, value=value)
            for event, state, source, value in records]


def _to_trace(context: str, entry: str, result: RunResult) -> Trace:
    if result.status is Status.OK:
        value = result.value
        return Trace(context=context, frames=frames_from_records(value["frames"]),
                     outcome=Outcome(value["outcome"]), error=value["error"], entry=entry)
    outcome = Outcome.TIMEOUT if result.status is Status.TIMEOUT else Outcome.SANDBOX_ERROR
    error = f"{result.status.value}: {result.error}"
    return Trace(context=context, frames=[], outcome=outcome, error=error, entry=entry)
