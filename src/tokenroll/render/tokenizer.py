"""The tokenizer as renderers use it: plain-text encoding, added tokens, and the chat template.

Hugging Face renders a chat template to one string and tokenizes it, so any added token
string in the text becomes its id, even inside a user's message. Renderers instead encode
message bodies as plain text (an added token's string stays text) and match added tokens
only in template text, which is what `encode` and `encode_markup` do.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import tokenizers

_CACHE_LIMIT = 1 << 16


class Tokenizer:
    """Tokenizer files loaded for rendering: a `tokenizers` backend plus the config's chat template."""

    def __init__(
        self,
        backend: tokenizers.Tokenizer,
        *,
        chat_template: str | None = None,
        special_tokens: Mapping[str, str | None] | None = None,
        name_or_path: str = "",
        text_tokens: Collection[str] = (),
    ) -> None:
        self.name_or_path = name_or_path
        self.chat_template = chat_template
        self.special_tokens: dict[str, str | None] = dict(special_tokens or {})
        self._backend = backend
        added = sorted(backend.get_added_tokens_decoder().items())
        self.added_tokens: dict[str, int] = {token.content: i for i, token in added}
        self.special_ids: frozenset[int] = frozenset(i for i, token in added if token.special)
        self.text_tokens: frozenset[str] = frozenset(text_tokens) & self.added_tokens.keys()
        # The markup-only tokens: these never come out of a message body.
        self.markup_tokens: dict[str, int] = {
            t: i for t, i in self.added_tokens.items() if t not in self.text_tokens
        }
        self._plain_backend: tokenizers.Tokenizer | None = None
        self._added_pattern = (
            re.compile("|".join(re.escape(t) for t in sorted(self.added_tokens, key=len, reverse=True)))
            if self.added_tokens
            else None
        )
        self._ids_cache: dict[str, list[int]] = {}
        self._offsets_cache: dict[str, tuple[list[int], list[tuple[int, int]]]] = {}

    @classmethod
    def from_pretrained(cls, path: str | Path) -> Tokenizer:
        """Load `tokenizer.json` and `tokenizer_config.json` (and `chat_template.jinja` if present) from a folder."""
        folder = Path(path)
        tokenizer_file = folder / "tokenizer.json"
        if not tokenizer_file.is_file():
            raise FileNotFoundError(f"{folder} has no tokenizer.json")
        config: dict[str, Any] = {}
        config_file = folder / "tokenizer_config.json"
        if config_file.is_file():
            config = json.loads(config_file.read_text(encoding="utf-8"))
        chat_template = config.get("chat_template")
        template_file = folder / "chat_template.jinja"
        if template_file.is_file():
            chat_template = template_file.read_text(encoding="utf-8")
        if isinstance(chat_template, list):  # the named-templates form: take the default one
            chat_template = next((t["template"] for t in chat_template if t.get("name") == "default"), None)
        return cls(
            tokenizers.Tokenizer.from_file(str(tokenizer_file)),
            chat_template=chat_template,
            special_tokens={
                name: _token_content(config.get(name))
                for name in ("bos_token", "eos_token", "pad_token", "unk_token")
            },
            name_or_path=str(folder),
        )

    def with_text_tokens(self, text_tokens: Collection[str]) -> Tokenizer:
        """A copy whose plain-text encoding still matches these added tokens.

        For vocabularies whose added tokens include ordinary text (Gemma's newline runs and
        HTML tags): Hugging Face matches them in any text, so bodies must too.
        """
        return Tokenizer(
            self._backend,
            chat_template=self.chat_template,
            special_tokens=self.special_tokens,
            name_or_path=self.name_or_path,
            text_tokens=text_tokens,
        )

    @classmethod
    def from_object(cls, tokenizer: Any) -> Tokenizer:
        """Wrap a `transformers` tokenizer or a `tokenizers.Tokenizer`."""
        if isinstance(tokenizer, Tokenizer):
            return tokenizer
        if isinstance(tokenizer, tokenizers.Tokenizer):
            return cls(tokenizer)
        backend = getattr(tokenizer, "backend_tokenizer", None)
        if not isinstance(backend, tokenizers.Tokenizer):
            raise TypeError(
                f"cannot use a {type(tokenizer).__name__} as a tokenizer: expected a fast "
                "transformers tokenizer, a tokenizers.Tokenizer or a folder with tokenizer.json"
            )
        return cls(
            backend,
            chat_template=getattr(tokenizer, "chat_template", None),
            special_tokens={
                name: _token_content(getattr(tokenizer, name, None))
                for name in ("bos_token", "eos_token", "pad_token", "unk_token")
            },
            name_or_path=str(getattr(tokenizer, "name_or_path", "")),
        )

    def _plain(self) -> tokenizers.Tokenizer:
        """The same model with only the text tokens added: message bodies are encoded with it.

        Built on first use: a copy that `with_text_tokens` replaces never pays for it.
        """
        if self._plain_backend is None:
            spec = json.loads(self._backend.to_str())
            spec["added_tokens"] = [t for t in spec.get("added_tokens", []) if t["content"] in self.text_tokens]
            self._plain_backend = tokenizers.Tokenizer.from_str(json.dumps(spec))
        return self._plain_backend

    def encode(self, text: str) -> list[int]:
        """Plain-text ids: added-token strings in `text` (other than `text_tokens`) are encoded as ordinary text."""
        ids = self._ids_cache.get(text)
        if ids is None:
            if len(self._ids_cache) >= _CACHE_LIMIT:
                self._ids_cache.clear()
            ids = self._ids_cache[text] = self._plain().encode(text, add_special_tokens=False).ids
        return ids

    def encode_with_offsets(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """Plain-text ids with the (start, end) character span of each token."""
        found = self._offsets_cache.get(text)
        if found is None:
            if len(self._offsets_cache) >= _CACHE_LIMIT:
                self._offsets_cache.clear()
            encoding = self._plain().encode(text, add_special_tokens=False)
            found = self._offsets_cache[text] = (encoding.ids, encoding.offsets)
        return found

    def split_markup(self, text: str) -> list[str | int]:
        """Template text cut into plain-text pieces and added-token ids, as Hugging Face matches them."""
        if self._added_pattern is None:
            return [text] if text else []
        pieces: list[str | int] = []
        position = 0
        for match in self._added_pattern.finditer(text):
            if match.start() > position:
                pieces.append(text[position : match.start()])
            pieces.append(self.added_tokens[match.group()])
            position = match.end()
        if position < len(text):
            pieces.append(text[position:])
        return pieces

    def encode_markup(self, text: str) -> list[int]:
        """Ids of template text, with added tokens matched (Hugging Face's encoding of a rendered string)."""
        ids: list[int] = []
        for piece in self.split_markup(text):
            if isinstance(piece, int):
                ids.append(piece)
            else:
                ids += self.encode(piece)
        return ids

    def token_id(self, token: str) -> int:
        """The id of one token string; ValueError when the vocabulary lacks it."""
        found = self.added_tokens.get(token)
        if found is None:
            found = self._backend.token_to_id(token)
        if found is None:
            raise ValueError(f"tokenizer {self.name_or_path or ''} has no token {token!r}".replace("  ", " "))
        return found

    def has_token(self, token: str) -> bool:
        return token in self.added_tokens or self._backend.token_to_id(token) is not None

    def decode(self, ids: list[int], skip_special_tokens: bool = False) -> str:
        return self._backend.decode(ids, skip_special_tokens=skip_special_tokens)

    def id_to_token(self, token_id: int) -> str | None:
        return self._backend.id_to_token(token_id)

    @property
    def vocab_size(self) -> int:
        return self._backend.get_vocab_size(with_added_tokens=True)


def _token_content(token: Any) -> str | None:
    """A special token as configured: a string, an AddedToken-like object or its dict form."""
    if token is None or isinstance(token, str):
        return token
    if isinstance(token, Mapping):
        return token.get("content")
    return getattr(token, "content", None) or str(token)
