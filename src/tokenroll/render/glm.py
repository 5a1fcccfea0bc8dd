"""What GLM-4.6 and GLM-4.7 share: role-marker turns, `<think>` reasoning, XML tool calls.

A GLM conversation opens with `[gMASK]<sop>`; each message starts with its role marker
(`<|system|>`, `<|user|>`, `<|assistant|>`, `<|observation|>` for a group of tool results)
and nothing closes it. The model ends its turn by sampling the marker of what comes next:
`<|observation|>` before tool results, `<|user|>` before a user turn. That marker belongs to
the assistant that sampled it (sampled, content) although it also opens the next message;
the generic bridge then keeps it once and appends only what follows it. An assistant turn
rendered last (or followed by a system or assistant message) has no stop token.

An assistant turn's header is `<|assistant|>` plus whatever of the generation prompt the
rendered turn starts with (`<think>` or `<think></think>` depending on the thinking mode), so
that a bridged prompt's attribution equals a full re-render's where the template is stable.

Tool calls are `<tool_call>name<arg_key>k</arg_key><arg_value>v</arg_value>...</tool_call>`;
a string value is written verbatim, any other value as JSON. The parser reads values back
as JSON where they parse, except for parameters the tool schema declares as strings.
"""

from __future__ import annotations

import json
from abc import abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from tokenroll.core.attribution import SCAFFOLD, RenderedTokens
from tokenroll.core.messages import Message, ToolCall
from tokenroll.render.base import Renderer, RenderError, Tools, split_reasoning
from tokenroll.render.chatml import ChatMLParser
from tokenroll.render.json_text import to_json
from tokenroll.render.parsing import (
    ParsedCompletion,
    ParsedToolCall,
    ToolCallStatus,
    find_token,
    named_tool_call,
)
from tokenroll.render.tape import TokenTape
from tokenroll.render.tokenizer import Tokenizer

# Role markers the model samples to end its turn; the message they open follows an assistant.
_STOP_MARKERS = ("<|user|>", "<|observation|>")


