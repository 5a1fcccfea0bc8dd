"""Qwen2.5 Instruct: ChatML with a default system prompt and Hermes `<tool_call>` JSON calls.

The template writes tool-call arguments with `tojson`, so they must be valid JSON. It is
prefix-stable: a bridged prompt equals a full re-render.

Bridge: tool results and one user message; None after a stop on `<|endoftext|>`.
"""

from __future__ import annotations

from typing import Any

from tokenroll.core.messages import Message
from tokenroll.render.base import Tools, arguments_object
from tokenroll.render.chatml import ChatMLRenderer, render_hermes_tools_system
from tokenroll.render.json_text import to_json
from tokenroll.render.tape import TokenTape

DEFAULT_SYSTEM = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."


class Qwen25Renderer(ChatMLRenderer):
    """Qwen2.5 Instruct models (and Qwen2.5-Coder Instruct, which shares the template)."""

    family = "qwen2.5"

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
            system = messages[0].text if has_system else DEFAULT_SYSTEM
            render_hermes_tools_system(tape, system, tools, separator="\n\n", from_message=has_system)
        else:
            owner = 0 if has_system else -1
            tape.token("<|im_start|>", owner)
            tape.markup("system\n", owner)
            tape.text(messages[0].text if has_system else DEFAULT_SYSTEM, owner, content=has_system)
            tape.token("<|im_end|>", owner)
            tape.markup("\n")

        for index, message in enumerate(messages):
            role = message.role
            if role == "user" or (role == "system" and index > 0) or (role == "assistant" and not message.tool_calls):
                sampled = role == "assistant"
                tape.token("<|im_start|>", index)
                tape.markup(f"{role}\n", index)
                tape.text(message.text, index, sampled=sampled)
                tape.token("<|im_end|>", index, content=sampled, sampled=sampled)
                tape.markup("\n")
            elif role == "assistant":
                tape.token("<|im_start|>", index)
                tape.markup("assistant", index)
                # The generation prompt ends in "\n", so the model samples from there on.
                tape.markup("\n", index)
                body = message.text
                for call_index, call in enumerate(message.tool_calls):
                    arguments = to_json(arguments_object(call, index, call_index))
                    if call_index > 0 or message.text:
                        body += "\n"
                    tape.text(body, index, sampled=True)
                    tape.markup("<tool_call>", index, content=True, sampled=True)
                    body = '\n{"name": "' + call.name + '", "arguments": ' + arguments + "}\n"
                    tape.text(body, index, sampled=True)
                    tape.markup("</tool_call>", index, content=True, sampled=True)
                    body = ""
                tape.token("<|im_end|>", index, content=True, sampled=True)
                tape.markup("\n")
            elif role == "tool":
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

