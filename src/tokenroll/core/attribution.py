"""Per-token attribution of a rendered prompt: which message and role each token came from."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

SCAFFOLD = -1
"""`message_indices` value of template scaffolding that belongs to no message."""


@dataclass(slots=True)
class RenderedTokens:
    """Rendered token ids with one attribution entry per token and one role per message.

    - `message_indices[t]`: index of the message token t belongs to, or `SCAFFOLD` (-1);
    - `sampled_mask[t]`: the model itself would emit token t (assistant body and its stop token);
    - `is_content[t]`: token t comes from a message body rather than template scaffolding;
    - `message_roles[m]`, `message_tool_names[m]`: role and tool name of message m.
    """

    token_ids: list[int]
    message_indices: list[int]
    sampled_mask: list[bool]
    is_content: list[bool]
    message_roles: list[str]
    message_tool_names: list[str | None] | None = None

    def __post_init__(self) -> None:
        lengths = {
            "token_ids": len(self.token_ids),
            "message_indices": len(self.message_indices),
            "sampled_mask": len(self.sampled_mask),
            "is_content": len(self.is_content),
        }
        if len(set(lengths.values())) != 1:
            listed = ", ".join(f"{name}={n}" for name, n in lengths.items())
            raise ValueError(f"RenderedTokens per-token lists differ in length: {listed}")
        if self.message_tool_names is None:
            self.message_tool_names = [None] * len(self.message_roles)
        elif len(self.message_tool_names) != len(self.message_roles):
            raise ValueError(
                f"RenderedTokens per-message lists differ in length: message_roles="
                f"{len(self.message_roles)}, message_tool_names={len(self.message_tool_names)}"
            )
        if self.message_indices:
            low, high = min(self.message_indices), max(self.message_indices)
            if low < SCAFFOLD or high >= len(self.message_roles):
                bad = low if low < SCAFFOLD else high
                raise ValueError(
                    f"RenderedTokens message index {bad} at token "
                    f"{self.message_indices.index(bad)} is out of range for "
                    f"{len(self.message_roles)} messages (scaffolding is {SCAFFOLD})"
                )

    def __len__(self) -> int:
        return len(self.token_ids)

    def content_mask_for_roles(self, roles: Collection[str]) -> list[bool]:
        """True on content tokens of messages whose role is in `roles` (e.g. `{"tool"}`)."""
        wanted = [role in roles for role in self.message_roles]
        return [
            content and index != SCAFFOLD and wanted[index]
            for index, content in zip(self.message_indices, self.is_content)
        ]

    def message_spans(self) -> list[tuple[int, int] | None]:
        """Per message, the (start, end) token range from its first to its last token, or None."""
        spans: list[tuple[int, int] | None] = [None] * len(self.message_roles)
        for position, index in enumerate(self.message_indices):
            if index == SCAFFOLD:
                continue
            span = spans[index]
            spans[index] = (position, position + 1) if span is None else (span[0], position + 1)
        return spans

    def slice(self, start: int, end: int) -> RenderedTokens:
        """Cut every per-token list to [start, end); the per-message lists stay whole."""
        return RenderedTokens._trusted(
            self.token_ids[start:end],
            self.message_indices[start:end],
            self.sampled_mask[start:end],
            self.is_content[start:end],
            list(self.message_roles),
            list(self.message_tool_names),
        )

    def concat(self, other: RenderedTokens, keep: int | None = None) -> RenderedTokens:
        """These tokens (the first `keep` of them) followed by `other`'s, whose messages come after these."""
        shift = len(self.message_roles)
        n = len(self.token_ids) if keep is None else keep

        def joined(mine: list, theirs: list) -> list:
            column = mine[:n]  # one copy, then an in-place extend
            column += theirs
            return column

        return RenderedTokens._trusted(
            joined(self.token_ids, other.token_ids),
            joined(self.message_indices, [i if i == SCAFFOLD else i + shift for i in other.message_indices]),
            joined(self.sampled_mask, other.sampled_mask),
            joined(self.is_content, other.is_content),
            self.message_roles + other.message_roles,
            self.message_tool_names + other.message_tool_names,
        )

    @classmethod
    def _trusted(cls, *columns: list) -> RenderedTokens:
        """Build from columns known to be valid (cut or joined from valid ones): skip the O(n) checks."""
        tokens = object.__new__(cls)
        (
            tokens.token_ids,
            tokens.message_indices,
            tokens.sampled_mask,
            tokens.is_content,
            tokens.message_roles,
            tokens.message_tool_names,
        ) = columns
        return tokens

    def with_message(
        self,
        token_ids: list[int],
        role: str,
        *,
        sampled: bool,
        is_content: bool,
        tool_name: str | None = None,
    ) -> RenderedTokens:
        """A copy with one more message whose tokens all share the given flags."""
        index = len(self.message_roles)
        n = len(token_ids)
        return RenderedTokens(
            token_ids=self.token_ids + token_ids,
            message_indices=self.message_indices + [index] * n,
            sampled_mask=self.sampled_mask + [sampled] * n,
            is_content=self.is_content + [is_content] * n,
            message_roles=self.message_roles + [role],
            message_tool_names=self.message_tool_names + [tool_name],
        )
