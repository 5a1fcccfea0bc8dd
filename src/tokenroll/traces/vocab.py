"""Trace vocabularies: how one tokenizer spells CWM's trace tokens, by id or as plain text.

A tokenizer that has every trace token string (CWM's own) gets *id mode*: special tokens
are inserted and read by the tokenizer's ids, plain text is encoded as ordinary text (CWM's
`encode_ordinary`). Any other tokenizer gets *text mode*: the token strings are written and
read as ordinary text, so any model can be prompted and scored (it will rarely score well).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from tokenroll.traces.format import Piece, ids_to_pieces, pieces_to_ids, pieces_to_text
from tokenroll.traces.frames import ParsedTrace, Special
from tokenroll.traces.parser import parse_trace, parse_trace_ids


class TraceTokenizer(Protocol):
    """What a vocabulary needs of a tokenizer (`tokenroll.render.Tokenizer` has it)."""

    def has_token(self, token: str) -> bool: ...
    def token_id(self, token: str) -> int: ...
    def encode(self, text: str) -> list[int]: ...
    def decode(self, ids: list[int], skip_special_tokens: bool = False) -> str: ...


class VocabMode(StrEnum):
    """How trace tokens are spelled: `ids` (the tokenizer's own tokens) or `text`."""

    IDS = "ids"
    TEXT = "text"


@dataclass(frozen=True, slots=True)
class TraceVocab:
    """One tokenizer's trace vocabulary: prompt pieces to ids, completion ids to a parsed trace."""

    tokenizer: TraceTokenizer
    mode: VocabMode
    special_ids: dict[Special, int]
    """The tokenizer's id of every trace token (empty in text mode)."""
    eos_ids: tuple[int, ...] = ()
    """Text mode: the tokenizer's end-of-sequence ids, the only way generation can stop early."""

    @classmethod
    def of(cls, tokenizer: TraceTokenizer, mode: str = "auto") -> TraceVocab:
        """The vocabulary of `tokenizer`: `auto` picks id mode when it has every trace token."""
        if mode not in ("auto", *VocabMode):
            raise ValueError(f"trace vocabulary mode must be auto, ids or text, got {mode!r}")
        known = all(tokenizer.has_token(token.text) for token in Special)
        if mode == VocabMode.IDS and not known:
            missing = [token.text for token in Special if not tokenizer.has_token(token.text)]
            raise ValueError(f"the tokenizer lacks CWM's trace tokens {', '.join(missing)}; "
                             "use the text vocabulary")
        if mode == VocabMode.IDS or (mode == "auto" and known):
            ids = {token: tokenizer.token_id(token.text) for token in Special}
            return cls(tokenizer, VocabMode.IDS, ids)
        return cls(tokenizer, VocabMode.TEXT, {}, _eos_ids(tokenizer))

    @property
    def stop_token_ids(self) -> tuple[int, ...]:
        """The ids that end a trace: `<|end_of_text|>` in id mode, the tokenizer's EOS in text mode."""
        if self.mode is VocabMode.IDS:
            return (self.special_ids[Special.END_OF_TEXT],)
        return self.eos_ids

    def encode(self, pieces: Sequence[Piece]) -> list[int]:
        """Token ids of a prompt: special tokens by id, or the whole text encoded in text mode."""
        if self.mode is VocabMode.IDS:
            return pieces_to_ids(pieces, self.tokenizer.encode, self.special_ids)
        return self.tokenizer.encode(pieces_to_text(pieces))

    def parse(self, completion_ids: Sequence[int]) -> ParsedTrace:
        """The trace a completion writes."""
        if self.mode is VocabMode.IDS:
            return parse_trace_ids(completion_ids, self.tokenizer.decode, self.special_ids)
        return parse_trace(self.text(completion_ids))

    def text(self, completion_ids: Sequence[int]) -> str:
        """A completion as trace text; text mode drops the control token that stopped it.

        That token (e.g. ChatML's `<|im_end|>`) would otherwise read as an unfinished frame,
        unless it is a trace token itself (Llama 3's `<|end_of_text|>` ends the trace).
        """
        ids = list(completion_ids)
        if self.mode is VocabMode.IDS:
            return pieces_to_text(ids_to_pieces(ids, self.tokenizer.decode, self.special_ids))
        text = self.tokenizer.decode(ids)
        if ids and ids[-1] in getattr(self.tokenizer, "special_ids", ()):
            last = self.tokenizer.decode(ids[-1:])
            if last not in _TRACE_TOKEN_TEXTS:
                text = text.removesuffix(last)
        return text


_TRACE_TOKEN_TEXTS = frozenset(token.text for token in Special)


def _eos_ids(tokenizer: TraceTokenizer) -> tuple[int, ...]:
    eos = getattr(tokenizer, "special_tokens", {}).get("eos_token")
    return (tokenizer.token_id(eos),) if eos and tokenizer.has_token(eos) else ()
