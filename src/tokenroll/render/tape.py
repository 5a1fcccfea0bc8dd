"""A token tape: renderers append template pieces with their attribution, then encode once.

Consecutive text pieces are encoded together, as one string, so BPE merges across piece
boundaries come out exactly as when the whole rendered string is tokenized; each token is
then attributed to the piece its first byte came from.
"""

from __future__ import annotations

from tokenroll.core.attribution import SCAFFOLD, RenderedTokens
from tokenroll.render.tokenizer import Tokenizer

# A piece is (value, message, content, sampled): value is text, or one token id.
# Plain tuples: renderers append thousands per long conversation.
_Piece = tuple[str | int, int, bool, bool]


class TokenTape:
    """Collects rendered pieces for `message_roles`/`tool_names` and turns them into RenderedTokens."""

    def __init__(self, tokenizer: Tokenizer, message_roles: list[str], tool_names: list[str | None]):
        self.tokenizer = tokenizer
        self.message_roles = message_roles
        self.tool_names = tool_names
        self._pieces: list[_Piece] = []

    def token(self, token: str | int, message: int = SCAFFOLD, *, content: bool = False, sampled: bool = False) -> None:
        """One token, by id or by its string."""
        token_id = token if isinstance(token, int) else self.tokenizer.token_id(token)
        self._pieces.append((token_id, message, content, sampled))

    def markup(self, text: str, message: int = SCAFFOLD, *, content: bool = False, sampled: bool = False) -> None:
        """Template text: added-token strings in it become their ids."""
        self._pieces += [(piece, message, content, sampled) for piece in self.tokenizer.split_markup(text)]

    def text(self, text: str, message: int, *, content: bool = True, sampled: bool = False) -> None:
        """Message text, encoded as plain text whatever it looks like."""
        if text:
            self._pieces.append((text, message, content, sampled))

    def finish(self) -> RenderedTokens:
        ids: list[int] = []
        indices: list[int] = []
        sampled: list[bool] = []
        content: list[bool] = []
        tokenizer = self.tokenizer
        pieces = self._pieces
        n_pieces = len(pieces)
        i = 0
        while i < n_pieces:
            value, message, is_content, is_sampled = pieces[i]
            if value.__class__ is int:
                ids.append(value)
                indices.append(message)
                sampled.append(is_sampled)
                content.append(is_content)
                i += 1
                continue
            end = i + 1
            while end < n_pieces and pieces[end][0].__class__ is str:
                end += 1
            if end == i + 1:  # one text piece: no attribution to split
                run_ids = tokenizer.encode(value)
                n = len(run_ids)
                ids += run_ids
                indices += [message] * n
                sampled += [is_sampled] * n
                content += [is_content] * n
            else:
                run = pieces[i:end]
                run_ids, counts = tokenizer.encode_pieces([piece[0] for piece in run])
                ids += run_ids
                for (_, message, is_content, is_sampled), n in zip(run, counts):
                    indices += [message] * n
                    sampled += [is_sampled] * n
                    content += [is_content] * n
            i = end
        return RenderedTokens(
            token_ids=ids,
            message_indices=indices,
            sampled_mask=sampled,
            is_content=content,
            message_roles=self.message_roles,
            message_tool_names=self.tool_names,
        )
