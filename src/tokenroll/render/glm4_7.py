"""GLM-4.7 (GLM-4.7-Flash): GLM turns without newlines, and a generation prompt that opens `<think>`.

Each turn is `<|role|>` and its body; assistant turns start `<think>reasoning</think>` when
the reasoning is kept (after the last user message, or everywhere with `clear_thinking=False`)
and `</think>` otherwise, then the content, then `<tool_call>name<arg_key>k</arg_key>
<arg_value>v</arg_value>...</tool_call>` per call. Tool results are
`<tool_response>...</tool_response>`, one `<|observation|>` per group. The generation prompt
is `<|assistant|><think>`, or `<|assistant|></think>` with `enable_thinking=False`.
Arguments must be a JSON object.

With thinking on, the prompt opens `<think>` and the model samples `reasoning</think>...`:
a full re-render keeps that only while the reasoning is kept and non-empty, so a bridge is
equal to a re-render after a turn with reasoning followed by tool results (or by a user
message with `clear_thinking=False`), and differs otherwise (the bridge keeps what the
model saw). With thinking off the template is prefix-stable.

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


class GLM47Renderer(GLMRenderer):
    """GLM-4.7 and GLM-4.7-Flash models."""

    family = "glm-4.7"
    newline = ""

    def _generation_prompt(self, options: dict[str, Any]) -> str:
        return "</think>" if thinking_disabled(options) else "<think>"

    def _render_think(self, tape: TokenTape, index: int, reasoning: str | None, options: dict[str, Any]) -> None:
        # The part of the block the generation prompt wrote is header, the rest was sampled.
        thinking = not thinking_disabled(options)
        if reasoning is not None:
            tape.markup("<think>", index, content=not thinking, sampled=not thinking)
            tape.text(reasoning, index, sampled=True)
            tape.markup("</think>", index, content=True, sampled=True)
        else:
            tape.markup("</think>", index, content=thinking, sampled=thinking)

    def _keeps_all_reasoning(self, options: dict[str, Any]) -> bool:
        return "clear_thinking" in options and not options["clear_thinking"]

    def _arguments(self, call: ToolCall, message_index: int, call_index: int) -> dict[str, Any]:
        arguments = arguments_object(call, message_index, call_index)
        if not isinstance(arguments, dict):
            raise RenderError(
                f"message {message_index}: tool call {call_index} ({call.name}) arguments are a "
                f"{type(arguments).__name__}; the {self.family} template needs a JSON object"
            )
        return arguments
