"""DeepSeek-V3 (December 2024 template): `<｜User｜>`/`<｜Assistant｜>` turns, fenced JSON tool calls.

What the template does, quirks included (matched exactly):
- BOS, then every system message's text (wherever it stands), joined by blank lines;
  tool definitions are not rendered at all. No separator closes a user turn.
- An assistant turn is `<｜Assistant｜>content<｜end▁of▁sentence｜>`; after tool results it
  opens with `<｜tool▁outputs▁end｜>` instead of `<｜Assistant｜>`.
- Tool calls are rendered only when the content is None (content "" drops them). Arguments
  are written verbatim, so they need not be valid JSON. The first call of the whole
  conversation opens with `<｜Assistant｜><｜tool▁calls▁begin｜>` and is not closed; every
  later call, in any message, is `\\n<｜tool▁call▁begin｜>...` closed by
  `<｜tool▁calls▁end｜><｜end▁of▁sentence｜>` (so a single-call message ends on
  `<｜tool▁call▁end｜>`, and a later tool-call message has no `<｜Assistant｜>`).
- Only the first tool result of the conversation opens `<｜tool▁outputs▁begin｜>`; later
  ones start with a newline. `<｜tool▁outputs▁end｜>` is written before an assistant with
  content or at the end, and the generation prompt after tool results is just that.

The template tests `content is none`; transformers 5 drops None-valued message keys before
rendering, which makes it fail on tool-call messages, so parity is with the template as
transformers 4 applies it (None kept).

Prefix-stable for plain turns and for tool calls written as the template writes them. The
model's own tool-call turn (closed by `<｜tool▁calls▁end｜><｜end▁of▁sentence｜>`) is
re-rendered without that close when it is the conversation's first call, and a later
tool-call turn loses the `<｜Assistant｜>` the model was prompted with: the bridge keeps
what was sampled.

Bridge: tool results and user messages. After a completion cut by the token limit the close
is what the template writes: `<｜end▁of▁sentence｜>` after text, nothing after the
conversation's first single call ending on `<｜tool▁call▁end｜>`, else the rest of
`<｜tool▁calls▁end｜><｜end▁of▁sentence｜>`. None when the completion was cut inside a tool call.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tokenroll.core.attribution import RenderedTokens
from tokenroll.core.messages import Message, as_messages
from tokenroll.render.base import Renderer, Tools, resolve_tool_names
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

BOS = "<｜begin▁of▁sentence｜>"
EOS = "<｜end▁of▁sentence｜>"
USER = "<｜User｜>"
ASSISTANT = "<｜Assistant｜>"
CALLS_BEGIN = "<｜tool▁calls▁begin｜>"
CALLS_END = "<｜tool▁calls▁end｜>"
CALL_BEGIN = "<｜tool▁call▁begin｜>"
CALL_END = "<｜tool▁call▁end｜>"
SEP = "<｜tool▁sep｜>"
OUTPUTS_BEGIN = "<｜tool▁outputs▁begin｜>"
OUTPUTS_END = "<｜tool▁outputs▁end｜>"
OUTPUT_BEGIN = "<｜tool▁output▁begin｜>"
OUTPUT_END = "<｜tool▁output▁end｜>"


@dataclass(slots=True)
class _State:
    """The template's namespace flags, which carry across the whole conversation."""

    calls_seen: bool = False  # ns.is_first
    outputs_seen: bool = False  # not ns.is_output_first
    after_tool: bool = False  # ns.is_tool