class GLMRenderer(Renderer):
    """The GLM-4.x template; subclasses set the newline style, the think block and the generation prompt."""

    tools_after_header = False  # tool definitions only appear in the header

    newline: ClassVar[str]
    """The line break written after role markers and around tool tags: a newline (4.6) or nothing (4.7)."""
    assistant_turn_ends_with_stop: ClassVar[bool] = False
    """An assistant turn rendered last has no stop token: the next message's marker is it."""

    def __init__(self, tokenizer: Tokenizer, **template_kwargs: Any) -> None:
        super().__init__(tokenizer, **template_kwargs)
        self._parser = GLMParser(tokenizer)

    @property
    def stop_token_ids(self) -> list[int]:
        return [self.tokenizer.token_id(t) for t in (*_STOP_MARKERS, "<|endoftext|>")]

    # --- what 4.6 and 4.7 do differently ---------------------------------------------------

    @abstractmethod
    def _generation_prompt(self, options: dict[str, Any]) -> str:
        """What follows `<|assistant|>` in the generation prompt."""

    @abstractmethod
    def _render_think(self, tape: TokenTape, index: int, reasoning: str | None, options: dict[str, Any]) -> None:
        """The think block of assistant `index`: `reasoning` when the template keeps it, else None."""

    def _user_suffix(self, text: str, options: dict[str, Any]) -> str:
        """Template text after a user message's body."""
        return ""

    def _keeps_all_reasoning(self, options: dict[str, Any]) -> bool:
        """Whether reasoning before the last user message is rendered too."""
        return False

    @abstractmethod
    def _arguments(self, call: ToolCall, message_index: int, call_index: int) -> dict[str, Any]:
        """A call's arguments as the mapping the template iterates."""

    # --- rendering -----------------------------------------------------------------------------

    def _render(
        self,
        tape: TokenTape,
        messages: list[Message],
        tools: Tools | None,
        add_generation_prompt: bool,
        options: dict[str, Any],
    ) -> None:
        nl = self.newline
        tape.markup("[gMASK]<sop>")
        if tools:
            self._render_tools(tape, tools)
        last_user = max((i for i, m in enumerate(messages) if m.role == "user"), default=-1)
        keep_all = self._keeps_all_reasoning(options)
        for index, message in enumerate(messages):
            if message.role in ("system", "user"):
                self._open(tape, messages, index, f"<|{message.role}|>")
                tape.markup(nl, index)
                tape.text(message.text, index)
                if message.role == "user":
                    tape.markup(self._user_suffix(message.text, options), index)
            elif message.role == "assistant":
                self._render_assistant(tape, message, index, keep_all or index > last_user, options)
            elif message.role == "tool":
                self._render_tool(tape, messages, index)
        if add_generation_prompt:
            tape.token("<|assistant|>")
            tape.markup(self._generation_prompt(options))

    def _render_tools(self, tape: TokenTape, tools: Tools) -> None:
        """The tools system turn: scaffolding, not content."""
        nl = self.newline
        tape.markup(
            "<|system|>\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
            "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n"
        )
        for tool in tools:
            tape.markup(to_json(tool) + "\n")
        tape.markup(
            "</tools>\n\nFor each function call, output the function name and arguments within the "
            f"following XML format:\n<tool_call>{{function-name}}{nl}<arg_key>{{arg-key-1}}</arg_key>{nl}"
            f"<arg_value>{{arg-value-1}}</arg_value>{nl}<arg_key>{{arg-key-2}}</arg_key>{nl}"
            f"<arg_value>{{arg-value-2}}</arg_value>{nl}...{nl}</tool_call>"
        )

    def _open(self, tape: TokenTape, messages: list[Message], index: int, marker: str) -> None:
        """A message's role marker; after an assistant, a stop marker is what that assistant sampled."""
        if index > 0 and messages[index - 1].role == "assistant" and marker in _STOP_MARKERS:
            tape.token(marker, index - 1, content=True, sampled=True)
        else:
            tape.token(marker, index)

    def _render_assistant(
        self, tape: TokenTape, message: Message, index: int, keeps_reasoning: bool, options: dict[str, Any]
    ) -> None:
        nl = self.newline
        content, reasoning = split_reasoning(message)

        def body(text: str) -> None:
            tape.text(text, index, sampled=True)

        def markup(text: str) -> None:
            tape.markup(text, index, content=True, sampled=True)

        tape.token("<|assistant|>", index)
        # The template tests the reasoning before stripping it: "  " still opens a think block.
        self._render_think(tape, index, reasoning.strip() if keeps_reasoning and reasoning else None, options)
        if content.strip():
            body(nl + content.strip())
        for call_index, call in enumerate(message.tool_calls or []):
            arguments = self._arguments(call, index, call_index)
            markup(nl + "<tool_call>")
            body(call.name + nl)
            for key, value in arguments.items():
                markup("<arg_key>")
                body(key)
                markup("</arg_key>" + nl + "<arg_value>")
                body(value if isinstance(value, str) else to_json(value))
                markup("</arg_value>" + nl)
            markup("</tool_call>")

    def _render_tool(self, tape: TokenTape, messages: list[Message], index: int) -> None:
        nl = self.newline
        message = messages[index]
        if isinstance(message.content, list):
            raise RenderError(
                f"message {index}: tool content must be text; the {self.family} template writes a list "
                "of parts as Python reprs"
            )
        if message.content is None:
            # The template's branch for non-text content: a marker of its own and no body.
            self._open(tape, messages, index, "<|observation|>")
            return
        if index == 0 or messages[index - 1].role != "tool":
            self._open(tape, messages, index, "<|observation|>")
        tape.markup(nl + "<tool_response>" + nl, index)
        tape.text(message.content, index)
        tape.markup(nl + "</tool_response>", index)

    # --- bridging ------------------------------------------------------------------------------

    def _generation_prompt_ids(self, probe: RenderedTokens, assistant_positions: list[int]) -> list[int]:
        """The generation prompt: the probe's trailing scaffolding.

        The probe's assistant header can be shorter than the generation prompt (GLM-4.7 opens
        `<think>` there, and a probe turn without reasoning does not start with it). GLM has
        no separators between messages, so the probe's trailing scaffolding is exactly the
        generation prompt.
        """
        n = 0
        while n < len(probe.message_indices) and probe.message_indices[-1 - n] == SCAFFOLD:
            n += 1
        return probe.token_ids[len(probe.token_ids) - n :]

    # --- parsing -------------------------------------------------------------------------------



def thinking_disabled(options: dict[str, Any]) -> bool:
    """The templates' `enable_thinking is defined and not enable_thinking`."""
    return "enable_thinking" in options and not options["enable_thinking"]


