"""Gemma 3 IT: `<start_of_turn>user`/`model` turns closed by `<end_of_turn>`, after `<bos>`.

The template folds the system message (not trimmed) and a blank line into the first user
turn, trims every other body (`| trim`, Python's `str.strip`), and requires the roles
after the system message to alternate user/model, starting with a user. A non-user role
other than `assistant` is written under its own name (`tool`, or a later `system`, on a
model position). It has no tool support: tool definitions and assistant tool calls are
ignored. A None body renders empty (Hugging Face drops None-valued keys first). A system
message alone renders nothing but `<bos>`; a list body writes its text parts trimmed one
by one and `<start_of_image>` for each image part.

Gemma's vocabulary has non-special added tokens that are ordinary text (newline and tab
runs, HTML tags, `<unusedN>`): Hugging Face matches them in any text, so bodies are
encoded with them too; only the special tokens (`<start_of_turn>`, ...) stay text.

It is prefix-stable: a bridged prompt equals a full re-render (given the completion's body
is what the template's trim keeps). Bridge: one user message; None for tool messages (a
tool turn after a model turn breaks the alternation the template enforces) and after a
stop on `<eos>`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tokenroll.core.attribution import SCAFFOLD
from tokenroll.core.messages import Message
from tokenroll.render.base import Renderer, RenderError, Tools
from tokenroll.render.parsing import ParsedCompletion
from tokenroll.render.tape import TokenTape
from tokenroll.render.tokenizer import Tokenizer


class Gemma3Renderer(Renderer):
    """Gemma 3 instruction-tuned models (1B ... 27B IT)."""

    family = "gemma-3"
    stop_tokens = ("<end_of_turn>", "<eos>")
    tools_after_header = False  # tool definitions only appear in the header
    bridge_roles = frozenset({"user"})

    def __init__(self, tokenizer: Tokenizer, **template_kwargs: Any) -> None:
        text_tokens = [t for t, i in tokenizer.added_tokens.items() if i not in tokenizer.special_ids]
        super().__init__(tokenizer.with_text_tokens(text_tokens), **template_kwargs)


    def _render(
        self,
        tape: TokenTape,
        messages: list[Message],
        tools: Tools | None,
        add_generation_prompt: bool,
        options: dict[str, Any],
    ) -> None:
        if not messages:
            raise RenderError("the Gemma 3 template needs at least one message")
        tape.token("<bos>")
        start = 1 if messages[0].role == "system" else 0
        for position, index in enumerate(range(start, len(messages))):
            message = messages[index]
            if (message.role == "user") != (position % 2 == 0):
                raise RenderError(
                    f"message {index}: the Gemma 3 template requires roles to alternate "
                    f"user/assistant after the optional system message, got {message.role!r}"
                )
            sampled = message.role == "assistant"
            # Template newlines are written as text, not markup: they are added tokens that
            # Hugging Face matches longest-first across the body's edge ("\n" + "\n\n").
            tape.token("<start_of_turn>", index)
            tape.text(("model" if sampled else message.role) + "\n", index, content=False)
            if position == 0 and start == 1:
                tape.text(_system_text(messages[0]), 0)
                tape.text("\n\n", 0, content=False)
            self._render_body(tape, message, index, sampled)
            tape.token("<end_of_turn>", index, content=sampled, sampled=sampled)
            tape.text("\n", SCAFFOLD, content=False)
        if add_generation_prompt:
            tape.token("<start_of_turn>")
            tape.text("model\n", SCAFFOLD, content=False)

    @staticmethod
    def _render_body(tape: TokenTape, message: Message, index: int, sampled: bool) -> None:
        content = message.content
        if isinstance(content, str):
            tape.text(content.strip(), index, sampled=sampled)
        elif isinstance(content, list):
            for part in content:
                if part.get("type") == "image":
                    tape.token("<start_of_image>", index, content=True, sampled=sampled)
                elif part.get("type") == "text":
                    # Jinja's `string` of a None text is "None"; a missing one is "".
                    tape.text(str(part.get("text", "")).strip(), index, sampled=sampled)
        # None: Hugging Face drops None-valued keys, and an undefined body renders as nothing.

    def parse_completion(
        self,
        completion_ids: Sequence[int],
        prompt_ids: Sequence[int] | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
    ) -> ParsedCompletion:
        ids = list(completion_ids)
        stop = ids.pop() if ids and ids[-1] in self.stop_token_ids else None
        return ParsedCompletion(content=self.tokenizer.decode(ids), stop_token_id=stop)


def _system_text(message: Message) -> str:
    """The system prefix as the template takes it: the string, or the first part's text, untrimmed."""
    content = message.content
    if isinstance(content, list):
        first = content[0] if content else {}
        if "text" not in first:
            raise RenderError("message 0: the Gemma 3 template takes the system prompt from its first part's text")
        return str(first["text"])
    return content or ""
