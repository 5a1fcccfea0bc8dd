"""gpt-oss (OpenAI harmony): `<|start|>role<|channel|>...<|message|>body<|end|>` messages.

The template always opens with a system message (model identity, knowledge cutoff, the
date from `strftime_now`, `Reasoning: <effort>`, builtin tools, the channel list), then a
developer message with the first system/developer message as `# Instructions` and the
tools as a TypeScript-like `namespace functions` (its whitespace quirks reproduced).
Later system/developer messages are dropped; tool results are JSON string literals.

Assistant turns:
- with tool calls: only the first call, `<|start|>assistant to=functions.NAME<|channel|>commentary
  json<|message|>ARGS<|call|>` (no `<|constrain|>`), after an analysis message holding its
  reasoning, or its content, unless a later assistant turn without tool calls follows;
- last, without a generation prompt (training): analysis (reasoning) then final,
  ending in `<|return|>`, which is what the model samples;
- any other: only the final answer, ending in `<|end|>`; reasoning is dropped.
Tool results come from `functions.NAME`, NAME being the most recent call's.

`date=` (text or a date; default today, as `strftime_now`) pins "Current date"; the
template's own kwargs are `reasoning_effort`, `model_identity` and `builtin_tools`.

Not prefix-stable: a turn that ended in `<|return|>` is re-rendered with `<|end|>` and
without its analysis once another message follows, and a later final answer drops the
analysis of earlier tool-call turns. A call re-renders as sampled only if the model wrote
it as the template does; gpt-oss usually samples `<|channel|>commentary to=functions.NAME
<|constrain|>json`, so keeping its tokens takes the bridge.

Bridge: None after `<|return|>` (the next full render writes `<|end|>` there) and after
`<|endoftext|>`; None after a completion cut anywhere but inside the body of a message
that calls no tool (there `<|end|>` is synthesized, not sampled); None when the new
messages hold a tool result and the completion did not end in a call. After `<|call|>`
it works, with the tool results named after the completion's call.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date as Date
from datetime import datetime
from typing import Any

from tokenroll.core.attribution import SCAFFOLD, RenderedTokens
from tokenroll.core.messages import Message, ToolCall, as_messages
from tokenroll.render.base import Renderer, RenderError, Tools, arguments_object
from tokenroll.render.json_text import to_json
from tokenroll.render.parsing import (
    ParsedCompletion,
    ParsedToolCall,
    ToolCallStatus,
    named_tool_call,
    tool_names,
)
from tokenroll.render.tape import TokenTape
from tokenroll.render.tokenizer import Tokenizer

DEFAULT_IDENTITY = "You are ChatGPT, a large language model trained by OpenAI."
_CHANNELS = "# Valid channels: analysis, commentary, final. Channel must be included for every message."
_FUNCTIONS_CHANNEL = "\nCalls to these tools must go to the commentary channel: 'functions'."
# The template refuses assistant text that already holds harmony channel headers.
_CHANNEL_HEADERS = ("<|channel|>analysis<|message|>", "<|channel|>final<|message|>")
_RECIPIENT = re.compile(r"\bto=(\S+)")

BROWSER_TOOL = (
    "## browser\n\n"
    "// Tool for browsing.\n"
    "// The `cursor` appears in brackets before each browsing display: `[{cursor}]`.\n"
    "// Cite information from the tool using the following format:\n"
    "// `【{cursor}†L{line_start}(-L{line_end})?】`, for example: `【6†L9-L11】` or `【8†L3】`.\n"
    "// Do not quote more than 10 words directly from the tool output.\n"
    "// sources=web (default: web)\n"
    "namespace browser {\n\n"
    "// Searches for information related to `query` and displays `topn` results.\n"
    "type search = (_: {\n"
    "query: string,\n"
    "topn?: number, // default: 10\n"
    "source?: string,\n"
    "}) => any;\n\n"
    "// Opens the link `id` from the page indicated by `cursor` starting at line number `loc`, "
    "showing `num_lines` lines.\n"
    "// Valid link ids are displayed with the formatting: `【{id}†.*】`.\n"
    "// If `cursor` is not provided, the most recent page is implied.\n"
    "// If `id` is a string, it is treated as a fully qualified URL associated with `source`.\n"
    "// If `loc` is not provided, the viewport will be positioned at the beginning of the document "
    "or centered on the most relevant passage, if available.\n"
    "// Use this function without `id` to scroll to a new location of an opened page.\n"
    "type open = (_: {\n"
    "id?: number | string, // default: -1\n"
    "cursor?: number, // default: -1\n"
    "loc?: number, // default: -1\n"
    "num_lines?: number, // default: -1\n"
    "view_source?: boolean, // default: false\n"
    "source?: string,\n"
    "}) => any;\n\n"
    "// Finds exact matches of `pattern` in the current page, or the page given by `cursor`.\n"
    "type find = (_: {\n"
    "pattern: string,\n"
    "cursor?: number, // default: -1\n"
    "}) => any;\n\n"
    "} // namespace browser\n\n"
)
PYTHON_TOOL = (
    "## python\n\n"
    "Use this tool to execute Python code in your chain of thought. The code will not be shown to "
    "the user. This tool should be used for internal reasoning, but not for code that is intended to "
    "be visible to the user (e.g. when creating plots, tables, or files).\n\n"
    "When you send a message containing Python code to python, it will be executed in a stateful "
    "Jupyter notebook environment. python will respond with the output of the execution or time out "
    "after 120.0 seconds. The drive at '/mnt/data' can be used to save and persist user files. "
    "Internet access for this session is UNKNOWN. Depends on the cluster.\n\n"
)

_MISSING: Any = object()
"""A schema field the template finds undefined."""


class GptOssRenderer(Renderer):
    """gpt-oss-20b and gpt-oss-120b (harmony format)."""

    family = "gpt-oss"
    tools_after_header = False  # tool definitions only appear in the header
    roles = frozenset({"system", "developer", "user", "assistant", "tool"})
    assistant_turn_ends_with_stop = False
    """Earlier assistant turns end on `<|end|>`, which the template writes in place of the sampled `<|return|>`."""

    def __init__(self, tokenizer: Tokenizer, **template_kwargs: Any) -> None:
        super().__init__(tokenizer, **template_kwargs)
        token = tokenizer.token_id
        self._start, self._message = token("<|start|>"), token("<|message|>")
        self._channel, self._constrain = token("<|channel|>"), token("<|constrain|>")
        self._end, self._call, self._return = token("<|end|>"), token("<|call|>"), token("<|return|>")
        self._endoftext = token("<|endoftext|>")
        self._terminators = frozenset({self._end, self._call, self._return, self._endoftext})

    @property
    def stop_token_ids(self) -> list[int]:
        # `<|end|>` is no stop: the model writes it after each analysis message and goes on.
        return [self._return, self._call, self._endoftext]

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
            raise RenderError("the gpt-oss template needs at least one message (it reads messages[0])")
        tape.markup("<|start|>system<|message|>" + _system_text(tools, options) + "<|end|>")

        has_developer = messages[0].role in ("system", "developer")
        owner = 0 if has_developer else SCAFFOLD
        instructions = messages[0].text if has_developer else ""
        if instructions or tools:
            tape.markup("<|start|>developer<|message|>", owner)
            if instructions:
                tape.markup("# Instructions\n\n", owner)
                tape.text(instructions, owner)
                tape.markup("\n\n", owner)
            if tools:
                tape.markup("# Tools\n\n", owner)
                tape.text(_functions_namespace(tools), owner, content=False)
            tape.markup("<|end|>", owner)

        last_call: str | None = None  # the template's `last_tool_call.name`
        for index in range(1 if has_developer else 0, len(messages)):
            message = messages[index]
            if message.role == "assistant":
                last_call = self._render_assistant(tape, messages, index, add_generation_prompt)
            elif message.role == "tool":
                if last_call is None:
                    raise RenderError(f"message {index}: a tool result with no earlier assistant tool call")
                tape.token("<|start|>", index)
                tape.markup("functions.", index)
                tape.text(last_call, index, content=False)
                tape.markup(" to=assistant<|channel|>commentary<|message|>", index)
                # Transformers drops None fields and the template then fails: None is taken as "".
                tape.text(to_json("" if message.content is None else message.content), index)
                tape.token("<|end|>", index)
            elif message.role == "user":
                tape.markup("<|start|>user<|message|>", index)
                tape.text(message.text, index)
                tape.token("<|end|>", index)
            # A system or developer message after the first one is dropped by the template.
        if add_generation_prompt:
            tape.markup("<|start|>assistant")

    def _render_assistant(
        self, tape: TokenTape, messages: list[Message], index: int, add_generation_prompt: bool
    ) -> str | None:
        """One assistant turn; returns the name later tool results are attributed to."""
        message = messages[index]
        content, thinking = message.text, message.reasoning_content
        for field, text in (("content", content), ("reasoning_content", thinking or "")):
            if any(header in text for header in _CHANNEL_HEADERS):
                raise RenderError(
                    f"message {index}: the assistant {field} holds harmony channel headers; pass the "
                    "analysis as reasoning_content and the final answer as content"
                )

        def sampled(markup: str) -> None:
            tape.markup(markup, index, content=True, sampled=True)

        def body(text: str) -> None:
            tape.text(text, index, sampled=True)

        # The generation prompt `<|start|>assistant` is the header; the model samples the rest.
        tape.token("<|start|>", index)
        tape.markup("assistant", index)
        if message.tool_calls is not None:
            if not message.tool_calls:
                raise RenderError(f"message {index}: tool_calls is empty; the template reads its first call")
            if content and thinking:
                raise RenderError(
                    f"message {index}: an assistant turn with tool calls cannot have both content and "
                    "reasoning_content (the template writes one analysis message)"
                )
            answered_later = any(m.role == "assistant" and m.tool_calls is None for m in messages[index + 1 :])
            analysis = content or thinking
            if analysis and not answered_later:
                sampled("<|channel|>analysis<|message|>")
                body(analysis)
                sampled("<|end|><|start|>assistant")
            call = message.tool_calls[0]  # the template writes the first call only
            sampled(" to=functions.")
            body(call.name)
            sampled("<|channel|>commentary json<|message|>")
            body(to_json(arguments_object(call, index, 0)))
            sampled("<|call|>")
            return call.name
        if index == len(messages) - 1 and not add_generation_prompt:
            if thinking is not None:
                sampled("<|channel|>analysis<|message|>")
                body(thinking)
                sampled("<|end|><|start|>assistant")
            sampled("<|channel|>final<|message|>")
            body(content)
            sampled("<|return|>")
            return None
        sampled("<|channel|>final<|message|>")
        body(content)
        sampled("<|end|>")
        return None

    # --- parsing -----------------------------------------------------------------------

    def parse_completion(
        self,
        completion_ids: Sequence[int],
        prompt_ids: Sequence[int] | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
    ) -> ParsedCompletion:
        """Analysis -> reasoning, final (and commentary to no one) -> content, `to=functions.x` -> tool calls.

        Bodies of several messages of one kind are joined with newlines. A completion with
        no harmony header at all is taken as plain content.
        """
        ids = list(completion_ids)
        stop = ids[-1] if ids and ids[-1] in self.stop_token_ids else None
        prefix = self._open_header(prompt_ids)
        joined = prefix + ids
        segments = self._segments(joined)
        known = tool_names(tools)
        decode = self.tokenizer.decode
        if not any(s.channel is not None or s.body is not None or s.recipient for s in segments):
            text = decode(ids[:-1] if stop is not None else ids)
            return ParsedCompletion(content=text, stop_token_id=stop)
        content: list[str] = []
        reasoning: list[str] = []
        reasoning_complete: bool | None = None
        calls: list[ParsedToolCall] = []
        for segment in segments:
            # Only completion tokens are decoded: a body the prompt opened keeps what the prompt wrote.
            text = decode(joined[max(segment.body[0], len(prefix)) : segment.body[1]]) if segment.body else ""
            if segment.recipient is not None:
                calls.append(self._tool_call(segment, text, known, len(prefix)))
            elif segment.body is None:
                continue
            elif segment.channel == "analysis":
                reasoning.append(text)
                reasoning_complete = segment.terminator is not None and reasoning_complete is not False
            else:
                content.append(text)
        return ParsedCompletion(
            content="\n".join(content),
            reasoning_content="\n".join(reasoning) if reasoning else None,
            tool_calls=calls,
            stop_token_id=stop,
            reasoning_complete=reasoning_complete,
        )

    def _open_header(self, prompt_ids: Sequence[int] | None) -> list[int]:
        """The prompt's last message when it is still open (`<|start|>assistant...`), to parse with the completion."""
        for position in range(len(prompt_ids or ()) - 1, -1, -1):
            token = prompt_ids[position]
            if token in self._terminators:
                return []
            if token == self._start:
                return list(prompt_ids[position:])
        return []

    def _segments(self, ids: list[int]) -> list[_Segment]:
        """The harmony messages of `ids`: header parts, body span and terminator of each."""
        segments: list[_Segment] = []
        header_ends = self._terminators | {self._message, self._start}
        position, n = 0, len(ids)
        while position < n:
            start = position
            if ids[position] == self._start:
                position += 1
            parts: dict[str, list[int]] = {"role": [], "channel": [], "constrain": []}
            part = "role"
            saw_channel = False
            while position < n and ids[position] not in header_ends:
                token = ids[position]
                if token == self._channel:
                    part, saw_channel = "channel", True
                elif token == self._constrain:
                    part = "constrain"
                else:
                    parts[part].append(token)
                position += 1
            body: tuple[int, int] | None = None
            if position < n and ids[position] == self._message:
                body_start = position = position + 1
                while position < n and ids[position] != self._start and ids[position] not in self._terminators:
                    position += 1
                body = (body_start, position)
            terminator = None
            if position < n and ids[position] in self._terminators:
                terminator = ids[position]
                position += 1
            if position == start + 1 and ids[start] == self._start and terminator is None and body is None:
                continue  # a `<|start|>` directly followed by another one
            role_text = self.tokenizer.decode(parts["role"])
            channel_text = self.tokenizer.decode(parts["channel"])
            words = [w for w in channel_text.split() if not w.startswith("to=")]
            found = _RECIPIENT.search(role_text) or _RECIPIENT.search(channel_text)
            segments.append(
                _Segment(
                    start=start,
                    end=position,
                    channel=(words[0] if words else "") if saw_channel else None,
                    recipient=found.group(1) if found else None,
                    body=body,
                    terminator=terminator,
                )
            )
        return segments

    @staticmethod
    def _tool_call(segment: _Segment, raw: str, known: set[str] | None, offset: int) -> ParsedToolCall:
        """A message to `functions.NAME` (or another recipient) as a tool-call attempt."""
        name = segment.recipient.removeprefix("functions.") if segment.recipient else ""
        span = (max(segment.start - offset, 0), segment.end - offset)
        if segment.body is None or segment.terminator is None:
            return ParsedToolCall(ToolCallStatus.UNCLOSED, raw, span, name=name or None)
        try:
            arguments = json.loads(raw)
        except json.JSONDecodeError:
            arguments = None
        if not isinstance(arguments, dict):
            return ParsedToolCall(ToolCallStatus.INVALID_JSON, raw, span, name=name or None)
        return named_tool_call(raw, span, known, name, arguments)

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
        """The generic bridge, after refusing cut completions and tool results it cannot place (see the module)."""
        completion = list(prev_completion_ids)
        new = as_messages(new_messages)
        stopped = bool(completion) and completion[-1] in self.stop_token_ids
        if not stopped and not self._cut_in_plain_body(completion):
            return None
        if any(m.role == "tool" for m in new) and self._called_tool(completion) is None:
            return None
        return super().bridge(
            prev_prompt_ids, completion, new, tools, prev_attribution=prev_attribution, **template_kwargs
        )

    def _probe_assistant(self, completion_ids: list[int]) -> Message:
        name = self._called_tool(completion_ids)
        if name is None:
            return super()._probe_assistant(completion_ids)
        return Message(role="assistant", tool_calls=[ToolCall(name=name, arguments="{}")])

    def _turn_close(self, probe: RenderedTokens, assistant_positions: list[int]) -> list[int]:
        # A final message in history closes with `<|end|>`, which is no stop token.
        return [probe.token_ids[assistant_positions[-1]]]

    def _called_tool(self, completion_ids: list[int]) -> str | None:
        """The function a completion ending in `<|call|>` calls (even with bad arguments), else None."""
        if not completion_ids or completion_ids[-1] != self._call:
            return None
        segments = self._segments(completion_ids)
        recipient = segments[-1].recipient if segments else None
        name = recipient.removeprefix("functions.") if recipient else ""
        return name or None

    def _cut_in_plain_body(self, completion_ids: list[int]) -> bool:
        """Whether a completion cut short stopped inside the body of a message that calls no tool."""
        segments = self._segments(completion_ids)
        last = segments[-1] if segments else None
        return last is not None and last.body is not None and last.terminator is None and last.recipient is None


