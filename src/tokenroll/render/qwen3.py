"""Qwen3 (hybrid thinking): ChatML turns, `<think>` reasoning, Hermes `<tool_call>` JSON calls.

The template keeps reasoning only on assistant turns after the last real user query, so a
new user message rewrites earlier turns: a full re-render then differs from the bridged
prompt (the bridge keeps what the model saw). `enable_thinking=False` puts an empty
`<think>` block in the generation prompt.

Bridge: tool results and one user message; None after a stop on `<|endoftext|>`.
"""

from __future__ import annotations

import json
from typing import Any

from tokenroll.core.messages import Message
from tokenroll.render.base import Tools, split_reasoning
from tokenroll.render.chatml import ChatMLRenderer, render_hermes_tools_system
from tokenroll.render.json_text import to_json
from tokenroll.render.tape import TokenTape


class Qwen3Renderer(ChatMLRenderer):
    """Qwen3 hybrid-thinking models (Qwen3-0.6B ... Qwen3-235B-A22B)."""

    family = "qwen3"
    reasoning = True

    def _render(
        self,
        tape: TokenTape,
        messages: list[Message],
        tools: Tools | None,
        add_generation_prompt: bool,
        options: dict[str, Any],
    ) -> None:
        has_system = bool(messages) and messages[0].role == "system"
        if tools:
            render_hermes_tools_system(
                tape, messages[0].text if has_system else None, tools, separator="\n\n", from_message=has_system
            )
        elif has_system:
            tape.token("<|im_start|>", 0)
            tape.markup("system\n", 0)
            tape.text(messages[0].text, 0)
            tape.token("<|im_end|>", 0)
            tape.markup("\n")

        last_query = _last_query_index(messages)
        for index, message in enumerate(messages):
            if message.role == "user" or (message.role == "system" and index > 0):
                tape.token("<|im_start|>", index)
                tape.markup(f"{message.role}\n", index)
                tape.text(message.text, index)
                tape.token("<|im_end|>", index)
                tape.markup("\n")
            elif message.role == "assistant":
                self._render_assistant(tape, message, index, is_last=index == len(messages) - 1, after_query=index > last_query)
            elif message.role == "tool":
                first_of_group = index == 0 or messages[index - 1].role != "tool"
                last_of_group = index == len(messages) - 1 or messages[index + 1].role != "tool"
                if first_of_group:
                    tape.token("<|im_start|>", index)
                    tape.markup("user", index)
                tape.markup("\n", index)
                tape.markup("<tool_response>", index)
                tape.markup("\n", index)
                tape.text(message.text, index)
                tape.markup("\n", index)
                tape.markup("</tool_response>", index)
                if last_of_group:
                    tape.token("<|im_end|>", index)
                    tape.markup("\n")

        if add_generation_prompt:
            tape.token("<|im_start|>")
            tape.markup("assistant\n")
            if options.get("enable_thinking") is False:
                tape.markup("<think>\n\n</think>\n\n")

    def _render_assistant(self, tape: TokenTape, message: Message, index: int, *, is_last: bool, after_query: bool) -> None:
        content, reasoning = split_reasoning(message)

        def body(text: str) -> None:
            tape.text(text, index, sampled=True)

        def marker(token: str) -> None:  # template text that is a single added token
            tape.markup(token, index, content=True, sampled=True)

        tape.token("<|im_start|>", index)
        tape.markup("assistant\n", index)
        if after_query and (is_last or reasoning):
            marker("<think>")
            body("\n" + reasoning.strip("\n") + "\n")
            marker("</think>")
            body("\n\n" + content.lstrip("\n"))
        else:
            body(content)
        for call_index, call in enumerate(message.tool_calls or []):
            if call_index > 0 or content:
                body("\n")
            marker("<tool_call>")
            body('\n{"name": "' + call.name + '", "arguments": ' + _arguments_text(call.arguments) + "}\n")
            marker("</tool_call>")
        marker("<|im_end|>")
        tape.markup("\n")



def _last_query_index(messages: list[Message]) -> int:
    """Index of the last user message that is not a wrapped tool response (the template's rule)."""
    for index in range(len(messages) - 1, -1, -1):
        message = messages[index]
        if message.role == "user":
            text = message.text
            if not (text.startswith("<tool_response>") and text.endswith("</tool_response>")):
                return index
    return len(messages) - 1


def _arguments_text(arguments: str) -> str:
    """The template writes string arguments verbatim; ours are JSON text, written as an object would be."""
    try:
        return to_json(json.loads(arguments))
    except json.JSONDecodeError:
        return arguments

