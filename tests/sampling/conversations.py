"""Conversations and sampled completions for sampling tests, taken from real renders."""

from __future__ import annotations

import functools

from tests.assets import tokenizer_dir
from tests.render.harness import ADD_TOOL
from tokenroll.core.messages import Message, ToolCall
from tokenroll.render import Renderer, load_renderer

TOOLS = [ADD_TOOL]  # the harness's `add` tool alone

QWEN_IM_START, QWEN_IM_END, QWEN_USER, QWEN_ASSISTANT, NEWLINE = 151644, 151645, 872, 77091, 198


@functools.cache
def renderer(assets: str, family: str | None = None) -> Renderer:
    """The renderer of a shared-assets tokenizer: its detected family, or `family` (e.g. "generic")."""
    return load_renderer(tokenizer_dir(assets), family=family)


def user(text: str) -> Message:
    return Message(role="user", content=text)


def tool(text: str, name: str = "add") -> Message:
    return Message(role="tool", content=text, name=name)


def call(a: int, b: int) -> Message:
    return Message(role="assistant", content=None, tool_calls=[ToolCall(name="add", arguments=f'{{"a": {a}, "b": {b}}}')])


def say(text: str, reasoning: str | None = None) -> Message:
    return Message(role="assistant", content=text, reasoning_content=reasoning)


def sampled(r: Renderer, messages: list[Message], index: int, tools=TOOLS, **kwargs) -> list[int]:
    """The tokens the model samples for assistant message `index` (through its stop token)."""
    full = r.render(messages, tools, **kwargs)
    return [t for t, m, s in zip(full.token_ids, full.message_indices, full.sampled_mask) if m == index and s]


# A three-turn tool loop: two tool calls, then a user follow-up and a plain answer.
TOOL_LOOP = [
    user("What is 1+2, then plus 4?"),
    call(1, 2),
    tool("3"),
    call(3, 4),
    tool("7"),
    user("Thanks. Now say done."),
    say("done"),
]
ASSISTANT_TURNS = [1, 3, 6]