@dataclass(slots=True)
class _Segment:
    """One harmony message in a token sequence; `start`/`end` bound it, its `<|start|>` included."""

    start: int
    end: int
    channel: str | None
    recipient: str | None
    body: tuple[int, int] | None
    terminator: int | None


# --- the system and developer messages -----------------------------------------------------


def _system_text(tools: Tools | None, options: dict[str, Any]) -> str:
    identity = options.get("model_identity", DEFAULT_IDENTITY)
    effort = options.get("reasoning_effort", "medium")
    for name, value in (("model_identity", identity), ("reasoning_effort", effort)):
        if not isinstance(value, str):
            raise RenderError(f"{name} must be a string, got {type(value).__name__}")
    text = f"{identity}\nKnowledge cutoff: 2024-06\nCurrent date: {_date_text(options.get('date'))}\n\nReasoning: {effort}\n\n"
    builtin = options.get("builtin_tools")
    if builtin:
        text += "# Tools\n\n"
        if any(tool == "browser" for tool in builtin):
            text += BROWSER_TOOL
        if any(tool == "python" for tool in builtin):
            text += PYTHON_TOOL
    return text + _CHANNELS + (_FUNCTIONS_CHANNEL if tools else "")


def _date_text(value: Any) -> str:
    """The "Current date" line's value: `date=` as given, or today like the template's `strftime_now`."""
    if value is None:
        return datetime.now().strftime("%Y-%m-%d")
    if isinstance(value, str):
        return value
    if isinstance(value, Date):
        return value.strftime("%Y-%m-%d")
    raise RenderError(f"date must be a string or a date, got {type(value).__name__}")


