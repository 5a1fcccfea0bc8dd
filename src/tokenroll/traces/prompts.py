"""Trace prompts (notes section 1.2) and the `..` resolver (section 1.7)."""

from __future__ import annotations

from collections.abc import Sequence

from tokenroll.traces.format import (
    Encode,
    Piece,
    frame_pieces,
    pieces_to_ids,
    pieces_to_text,
    trace_pieces,
)
from tokenroll.traces.frames import UNCHANGED, Event, Frame, Special, Trace
from tokenroll.traces.parser import parse_trace

ENTRY = "main"
START_MARKER = "  # << START_OF_TRACE"
SEED_FRAME = Frame(event=Event.CALL, source=f"def {ENTRY}():\n", state={})
"""The entry wrapper's CALL frame, written into the prompt instead of generated."""


def cruxeval_call(input_text: str, function: str = "f") -> str:
    """The call a CRUXEval input stands for: `f(<input>)`."""
    return f"{function}({input_text})"


def build_context(code: str, call: str) -> str:
    """`code` followed by the marked wrapper `def main():  # << START_OF_TRACE` calling `call`."""
    return f"\n{code}\ndef {ENTRY}():{START_MARKER}\n    return {call}\n"


def full_trace_prompt(code: str, call: str) -> list[Piece]:
    """BOS, context, and the seeded CALL frame of `main`; the model writes the rest."""
    return [Special.BEGIN_OF_TEXT, Special.TRACE_CONTEXT_START, build_context(code, call),
            Special.FRAME_SEP, *frame_pieces(SEED_FRAME)]


def single_step_prompt(code: str, call: str) -> list[Piece]:
    """The full-trace prompt with `<|return_sep|>` forced: the model writes main's return."""
    return [*full_trace_prompt(code, call), Special.RETURN_SEP]


def prompt_text(pieces: Sequence[Piece]) -> str:
    """A prompt as text (for display; send `prompt_ids` to a model)."""
    return pieces_to_text(pieces)


def prompt_ids(pieces: Sequence[Piece], encode: Encode) -> list[int]:
    """A prompt as token ids, special tokens inserted by id."""
    return pieces_to_ids(pieces, encode)


def full_trace_completion(trace: Trace) -> str:
    """What a perfect model writes after the full-trace prompt: every frame after the seed."""
    return pieces_to_text(trace_pieces(trace.frames[1:]))


def single_step_completion(trace: Trace) -> str:
    """What a perfect model writes after the single-step prompt (its `<|return_sep|>` forced)."""
    return pieces_to_text(trace_pieces(trace.frames[-1:])[1:])


def parse_single_step(generation: str) -> str | None:
    """The return value a single-step generation states, or None if it states none."""
    parsed = parse_trace(Special.RETURN_SEP.text + generation)
    if parsed.frames and parsed.frames[0].event is Event.RETURN:
        return parsed.frames[0].value
    return None


def resolve_states(frames: Sequence[Frame]) -> list[dict[str, object] | None]:
    """Each frame's locals with `..` replaced by the value it stands for.

    Walks back as cwmdbg does: the first earlier non-`..` value of the name wins, and the walk
    stops once a CALL or RETURN frame has been checked (EXCEPTION frames do not stop it).
    A `..` with nothing to resolve to stays `..`. Frames without locals give None.
    """
    resolved: list[dict[str, object] | None] = []
    # carry: the latest written value of each name since the last CALL/RETURN boundary,
    # which is exactly what the backward walk finds first.
    carry: dict[str, object] = {}
    for frame in frames:
        if frame.event is Event.RETURN:
            carry = {}
        if frame.state is None or frame.event is None or not frame.event.has_state:
            if frame.event is Event.CALL:  # a CALL with unreadable locals still ends the walk
                carry = {}
            resolved.append(None)
            continue
        state = {name: carry.get(name, UNCHANGED) if value == UNCHANGED else value
                 for name, value in frame.state.items()}
        resolved.append(state)
        written = {name: value for name, value in frame.state.items() if value != UNCHANGED}
        if frame.event is Event.CALL:
            carry = written
        else:
            carry.update(written)
    return resolved
