"""GLM-4.6 (and GLM-4.5, which shares the template): newline-separated GLM turns.

Each turn is `<|role|>\\n` and its body; assistant turns start `\\n<think>reasoning</think>`,
with the reasoning only after the last user message (`\\n<think></think>` elsewhere), then
`\\n` and the content, then `\\n<tool_call>name\\n<arg_key>k</arg_key>\\n<arg_value>v</arg_value>\\n
...</tool_call>` per call. Tool results are `\\n<tool_response>\\n...\\n</tool_response>`, one
`<|observation|>` per group. `enable_thinking=False` appends `/nothink` to every user message
(unless it already ends with it) and `\\n<think></think>` to the generation prompt. Arguments
must be a JSON object; empty or falsy arguments render as no arguments.

Prefix-stable except that reasoning of turns before a new user message is dropped: a bridge
after a turn with reasoning and a user message differs from a full re-render (the bridge
keeps what the model saw). Content and reasoning are written stripped, so a completion with
surrounding whitespace also re-renders differently.

Bridge: tool results and user messages. None when the completion ended on `<|endoftext|>`,
or on `<|user|>` while the new messages start with a tool result, or on `<|observation|>`
while they start with a user message (the sampled marker would open the wrong message).
"""

from __future__ import annotations

from typing import Any

from tokenroll.core.messages import ToolCall
from tokenroll.render.base import RenderError, arguments_object
from tokenroll.render.glm import GLMRenderer, thinking_disabled
from tokenroll.render.tape import TokenTape


class GLM46Renderer(GLMRenderer):
    """GLM-4.6 and GLM-4.5 (Air) models."""

    family = "glm-4.6"
    newline = "\n"

    def _generation_prompt(self, options: dict[str, Any]) -> str:
        return "\n<think></think>" if thinking_disabled(options) else ""

    def _render_think(self, tape: TokenTape, index: int, reasoning: str | None, options: dict[str, Any]) -> None:
        if reasoning:
            tape.markup("\n<think>", index, content=True, sampled=True)
            tape.text(reasoning, index, sampled=True)
            tape.markup("</think>", index, content=True, sampled=True)
        else:
            # With thinking off the generation prompt wrote the empty block, so it is header, not sampled.
            sampled = not thinking_disabled(options)
            tape.markup("\n<think></think>", index, content=sampled, sampled=sampled)

    def _user_suffix(self, text: str, options: dict[str, Any]) -> str:
        return "/nothink" if thinking_disabled(options) and not text.endswith("/nothink") else ""

    def _arguments(self, call: ToolCall, message_index: int, call_index: int) -> dict[str, Any]:
        # The template takes `arguments or {}` and refuses anything else that is not a mapping.
        arguments = arguments_object(call, message_index, call_index) if call.arguments else {}
        if not arguments:
            return {}
        if not isinstance(arguments, dict):
            raise RenderError(
                f"message {message_index}: tool call {call_index} ({call.name}) arguments are a "
                f"{type(arguments).__name__}; the {self.family} template needs a JSON object"
            )
        return arguments