def _functions_namespace(tools: Tools) -> str:
    """The tools as the template writes them: `namespace functions { type NAME = (_: {...}) => any; }`."""
    text = "## functions\n\nnamespace functions {\n\n"
    for position, tool in enumerate(tools):
        function = _field(tool, "function")
        name, description = _field(function, "name"), _field(function, "description")
        where = f"tool {position}"
        text += _join("// ", description, where) + "\n" + _join("type ", name, where) + " = "
        parameters = _field(function, "parameters")
        properties = _field(parameters, "properties")
        if not (_truthy(parameters) and _truthy(properties)):
            text += "() => any;\n\n"
            continue
        where = f"tool {position} ({name})"
        required = _field(parameters, "required")
        required = required if _truthy(required) else []
        text += "(_: {\n"
        for param, spec in properties.items():
            description = _field(spec, "description")
            if _truthy(description):
                text += _join("// ", description, where) + "\n"
            text += str(param) + ("" if param in required else "?") + ": " + _typescript_type(spec, where)
            default = _field(spec, "default")
            if default is not _MISSING:
                # Only the plain case goes through `tojson`; the others add the raw value to text.
                if _truthy(_field(spec, "enum")):
                    text += _join(", // default: ", default, where)
                elif _truthy(_field(spec, "oneOf")):
                    text += _join("// default: ", default, where)
                else:
                    text += ", // default: " + to_json(default)
            text += ",\n"
        text += "}) => any;\n\n"
    return text + "} // namespace functions"


