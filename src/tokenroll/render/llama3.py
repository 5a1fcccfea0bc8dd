"""Llama 3.1 / 3.2 / 3.3 Instruct: header-delimited turns, a dated system turn, JSON tool calls.

One family covers both templates, which differ in two places only (detected from the
template text): the 3.2 template dates the system turn with today's date unless
`date_string` is given (3.1/3.3: "26 Jul 2024"), and only the 3.1/3.3 template knows
`builtin_tools` (a "Tools:" system line, `<|python_tag|>name.call(k="v")` calls for
built-in tools, and every tool-call turn closed with `<|eom_id|>`).

What the template does: BOS, then a system turn ("Environment: ipython" when tools are
given, the knowledge and today dates, then the trimmed system message); tool definitions
go into the first non-system message (`tools_in_user_message`, the default) or the system
turn. Message bodies are trimmed. An assistant with tool calls is written as
`{"name": ..., "parameters": ...}` only: its content is dropped, and more than one call
is refused. Tool results (`ipython` turns) are written with `tojson`, so a string result
appears quoted and escaped.

Prefix-stable when the model's turns come back as the template writes them; trimmed
whitespace, reformatted tool-call JSON, `<|python_tag|>` before a custom call or a 3.2
date that changed between turns make a re-render differ (the bridge keeps what was sampled).

Bridge: tool (ipython) results and user messages. A completion that ends on `<|eom_id|>`
is bridged like one that ends on `<|eot_id|>` (the template writes the same next turn).
None after a stop on `<|end_of_text|>`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from tokenroll.core.attribution import SCAFFOLD, RenderedTokens
from tokenroll.core.messages import Message, ToolCall
from tokenroll.render.base import Renderer, RenderError, Tools, arguments_object
from tokenroll.render.json_text import to_json
from tokenroll.render.parsing import (
    ParsedCompletion,
    ParsedToolCall,
    ToolCallStatus,
    find_token,
    named_tool_call,
    tool_names,
)
from tokenroll.render.tape import TokenTape
from tokenroll.render.tokenizer import Tokenizer

DEFAULT_DATE = "26 Jul 2024"
TOOLS_PREAMBLE_SYSTEM = (
    "You have access to the following functions. To call a function, please respond with JSON for a function call."
)
TOOLS_PREAMBLE_USER = (
    "Given the following functions, please respond with a JSON for a function call "
    "with its proper arguments that best answers the given prompt.\n\n"
)
TOOLS_FORMAT = (
    'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.'
    "Do not use variables.\n\n"
)

# A body that opens like a JSON tool call; a plain JSON answer is content unless it has the call's keys.
_CALL_START = re.compile(r'\s*\{\s*"name"\s*:')
_BUILTIN_CALL = re.compile(r"\s*(\w+)\.call\((.*)\)\s*", re.DOTALL)
_BUILTIN_ARGUMENT = re.compile(r'(\w+)="(.*?)"(?=, \w+="|$)', re.DOTALL)
_INVALID = object()  # a JSON segment that does not parse


class Llama3Renderer(Renderer):
    """Llama 3.1, 3.2 and 3.3 Instruct models (text only)."""

    family = "llama3"
    tools_after_header = False  # tool definitions only appear in the header
    roles = frozenset({"system", "user", "assistant", "tool", "ipython"})
    bridge_roles = frozenset({"tool", "ipython", "user"})

    def __init__(self, tokenizer: Tokenizer, **template_kwargs: Any) -> None:
        super().__init__(tokenizer, **template_kwargs)
        template = tokenizer.chat_template or ""
        # 3.2 dates the system turn with the clock; 3.1/3.3 with a fixed date and know built-in tools.
        self._date_from_clock = "strftime_now" in template
        self._builtin_tools_known = "builtin_tools" in template or not template
        self._eot = tokenizer.token_id("<|eot_id|>")
        self._eom = tokenizer.token_id("<|eom_id|>")
        self._end_of_text = tokenizer.token_id("<|end_of_text|>")
        self._python_tag = tokenizer.token_id("<|python_tag|>")

    @property
    def stop_token_ids(self) -> list[int]:
        return [self._eot, self._eom, self._end_of_text]

    # --- rendering ---------------------------------------------------------------------

    def _render(
        self,
        tape: TokenTape,
        messages: list[Message],
        tools: Tools | None,
        add_generation_prompt: bool,
        options: dict[str, Any],
    ) -> None:
        if "custom_tools" in options:  # the template lets it replace `tools`, even with None
            tools = None if options["custom_tools"] is None else list(options["custom_tools"])
        tools_in_user = options.get("tools_in_user_message", True)
        builtin = options.get("builtin_tools") if self._builtin_tools_known else None
        date = options["date_string"] if options.get("date_string") is not None else self._default_date()

        if not messages:
            raise RenderError("message 0: the template reads the first message, and the conversation is empty")
        tape.token("<|begin_of_text|>")
        first = 1 if messages[0].role == "system" else 0
        owner = 0 if first else SCAFFOLD
        self._header(tape, "system", owner)
        if builtin is not None or tools is not None:
            tape.markup("Environment: ipython\n", owner)
        if builtin is not None:
            tape.markup("Tools: " + ", ".join(t for t in builtin if t != "code_interpreter") + "\n\n", owner)
        tape.markup(f"Cutting Knowledge Date: December 2023\nToday Date: {date}\n\n", owner)
        if tools is not None and not tools_in_user:
            tape.markup(TOOLS_PREAMBLE_SYSTEM + TOOLS_FORMAT, owner)
            self._tool_definitions(tape, tools, owner)
        if first:
            tape.text(messages[0].text.strip(), 0)
        tape.token("<|eot_id|>", owner)

        if tools is not None and tools_in_user:
            if first >= len(messages):
                raise RenderError(
                    f"message {first}: tools go into the first user message and the conversation has none "
                    "(pass tools_in_user_message=False to put them in the system turn)"
                )
            # The template takes the first non-system message's body, whatever its role.
            self._header(tape, "user", first)
            tape.markup(TOOLS_PREAMBLE_USER + TOOLS_FORMAT, first)
            self._tool_definitions(tape, tools, first)
            tape.text(messages[first].text.strip(), first)
            tape.token("<|eot_id|>", first)
            first += 1

        for index in range(first, len(messages)):
            self._render_message(tape, messages[index], index, builtin)
        if add_generation_prompt:
            self._header(tape, "assistant", SCAFFOLD)

    def _render_message(self, tape: TokenTape, message: Message, index: int, builtin: list[str] | None) -> None:
        role = message.role
        sampled = role == "assistant"
        if message.tool_calls is not None:  # the template tests for the key before the role
            if len(message.tool_calls) != 1:
                raise RenderError(
                    f"message {index}: the template renders exactly one tool call per message, "
                    f"got {len(message.tool_calls)}"
                )
            call = message.tool_calls[0]
            self._header(tape, "assistant", index)
            if builtin is not None and call.name in builtin:
                tape.token("<|python_tag|>", index, content=sampled, sampled=sampled)
                tape.text(_builtin_call_text(call, index), index, sampled=sampled)
            else:
                arguments = to_json(arguments_object(call, index, 0))
                body = '{"name": "' + call.name + '", "parameters": ' + arguments + "}"
                tape.text(body, index, sampled=sampled)
            close = "<|eom_id|>" if builtin is not None else "<|eot_id|>"
            tape.token(close, index, content=sampled, sampled=sampled)
        elif role in ("tool", "ipython"):
            self._header(tape, "ipython", index)
            # The template writes strings (and part lists) with tojson: quoted and escaped.
            tape.text(to_json(message.content if isinstance(message.content, list) else message.text), index)
            tape.token("<|eot_id|>", index)
        else:
            self._header(tape, role, index)
            tape.text(message.text.strip(), index, sampled=sampled)
            tape.token("<|eot_id|>", index, content=sampled, sampled=sampled)

    @staticmethod
    def _header(tape: TokenTape, role: str, owner: int) -> None:
        tape.token("<|start_header_id|>", owner)
        tape.markup(role, owner)
        tape.token("<|end_header_id|>", owner)
        tape.markup("\n\n", owner)

    @staticmethod
    def _tool_definitions(tape: TokenTape, tools: Tools, owner: int) -> None:
        for tool in tools:
            tape.text(json.dumps(tool, ensure_ascii=False, indent=4) + "\n\n", owner, content=False)

    def _default_date(self) -> str:
        return datetime.now().strftime("%d %b %Y") if self._date_from_clock else DEFAULT_DATE

    # --- bridging ----------------------------------------------------------------------

    def bridge(
        self,
        prev_prompt_ids: Sequence[int],
        prev_completion_ids: Sequence[int],
        new_messages: Sequence[Message | Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]] | None = None,
        *,
        prev_attribution: RenderedTokens | None = None,
        **template_kwargs: Any,
    ) -> RenderedTokens | None:
        """As the generic bridge; a turn closed by `<|eom_id|>` (a tool call) is followed as one closed by `<|eot_id|>`."""
        completion = list(prev_completion_ids)
        if not completion or completion[-1] != self._eom:
            return super().bridge(
                prev_prompt_ids, completion, new_messages, tools, prev_attribution=prev_attribution, **template_kwargs
            )
        bridged = super().bridge(
            prev_prompt_ids,
            completion[:-1] + [self._eot],
            new_messages,
            tools,
            prev_attribution=prev_attribution,
            **template_kwargs,
        )
        if bridged is not None:
            bridged.token_ids[len(prev_prompt_ids) + len(completion) - 1] = self._eom
        return bridged

    # --- parsing -----------------------------------------------------------------------

    def parse_completion(
        self,
        completion_ids: Sequence[int],
        prompt_ids: Sequence[int] | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
    ) -> ParsedCompletion:
        """Content, or tool calls: after `<|python_tag|>`, or a body that is a `{"name", "parameters"}` object.

        Several calls separated by `;` or whitespace are each kept; a `<|python_tag|>` body
        that is neither JSON nor `name.call(...)` is one invalid_json attempt.
        """
        ids = list(completion_ids)
        stop = ids.pop() if ids and ids[-1] in self.stop_token_ids else None
        decode = self.tokenizer.decode
        known = tool_names(tools)
        tag = find_token(ids, self._python_tag)
        if tag != -1:
            calls = _parse_calls(decode, ids, tag + 1, known, cut=stop is None, tagged=True)
            return ParsedCompletion(content=decode(ids[:tag]).strip(), tool_calls=calls, stop_token_id=stop)
        text = decode(ids)
        if _CALL_START.match(text):
            calls = _parse_calls(decode, ids, 0, known, cut=stop is None, tagged=False)
            if calls:
                return ParsedCompletion(content="", tool_calls=calls, stop_token_id=stop)
        return ParsedCompletion(content=text, stop_token_id=stop)


def _builtin_call_text(call: ToolCall, index: int) -> str:
    """`name.call(k="v", ...)`, as the 3.1 template writes calls to built-in tools (string values only)."""
    arguments = arguments_object(call, index, 0)
    if not isinstance(arguments, dict) or not all(isinstance(v, str) for v in arguments.values()):
        raise RenderError(
            f"message {index}: tool call 0 ({call.name}) is a built-in tool call; the template writes its "
            'arguments as name="value" pairs and needs an object of strings'
        )
    return call.name + ".call(" + ", ".join(f'{k}="{v}"' for k, v in arguments.items()) + ")"


def _parse_calls(
    decode: Callable[[list[int]], str], ids: list[int], start: int, known: set[str] | None, *, cut: bool, tagged: bool
) -> list[ParsedToolCall]:
    """The call attempts in ids[start:]; empty when an untagged body turns out to be a plain JSON answer."""
    text = decode(ids[start:])
    builtin = _BUILTIN_CALL.fullmatch(text) if tagged else None
    if builtin is not None:
        arguments = dict(_BUILTIN_ARGUMENT.findall(builtin.group(2)))
        return [named_tool_call(text, (start - 1, len(ids)), known, builtin.group(1), arguments)]
    segments = _json_segments(text)
    if tagged and not segments:  # the tag and nothing after it
        status = ToolCallStatus.UNCLOSED if cut else ToolCallStatus.INVALID_JSON
        return [ParsedToolCall(status, text, (start - 1, len(ids)))]
    if not tagged and not all(_is_call(value) or value is _INVALID for _, _, value in segments):
        return []
    calls = []
    for n, (begin, end, value) in enumerate(segments):
        raw = text[begin:end]
        if len(segments) == 1:
            span = (start - 1 if tagged else start, len(ids))
        else:
            span = (start + _token_at(decode, ids[start:], begin + 1) - 1, start + _token_at(decode, ids[start:], end))
        if value is _INVALID or not isinstance(value, dict):
            last = n == len(segments) - 1
            status = ToolCallStatus.UNCLOSED if cut and last and value is _INVALID else ToolCallStatus.INVALID_JSON
            calls.append(ParsedToolCall(status, raw, span))
        else:
            arguments = value.get("parameters", value.get("arguments", {}))
            calls.append(named_tool_call(raw, span, known, value.get("name"), arguments))
    return calls


def _json_segments(text: str) -> list[tuple[int, int, Any]]:
    """(start, end, value) of each JSON value in `text`, separated by `;` or whitespace; the rest is one invalid piece."""
    decoder = json.JSONDecoder()
    segments: list[tuple[int, int, Any]] = []
    position = 0
    while True:
        while position < len(text) and (text[position].isspace() or text[position] == ";"):
            position += 1
        if position >= len(text):
            return segments
        try:
            value, end = decoder.raw_decode(text, position)
        except json.JSONDecodeError:
            segments.append((position, len(text.rstrip()), _INVALID))
            return segments
        segments.append((position, end, value))
        position = end


def _is_call(value: Any) -> bool:
    return isinstance(value, dict) and "name" in value and ("parameters" in value or "arguments" in value)


def _token_at(decode: Callable[[list[int]], str], ids: list[int], chars: int) -> int:
    """The fewest leading tokens of `ids` whose text has at least `chars` characters."""
    low, high = 0, len(ids)
    while low < high:
        middle = (low + high) // 2
        if len(decode(ids[:middle])) >= chars:
            high = middle
        else:
            low = middle + 1
    return low