class DeepSeekV3Renderer(Renderer):
    """DeepSeek-V3 with its original chat template (not R1 or V3.1, which add `<think>`)."""

    family = "deepseek-v3"
    tools_after_header = False  # tool definitions only appear in the header
    assistant_turn_ends_with_stop = False
    """A single-call message that is the conversation's first ends on `<｜tool▁call▁end｜>`."""

    def __init__(self, tokenizer: Tokenizer, **template_kwargs: Any) -> None:
        super().__init__(tokenizer, **template_kwargs)
        self._bos = tokenizer.special_tokens.get("bos_token") or BOS
        self._ids = {
            token: tokenizer.token_id(token)
            for token in (EOS, ASSISTANT, CALLS_BEGIN, CALLS_END, CALL_BEGIN, CALL_END, SEP, OUTPUT_BEGIN, OUTPUTS_END)
        }

    @property
    def stop_token_ids(self) -> list[int]:
        return [self._ids[EOS]]

    # --- rendering ---------------------------------------------------------------------

    def _render(
        self,
        tape: TokenTape,
        messages: list[Message],
        tools: Tools | None,
        add_generation_prompt: bool,
        options: dict[str, Any],
    ) -> None:
        tape.markup(self._bos)
        systems = [index for index, message in enumerate(messages) if message.role == "system"]
        for n, index in enumerate(systems):
            if n:
                tape.markup("\n\n")
            tape.text(messages[index].text, index)
        self._render_turns(tape, messages, 0, _State(), add_generation_prompt)

    def _render_turns(
        self, tape: TokenTape, messages: list[Message], first_index: int, state: _State, add_generation_prompt: bool
    ) -> None:
        """Everything after the system prompt, from template state `state`; messages are numbered from `first_index`."""
        for offset, message in enumerate(messages):
            index = first_index + offset
            if message.role == "user":
                state.after_tool = False
                tape.token(USER, index)
                tape.text(message.text, index)
            elif message.role == "assistant" and message.content is None:
                state.after_tool = False
                self._render_calls(tape, message, index, state)
            elif message.role == "assistant":
                tape.token(OUTPUTS_END if state.after_tool else ASSISTANT, index)
                state.after_tool = False
                tape.text(message.text, index, sampled=True)
                tape.token(EOS, index, content=True, sampled=True)
            elif message.role == "tool":
                state.after_tool = True
                if state.outputs_seen:
                    tape.markup("\n", index)
                else:
                    tape.token(OUTPUTS_BEGIN, index)
                    state.outputs_seen = True
                tape.token(OUTPUT_BEGIN, index)
                tape.text(message.text, index)
                tape.token(OUTPUT_END, index)
        if state.after_tool:
            tape.token(OUTPUTS_END)
        elif add_generation_prompt:
            tape.token(ASSISTANT)

    @staticmethod
    def _render_calls(tape: TokenTape, message: Message, index: int, state: _State) -> None:
        def marker(token: str) -> None:
            tape.token(token, index, content=True, sampled=True)

        for call in message.tool_calls or []:
            first = not state.calls_seen
            if first:
                tape.token(ASSISTANT, index)
                marker(CALLS_BEGIN)
                state.calls_seen = True
            else:
                tape.text("\n", index, sampled=True)
            marker(CALL_BEGIN)
            tape.text("function", index, sampled=True)
            marker(SEP)
            tape.text(call.name + "\n```json\n" + call.arguments + "\n```", index, sampled=True)
            marker(CALL_END)
            if not first:
                marker(CALLS_END)
                marker(EOS)

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
        """The next prompt, rendering the new messages from the template state the history leaves.

        The template's flags (a first call or first tool result already written) span the
        whole conversation, so the generic probe cannot be used; they are read off the ids.
        """
        new = as_messages(new_messages)
        if not new or any(m.role not in self.bridge_roles for m in new):
            return None
        self._check_messages(new)
        prompt, completion = list(prev_prompt_ids), list(prev_completion_ids)
        close = self._close(prompt, completion)
        if close is None:
            return None
        state = _State(
            calls_seen=self._ids[CALL_BEGIN] in prompt or self._ids[CALL_BEGIN] in completion,
            outputs_seen=self._ids[OUTPUT_BEGIN] in prompt,
        )
        tape = TokenTape(self.tokenizer, [m.role for m in new], resolve_tool_names(new))
        self._render_turns(tape, new, 0, state, add_generation_prompt=True)
        # The generation prompt the model answered: after tool results it is `<｜tool▁outputs▁end｜>`.
        header = [prompt[-1]] if prompt and prompt[-1] in (self._ids[ASSISTANT], self._ids[OUTPUTS_END]) else []
        return self._join_bridge(prompt, completion, close, tape.finish(), 0, header, new, prev_attribution)

    def _close(self, prompt: list[int], completion: list[int]) -> list[int] | None:
        """What the template writes after this completion to close the turn; None when that is unknown."""
        ids = self._ids
        if completion and completion[-1] == ids[EOS]:
            return []
        calls = completion.count(ids[CALL_BEGIN])
        if not calls and ids[CALLS_BEGIN] not in completion:
            return [ids[EOS]]
        if completion[-1] == ids[CALLS_END]:
            return [ids[EOS]]
        if completion[-1] != ids[CALL_END]:
            return None
        if calls == 1 and ids[CALL_BEGIN] not in prompt:
            return []
        return [ids[CALLS_END], ids[EOS]]

    # --- parsing -----------------------------------------------------------------------

    def parse_completion(
        self,
        completion_ids: Sequence[int],
        prompt_ids: Sequence[int] | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
    ) -> ParsedCompletion:
        """Content, then `<｜tool▁call▁begin｜>type<｜tool▁sep｜>name` calls with ```json fenced arguments."""
        ids = list(completion_ids)
        stop = ids.pop() if ids and ids[-1] in self.stop_token_ids else None
        decode = self.tokenizer.decode
        known = tool_names(tools)
        begins = [i for i, t in enumerate(ids) if t in (self._ids[CALLS_BEGIN], self._ids[CALL_BEGIN])]
        if not begins:
            return ParsedCompletion(content=decode(ids), stop_token_id=stop)
        content = decode(ids[: begins[0]]).rstrip("\n")
        calls: list[ParsedToolCall] = []
        extra: list[str] = []
        position = begins[0]
        while position < len(ids):
            opened = find_token(ids, self._ids[CALL_BEGIN], position)
            if opened == -1:
                extra.append(self._between_calls(ids[position:]))
                break
            extra.append(self._between_calls(ids[position:opened]))
            closed = find_token(ids, self._ids[CALL_END], opened + 1)
            end = closed if closed != -1 else len(ids)
            span = (opened, end + 1 if closed != -1 else end)
            calls.append(self._call(ids[opened + 1 : end], span, known, closed=closed != -1))
            position = span[1]
        # Text the model wrote between or after its calls is kept, not dropped.
        trailing = "".join(extra).strip()
        if trailing:
            content = f"{content}\n{trailing}" if content else trailing
        return ParsedCompletion(content=content, tool_calls=calls, stop_token_id=stop)

    def _between_calls(self, ids: list[int]) -> str:
        markers = (self._ids[CALLS_BEGIN], self._ids[CALLS_END])
        return self.tokenizer.decode([t for t in ids if t not in markers])

    def _call(self, ids: list[int], span: tuple[int, int], known: set[str] | None, *, closed: bool) -> ParsedToolCall:
        """One call: `type<｜tool▁sep｜>name\\n```json\\n{arguments}\\n````."""
        raw = self.tokenizer.decode(ids)
        if not closed:
            return ParsedToolCall(ToolCallStatus.UNCLOSED, raw, span)
        sep = find_token(ids, self._ids[SEP])
        if sep == -1:
            return ParsedToolCall(ToolCallStatus.MISSING_NAME, raw, span)
        name, _, body = self.tokenizer.decode(ids[sep + 1 :]).partition("\n")
        body = body.strip()
        if body.startswith("```"):
            body = body.removeprefix("```json").removeprefix("```").removesuffix("```").strip()
        try:
            arguments = json.loads(body)
        except json.JSONDecodeError:
            return ParsedToolCall(ToolCallStatus.INVALID_JSON, raw, span, name=name.strip() or None)
        return named_tool_call(raw, span, known, name.strip(), arguments)
