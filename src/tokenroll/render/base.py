"""The renderer interface and what every family shares: validation, tools, and the bridge.

The bridge extends a rollout by one turn without touching earlier tokens. It renders a
probe conversation, `[user, assistant] + new_messages` with the generation prompt, and
keeps what follows the probe assistant's last token: that is exactly what the template
writes after a closed assistant turn. Attribution tells where that turn ends, so templates
whose stop token doubles as the next role marker (GLM) need no special case: the marker
belongs to the assistant that sampled it and is never doubled.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from tokenroll.core.attribution import SCAFFOLD, RenderedTokens
from tokenroll.core.messages import Message, ToolCall, as_messages
from tokenroll.render.parsing import ParsedCompletion
from tokenroll.render.tape import TokenTape
from tokenroll.render.tokenizer import Tokenizer

Tools = list[dict[str, Any]]


class RenderError(ValueError):
    """A conversation the template cannot render; the message says which message and why."""


class Renderer(ABC):
    """Turns messages into token ids exactly as a model's chat template does, with attribution."""

    family: ClassVar[str]
    """Name of the model family, as `load_renderer(family=...)` takes it."""
    roles: ClassVar[frozenset[str]] = frozenset({"system", "user", "assistant", "tool"})
    """Roles the template renders."""
    bridge_roles: ClassVar[frozenset[str]] = frozenset({"tool", "user"})
    """Roles the bridge accepts in new messages."""
    tools_after_header: ClassVar[bool] = True
    """Whether tool definitions can change what the template writes after an assistant turn.

    False where they only appear in the conversation's header: the bridge's probe then skips
    rendering them, which is most of its cost in tool loops.
    """

    def __init__(self, tokenizer: Tokenizer, **template_kwargs: Any) -> None:
        self.tokenizer = tokenizer
        self.template_kwargs = template_kwargs

    # --- rendering ---------------------------------------------------------------------

    def render(
        self,
        messages: Sequence[Message | Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]] | None = None,
        add_generation_prompt: bool = False,
        **template_kwargs: Any,
    ) -> RenderedTokens:
        """Token ids of the conversation with per-token attribution."""
        checked = self._check_messages(messages)
        tape = TokenTape(self.tokenizer, [m.role for m in checked], resolve_tool_names(checked))
        options = {**self.template_kwargs, **template_kwargs}
        self._render(tape, checked, _check_tools(tools), add_generation_prompt, options)
        return tape.finish()

    def render_ids(
        self,
        messages: Sequence[Message | Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]] | None = None,
        add_generation_prompt: bool = False,
        **template_kwargs: Any,
    ) -> list[int]:
        """Just the token ids of `render`."""
        return self.render(messages, tools, add_generation_prompt, **template_kwargs).token_ids

    @abstractmethod
    def _render(
        self,
        tape: TokenTape,
        messages: list[Message],
        tools: Tools | None,
        add_generation_prompt: bool,
        options: dict[str, Any],
    ) -> None:
        """Append the whole conversation to the tape."""

    stop_tokens: ClassVar[tuple[str, ...]] = ()
    """The tokens that end an assistant turn when sampled, as strings."""

    @property
    def stop_token_ids(self) -> list[int]:
        """Token ids that end an assistant turn when sampled."""
        return [self.tokenizer.token_id(token) for token in self.stop_tokens]

    # --- parsing -----------------------------------------------------------------------

    _parser: Any = None
    """A family's completion parser (`parse(ids, prompt_ids, tools, stop_ids)`), when it uses a shared one."""

    def parse_completion(
        self,
        completion_ids: Sequence[int],
        prompt_ids: Sequence[int] | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
    ) -> ParsedCompletion:
        """The assistant message a completion encodes, with every tool-call attempt."""
        if self._parser is None:
            raise NotImplementedError(f"{type(self).__name__} must define parse_completion or _parser")
        return self._parser.parse(completion_ids, prompt_ids, tools, self.stop_token_ids)

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
        """The next prompt: the previous prompt and completion verbatim, then the new messages.

        Returns None, so that the caller re-renders and starts a new training sample, when
        `new_messages` is empty or holds a role outside `bridge_roles` (an assistant message
        above all), or when the completion ended on a stop token other than the one the
        template closes this turn with. A completion cut by the token limit gets the turn
        close appended as context that was not sampled.

        `prev_attribution` (the previous prompt's) keeps message indices of the whole
        conversation; without it the previous prompt counts as scaffolding and the previous
        completion as message 0.
        """
        new = as_messages(new_messages)
        if not new or any(m.role not in self.bridge_roles for m in new):
            return None
        self._check_messages(new)
        completion = list(prev_completion_ids)
        probe = self.render(
            [Message(role="user", content="."), self._probe_assistant(completion)] + new,
            tools if self.tools_after_header else None,
            add_generation_prompt=True,
            **template_kwargs,
        )
        assistant_positions = [i for i, m in enumerate(probe.message_indices) if m == 1]
        if not assistant_positions:
            return None
        close = self._turn_close(probe, assistant_positions)
        synthesized: list[int] = []
        if completion and completion[-1] in self.stop_token_ids:
            if not close or completion[-1] != close[-1]:
                return None
        else:
            synthesized = close
        header = self._generation_prompt_ids(probe, assistant_positions)
        # Probe message 2 is the first new message.
        tail = probe.slice(assistant_positions[-1] + 1, len(probe))
        return self._join_bridge(prev_prompt_ids, completion, synthesized, tail, 2, header, new, prev_attribution)

    def _join_bridge(
        self,
        prev_prompt_ids: Sequence[int],
        completion: list[int],
        synthesized: list[int],
        tail: RenderedTokens,
        first_new_index: int,
        header: list[int],
        new: list[Message],
        prev_attribution: RenderedTokens | None,
    ) -> RenderedTokens:
        """The bridged prompt: history verbatim, the completion and its synthesized close, then `tail`.

        `tail` holds the new messages from its message index `first_new_index` on. A history
        ending in exactly `header` as scaffolding ends in the generation prompt that opened
        the new assistant turn; a full render gives those tokens to that assistant, so we do.
        """
        if prev_attribution is not None and len(prev_attribution.token_ids) == len(prev_prompt_ids):
            history = prev_attribution
        else:
            n = len(prev_prompt_ids)
            history = RenderedTokens(list(prev_prompt_ids), [SCAFFOLD] * n, [False] * n, [False] * n, [])
        opened = len(header)
        if not (
            opened
            and history.token_ids[-opened:] == header
            and all(i == SCAFFOLD for i in history.message_indices[-opened:])
        ):
            opened = 0
        turn = opened + len(completion) + len(synthesized)
        shift = 1 - first_new_index  # the assistant turn is message 0 of the extension
        extension = RenderedTokens(
            token_ids=history.token_ids[len(history.token_ids) - opened :] + completion + synthesized + tail.token_ids,
            message_indices=[0] * turn + [m if m == SCAFFOLD else m + shift for m in tail.message_indices],
            sampled_mask=[False] * opened + [True] * len(completion) + [False] * len(synthesized) + tail.sampled_mask,
            is_content=[False] * opened + [True] * len(completion) + [False] * len(synthesized) + tail.is_content,
            message_roles=["assistant"] + [m.role for m in new],
            message_tool_names=[None] + resolve_tool_names(new, self._completion_tool_calls(completion, new)),
        )
        # Joining onto the already valid history copies it once and checks only the extension.
        return history.concat(extension, keep=len(history.token_ids) - opened)

    def _generation_prompt_ids(self, probe: RenderedTokens, assistant_positions: list[int]) -> list[int]:
        """The generation prompt as it opens an assistant turn: the probe assistant's header tokens."""
        return [probe.token_ids[i] for i in assistant_positions if not probe.sampled_mask[i]]

    def _probe_assistant(self, completion_ids: list[int]) -> Message:
        """The assistant message standing for the previous completion in the bridge's probe.

        Families whose next messages depend on what the completion did (gpt-oss names tool
        results after the call) override it.
        """
        return Message(role="assistant", content=".")

    def _turn_close(self, probe: RenderedTokens, assistant_positions: list[int]) -> list[int]:
        """The stop tokens that end the probe assistant's turn (usually one)."""
        close: list[int] = []
        for position in reversed(assistant_positions):
            token = probe.token_ids[position]
            if token not in self.stop_token_ids:
                break
            close.insert(0, token)
        return close

    def _completion_tool_calls(self, completion_ids: list[int], new: list[Message]) -> list[ToolCall]:
        """Tool calls of the previous completion, to name the tool results that answer them.

        Parsed only when a new tool message does not name its tool itself.
        """
        if all(m.role != "tool" or m.name is not None for m in new):
            return []
        try:
            return self.parse_completion(completion_ids).to_message().tool_calls or []
        except Exception:  # naming is best effort; the tokens are what matter
            return []

    # --- shared checks ---------------------------------------------------------------------

    def _check_messages(self, messages: Sequence[Message | Mapping[str, Any]]) -> list[Message]:
        checked = as_messages(messages)
        for index, message in enumerate(checked):
            if message.role not in self.roles:
                raise RenderError(
                    f"message {index}: unknown role {message.role!r}; the {self.family} template "
                    f"renders {', '.join(sorted(self.roles))}"
                )
        return checked


