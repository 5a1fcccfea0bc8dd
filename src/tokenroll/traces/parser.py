"""Read CWM trace text (or token ids) back into frames, keeping malformed frames flagged."""

from __future__ import annotations

import json
from collections.abc import Sequence

from tokenroll.traces.format import (
    Decode,
    Piece,
    SpecialIds,
    ids_to_pieces,
    pieces_to_text,
    text_to_pieces,
)
from tokenroll.traces.frames import TOKEN_EVENTS, Event, Frame, ParsedTrace, Special


def parse_trace(text: str) -> ParsedTrace:
    """Parse trace text: frames separated by `<|frame_sep|>`, cut at `<|end_of_text|>`."""
    return parse_pieces(text_to_pieces(text))


def parse_trace_ids(
    ids: Sequence[int], decode: Decode, special_ids: SpecialIds | None = None
) -> ParsedTrace:
    """Parse token ids; `decode` turns runs of ordinary ids into text."""
    return parse_pieces(ids_to_pieces(ids, decode, special_ids))


def parse_pieces(pieces: Sequence[Piece]) -> ParsedTrace:
    """Parse a piece sequence (see `tokenroll.traces.format`)."""
    pieces = list(pieces)
    ended = Special.END_OF_TEXT in pieces
    if ended:
        pieces = pieces[: pieces.index(Special.END_OF_TEXT)]
    segments: list[list[Piece]] = [[]]
    for piece in pieces:
        if piece is Special.FRAME_SEP:
            segments.append([])
        else:
            segments[-1].append(piece)
    tail = segments.pop()

    frames: list[Frame] = []
    problems: list[str] = []
    structural = False
    for segment in segments:
        if _is_blank(segment):
            problems.append(f"empty segment before frame {len(frames)}")
            structural = True
            continue
        frame = _parse_segment(segment)
        frame_problems = _content_problems(frame)
        if frame.problem is not None:
            structural = True
            frame_problems.insert(0, frame.problem)
        problems.extend(f"frame {len(frames)}: {message}" for message in frame_problems)
        frames.append(frame)
    if not _is_blank(tail):
        frame = _parse_segment(tail)
        frame.problem = "unfinished frame: no <|frame_sep|> after it"
        problems.append(f"frame {len(frames)}: {frame.problem}")
        frames.append(frame)
        structural = True
    if not frames:
        problems.append("no frames")
    if not ended:
        problems.append("no <|end_of_text|>")
    well_formed = not structural and bool(frames) and ended
    return ParsedTrace(frames=frames, well_formed=well_formed, ended=ended, problems=problems)


def _is_blank(segment: list[Piece]) -> bool:
    return all(isinstance(piece, str) and not piece.strip() for piece in segment)


def _parse_segment(segment: list[Piece]) -> Frame:
    raw = pieces_to_text(segment)
    position = 0
    # Whitespace before the event token is tolerated; other text is not.
    if isinstance(segment[0], str) and not segment[0].strip() and len(segment) > 1:
        position = 1
    head = segment[position]
    if not isinstance(head, Special) or head not in TOKEN_EVENTS:
        return Frame(event=None, source=None, problem="does not start with an event token",
                     raw=raw)
    event = TOKEN_EVENTS[head]
    rest = segment[position + 1:]
    if event.has_state:
        return _parse_state_frame(event, rest, raw)
    return _parse_value_frame(event, rest, raw)


def _split_at(rest: list[Piece], token: Special) -> tuple[list[Piece], list[Piece]] | None:
    if token not in rest:
        return None
    index = rest.index(token)
    return rest[:index], rest[index + 1:]


def _text_of(pieces: list[Piece]) -> tuple[str, str | None]:
    """The text of pieces that should be plain text, and a problem if a token is among them."""
    stray = [piece for piece in pieces if isinstance(piece, Special)]
    text = "".join(piece for piece in pieces if isinstance(piece, str))
    return text, (f"unexpected {stray[0].text}" if stray else None)


def _parse_state_frame(event: Event, rest: list[Piece], raw: str) -> Frame:
    split = _split_at(rest, Special.ACTION_SEP)
    if split is None:
        state_text, problem = _text_of(rest)
        return Frame(event=event, source=None, state=_loads_state(state_text),
                     problem=problem or "no <|action_sep|>", raw=raw)
    state_text, problem = _text_of(split[0])
    source, source_problem = _text_of(split[1])
    return Frame(event=event, source=source, state=_loads_state(state_text),
                 problem=problem or source_problem, raw=raw)


def _parse_value_frame(event: Event, rest: list[Piece], raw: str) -> Frame:
    split = _split_at(rest, Special.ACTION_SEP)
    if split is None:
        return Frame(event=event, source=None, problem="no <|action_sep|>", raw=raw)
    before, after = split
    problem = None if _is_blank(before) else "text between the event token and <|action_sep|>"
    value_split = _split_at(after, Special.ARG_SEP)
    if value_split is None:
        source, source_problem = _text_of(after)
        return Frame(event=event, source=source, problem=problem or source_problem
                     or "no <|arg_sep|>", raw=raw)
    source, source_problem = _text_of(value_split[0])
    value_text, value_problem = _text_of(value_split[1])
    return Frame(event=event, source=source, value=_loads_value(value_text),
                 problem=problem or source_problem or value_problem, raw=raw)


def _loads_state(text: str) -> dict[str, object] | None:
    try:
        state = json.loads(text)
    except ValueError:
        return None
    return state if isinstance(state, dict) else None


def _loads_value(text: str) -> str | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, str) else None


def _content_problems(frame: Frame) -> list[str]:
    """Problems that leave the grammar intact (they cost JSON and state metrics instead)."""
    if frame.event is None or frame.source is None:
        return []
    if frame.event.has_state:
        if frame.state is None:
            return ["locals are not a JSON object"]
        if not all(isinstance(value, str) for value in frame.state.values()):
            return ["locals values are not all strings"]
    elif frame.value is None and frame.problem is None:
        return ["value is not a JSON string"]
    return []