class GLMParser(ChatMLParser):
    """GLM completions: `<think>` reasoning (possibly opened by the prompt), content, XML tool calls.

    The template strips content and reasoning when it renders them, so they are parsed stripped.
    """

    def __init__(self, tokenizer: Tokenizer) -> None:
        super().__init__(tokenizer, reasoning=True, turn_open="<|assistant|>")
        self.key_open = tokenizer.token_id("<arg_key>")
        self.key_close = tokenizer.token_id("</arg_key>")
        self.value_open = tokenizer.token_id("<arg_value>")
        self.value_close = tokenizer.token_id("</arg_value>")
        self.markers = frozenset((self.key_open, self.key_close, self.value_open, self.value_close))

    def parse(
        self,
        completion_ids: Sequence[int],
        prompt_ids: Sequence[int] | None,
        tools: Sequence[Mapping[str, Any]] | None,
        stop_ids: Sequence[int],
    ) -> ParsedCompletion:
        parsed = super().parse(completion_ids, prompt_ids, tools, stop_ids)
        parsed.content = parsed.content.strip()
        parsed.reasoning_content = (parsed.reasoning_content or "").strip() or None
        string_parameters = _string_parameters(tools)
        for call in parsed.tool_calls:
            if isinstance(call.arguments, dict):
                strings = string_parameters.get(call.name or "", set())
                call.arguments = {k: v if k in strings else _json_or_text(v) for k, v in call.arguments.items()}
        return parsed

    def _tool_call(self, ids: list[int], opened: int, end: int, closed: bool, known: set[str] | None) -> ParsedToolCall:
        """`name<arg_key>k</arg_key><arg_value>v</arg_value>...`, with values kept as text for now."""
        decode = self.tokenizer.decode
        body = ids[opened + 1 : end]
        raw = decode(body).strip()
        span = (opened, end + 1 if closed else end)
        if not closed:
            return ParsedToolCall(ToolCallStatus.UNCLOSED, raw, span)
        first_key = find_token(body, self.key_open)
        name_end = first_key if first_key != -1 else len(body)
        if any(t in self.markers for t in body[:name_end]):
            return ParsedToolCall(ToolCallStatus.INVALID_JSON, raw, span)
        arguments = self._arguments(body, name_end)
        if arguments is None:
            return ParsedToolCall(ToolCallStatus.INVALID_JSON, raw, span)
        return named_tool_call(raw, span, known, decode(body[:name_end]).strip(), arguments)

    def _arguments(self, body: list[int], position: int) -> dict[str, str] | None:
        """The key/value pairs from `position` on, or None when they are not well formed."""
        decode = self.tokenizer.decode
        arguments: dict[str, str] = {}
        while position < len(body):
            # <arg_key> key </arg_key> [whitespace] <arg_value> value </arg_value> [whitespace]
            key_close = find_token(body, self.key_close, position + 1)
            value_open = find_token(body, self.value_open, key_close + 1) if key_close != -1 else -1
            value_close = find_token(body, self.value_close, value_open + 1) if value_open != -1 else -1
            if body[position] != self.key_open or value_close == -1:
                return None
            key, gap, value = body[position + 1 : key_close], body[key_close + 1 : value_open], body[value_open + 1 : value_close]
            if any(t in self.markers for t in key + gap + value) or decode(gap).strip():
                return None
            arguments[decode(key)] = decode(value)
            position = value_close + 1
            following = find_token(body, self.key_open, position)
            following = len(body) if following == -1 else following
            if any(t in self.markers for t in body[position:following]) or decode(body[position:following]).strip():
                return None
            position = following
        return arguments


def _string_parameters(tools: Sequence[Mapping[str, Any]] | None) -> dict[str, set[str]]:
    """Per tool name, the parameters its JSON schema declares as strings."""
    found: dict[str, set[str]] = {}
    for tool in tools or []:
        function = tool.get("function", tool)
        if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
            continue
        properties = (function.get("parameters") or {}).get("properties") or {}
        found[function["name"]] = {
            name
            for name, schema in properties.items()
            if isinstance(schema, Mapping)
            and (schema.get("type") == "string" or (isinstance(schema.get("type"), list) and "string" in schema["type"]))
        }
    return found


def _json_or_text(value: str) -> Any:
    """A value the template wrote: JSON for anything but a string, which it wrote verbatim."""
    try:
        return json.loads(value, parse_constant=_not_json)
    except ValueError:
        return value


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")  # json.loads accepts NaN and Infinity; tojson never writes them
