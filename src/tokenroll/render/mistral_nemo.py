"""Mistral-Nemo-Instruct-2407 (tekken): `[INST]`/`[/INST]` turns, `[TOOL_CALLS]` JSON lists.

What the template does:
- `<s>`, then user turns as `[INST]...[/INST]` and assistant bodies followed by `</s>`; there
  is no generation prompt (the model answers right after `[/INST]` or `[/TOOL_RESULTS]`).
- The system message is written only into the LAST message, and only when that message is
  a user message: `[INST]system\\n\\nuser[/INST]`. A conversation ending on an assistant or a
  tool message renders no system prompt at all.
- Tools go in `[AVAILABLE_TOOLS][...][/AVAILABLE_TOOLS]` right before the last user message
  (and before any earlier user message equal to it: the template compares whole messages).
  String values of a tool's function are written raw (unescaped), others with `tojson`;
  being template text, an added token written in a description becomes its id, as in HF.
- An assistant with tool calls is written as `[TOOL_CALLS][{"name": ..., "arguments": {...},
  "id": "..."}, ...]</s>`; its content is dropped. Each call id must be 9 characters long
  (the template checks the length only, whatever its error message says); so must a tool
  message's `tool_call_id`. Arguments are written as a JSON object, so they must be JSON.
- Tool results: `[TOOL_RESULTS]{"content": <body as is>, "call_id": "..."}[/TOOL_RESULTS]`;
  the body is not quoted (a list body is written as Python writes the list).
- After the optional system message, user and assistant messages (not counting tool
  messages and messages with tool calls) must alternate starting with a user; a system
  message anywhere else is refused. A None body is written as empty (Hugging Face drops
  None-valued keys), and a None system body writes no system prompt at all.

Departures: arguments given as a JSON string are written as an object (Hugging Face writes
a JSON string); `tools=[]` counts as no tools (Hugging Face writes an empty block).

Attribution: tool definitions are scaffolding; the system prompt's text is message 0's
content wherever it is written, and its `\\n\\n` separator is message 0's too. Tool-result
bodies share tokens with the JSON around them (` Cats` takes the template's space, `]},`
takes its comma): a token whose first character is the body's belongs to the body, and so
does the leading space when it merges with the body's first word.

Prefix stability and the bridge: the template rewrites earlier turns when the last message
changes (system prompt, tool block), so the bridge keeps what the model saw:
- tool results after a tool call: equal to a full re-render without a system prompt; with
  one, the re-render drops the system prompt (the last message is no longer a user), the
  bridge keeps it where the model saw it;
- a user message: equal to a full re-render without system prompt and tools; with tools,
  the block is written again before the new user message (the re-render moves it there);
  None when the previous prompt has a system prompt (the re-render moves it into the new
  user turn, which the bridge cannot do without rewriting the old one), and None without
  `prev_attribution`, since a system prompt cannot be seen then;
- `</s>` is the only stop token, so no stop makes the bridge return None; a completion cut
  by the token limit gets `</s>` appended as context that was not sampled.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from tokenroll.core.attribution import RenderedTokens
from tokenroll.core.messages import Message, as_messages
from tokenroll.render.base import Renderer, RenderError, Tools, arguments_object
from tokenroll.render.json_text import to_json
from tokenroll.render.parsing import (
    ParsedCompletion,
    ParsedToolCall,
    ToolCallStatus,
    find_token,
    named_tool_call,
    token_span_of_chars,
    tool_names,
)
from tokenroll.render.tape import TokenTape
from tokenroll.render.tokenizer import Tokenizer

_CALL_ID_LENGTH = 9
_JSON = json.JSONDecoder()


class MistralNemoRenderer(Renderer):
    """Mistral-Nemo-Instruct-2407 (and fine-tunes that keep its template)."""

    family = "mistral-nemo"
    stop_tokens = ("</s>",)

    def __init__(self, tokenizer: Tokenizer, **template_kwargs: Any) -> None:
        super().__init__(tokenizer, **template_kwargs)
        self._tool_calls_id = tokenizer.token_id("[TOOL_CALLS]")


    # --- rendering ---------------------------------------------------------------------

    def _render(
        self,
        tape: TokenTape,
        messages: list[Message],
        tools: Tools | None,
        add_generation_prompt: bool,
        options: dict[str, Any],
    ) -> None:
        if not messages:
            raise RenderError("the Mistral-Nemo template needs at least one message")
        start = 1 if messages[0].role == "system" else 0
        _check_alternation(messages, start)
        users = [m for m in messages[start:] if m.role == "user"]
        last = len(messages) - 1
        # A None system body is an undefined `system_message` (None-valued keys are dropped): not written.
        has_system = start == 1 and messages[0].content is not None
        tape.token("<s>")
        for index in range(start, len(messages)):
            message = messages[index]
            if message.role == "user":
                if tools is not None and message == users[-1]:
                    self._render_tools(tape, tools)
                tape.token("[INST]", index)
                if index == last and has_system:
                    tape.text(messages[0].text, 0)
                    tape.markup("\n\n", 0)
                tape.text(message.text, index)
                tape.token("[/INST]", index)
            elif message.tool_calls is not None:
                self._render_tool_calls(tape, message, index)
            elif message.role == "assistant":
                tape.text(message.text, index, sampled=True)
                tape.token("</s>", index, content=True, sampled=True)
            elif message.role == "tool":
                self._render_tool_result(tape, message, index)
            else:
                raise RenderError(
                    f"message {index}: the Mistral-Nemo template takes a {message.role!r} message "
                    "only as the first message"
                )

    @staticmethod
    def _render_tools(tape: TokenTape, tools: Tools) -> None:
        """The tools block: each function's items, strings raw (unescaped) as the template writes them."""
        tape.token("[AVAILABLE_TOOLS]")
        tape.markup("[")
        for tool_index, tool in enumerate(tools):
            function = tool.get("function")
            if not isinstance(function, Mapping):
                raise RenderError(f"tool {tool_index}: the Mistral-Nemo template needs a 'function' mapping")
            items = [
                f'"{key}": "{value}"' if isinstance(value, str) else f'"{key}": {to_json(value)}'
                for key, value in function.items()
                if key != "return"
            ]
            tape.markup('{"type": "function", "function": {' + ", ".join(items) + "}}")
            tape.markup(", " if tool_index < len(tools) - 1 else "]")
        tape.token("[/AVAILABLE_TOOLS]")

    def _render_tool_calls(self, tape: TokenTape, message: Message, index: int) -> None:
        tape.token("[TOOL_CALLS]", index, content=True, sampled=True)
        calls = message.tool_calls or []
        body = "["
        for call_index, call in enumerate(calls):
            arguments = to_json(arguments_object(call, index, call_index))
            call_id = _checked_id(call.id, f"message {index}: tool call {call_index} ({call.name}) id")
            body += f'{{"name": {to_json(call.name)}, "arguments": {arguments}, "id": "{call_id}"}}'
            body += ", " if call_index < len(calls) - 1 else "]"
        # An empty call list leaves the list open and the turn unclosed, as the template does.
        tape.text(body, index, sampled=True)
        if calls:
            tape.token("</s>", index, content=True, sampled=True)

    def _render_tool_result(self, tape: TokenTape, message: Message, index: int) -> None:
        # Jinja's `string` filter: the text as is, a list as Python writes it. Hugging Face
        # drops None-valued keys before rendering, so a None body is an undefined one: "".
        content = message.content
        body = "" if content is None else content if isinstance(content, str) else str(content)
        call_id = _checked_id(message.tool_call_id, f"message {index}: tool_call_id")
        tape.token("[TOOL_RESULTS]", index)
        if body and self._space_joins(body):
            tape.markup('{"content":', index)
            tape.text(" " + body, index)
        else:
            tape.markup('{"content": ', index)
            tape.text(body, index)
        tape.markup(f', "call_id": "{call_id}"}}', index)
        tape.token("[/TOOL_RESULTS]", index)

    def _space_joins(self, body: str) -> bool:
        """Whether the template's space before a tool-result body is encoded in one token with it."""
        # The first token is either the lone space or a merge of the space with the body.
        return self.tokenizer.encode(" " + body)[:1] != self.tokenizer.encode(" ")

    # --- bridging ------------------------------------------------------------------------

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
        """The generic bridge, but None for a user message when a system prompt exists or cannot be ruled out."""
        new_messages = as_messages(new_messages)
        if any(m.role == "user" for m in new_messages):
            known = prev_attribution is not None and len(prev_attribution.token_ids) == len(prev_prompt_ids)
            if not known or not prev_attribution.message_roles or prev_attribution.message_roles[0] == "system":
                return None
        return super().bridge(
            prev_prompt_ids, prev_completion_ids, new_messages, tools, prev_attribution=prev_attribution, **template_kwargs
        )

    # --- parsing -------------------------------------------------------------------------

    def parse_completion(
        self,
        completion_ids: Sequence[int],
        prompt_ids: Sequence[int] | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
    ) -> ParsedCompletion:
        """Content up to `[TOOL_CALLS]`, then the JSON list of calls after each `[TOOL_CALLS]` token."""
        ids = list(completion_ids)
        stop = ids.pop() if ids and ids[-1] in self.stop_token_ids else None
        decode = self.tokenizer.decode
        first = find_token(ids, self._tool_calls_id)
        if first == -1:
            return ParsedCompletion(content=decode(ids), stop_token_id=stop)
        known = tool_names(tools)
        calls: list[ParsedToolCall] = []
        extra: list[str] = []
        opened = first
        while opened != -1:
            end = find_token(ids, self._tool_calls_id, opened + 1)
            segment_end = len(ids) if end == -1 else end
            cut = stop is None and end == -1
            trailing = self._parse_call_list(ids, opened, segment_end, known, cut, calls)
            if trailing.strip():
                extra.append(trailing.strip())
            opened = end
        content = decode(ids[:first])
        # Text the model wrote after its calls is kept, not dropped.
        if extra:
            content = "\n".join([content, *extra]) if content else "\n".join(extra)
        return ParsedCompletion(content=content, tool_calls=calls, stop_token_id=stop)

    def _parse_call_list(
        self, ids: list[int], opened: int, end: int, known: set[str] | None, cut: bool, calls: list[ParsedToolCall]
    ) -> str:
        """Append the calls of the list after the marker at `opened`; return the text after the list."""
        decode = self.tokenizer.decode
        text = decode(ids[opened + 1 : end])

        def span(char_start: int, char_end: int) -> tuple[int, int]:
            return token_span_of_chars(decode, ids, opened + 1, end, char_start, char_end)

        elements, position, closed = _scan_list(text)
        found: list[ParsedToolCall] = []
        for value, char_start, char_end in elements:
            raw = text[char_start:char_end]
            if isinstance(value, dict):
                found.append(named_tool_call(raw, span(char_start, char_end), known, value.get("name"), value.get("arguments", {}), value.get("id")))
            else:
                found.append(ParsedToolCall(ToolCallStatus.INVALID_JSON, raw, span(char_start, char_end)))
        rest = text[position:]
        if not closed and (rest.strip() or not found):
            status = ToolCallStatus.UNCLOSED if cut else ToolCallStatus.INVALID_JSON
            found.append(ParsedToolCall(status, rest.strip(), (span(position, len(text))[0] if found else opened, end)))
        if found:
            # The marker opens the first call and the list's close ends the last.
            found[0].token_span = (opened, found[0].token_span[1])
            if closed:
                found[-1].token_span = (found[-1].token_span[0], span(0, position)[1])
        calls.extend(found)
        return rest if closed else ""

