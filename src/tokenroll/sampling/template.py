"""The dual-tokenization bridge over a chat template that only a server can render.

The server renders three conversations through `tokenize`: a probe user (`U`), the probe
user and a probe assistant without the generation prompt (`B`), and the probe plus the
new messages with it (`A`). `U` and `B` do not depend on the new messages and are cached
per tool list. The probe assistant's turn in `A` starts at `len(U)` and ends at the first
occurrence of the stop token the previous completion ended with; everything after that
token is what the template writes after a closed assistant turn: the gap after the stop
token (Qwen's newline) and the new messages. When the stop token is also the next role
marker (GLM's `<|observation|>`), the same rule keeps it once, as the completion's token.

The located turn must look like the probe assistant's turn in `B`: the same first and last
tokens and no more tokens (templates such as Qwen3 drop an empty think block from
assistants before the last user message). Anything else is refused, never guessed.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tokenroll.core.messages import Message
from tokenroll.sampling.stats import FallbackReason

Tokenize = Callable[..., Awaitable[list[int]]]
"""`tokenize(messages, tools, add_generation_prompt, chat_template_kwargs)`, as engines offer it."""

# The same probe as `Renderer.bridge`; a user first, since many templates require one.
PROBE = (Message(role="user", content="."), Message(role="assistant", content="."))


@dataclass(slots=True)
class TemplateBridge:
    """A bridged prompt, or the reason there is none."""

    prompt_ids: list[int] | None
    refusal: FallbackReason | None = None


class ServerTemplate:
    """Renders and bridges prompts with a server's `tokenize` (the model's own chat template)."""

    def __init__(
        self,
        tokenize: Tokenize,
        stop_token_ids: Sequence[int],
        chat_template_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        self._tokenize = tokenize
        self.stop_token_ids = frozenset(stop_token_ids)
        self.chat_template_kwargs = dict(chat_template_kwargs or {})
        self._probes: dict[str, tuple[list[int], list[int]]] = {}

    async def render(self, messages: Sequence[Message], tools: Sequence[Mapping[str, Any]] | None) -> list[int]:
        """The full prompt, with the generation prompt."""
        return await self._call(messages, tools, True)

    async def bridge(
        self,
        prev_prompt_ids: Sequence[int],
        prev_completion_ids: Sequence[int],
        new_messages: Sequence[Message],
        tools: Sequence[Mapping[str, Any]] | None,
    ) -> TemplateBridge:
        """The previous prompt and completion verbatim, then what the template writes for `new_messages`."""
        if not prev_completion_ids or prev_completion_ids[-1] not in self.stop_token_ids:
            return TemplateBridge(None, FallbackReason.NO_STOP_TOKEN)
        stop = prev_completion_ids[-1]
        user_only, probe = await self._probe(tools)
        extended = await self._call([*PROBE, *new_messages], tools, True)
        start = len(user_only)
        turn = probe[start:]
        if stop in turn:
            turn = turn[: turn.index(stop)]
        if extended[:start] != user_only or not turn:
            return TemplateBridge(None, FallbackReason.TEMPLATE_MISMATCH)
        try:
            end = extended.index(stop, start)
        except ValueError:
            return TemplateBridge(None, FallbackReason.TEMPLATE_MISMATCH)
        located = extended[start:end]
        if not located or len(located) > len(turn) or located[0] != turn[0] or located[-1] != turn[-1]:
            return TemplateBridge(None, FallbackReason.TEMPLATE_MISMATCH)
        return TemplateBridge([*prev_prompt_ids, *prev_completion_ids, *extended[end + 1 :]])

    async def _probe(self, tools: Sequence[Mapping[str, Any]] | None) -> tuple[list[int], list[int]]:
        """The probe user alone and the probe user plus assistant, both without the generation prompt."""
        key = json.dumps(tools, sort_keys=True, default=str)
        cached = self._probes.get(key)
        if cached is None:
            cached = (await self._call(PROBE[:1], tools, False), await self._call(PROBE, tools, False))
            self._probes[key] = cached
        return cached

    async def _call(self, messages: Sequence[Message], tools: Sequence[Mapping[str, Any]] | None, generation: bool) -> list[int]:
        return list(await self._tokenize(list(messages), tools, generation, self.chat_template_kwargs or None))
