"""Ground-truth CWM execution traces from CPython 3.11 `sys.settrace` events.

This file runs inside a sandbox worker (loaded by path as a plugin), so it imports only the
standard library. `trace_context` returns plain lists; `tokenroll.traces.ground_truth` turns
them into `Frame` objects. The rules follow the CWM trace-format notes (sections 1.4-1.8, 2.2):

* Only frames whose code comes from the traced context are recorded, from the entry
  function's CALL to its RETURN. Module-level code is run untraced first.
* CALL/LINE frames carry the locals *before* the line runs (`frame.f_locals`, in its order);
  every value is `repr(value)` with ` at 0x...` removed where it closes a `<...>` repr.
* The `..` rule: one `prev` state for the whole trace. CALL writes every value and sets
  `prev`; LINE writes `..` where the rendered value equals `prev`'s, then sets `prev`;
  RETURN clears `prev`; EXCEPTION leaves it alone.
* The action is the physical source line at `f_lineno`, verbatim with its indentation and
  trailing newline; `  # << START_OF_TRACE` is removed only as a suffix.

Choices where the notes are silent (each is tested in tests/traces/test_tracer.py):

* EXCEPTION value: `repr(exception)` with addresses stripped, e.g.
  `"ZeroDivisionError('division by zero')"`. Events are kept as settrace gives them, so an
  exception leaving a function is EXCEPTION (raise line), RETURN `"None"` in that function,
  then EXCEPTION at the call line in the caller.
* An exception escaping the entry function ends the trace like a return: the entry
  function's EXCEPTION and RETURN `"None"` frames are the last ones; outcome is "raised" and
  `error` holds the exception's repr.
* Values are never truncated (a shortened value would be a false ground truth). A value
  longer than `max_value_chars` (default 100,000) stops the trace: outcome "value_limit".
* At most `max_frames` frames (default 10,000; CRUXEval's longest has 630): outcome
  "frame_limit". Recursion: every activation is its own CALL...RETURN block; more than
  `max_depth` nested traced activations (default 200) stops the trace: outcome "depth_limit".
  A stopped trace keeps the frames recorded so far.
* A value whose `repr` raises is written `<unrepresentable TYPE>`. Default reprs keep their
  module prefix (the context runs as `__main__`, so `<__main__.C object>`).
* A context whose last line has no newline gets one added to the action.
* A `MemoryError` is not part of the program's behaviour (it comes from the sandbox limit),
  so it is re-raised to the sandbox instead of being recorded.
"""

from __future__ import annotations

import builtins
import linecache
import re
import sys

CONTEXT_FILENAME = "<cwm-trace-context>"
START_MARKER = "  # << START_OF_TRACE"
DEFAULT_MAX_FRAMES = 10_000
DEFAULT_MAX_VALUE_CHARS = 100_000
DEFAULT_MAX_DEPTH = 200
UNCHANGED = ".."

# ` at 0x7f...` right before the `>` that closes a default repr.
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+(?=>)")


class _TraceStopped(BaseException):
    """Raised from the trace function to abort the traced program at a limit."""


def render_value(value: object) -> str:
    """`repr(value)` with memory addresses removed (CWM's value rendering)."""
    try:
        text = repr(value)
    except Exception:
        return f"<unrepresentable {type(value).__qualname__}>"
    if not isinstance(text, str):
        return f"<unrepresentable {type(value).__qualname__}>"
    return _ADDRESS.sub("", text) if " at 0x" in text else text


def action_lines(context: str) -> list[str]:
    """The context's physical lines as CWM actions (1-based index = line number - 1)."""
    lines = context.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.removesuffix(START_MARKER) + "\n" for line in lines]