def _check_alternation(messages: list[Message], start: int) -> None:
    """User and assistant turns alternate, user first; tool messages and tool-call turns are not counted."""
    counted = [i for i in range(start, len(messages)) if messages[i].role != "tool" and messages[i].tool_calls is None]
    for position, index in enumerate(counted):
        if (messages[index].role == "user") != (position % 2 == 0):
            raise RenderError(
                f"message {index}: the Mistral-Nemo template requires user/assistant roles to alternate "
                f"after the optional system message, got {messages[index].role!r}"
            )


def _checked_id(call_id: str | None, where: str) -> str:
    if call_id is None or len(call_id) != _CALL_ID_LENGTH:
        raise RenderError(
            f"{where} is {call_id!r}; the Mistral-Nemo template requires tool call ids of "
            f"{_CALL_ID_LENGTH} characters (alphanumeric, such as 'a1B2c3D4e')"
        )
    return call_id


def _scan_list(text: str) -> tuple[list[tuple[Any, int, int]], int, bool]:
    """The JSON values of a list written at the start of `text`, each with its char range.

    Returns (values, position where scanning stopped, whether the list was closed); an
    element that does not parse stops the scan at its start.
    """
    elements: list[tuple[Any, int, int]] = []
    position = _skip_space(text, 0)
    if not text.startswith("[", position):
        return elements, position, False
    position = _skip_space(text, position + 1)
    if text.startswith("]", position):
        return elements, position + 1, True
    while True:
        try:
            value, value_end = _JSON.raw_decode(text, position)
        except json.JSONDecodeError:
            return elements, position, False
        elements.append((value, position, value_end))
        after = _skip_space(text, value_end)
        if text.startswith("]", after):
            return elements, after + 1, True
        if not text.startswith(",", after):
            return elements, after, False
        position = _skip_space(text, after + 1)


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position].isspace():
        position += 1
    return position
