"""SmolLM2 Instruct: plain ChatML with a default system prompt.

The template has no tool support: it ignores tool definitions and assistant tool calls, and
writes tool results as a `tool` turn. It is prefix-stable.

Bridge: tool results and one user message.
"""

from __future__ import annotations

from typing import Any

from tokenroll.core.attribution import SCAFFOLD
from tokenroll.core.messages import Message
from tokenroll.render.base import Tools
from tokenroll.render.chatml import ChatMLRenderer
from tokenroll.render.tape import TokenTape

DEFAULT_SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"


class SmolLM2Renderer(ChatMLRenderer):
    """SmolLM2 Instruct models (135M, 360M, 1.7B)."""

    family = "smollm2"

    def _render(
        self,
        tape: TokenTape,
        messages: list[Message],
        tools: Tools | None,
        add_generation_prompt: bool,
        options: dict[str, Any],
    ) -> None:
        if messages and messages[0].role != "system":
            tape.token("<|im_start|>")
            tape.markup(f"system\n{DEFAULT_SYSTEM}")
            tape.token("<|im_end|>")
            tape.markup("\n")
        for index, message in enumerate(messages):
            sampled = message.role == "assistant"
            tape.token("<|im_start|>", index)
            tape.markup(f"{message.role}\n", index)
            tape.text(message.text, index, sampled=sampled)
            tape.token("<|im_end|>", index, content=sampled, sampled=sampled)
            tape.markup("\n", SCAFFOLD)
        if add_generation_prompt:
            tape.token("<|im_start|>")
            tape.markup("assistant\n")

