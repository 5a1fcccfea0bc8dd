"""Typed frames and traces of the CWM execution-trace format."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum, StrEnum


class Event(StrEnum):
    """The event a frame records (`sys.settrace` event names)."""

    CALL = "call"
    LINE = "line"
    RETURN = "return"
    EXCEPTION = "exception"

    @property
    def has_state(self) -> bool:
        """CALL and LINE frames carry locals; RETURN and EXCEPTION carry a value."""
        return self is Event.CALL or self is Event.LINE


class Special(IntEnum):
    """CWM's special tokens, by id (the notes' table 1.1)."""

    BEGIN_OF_TEXT = 128000
    END_OF_TEXT = 128001
    FRAME_SEP = 128100
    ACTION_SEP = 128101
    RETURN_SEP = 128102
    CALL_SEP = 128103
    LINE_SEP = 128104
    EXCEPTION_SEP = 128105
    ARG_SEP = 128106
    TRACE_CONTEXT_START = 128107

    @property
    def text(self) -> str:
        """The token's string form, e.g. `<|frame_sep|>`."""
        return _SPECIAL_TEXT[self]


_SPECIAL_TEXT = {
    Special.BEGIN_OF_TEXT: "<|begin_of_text|>",
    Special.END_OF_TEXT: "<|end_of_text|>",
    Special.FRAME_SEP: "<|frame_sep|>",
    Special.ACTION_SEP: "<|action_sep|>",
    Special.RETURN_SEP: "<|return_sep|>",
    Special.CALL_SEP: "<|call_sep|>",
    Special.LINE_SEP: "<|line_sep|>",
    Special.EXCEPTION_SEP: "<|exception_sep|>",
    Special.ARG_SEP: "<|arg_sep|>",
    Special.TRACE_CONTEXT_START: "<|trace_context_start|>",
}

EVENT_TOKENS: dict[Event, Special] = {
    Event.CALL: Special.CALL_SEP,
    Event.LINE: Special.LINE_SEP,
    Event.RETURN: Special.RETURN_SEP,
    Event.EXCEPTION: Special.EXCEPTION_SEP,
}
TOKEN_EVENTS: dict[Special, Event] = {token: event for event, token in EVENT_TOKENS.items()}

UNCHANGED = ".."
"""The value CWM writes for a local whose rendered value did not change (section 1.7)."""


@dataclass(slots=True)
class Frame:
    """One trace frame.

    `state` maps local names to `repr` strings (or `..`) for CALL/LINE frames; `value` is the
    `repr` string of a RETURN/EXCEPTION frame; `source` is the action line, verbatim with its
    trailing newline. Parsed frames also keep `raw` (the text between two `<|frame_sep|>`)
    and `problem`, which says why the frame breaks the grammar (None when it does not).
    """

    event: Event | None
    source: str | None
    state: dict[str, object] | None = None
    value: str | None = None
    problem: str | None = None
    raw: str | None = None

    @property
    def well_formed(self) -> bool:
        return self.problem is None

    def to_dict(self) -> dict[str, object]:
        """JSON-safe `{"event", "source", "state", "value", "problem"}` (`raw` is left out)."""
        return {"event": None if self.event is None else self.event.value, "source": self.source,
                "state": self.state, "value": self.value, "problem": self.problem}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Frame:
        """Read a frame written by `to_dict`."""
        event = data.get("event")
        return cls(event=None if event is None else Event(event), source=data.get("source"),
                   state=data.get("state"), value=data.get("value"), problem=data.get("problem"))


class Outcome(StrEnum):
    """How a ground-truth trace ended."""

    RETURNED = "returned"
    RAISED = "raised"  # an exception escaped the entry function; the trace is still complete
    FRAME_LIMIT = "frame_limit"
    VALUE_LIMIT = "value_limit"
    DEPTH_LIMIT = "depth_limit"
    CONTEXT_ERROR = "context_error"  # the code failed before the entry function was called
    TIMEOUT = "timeout"
    SANDBOX_ERROR = "sandbox_error"  # memory limit, forbidden operation, crashed worker

    @property
    def complete(self) -> bool:
        """The trace reaches the entry function's RETURN frame."""
        return self is Outcome.RETURNED or self is Outcome.RAISED


@dataclass(slots=True)
class Trace:
    """A ground-truth trace of one call of the entry function in `context`."""

    context: str
    frames: list[Frame]
    outcome: Outcome
    error: str | None = None
    entry: str = "main"

    @property
    def complete(self) -> bool:
        return self.outcome.complete

    @property
    def return_value(self) -> str | None:
        """The entry function's return value (its last frame's), if it returned."""
        if self.outcome is Outcome.RETURNED and self.frames:
            return self.frames[-1].value
        return None


@dataclass(slots=True)
class ParsedTrace:
    """A trace read back from text or token ids.

    `well_formed` is the Valid Trace Format verdict: every frame follows the grammar, there
    is at least one frame, nothing but whitespace follows the last `<|frame_sep|>`, and the
    trace ends with `<|end_of_text|>`. `problems` lists every issue found, by frame.
    """

    frames: list[Frame]
    well_formed: bool
    ended: bool
    problems: list[str] = field(default_factory=list)
