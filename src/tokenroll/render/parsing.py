"""Parsed completions: content, reasoning and every tool-call attempt with its status and token span.

Parsing works on token ids: only the special id of a marker such as `<tool_call>` opens a
call; the same characters written as plain text are text.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from tokenroll.core.messages import Message, ToolCall


class ToolCallStatus(StrEnum):
    """How a tool-call attempt in a completion parsed."""

    OK = "ok"
    """Well formed, and the tool is known (or no tool list was given)."""
    INVALID_JSON = "invalid_json"
    """The call's body is not the JSON the format needs."""
    UNCLOSED = "unclosed"
    """The call was opened but the completion ended before it was closed."""
    MISSING_NAME = "missing_name"
    """The body parsed but names no function."""
    UNKNOWN_TOOL = "unknown_tool"
    """The function named is not among the tools offered."""


@dataclass(slots=True)
class ParsedToolCall:
    """One tool-call attempt; `token_span` is its [start, end) range in the completion ids."""

    status: ToolCallStatus
    raw: str
    token_span: tuple[int, int]
    name: str | None = None
    arguments: Any = None
    id: str | None = None

    def to_tool_call(self) -> ToolCall:
        arguments = self.arguments if isinstance(self.arguments, str) else json.dumps(self.arguments, ensure_ascii=False)
        return ToolCall(name=self.name or "", arguments=arguments, id=self.id)


@dataclass(slots=True)
class ParsedCompletion:
    """What a completion says: its content, its reasoning, and its tool-call attempts.

    `stop_token_id` is the stop token that ended it, or None when it was cut short;
    `reasoning_complete` is False when reasoning was opened and never closed.
    """

    content: str
    reasoning_content: str | None = None
    tool_calls: list[ParsedToolCall] = field(default_factory=list)
    stop_token_id: int | None = None
    reasoning_complete: bool | None = None

    def to_message(self) -> Message:
        """The assistant message, with the tool calls that parsed OK.

        A reply that is only tool calls gets content None, as chat APIs give it: some
        templates (DeepSeek-V3) render tool calls only when the content is None.
        """
        calls = [c.to_tool_call() for c in self.tool_calls if c.status is ToolCallStatus.OK]
        return Message(
            role="assistant",
            content=self.content if self.content or not calls else None,
            reasoning_content=self.reasoning_content,
            tool_calls=calls or None,
        )


def tool_names(tools: Sequence[dict[str, Any]] | None) -> set[str] | None:
    """Names of the offered functions, or None when no tool list was given."""
    if tools is None:
        return None
    names = set()
    for tool in tools:
        function = tool.get("function", tool)
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            names.add(function["name"])
    return names


def json_tool_call(
    raw: str, span: tuple[int, int], known: Collection[str] | None, *, closed: bool = True
) -> ParsedToolCall:
    """A call written as a JSON object `{"name": ..., "arguments": ...}` (Hermes style)."""
    if not closed:
        return ParsedToolCall(ToolCallStatus.UNCLOSED, raw, span)
    try:
        body = json.loads(raw)
    except json.JSONDecodeError:
        return ParsedToolCall(ToolCallStatus.INVALID_JSON, raw, span)
    if not isinstance(body, dict):
        return ParsedToolCall(ToolCallStatus.INVALID_JSON, raw, span)
    name = body.get("name")
    arguments = body.get("arguments", body.get("parameters", {}))
    return named_tool_call(raw, span, known, name, arguments)


def named_tool_call(
    raw: str, span: tuple[int, int], known: Collection[str] | None, name: Any, arguments: Any, call_id: str | None = None
) -> ParsedToolCall:
    """Status of a call whose name and arguments were read: missing name, unknown tool, or OK."""
    if not isinstance(name, str) or not name:
        return ParsedToolCall(ToolCallStatus.MISSING_NAME, raw, span, arguments=arguments, id=call_id)
    status = ToolCallStatus.OK if known is None or name in known else ToolCallStatus.UNKNOWN_TOOL
    return ParsedToolCall(status, raw, span, name=name, arguments=arguments, id=call_id)


def find_token(ids: Sequence[int], token_id: int, start: int = 0, end: int | None = None) -> int:
    """Index of the first `token_id` in ids[start:end], or -1."""
    end = len(ids) if end is None else end
    for index in range(start, end):
        if ids[index] == token_id:
            return index
    return -1


def token_span_of_chars(
    decode: Callable[[list[int]], str], ids: Sequence[int], start: int, end: int, char_start: int, char_end: int
) -> tuple[int, int]:
    """The [start, end) token range of ids[start:end] whose decoded text covers chars [char_start, char_end).

    For formats that write several calls in one JSON text (a list after one marker): each
    call's span is found by binary search on the decoded length of token prefixes.
    """

    def first_reaching(length: int) -> int:
        low, high = start, end
        while low < high:
            middle = (low + high) // 2
            if len(decode(list(ids[start:middle]))) >= length:
                high = middle
            else:
                low = middle + 1
        return low

    # The token holding char_start is the last one whose prefix stops at or before it.
    return max(start, first_reaching(char_start + 1) - 1), first_reaching(char_end)