class _Recorder:
    """Turns settrace events of the context's frames into frame records."""

    def __init__(self, entry_code, actions, max_frames, max_value_chars, max_depth):
        self.entry_code = entry_code
        self.actions = actions
        self.max_frames = max_frames
        self.max_value_chars = max_value_chars
        self.max_depth = max_depth
        self.frames: list[list] = []
        self.prev: dict[str, str] = {}
        self.depth = 0
        self.started = False
        self.finished = False
        self.stop_reason: str | None = None

    def _action(self, frame) -> str:
        lineno = frame.f_lineno
        if 1 <= lineno <= len(self.actions):
            return self.actions[lineno - 1]
        return "\n"

    def _render(self, value: object) -> str:
        text = render_value(value)
        if len(text) > self.max_value_chars:
            self._stop("value_limit")
        return text

    def _stop(self, reason: str) -> None:
        self.stop_reason = reason
        self.finished = True
        sys.settrace(None)
        raise _TraceStopped(reason)

    def _add(self, record: list) -> None:
        self.frames.append(record)
        if len(self.frames) >= self.max_frames and not self.finished:
            self._stop("frame_limit")

    def on_call(self, frame, event, arg):
        if self.finished:
            return None
        if not self.started:
            if frame.f_code is not self.entry_code:
                return None
            self.started = True
        elif frame.f_code.co_filename != CONTEXT_FILENAME:
            return None
        self.depth += 1
        if self.depth > self.max_depth:
            self._stop("depth_limit")
        state = {name: self._render(value) for name, value in frame.f_locals.items()}
        self.prev = state
        self._add(["call", state, self._action(frame), None])
        return self.on_local

    def on_local(self, frame, event, arg):
        if self.finished:
            return None
        if event == "line":
            state = {name: self._render(value) for name, value in frame.f_locals.items()}
            prev = self.prev
            written = {
                name: UNCHANGED if prev.get(name) == text else text for name, text in state.items()
            }
            self.prev = state
            self._add(["line", written, self._action(frame), None])
        elif event == "return":
            self.depth -= 1
            self.prev = {}
            self._add(["return", None, self._action(frame), self._render(arg)])
            if frame.f_code is self.entry_code and self.depth == 0:
                self.finished = True
                sys.settrace(None)
        elif event == "exception":
            exc_type, exc_value, _tb = arg
            if exc_type is MemoryError:
                return self.on_local
            value = exc_value if exc_value is not None else exc_type
            self._add(["exception", None, self._action(frame), self._render(value)])
        return self.on_local


def trace_context(
    context: str,
    entry: str = "main",
    max_frames: int = DEFAULT_MAX_FRAMES,
    max_value_chars: int = DEFAULT_MAX_VALUE_CHARS,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> dict:
    """Run `context`, then trace one call of its zero-argument function `entry`.

    Returns `{"frames": [[event, locals|None, action, value|None], ...], "outcome": ...,
    "error": str|None, "python": [major, minor, micro]}` where outcome is one of
    "returned", "raised", "frame_limit", "value_limit", "depth_limit", "context_error".
    """
    result = {"frames": [], "outcome": "context_error", "error": None,
              "python": list(sys.version_info[:3])}
    actions = action_lines(context)
    linecache.cache[CONTEXT_FILENAME] = (
        len(context), None, context.splitlines(keepends=True), CONTEXT_FILENAME)
    namespace = {"__name__": "__main__", "__builtins__": builtins}
    try:
        exec(compile(context, CONTEXT_FILENAME, "exec"), namespace)
        function = namespace[entry]
        entry_code = function.__code__
    except MemoryError:
        raise
    except (Exception, SystemExit) as exc:
        result["error"] = f"the context failed before tracing: {render_value(exc)}"
        return result
    recorder = _Recorder(entry_code, actions, max_frames, max_value_chars, max_depth)
    outcome, error = "returned", None
    sys.settrace(recorder.on_call)
    try:
        function()
    except _TraceStopped:
        pass
    except MemoryError:
        raise
    except (Exception, SystemExit, KeyboardInterrupt, GeneratorExit) as exc:
        outcome, error = "raised", render_value(exc)
    finally:
        sys.settrace(None)
    if recorder.stop_reason is not None:
        outcome = recorder.stop_reason
        error = f"trace stopped: {recorder.stop_reason.replace('_', ' ')} reached"
    result.update(frames=recorder.frames, outcome=outcome, error=error)
    return result