def _typescript_type(spec: Any, where: str) -> str:
    """The template's `render_typescript_type` macro, whitespace quirks included."""
    kind = _field(spec, "type")
    nullable = " | null" if _truthy(_field(spec, "nullable")) else ""
    if kind == "array":
        items = _field(spec, "items")
        if not _truthy(items):
            return "any[]" + nullable
        item_kind = _field(items, "type")
        if item_kind == "string":
            return "string[]" + nullable
        if item_kind in ("number", "integer"):
            return "number[]" + nullable
        if item_kind == "boolean":
            return "boolean[]" + nullable
        inner = _typescript_type(items, where)
        return ("any[]" if inner == "object | object" or len(inner) > 50 else inner + "[]") + nullable
    if isinstance(kind, (list, tuple)) and kind:
        return " | ".join(str(k) for k in kind) if len(kind) > 1 else str(kind[0])
    one_of = _field(spec, "oneOf")
    if _truthy(one_of):
        # The template's "any" for unions of objects sets a flag inside a loop, where Jinja scopes
        # it away, so every union is written out; the spaces and newlines are the template's.
        variants = []
        for variant in one_of:
            text = _typescript_type(variant, where)
            if _truthy(_field(variant, "description")):
                text += _join("// ", _field(variant, "description"), where)
            if _field(variant, "default") is not _MISSING:
                text += " " * 20 + "// default: " + to_json(_field(variant, "default"))
            variants.append(text)
        return " | \n".join(variants)
    if kind == "string":
        enum = _field(spec, "enum")
        if _truthy(enum):
            return '"' + '" | "'.join(str(value) for value in enum) + '"'
        return "string" + nullable
    if kind in ("number", "integer"):
        return "number"
    if kind == "boolean":
        return "boolean"
    if kind == "object":
        properties = _field(spec, "properties")
        if not _truthy(properties):
            return "object"
        required = _field(spec, "required")
        required = required if _truthy(required) else []
        fields = [
            f"{name}{'' if name in required else '?'}: \n{' ' * 16}{_typescript_type(prop, where)}"
            for name, prop in properties.items()
        ]
        return "{\n" + ", ".join(fields) + "}"
    return "any"


def _field(value: Any, key: str) -> Any:
    """`value.key` as the template reads it: `_MISSING` when undefined."""
    return value.get(key, _MISSING) if isinstance(value, Mapping) else _MISSING


def _truthy(value: Any) -> bool:
    return value is not _MISSING and bool(value)


def _join(prefix: str, value: Any, where: str) -> str:
    """`prefix + value` in the template, which fails unless value is text."""
    if not isinstance(value, str):
        found = "nothing" if value is _MISSING else f"a {type(value).__name__}"
        raise RenderError(f"{where}: the template writes {prefix.strip()!r} followed by text here, got {found}")
    return prefix + value
