"""Token texts as the tape shows them: whitespace made visible, special tokens recognised."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

_VISIBLE = {" ": "·", "\n": "↵", "\t": "→", "\r": "␍", "\x7f": "␡"}
_VISIBLE.update({chr(code): chr(0x2400 + code) for code in range(0x20) if chr(code) not in _VISIBLE})
_TRANSLATION = str.maketrans(_VISIBLE)

# Added tokens of the supported families: <|im_start|>, <｜begin▁of▁sentence｜>, <think>, </s>, [INST].
_SPECIAL = re.compile(r"<\|\S*\|>|<｜\S*｜>|</?[A-Za-z][\w.:-]*>|\[/?[A-Z][A-Z_]*\]")

EMPTY = "∅"
"""Shown for a token whose text is empty."""


def visible_text(text: str) -> str:
    """The text with spaces, newlines, tabs and other control characters drawn as visible symbols."""
    return text.translate(_TRANSLATION) if text else EMPTY


def is_special(text: str) -> bool:
    """Whether a token's text looks like a special (added) token such as `<|im_end|>` or `[INST]`."""
    return _SPECIAL.fullmatch(text) is not None


def missing_text(token_id: int) -> str:
    """What the tape shows for a token whose text the run did not record (no `vocab.json`)."""
    return f"#{token_id}"


def token_label(vocab: Mapping[int, str] | None, token_id: int) -> tuple[str, bool]:
    """The visible text of a token and whether it is special."""
    if vocab is None or token_id not in vocab:
        return missing_text(token_id), False
    text = vocab[token_id]
    return visible_text(text), is_special(text)


def vocab_payload(vocab: Mapping[int, str] | None, token_ids: Iterable[int]) -> dict[str, Any]:
    """The token table the page uses: visible texts, and which ids are special or end a line."""
    if vocab is None:
        return {"text": {}, "special": [], "newline": []}
    wanted = sorted(set(token_ids) & vocab.keys())
    return {
        "text": {str(i): visible_text(vocab[i]) for i in wanted},
        "special": [i for i in wanted if is_special(vocab[i])],
        "newline": [i for i in wanted if vocab[i].endswith("\n")],
    }
