"""What the ChatML families share: the Hermes tools system block and the completion parser."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from tokenroll.core.attribution import SCAFFOLD
from tokenroll.render.base import Renderer
from tokenroll.render.json_text import to_json
from tokenroll.render.parsing import (
    ParsedCompletion,
    ParsedToolCall,
    find_token,
    json_tool_call,
    tool_names,
)
from tokenroll.render.tape import TokenTape
from tokenroll.render.tokenizer import Tokenizer

HERMES_TOOLS_PREAMBLE = (
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>"
)
HERMES_TOOLS_POSTAMBLE = (
    "\n</tools>\n\nFor each function call, return a json object with function name and arguments "
    'within <tool_call></tool_call> XML tags:\n<tool_call>\n{"name": <function-name>, '
    '"arguments": <args-json-object>}\n</tool_call>'
)


def render_hermes_tools_system(
    tape: TokenTape, system: str | None, tools: list[dict[str, Any]], *, separator: str, from_message: bool
) -> None:
    """The system turn that lists tools after `system`, which is message 0's body when `from_message`."""
    owner = 0 if from_message else SCAFFOLD
    tape.token("<|im_start|>", owner)
    tape.markup("system\n", owner)
    if system is not None:
        tape.text(system, owner, content=from_message)
        tape.markup(separator, owner)
    tape.markup(HERMES_TOOLS_PREAMBLE, owner)
    for tool in tools:
        tape.markup("\n", owner)
        tape.text(to_json(tool), owner, content=False)
    tape.markup(HERMES_TOOLS_POSTAMBLE, owner)
    tape.token("<|im_end|>", owner)
    tape.markup("\n")


class ChatMLRenderer(Renderer):
    """Base of the ChatML families: `<|im_end|>` ends a turn, and completions parse as ChatML."""

    stop_tokens = ("<|im_end|>", "<|endoftext|>")
    tools_after_header = False  # tool definitions only appear in the header
    reasoning: ClassVar[bool] = False
    """Whether completions may open with `<think>` reasoning."""

    def __init__(self, tokenizer: Any, **template_kwargs: Any) -> None:
        super().__init__(tokenizer, **template_kwargs)
        self._parser = ChatMLParser(self.tokenizer, reasoning=self.reasoning)


class ChatMLParser:
    """Parses ChatML completions: optional `<think>` reasoning, then content and `<tool_call>` JSON calls.

    `turn_open` is the marker that opens a turn: looking back through a prompt for an open
    `<think>` stops there.
    """

    def __init__(self, tokenizer: Tokenizer, *, reasoning: bool, turn_open: str = "<|im_start|>") -> None:
        self.tokenizer = tokenizer

        def optional(token: str) -> int | None:
            return tokenizer.token_id(token) if tokenizer.has_token(token) else None

        self.think_open = optional("<think>") if reasoning else None
        self.think_close = optional("</think>") if reasoning else None
        self.call_open = optional("<tool_call>")
        self.call_close = optional("</tool_call>")
        self.turn_open = optional(turn_open)

    def parse(
        self,
        completion_ids: Sequence[int],
        prompt_ids: Sequence[int] | None,
        tools: Sequence[Mapping[str, Any]] | None,
        stop_ids: Sequence[int],
    ) -> ParsedCompletion:
        ids = list(completion_ids)
        stop = ids.pop() if ids and ids[-1] in stop_ids else None
        decode = self.tokenizer.decode
        reasoning: str | None = None
        reasoning_complete: bool | None = None
        lead = ""
        start = 0
        if self.think_open is not None:
            opened_in_prompt = self._prompt_opens_reasoning(prompt_ids)
            open_at = -1 if opened_in_prompt else find_token(ids, self.think_open)
            close_at = find_token(ids, self.think_close, open_at + 1)
            if opened_in_prompt or open_at != -1 or close_at != -1:
                lead = decode(ids[: max(open_at, 0)]) if open_at > 0 else ""
                end = close_at if close_at != -1 else len(ids)
                reasoning = decode(ids[open_at + 1 : end]).strip("\n") or None
                reasoning_complete = close_at != -1
                start = end + 1 if close_at != -1 else len(ids)
        content, calls = self._content_and_calls(ids, start, tool_names(tools))
        if reasoning_complete is not None:
            content = content.lstrip("\n")
        return ParsedCompletion(
            content=lead + content,
            reasoning_content=reasoning,
            tool_calls=calls,
            stop_token_id=stop,
            reasoning_complete=reasoning_complete,
        )

    def _content_and_calls(
        self, ids: list[int], start: int, known: set[str] | None
    ) -> tuple[str, list[ParsedToolCall]]:
        decode = self.tokenizer.decode
        if self.call_open is None:
            return decode(ids[start:]), []
        first = find_token(ids, self.call_open, start)
        if first == -1:
            return decode(ids[start:]), []
        content = decode(ids[start:first]).removesuffix("\n")
        calls: list[ParsedToolCall] = []
        extra: list[str] = []
        position = first
        while position < len(ids):
            opened = find_token(ids, self.call_open, position)
            if opened == -1:
                extra.append(decode(ids[position:]))
                break
            if opened > position:
                extra.append(decode(ids[position:opened]))
            closed = find_token(ids, self.call_close, opened + 1) if self.call_close is not None else -1
            end = closed if closed != -1 else len(ids)
            calls.append(self._tool_call(ids, opened, end, closed != -1, known))
            position = calls[-1].token_span[1]
        # Text the model wrote between or after its calls is kept, not dropped.
        trailing = "".join(extra).strip()
        if trailing:
            content = f"{content}\n{trailing}" if content else trailing
        return content, calls

    def _tool_call(self, ids: list[int], opened: int, end: int, closed: bool, known: set[str] | None) -> ParsedToolCall:
        """The call whose body is `ids[opened + 1:end]`: Hermes JSON here; other formats override this."""
        raw = self.tokenizer.decode(ids[opened + 1 : end]).strip()
        return json_tool_call(raw, (opened, end + 1 if closed else end), known, closed=closed)

    def _prompt_opens_reasoning(self, prompt_ids: Sequence[int] | None) -> bool:
        """Whether the prompt's last turn opened `<think>` without closing it (generation inside reasoning)."""
        if not prompt_ids or self.think_open is None:
            return False
        for token in reversed(prompt_ids):
            if token == self.think_close or token == self.turn_open:
                return False
            if token == self.think_open:
                return True
        return False