def _check_tools(tools: Sequence[Mapping[str, Any]] | None) -> Tools | None:
    if tools is None:
        return None
    if isinstance(tools, (str, bytes, Mapping)) or not isinstance(tools, Sequence):
        raise RenderError(f"tools must be a list of tool definitions, got {type(tools).__name__}")
    for index, tool in enumerate(tools):
        if not isinstance(tool, Mapping):
            raise RenderError(f"tool {index} is a {type(tool).__name__}, expected a mapping")
    return [dict(tool) for tool in tools] or None


def arguments_object(call: ToolCall, message_index: int, call_index: int) -> Any:
    """A tool call's arguments decoded, for templates that write them as a JSON object."""
    try:
        return json.loads(call.arguments)
    except json.JSONDecodeError as exc:
        raise RenderError(
            f"message {message_index}: tool call {call_index} ({call.name}) arguments are not "
            f"valid JSON ({exc.msg} at char {exc.pos}); this template writes them as a JSON object"
        ) from None


def split_reasoning(message: Message) -> tuple[str, str]:
    """(content, reasoning) as templates with `<think>` read a message.

    `reasoning_content` wins; otherwise reasoning typed inline as `<think>...</think>` is
    split out of the content, as the Qwen3 and GLM templates do.
    """
    content = message.text
    if message.reasoning_content is not None:
        return content, message.reasoning_content
    if "</think>" in content:
        reasoning = content.split("</think>")[0].rstrip("\n").split("<think>")[-1].lstrip("\n")
        return content.split("</think>")[-1].lstrip("\n"), reasoning
    return content, ""


def resolve_tool_names(messages: Sequence[Message], prior_calls: Sequence[ToolCall] = ()) -> list[str | None]:
    """Per message, the name of the tool a tool message answers.

    The tool message's own `name` wins; then its `tool_call_id` joined to an earlier call;
    then position: the k-th tool message after an assistant answers its k-th call.
    """
    by_id: dict[str, str] = {c.id: c.name for c in prior_calls if c.id}
    pending = list(prior_calls)
    position = 0
    names: list[str | None] = []
    for message in messages:
        if message.role == "assistant":
            pending = list(message.tool_calls or [])
            position = 0
            by_id.update({c.id: c.name for c in pending if c.id})
            names.append(None)
            continue
        if message.role != "tool":
            names.append(None)
            continue
        name = message.name
        if name is None and message.tool_call_id is not None:
            name = by_id.get(message.tool_call_id)
        if name is None and position < len(pending):
            name = pending[position].name
        position += 1
        names.append(name)
    return names
