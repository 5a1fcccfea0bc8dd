"""Frames to CWM trace text and token ids, and text/ids back to token pieces.

A trace is a list of *pieces*: special tokens (`Special`) and plain text between them.
Text and token ids are two spellings of the same pieces, so every conversion goes through
them. Plain text is turned into ids by a caller-given `encode`; special tokens are always
inserted by id, never by encoding their string (CWM's tokenizer would not map them). Their
ids are CWM's unless a vocabulary that places them elsewhere gives its own (`SpecialIds`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence

from tokenroll.traces.frames import EVENT_TOKENS, Frame, Special

Piece = Special | str
Encode = Callable[[str], list[int]]
Decode = Callable[[list[int]], str]
SpecialIds = Mapping[Special, int]
"""Where a vocabulary puts each special token (CWM's own ids when not given)."""

_SPECIAL_BY_TEXT = {token.text: token for token in Special}
_CWM_SPECIALS = {int(token): token for token in Special}
_SPECIAL_PATTERN = re.compile("(" + "|".join(re.escape(text) for text in _SPECIAL_BY_TEXT) + ")")


def dumps_json(value: object) -> str:
    """JSON as CWM writes it: `json.dumps` defaults (ASCII only, `", "` and `": "`)."""
    return json.dumps(value)


def frame_pieces(frame: Frame) -> list[Piece]:
    """The pieces of one frame, ending with `<|frame_sep|>`."""
    if frame.event is None or frame.source is None:
        raise ValueError(f"cannot render a frame without event or source: {frame!r}")
    token = EVENT_TOKENS[frame.event]
    if frame.event.has_state:
        state = frame.state if frame.state is not None else {}
        return [token, dumps_json(state), Special.ACTION_SEP, frame.source, Special.FRAME_SEP]
    return [token, Special.ACTION_SEP, frame.source, Special.ARG_SEP, dumps_json(frame.value),
            Special.FRAME_SEP]


def trace_pieces(frames: Iterable[Frame], *, end: bool = True) -> list[Piece]:
    """The pieces of consecutive frames, with `<|end_of_text|>` after them if `end`."""
    pieces: list[Piece] = []
    for frame in frames:
        pieces.extend(frame_pieces(frame))
    if end:
        pieces.append(Special.END_OF_TEXT)
    return pieces


def pieces_to_text(pieces: Iterable[Piece]) -> str:
    return "".join(piece.text if isinstance(piece, Special) else piece for piece in pieces)


def pieces_to_ids(
    pieces: Iterable[Piece], encode: Encode, special_ids: SpecialIds | None = None
) -> list[int]:
    ids: list[int] = []
    for piece in pieces:
        if isinstance(piece, Special):
            ids.append(int(piece) if special_ids is None else special_ids[piece])
        elif piece:
            ids.extend(encode(piece))
    return ids


def text_to_pieces(text: str) -> list[Piece]:
    """Split text at special-token strings (empty text between tokens is dropped)."""
    return [
        _SPECIAL_BY_TEXT.get(part, part)
        for part in _SPECIAL_PATTERN.split(text)
        if part
    ]


def ids_to_pieces(
    ids: Sequence[int], decode: Decode, special_ids: SpecialIds | None = None
) -> list[Piece]:
    """Group token ids into special tokens and decoded runs of ordinary ids."""
    specials = _CWM_SPECIALS if special_ids is None else {i: token for token, i in special_ids.items()}
    pieces: list[Piece] = []
    run: list[int] = []
    for token_id in ids:
        token = specials.get(token_id)
        if token is not None:
            if run:
                pieces.append(decode(run))
                run = []
            pieces.append(token)
        else:
            run.append(token_id)
    if run:
        pieces.append(decode(run))
    return pieces


def frames_to_text(frames: Iterable[Frame], *, end: bool = True) -> str:
    """Trace text: `<|call_sep|>{...}<|action_sep|>def f(x):\\n<|frame_sep|>...`."""
    return pieces_to_text(trace_pieces(frames, end=end))


def frames_to_ids(frames: Iterable[Frame], encode: Encode, *, end: bool = True) -> list[int]:
    """Token ids of the frames; each text field is encoded on its own."""
    return pieces_to_ids(trace_pieces(frames, end=end), encode)


def text_to_ids(text: str, encode: Encode) -> list[int]:
    """Token ids of trace text, special-token strings mapped to their ids."""
    return pieces_to_ids(text_to_pieces(text), encode)


def ids_to_text(ids: Sequence[int], decode: Decode) -> str:
    return pieces_to_text(ids_to_pieces(ids, decode))
