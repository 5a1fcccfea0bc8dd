"""The tokenizer as renderers use it: plain-text encoding, added tokens, and the chat template.

Hugging Face renders a chat template to one string and tokenizes it, so any added token
string in the text becomes its id, even inside a user's message. Renderers instead encode
message bodies as plain text (an added token's string stays text) and match added tokens
only in template text, which is what `encode` and `encode_markup` do.
"""

from __future__ import annotations

import json
import re
import unicodedata
from bisect import bisect_left
from collections.abc import Collection, Mapping, Sequence
from itertools import accumulate
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
        spec: dict[str, Any] | None = None,
        text_tokens: Collection[str] = (),
    ) -> None:
        """`spec` is the parsed tokenizer.json when the caller has it (saves re-serializing).

        `text_tokens` are added tokens that are ordinary text (see `with_text_tokens`).
        """
        self.name_or_path = name_or_path
        self.chat_template = chat_template
        self.special_tokens: dict[str, str | None] = dict(special_tokens or {})
        self._backend = backend
        spec = json.loads(backend.to_str()) if spec is None else spec
        self.added_tokens: dict[str, int] = {t["content"]: t["id"] for t in spec.get("added_tokens", [])}
        self.special_ids: frozenset[int] = frozenset(
            t["id"] for t in spec.get("added_tokens", []) if t.get("special")
        )
        self.text_tokens: frozenset[str] = frozenset(text_tokens) & self.added_tokens.keys()
        # The markup-only tokens: these never come out of a message body.
        self.markup_tokens: dict[str, int] = {t: i for t, i in self.added_tokens.items() if t not in self.text_tokens}
        # Message bodies are encoded by the same model with only the text tokens added: tiktoken
        # when it is proven identical, else a `tokenizers` copy built on first use (parsing is slow).
        kept = [t for t in spec.get("added_tokens", []) if t["content"] in self.text_tokens]
        self._plain_spec: dict[str, Any] | None = {**spec, "added_tokens": kept}
        self._plain_backend: tokenizers.Tokenizer | None = None
        # Matches any added token's string, longest first (how Hugging Face splits them out).
        self.added_pattern = (
            re.compile("|".join(re.escape(t) for t in sorted(self.added_tokens, key=len, reverse=True)))
            if self.added_tokens
            else None
        )
        self._fast = (
            None
            if self.text_tokens
            else _FastByteLevelEncoder.build(spec, backend, set(self.added_tokens.values()), self.added_pattern)
        )
        self._ids_cache: dict[str, list[int]] = {}
        self._pieces_cache: dict[tuple[str, ...], tuple[list[int], list[int]]] = {}
        self._markup_cache: dict[str, list[str | int]] = {}

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
        text = tokenizer_file.read_text(encoding="utf-8")
        return cls(
            tokenizers.Tokenizer.from_str(text),
            spec=json.loads(text),
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

    def encode(self, text: str) -> list[int]:
        """Plain-text ids: added-token strings in `text` (other than `text_tokens`) are encoded as ordinary text."""
        ids = self._ids_cache.get(text)
        if ids is None:
            if len(self._ids_cache) >= _CACHE_LIMIT:
                self._ids_cache.clear()
            if self._fast is not None and self._fast.accepts(text):
                ids = self._fast.encode(text)
            else:
                ids = self._plain.encode(text, add_special_tokens=False).ids
            self._ids_cache[text] = ids
        return ids

    def encode_pieces(self, pieces: Sequence[str]) -> tuple[list[int], list[int]]:
        """Ids of the pieces' concatenation, and how many tokens start in each piece."""
        key = tuple(pieces)
        found = self._pieces_cache.get(key)
        if found is not None:
            return found
        if len(self._pieces_cache) >= _CACHE_LIMIT:
            self._pieces_cache.clear()
        text = "".join(pieces)
        if self._fast is not None and self._fast.accepts(text):
            ids = self._fast.encode(text)
            starts = self._fast.byte_starts(ids)
            ends = list(accumulate(len(piece.encode()) for piece in pieces))
        else:
            encoding = self._plain.encode(text, add_special_tokens=False)
            ids = encoding.ids
            starts = [start for start, _ in encoding.offsets]
            ends = list(accumulate(len(piece) for piece in pieces))
        counts = []
        first = 0
        for end in ends:
            last = bisect_left(starts, end, first)
            counts.append(last - first)
            first = last
        counts[-1] += len(ids) - first
        found = self._pieces_cache[key] = (ids, counts)
        return found

    def split_markup(self, text: str) -> list[str | int]:
        """Template text cut into plain-text pieces and added-token ids, as Hugging Face matches them."""
        found = self._markup_cache.get(text)
        if found is not None:
            return found
        if len(self._markup_cache) >= _CACHE_LIMIT:
            self._markup_cache.clear()
        found = self._markup_cache[text] = self._split_markup(text)
        return found

    def _split_markup(self, text: str) -> list[str | int]:
        if self.added_pattern is None:
            return [text] if text else []
        pieces: list[str | int] = []
        position = 0
        for match in self.added_pattern.finditer(text):
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

    @property
    def _plain(self) -> tokenizers.Tokenizer:
        if self._plain_backend is None:
            self._plain_backend = tokenizers.Tokenizer.from_str(json.dumps(self._plain_spec))
            self._plain_spec = None
        return self._plain_backend

    def clear_caches(self) -> None:
        """Forget encoded texts (for cold-start measurements)."""
        self._ids_cache.clear()
        self._pieces_cache.clear()
        self._markup_cache.clear()

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

    @property
    def uses_fast_encoder(self) -> bool:
        """Whether plain text is encoded with tiktoken (proven identical at load) rather than tokenizers."""
        return self._fast is not None


def _token_content(token: Any) -> str | None:
    """A special token as configured: a string, an AddedToken-like object or its dict form."""
    if token is None or isinstance(token, str):
        return token
    if isinstance(token, Mapping):
        return token.get("content")
    return getattr(token, "content", None) or str(token)


# Text the fast encoder must encode exactly as `tokenizers` does before it is used.
_SELF_CHECK = [
    "Hello, world! It's 2024-07-26; we'll see.\n\n  Indented\tline\r\nend   ",
    "Grüße aus Köln — 日本語のテキスト、中文 🚀🎉👍🏽 Привет ¡Hola! naïve café",
    '{"name": "add", "arguments": {"a": 12345, "b": -0.5e10}}\n<tools>\n</tools>',
    "def f(x):\n    return [i ** 2 for i in range(x)]  # comment\n\n\n",
    "   leading spaces and trailing   \n\n\n\t\t ",
    "ALLCAPS CamelCase mixedCASE 's 't 're 've 'm 'll 'd I'M YOU'RE",
]


class _FastByteLevelEncoder:
    """tiktoken over a byte-level BPE vocabulary whose merges follow its ids.

    Used only when the pre-tokenizer is one regex split plus byte-level mapping, the
    normalizer is none or NFC (applied only to text already in NFC), and the self-check
    texts encode identically to `tokenizers`.
    """

    def __init__(self, encoding, token_byte_lengths: list[int], nfc: bool) -> None:
        self._encoding = encoding
        self._lengths = token_byte_lengths
        self._nfc = nfc

    @classmethod
    def build(
        cls, spec: dict, reference: tokenizers.Tokenizer, added_ids: set[int], added_pattern: re.Pattern | None
    ) -> _FastByteLevelEncoder | None:
        """The fast encoder, or None when it cannot be proven to match `reference` on plain text."""
        try:
            import tiktoken
        except ImportError:
            return None
        model, normalizer, pre = spec.get("model") or {}, spec.get("normalizer"), spec.get("pre_tokenizer") or {}
        if model.get("type") != "BPE" or model.get("byte_fallback") or normalizer not in (None, {"type": "NFC"}):
            return None
        pattern = _byte_level_pattern(pre)
        vocab, merges = model.get("vocab") or {}, model.get("merges") or []
        if pattern is None or not vocab or not _merges_follow_ids(vocab, merges):
            return None
        to_bytes = {ord(char): byte for byte, char in _bytes_to_unicode().items()}
        ranks: dict[bytes, int] = {}
        for token, token_id in vocab.items():
            if token_id in added_ids:  # control tokens stored in the vocabulary are never merged into
                continue
            try:
                ranks[token.translate(to_bytes).encode("latin-1")] = token_id
            except UnicodeEncodeError:
                return None
        try:
            encoding = tiktoken.Encoding("tokenroll-plain", pat_str=pattern, mergeable_ranks=ranks, special_tokens={})
        except Exception:  # duplicate ranks, or a pattern tiktoken's regex engine does not take
            return None
        lengths = [0] * (max(vocab.values()) + 1)
        for token, token_id in ranks.items():
            lengths[token_id] = len(token)
        fast = cls(encoding, lengths, nfc=normalizer is not None)
        for text in _SELF_CHECK:
            if added_pattern is not None and added_pattern.search(text):
                continue  # the reference would match an added token here
            if fast.encode(text) != reference.encode(text, add_special_tokens=False).ids:
                return None
        return fast

    def accepts(self, text: str) -> bool:
        return not self._nfc or unicodedata.is_normalized("NFC", text)

    def encode(self, text: str) -> list[int]:
        return self._encoding.encode_ordinary(text)

    def byte_starts(self, ids: list[int]) -> list[int]:
        """Byte offset where each token starts."""
        return list(accumulate(map(self._lengths.__getitem__, ids[:-1]), initial=0)) if ids else []


def _byte_level_pattern(pre: dict) -> str | None:
    """The split regex of a `Split(regex) + ByteLevel(use_regex=false)` pre-tokenizer, else None."""
    if pre.get("type") != "Sequence" or len(pre.get("pretokenizers", [])) != 2:
        return None
    split, byte_level = pre["pretokenizers"]
    if (
        split.get("type") != "Split"
        or split.get("behavior") != "Isolated"
        or split.get("invert")
        or "Regex" not in (split.get("pattern") or {})
        or byte_level.get("type") != "ByteLevel"
        or byte_level.get("use_regex")
        or byte_level.get("add_prefix_space")
    ):
        return None
    return split["pattern"]["Regex"]


def _merges_follow_ids(vocab: dict[str, int], merges: list) -> bool:
    """tiktoken merges the pair whose result has the lowest id; BPE, the earliest merge.

    They agree when results' ids never decrease along the merge list (merges made from
    ids, as in tiktoken-born vocabularies, or ids given in merge order).
    """
    previous = -1
    for merge in merges:
        left, right = merge.split(" ", 1) if isinstance(merge, str) else merge
        result = vocab.get(left + right)
        if result is None or result < previous:
            return False
        previous = result
    return bool(merges)


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map from bytes to printable characters, used by byte-level vocabularies."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    mapping = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping
