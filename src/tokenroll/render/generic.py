"""Any model with a chat template: render with the template, attribute by rendering message by message.

The template runs in a sandboxed Jinja environment set up as Hugging Face sets it up
(`tojson`, `raise_exception`, `strftime_now`), so the text is the same as
`apply_chat_template`'s. Message i's text is what rendering `messages[:i+1]` adds to
`messages[:i]`; its body is found inside that text and encoded as plain text; an assistant's
sampled span is what follows the generation prompt, through its stop token. Boundaries are
where each prefix's render stops agreeing with the full text, so templates that close a
group differently once more follows (grouped tool results) still attribute exactly; where
a template rewrites earlier messages, the rewritten span goes to the nearest message and
the ids stay exact.

Rendering costs one template call per message, so this is the slow path; the bridge uses the
same probe as the hand-written families (the dual-rendering method), and returns None in the
same cases.
"""

from __future__ import annotations

import functools
import json
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from tokenroll.core.messages import Message, as_messages
from tokenroll.render.base import Renderer, RenderError, Tools
from tokenroll.render.chatml import ChatMLParser
from tokenroll.render.tape import TokenTape
from tokenroll.render.tokenizer import Tokenizer

# End-of-turn tokens of common templates; a template's stop tokens are those it writes.
_TURN_END_TOKENS = (
    "<|im_end|>",
    "<|eot_id|>",
    "<|eom_id|>",
    "<end_of_turn>",
    "<|end|>",
    "<|return|>",
    "<|call|>",
    "<|endoftext|>",
    "</s>",
    "<｜end▁of▁sentence｜>",
    "<|user|>",
    "<|observation|>",
)


class TemplateRenderer(Renderer):
    """Renders with the tokenizer's own chat template; for models without a hand-written renderer."""

    family = "generic"

    def __init__(self, tokenizer: Tokenizer, **template_kwargs: Any) -> None:
        super().__init__(tokenizer, **template_kwargs)
        if not tokenizer.chat_template:
            raise ValueError(f"tokenizer {tokenizer.name_or_path or ''} has no chat template to render with")
        self._template = _compile(tokenizer.chat_template)
        self._parser = ChatMLParser(tokenizer, reasoning=True)
        template = tokenizer.chat_template
        candidates = [tokenizer.special_tokens.get("eos_token"), *_TURN_END_TOKENS]
        self._stop_ids = list(
            dict.fromkeys(
                tokenizer.token_id(t) for t in candidates if t and t in template and tokenizer.has_token(t)
            )
        )
        eos = tokenizer.special_tokens.get("eos_token")
        if not self._stop_ids and eos and tokenizer.has_token(eos):
            self._stop_ids = [tokenizer.token_id(eos)]
        self._stop_strings = [t for t in dict.fromkeys(candidates) if t and t in template and tokenizer.has_token(t)]

    @property
    def stop_token_ids(self) -> list[int]:
        return list(self._stop_ids)

    def _check_messages(self, messages: Sequence[Message | Mapping[str, Any]]) -> list[Message]:
        return as_messages(messages)  # the template itself decides which roles it renders

    def template_text(
        self, messages: Sequence[Message], tools: Tools | None, add_generation_prompt: bool, options: dict[str, Any]
    ) -> str:
        """The template's output for these messages, as `apply_chat_template(tokenize=False)` gives it."""
        import jinja2

        variables = {name: value for name, value in self.tokenizer.special_tokens.items() if value is not None}
        variables.update(options)
        try:
            return self._template.render(
                messages=[_template_message(m) for m in messages],
                tools=tools,
                documents=None,
                add_generation_prompt=add_generation_prompt,
                **variables,
            )
        except jinja2.TemplateError as exc:
            raise RenderError(f"the chat template refused the conversation: {exc}") from None

    def _render(
        self,
        tape: TokenTape,
        messages: list[Message],
        tools: Tools | None,
        add_generation_prompt: bool,
        options: dict[str, Any],
    ) -> None:
        full = self.template_text(messages, tools, add_generation_prompt, options)
        snap = _snapper(full, self.tokenizer)

        def agreement(count: int, generation_prompt: bool = False) -> tuple[int | None, str]:
            # How far the render of the first `count` messages agrees with the full text (and that render).
            try:
                text = self.template_text(messages[:count], tools, generation_prompt, options)
            except (RenderError, IndexError, TypeError):
                return None, ""
            return snap(_common_prefix_length(text, full)), text

        position = agreement(0)[0] or 0
        tape.markup(full[:position])
        for index, message in enumerate(messages):
            following, text = agreement(index + 1)
            end = max(position, following if following is not None else position)
            if message.role == "assistant":
                opened = agreement(index, generation_prompt=True)[0]
                body_start = opened if opened is not None and position <= opened <= len(full) else position
                stop_end = self._stop_end(full, body_start)
                # What the template writes after this turn's stop token (ChatML's "\n") is
                # scaffolding, even where the turn itself renders differently once more follows.
                footer = self._after_last_stop(text)
                if footer and full.startswith(footer, stop_end):
                    end = max(end, stop_end + len(footer))
                end = max(end, stop_end)
                tape.markup(full[position:body_start], index)
                self._sampled_span(tape, full[body_start:stop_end], message, index)
                tape.markup(full[stop_end:end])
            else:
                _body_segment(tape, full[position:end], message.text, index)
            position = end
        tape.markup(full[position:])

    def _after_last_stop(self, text: str) -> str:
        """The text after the last stop token in `text` ("" when it has none)."""
        ends = [at + len(stop) for stop in self._stop_strings if (at := text.rfind(stop)) != -1]
        return text[max(ends) :] if ends else ""

    def _stop_end(self, full: str, start: int) -> int:
        """End of the first stop token after `start` (the end of a sampled turn), or `start`."""
        ends = [at + len(stop) for stop in self._stop_strings if (at := full.find(stop, start)) != -1]
        return min(ends, default=start)

    @staticmethod
    def _sampled_span(tape: TokenTape, sampled: str, message: Message, index: int) -> None:
        content = message.text
        at = sampled.find(content) if content else -1
        if at == -1:
            tape.markup(sampled, index, content=True, sampled=True)
            return
        tape.markup(sampled[:at], index, content=True, sampled=True)
        tape.text(content, index, sampled=True)
        tape.markup(sampled[at + len(content) :], index, content=True, sampled=True)



def _common_prefix_length(a: str, b: str) -> int:
    # Binary search on slice equality: each comparison runs in C.
    low, high = 0, min(len(a), len(b))
    while low < high:
        middle = (low + high + 1) // 2
        if a[:middle] == b[:middle]:
            low = middle
        else:
            high = middle - 1
    return low


def _snapper(full: str, tokenizer: Tokenizer):
    """A function moving a position that falls inside an added token's string to that string's start."""
    spans = [(match.start(), match.end()) for match in tokenizer.added_pattern.finditer(full)] if tokenizer.added_pattern else []
    starts = [start for start, _ in spans]

    def snap(position: int) -> int:
        i = bisect_right(starts, position) - 1
        if i >= 0 and spans[i][0] < position < spans[i][1]:
            return spans[i][0]
        return position

    return snap


def _body_segment(tape: TokenTape, segment: str, body: str, index: int) -> None:
    at = segment.find(body) if body else -1
    if at == -1:
        tape.markup(segment, index)
        return
    tape.markup(segment[:at], index)
    tape.text(body, index)
    tape.markup(segment[at + len(body) :], index)


def _template_message(message: Message) -> dict[str, Any]:
    """A message as chat templates expect it: tool-call arguments as objects when they are JSON."""
    data = message.to_dict()
    data.setdefault("content", "")  # templates concatenate content; None means no text
    data.pop("token_ids", None)
    data.pop("logprobs", None)
    for call in data.get("tool_calls", []):
        function = call["function"]
        try:
            function["arguments"] = json.loads(function["arguments"])
        except json.JSONDecodeError:
            pass
    if message.reasoning_content is not None:
        data["thinking"] = message.reasoning_content  # the name some templates (gpt-oss) read
    return data


@functools.lru_cache(maxsize=32)
def _compile(source: str):
    """The template in a sandbox configured like Hugging Face's; compiled once per source text."""
    import jinja2
    import jinja2.ext
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise jinja2.TemplateError(message)

    def tojson(value: Any, ensure_ascii: bool = False, indent: int | None = None, separators=None, sort_keys: bool = False) -> str:
        return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(format: str) -> str:
        return datetime.now().strftime(format)

    environment = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    environment.filters["tojson"] = tojson
    environment.globals["raise_exception"] = raise_exception
    environment.globals["strftime_now"] = strftime_now
    return environment.from_string(source)

