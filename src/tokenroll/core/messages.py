"""Chat messages and tool calls, with optional engine token ids."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

Logprobs = list[float] | dict[str, Any]
"""Flat per-token log-probabilities, or a provider's own logprobs payload kept unchanged."""

_MESSAGE_FIELDS = (
    "role",
    "content",
    "reasoning_content",
    "tool_calls",
    "tool_call_id",
    "name",
    "token_ids",
    "logprobs",
)
_MESSAGE_FIELD_SET = frozenset(_MESSAGE_FIELDS)
# Other spellings of our fields found in provider payloads (`thinking`: gpt-oss chat templates).
_FIELD_ALIASES = {"reasoning": "reasoning_content", "thinking": "reasoning_content"}


@dataclass(slots=True)
class ToolCall:
    """A function call requested by an assistant; `arguments` is JSON text as the model wrote it."""

    name: str
    arguments: str
    id: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str):
            raise TypeError(f"tool call name must be a string, got {type(self.name).__name__}")
        if not isinstance(self.arguments, str):
            raise TypeError(
                f"tool call {self.name!r}: arguments must be a JSON string, "
                f"got {type(self.arguments).__name__}"
            )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "tool call") -> ToolCall:
        """Read the OpenAI shape `{id, type, function: {name, arguments}}` or a flat `{id, name, arguments}`."""
        if isinstance(data, ToolCall):
            return data
        if not isinstance(data, Mapping):
            raise TypeError(f"{where} is a {type(data).__name__}, expected a mapping or ToolCall")
        function = data.get("function", data)
        if not isinstance(function, Mapping):
            raise TypeError(f"{where}: 'function' is a {type(function).__name__}, expected a mapping")
        name = function.get("name")
        if not isinstance(name, str) or not name:
            raise ValueError(f"{where}: missing function name")
        arguments = function.get("arguments", "{}")
        if not isinstance(arguments, str):
            # Callers often pass parsed arguments; keep them as the JSON text a model would write.
            arguments = json.dumps(arguments, ensure_ascii=False)
        return cls(name=name, arguments=arguments, id=data.get("id"))

    def to_dict(self) -> dict[str, Any]:
        """The OpenAI chat-completions shape."""
        out: dict[str, Any] = {}
        if self.id is not None:
            out["id"] = self.id
        out["type"] = "function"
        out["function"] = {"name": self.name, "arguments": self.arguments}
        return out

    def parsed_arguments(self) -> Any:
        """The arguments decoded from JSON; raises ValueError naming the tool when they are not JSON."""
        try:
            return json.loads(self.arguments)
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"tool call {self.name!r}: arguments are not valid JSON ({exc.msg} at char {exc.pos})"
            ) from None


@dataclass(slots=True)
class Message:
    """One chat message. `token_ids`/`logprobs` carry engine tokens when the message was sampled."""

    role: str
    content: str | list[dict[str, Any]] | None = None
    reasoning_content: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None
    name: str | None = None
    token_ids: list[int] | None = None
    logprobs: Logprobs | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.role, str) or not self.role:
            raise ValueError(f"message role must be a non-empty string, got {self.role!r}")
        if self.content is not None and not isinstance(self.content, (str, list)):
            raise TypeError(
                f"{self.role} message: content must be a string, a list of parts or None, "
                f"got {type(self.content).__name__}"
            )
        if self.tool_calls is not None:
            self.tool_calls = [
                ToolCall.from_dict(call, where=f"{self.role} message tool_calls[{i}]")
                for i, call in enumerate(self.tool_calls)
            ]
        if self.token_ids is not None:
            if not all(type(t) is int for t in self.token_ids):
                raise TypeError(f"{self.role} message: token_ids must be a list of ints")
            if isinstance(self.logprobs, list) and len(self.logprobs) != len(self.token_ids):
                raise ValueError(
                    f"{self.role} message: token_ids has {len(self.token_ids)} ids but logprobs "
                    f"has {len(self.logprobs)} values; they must line up one to one"
                )

    @property
    def text(self) -> str:
        """The content as plain text (text parts joined; empty when there is no content)."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.get("text", "") for part in self.content if part.get("type") == "text")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "message") -> Message:
        """Build from an OpenAI-style mapping; unknown fields that carry a value are an error."""
        if not isinstance(data, Mapping):
            raise TypeError(f"{where} is a {type(data).__name__}, expected a mapping or Message")
        if data.keys() <= _MESSAGE_FIELD_SET and data.get("role"):
            # The common shape, checked in one set operation; other shapes take the detailed path.
            try:
                return cls(**{key: value for key, value in data.items() if value is not None})
            except (TypeError, ValueError) as exc:
                raise type(exc)(f"{where}: {exc}") from None
        fields: dict[str, Any] = {}
        for key, value in data.items():
            key = _FIELD_ALIASES.get(key, key)
            if key in _MESSAGE_FIELDS:
                if value is not None:
                    fields[key] = value
            elif value not in (None, [], {}, ""):
                raise ValueError(f"{where}: unknown field {key!r}")
        if "role" not in fields:
            raise ValueError(f"{where}: missing 'role'")
        try:
            return cls(**fields)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"{where}: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe mapping in the OpenAI shape, without unset fields."""
        out: dict[str, Any] = {"role": self.role}
        if self.content is not None:
            out["content"] = self.content
        if self.reasoning_content is not None:
            out["reasoning_content"] = self.reasoning_content
        if self.tool_calls is not None:
            out["tool_calls"] = [call.to_dict() for call in self.tool_calls]
        if self.tool_call_id is not None:
            out["tool_call_id"] = self.tool_call_id
        if self.name is not None:
            out["name"] = self.name
        if self.token_ids is not None:
            out["token_ids"] = self.token_ids
        if self.logprobs is not None:
            out["logprobs"] = self.logprobs
        return out


def as_message(message: Message | Mapping[str, Any], index: int | None = None) -> Message:
    """Coerce a mapping to a Message; errors name the message index when one is given."""
    if isinstance(message, Message):
        return message
    where = "message" if index is None else f"message {index}"
    return Message.from_dict(message, where=where)


def as_messages(messages: Iterable[Message | Mapping[str, Any]]) -> list[Message]:
    """Coerce a sequence of mappings or Messages to Messages, naming the index of a bad one."""
    # Lists first: the `Mapping` check is an ABC check, slow on a hot path that sees lists.
    if not isinstance(messages, (list, tuple)) and isinstance(messages, (str, bytes, Mapping)):
        raise TypeError(f"messages must be a list, got {type(messages).__name__}")
    return [as_message(message, i) for i, message in enumerate(messages)]
