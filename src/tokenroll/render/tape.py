"""A token tape: renderers append template pieces with their attribution, then encode once.

Consecutive text pieces are encoded together, as one string, so BPE merges across piece
boundaries come out exactly as when the whole rendered string is tokenized; each token is
then attributed to the piece its first byte came from.
"""

from __future__ import annotations

from dataclasses import dataclass

from tokenroll.core.attribution import SCAFFOLD, RenderedTokens
from tokenroll.render.tokenizer import Tokenizer


@dataclass(slots=True)
class _Piece:
    value: str | int  # text, or one token id
    message: int
    content: bool
    sampled: bool


class TokenTape:
    """Collects rendered pieces for `messages_roles`/`tool_names` and turns them into RenderedTokens."""

    def __init__(self, tokenizer: Tokenizer, message_roles: list[str], tool_names: list[str | None]):
        self.tokenizer = tokenizer
        self.message_roles = message_roles
        self.tool_names = tool_names
        self._pieces: list[_Piece] = []

    def token(self, token: str | int, message: int = SCAFFOLD, *, content: bool = False, sampled: bool = False) -> None:
        """One token, by id or by its string."""
        token_id = token if isinstance(token, int) else self.tokenizer.token_id(token)
        self._pieces.append(_Piece(token_id, message, content, sampled))

    def markup(self, text: str, message: int = SCAFFOLD, *, content: bool = False, sampled: bool = False) -> None:
        """Template text: added-token strings in it become their ids."""
        for piece in self.tokenizer.split_markup(text):
            self._pieces.append(_Piece(piece, message, content, sampled))

    def text(self, text: str, message: int, *, content: bool = True, sampled: bool = False) -> None:
        """Message text, encoded as plain text whatever it looks like."""
        if text:
            self._pieces.append(_Piece(text, message, content, sampled))

    def finish(self) -> RenderedTokens:
        ids: list[int] = []
        indices: list[int] = []
        sampled: list[bool] = []
        content: list[bool] = []
        run: list[_Piece] = []

        def flush() -> None:
            if not run:
                return
            if len(run) == 1:
                piece = run[0]
                run_ids = self.tokenizer.encode(piece.value)
                n = len(run_ids)
                ids.extend(run_ids)
                indices.extend([piece.message] * n)
                sampled.extend([piece.sampled] * n)
                content.extend([piece.content] * n)
            else:
                run_ids, counts = self.tokenizer.encode_pieces([piece.value for piece in run])
                ids.extend(run_ids)
                for piece, n in zip(run, counts):
                    indices.extend([piece.message] * n)
                    sampled.extend([piece.sampled] * n)
                    content.extend([piece.content] * n)
            run.clear()

        for piece in self._pieces:
            if isinstance(piece.value, int):
                flush()
                ids.append(piece.value)
                indices.append(piece.message)
                sampled.append(piece.sampled)
                content.append(piece.content)
            else:
                run.append(piece)
        flush()
        return RenderedTokens(
            token_ids=ids,
            message_indices=indices,
            sampled_mask=sampled,
            is_content=content,
            message_roles=self.message_roles,
            message_tool_names=self.tool_names,
        )
