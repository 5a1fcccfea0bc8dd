"""One rollout's model calls: build each turn's prompt, sample it, and return a token-exact Step.

A `TurnSampler` belongs to one rollout. Each turn it takes the whole conversation so far,
stitches the prompt onto the previous prompt and completion when the gates allow (only the
new messages are rendered), and otherwise renders the conversation in full, which starts a
new training sample (`Trajectory.to_samples()` sees the prompt no longer extends). Every
step records in `extras["prompt"]` how its prompt was built and why.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from tokenroll.core.attribution import RenderedTokens
from tokenroll.core.messages import Message, as_messages
from tokenroll.core.steps import Step, fit_to_max_seq_len
from tokenroll.engines.base import Engine, FinishReason, Generation, MalformedResponseError, SamplingParams
from tokenroll.render.base import Renderer
from tokenroll.render.generic import TemplateRenderer
from tokenroll.sampling.gates import continuation_gate, new_messages_after
from tokenroll.sampling.stats import BridgeStats, FallbackReason, PromptMode
from tokenroll.sampling.template import ServerTemplate

FIRST_TURN = "first_turn"
BRIDGED = "bridged"


@dataclass(slots=True)
class _Prompt:
    """A built prompt: ids, attribution when known, and how it was built."""

    ids: list[int]
    attribution: RenderedTokens | None
    built: str
    """"render" (in full) or "bridge" (stitched onto the previous step)."""
    reason: str
    """`FIRST_TURN`, `BRIDGED`, or the `FallbackReason` that refused the stitch."""


class TurnSampler:
    """Builds each turn's prompt, calls the engine and returns the Step, for one rollout.

    `mode` is `renderer` (the renderer given), `template` (the model's chat template:
    locally through the generic renderer, or through the engine's `tokenize` with
    `template_source="server"`) or `chat` (`Engine.chat`). `renderer` parses completions
    in the token modes. `drift_check` also renders the full history after each stitch and
    records the tokens that differ.
    """

    def __init__(
        self,
        engine: Engine,
        renderer: Renderer | None = None,
        *,
        mode: PromptMode | str = PromptMode.RENDERER,
        template_source: str = "local",
        sampling: SamplingParams | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        max_seq_len: int | None = None,
        drift_check: bool = False,
        template_kwargs: Mapping[str, Any] | None = None,
        stats: BridgeStats | None = None,
    ) -> None:
        self.engine = engine
        self.mode = PromptMode(mode)
        if template_source not in ("local", "server"):
            raise ValueError(f"template_source must be 'local' or 'server', got {template_source!r}")
        self.template_source = template_source if self.mode is PromptMode.TEMPLATE else None
        if self.mode is not PromptMode.CHAT and renderer is None:
            raise ValueError(f"{self.mode.value} mode needs a renderer (to parse completions)")
        if self.mode is PromptMode.TEMPLATE and not isinstance(renderer, TemplateRenderer):
            # Template mode means the model's own template, even where a hand-written renderer exists.
            renderer = TemplateRenderer(renderer.tokenizer, **renderer.template_kwargs)
        self.renderer = renderer
        self.sampling = sampling or SamplingParams()
        self.tools = None if tools is None else [dict(tool) for tool in tools]
        self.max_seq_len = max_seq_len
        self.drift_check = drift_check
        self.template_kwargs = dict(template_kwargs or {})
        self.stats = stats if stats is not None else BridgeStats()
        self.server: ServerTemplate | None = None
        if self.template_source == "server":
            stops = [*renderer.stop_token_ids, *self.sampling.stop_token_ids]
            self.server = ServerTemplate(engine.tokenize, stops, {**renderer.template_kwargs, **self.template_kwargs})
        self.steps: list[Step] = []
        self._capped = False  # whether the previous step's budget was cut to fit max_seq_len

    async def step(self, messages: Sequence[Message | Mapping[str, Any]]) -> Step:
        """Sample the assistant's next turn of the conversation `messages`."""
        conversation = as_messages(messages)
        self.stats.turns += 1
        if self.mode is PromptMode.CHAT:
            step = await self._chat_step(conversation)
        else:
            step = await self._token_step(conversation)
        self.steps.append(step)
        return step

    # --- token modes ---------------------------------------------------------------------

    async def complete(self, prompt_ids: Sequence[int]) -> Step:
        """Sample a completion of raw prompt ids (no chat template, nothing parsed).

        The step has no messages and no attribution; `max_seq_len` caps it as it caps turns.
        """
        self.stats.turns += 1
        step = await self._sample(list(prompt_ids), None, [], {"mode": "raw", "built": "raw"}, parse=False)
        self.steps.append(step)
        return step

    async def _token_step(self, conversation: list[Message]) -> Step:
        prompt = await self._build_prompt(conversation)
        record: dict[str, Any] = {"mode": self.mode.value, "built": prompt.built, "reason": prompt.reason}
        if self.template_source is not None:
            record["source"] = self.template_source
        if prompt.built == "bridge" and self.drift_check:
            record["drift"] = await self._drift(prompt.ids, conversation)
        return await self._sample(prompt.ids, prompt.attribution, conversation, record, parse=True)

    async def _sample(
        self,
        prompt_ids: list[int],
        attribution: RenderedTokens | None,
        conversation: list[Message],
        record: dict[str, Any],
        *,
        parse: bool,
    ) -> Step:
        """Call the engine on a built prompt, within `max_seq_len`, and return the exact Step."""
        sampling, capped = self._budget(len(prompt_ids))
        self._capped = capped
        if sampling is None:
            # No room left for a single token: the engine is not called.
            record["skipped"] = "prompt reaches max_seq_len"
            step = Step(
                prompt_ids=prompt_ids,
                completion_ids=[],
                prompt_messages=conversation,
                finish_reason=FinishReason.LENGTH.value,
                is_truncated=True,
                overlong_prompt=True,
                prompt_attribution=attribution,
                extras={"prompt": record},
            )
            return fit_to_max_seq_len(step, self.max_seq_len)
        generation = await self.engine.generate(prompt_ids, sampling)
        _check_prompt_echo(prompt_ids, generation)
        # The engine's tokens live on the step only (not copied onto the message), so results store them once.
        message, parse_record = self._parse(generation.completion_ids, prompt_ids) if parse else (None, {})
        extras: dict[str, Any] = {"prompt": record, **parse_record}
        step = Step(
            prompt_ids=prompt_ids,
            completion_ids=list(generation.completion_ids),
            prompt_messages=conversation,
            completion_message=message,
            completion_logprobs=None if generation.completion_logprobs is None else list(generation.completion_logprobs),
            finish_reason=generation.finish_reason.value,
            is_truncated=generation.finish_reason is FinishReason.LENGTH,
            prompt_attribution=attribution,
            extras=extras,
        )
        return step if self.max_seq_len is None else fit_to_max_seq_len(step, self.max_seq_len)

    async def _build_prompt(self, conversation: list[Message]) -> _Prompt:
        previous = self.steps[-1] if self.steps else None
        if previous is None:
            return await self._full(conversation, FIRST_TURN)
        self.stats.bridge_attempts += 1
        refusal = continuation_gate(previous, self._capped)
        new: list[Message] | None = None
        if refusal is None:
            history = previous.prompt_messages + ([previous.completion_message] if previous.completion_message else [])
            new, refusal = new_messages_after(history, conversation)
        if refusal is None:
            bridged, refusal = await self._bridge(previous, new)
            if bridged is not None:
                self.stats.bridge_successes += 1
                return bridged
        self.stats.count_fallback(refusal)
        return await self._full(conversation, refusal.value)

    async def _full(self, conversation: list[Message], reason: str) -> _Prompt:
        self.stats.full_renders += 1
        if self.server is not None:
            return _Prompt(await self.server.render(conversation, self.tools), None, "render", reason)
        rendered = self.renderer.render(conversation, self.tools, add_generation_prompt=True, **self.template_kwargs)
        return _Prompt(rendered.token_ids, rendered, "render", reason)

    async def _bridge(self, previous: Step, new: list[Message]) -> tuple[_Prompt | None, FallbackReason | None]:
        if self.server is not None:
            result = await self.server.bridge(previous.prompt_ids, previous.completion_ids, new, self.tools)
            if result.prompt_ids is None:
                return None, result.refusal
            return _Prompt(result.prompt_ids, None, "bridge", BRIDGED), None
        rendered = self.renderer.bridge(
            previous.prompt_ids,
            previous.completion_ids,
            new,
            self.tools,
            prev_attribution=previous.prompt_attribution,
            **self.template_kwargs,
        )
        if rendered is None:
            return None, FallbackReason.RENDERER_REFUSED
        return _Prompt(rendered.token_ids, rendered, "bridge", BRIDGED), None

    async def _drift(self, stitched: list[int], conversation: list[Message]) -> dict[str, Any]:
        """How the stitched prompt differs from a full render of the same conversation."""
        if self.server is not None:
            full = await self.server.render(conversation, self.tools)
        else:
            full = self.renderer.render_ids(conversation, self.tools, add_generation_prompt=True, **self.template_kwargs)
        differing = sum(a != b for a, b in zip(stitched, full, strict=False)) + abs(len(stitched) - len(full))
        first = next((i for i, (a, b) in enumerate(zip(stitched, full, strict=False)) if a != b), None)
        if first is None and len(stitched) != len(full):
            first = min(len(stitched), len(full))
        self.stats.drift_checks += 1
        if differing:
            self.stats.drifted_steps += 1
            self.stats.drift_tokens += differing
        return {"tokens": differing, "first_position": first, "full_length": len(full)}

    def _budget(self, prompt_length: int) -> tuple[SamplingParams | None, bool]:
        """Sampling params with `max_tokens` cut to fit `max_seq_len` (None: no room), and whether it was cut."""
        if self.max_seq_len is None:
            return self.sampling, False
        room = self.max_seq_len - prompt_length
        if room < 1:
            return None, True
        if room < self.sampling.max_tokens:
            return replace(self.sampling, max_tokens=room), True
        return self.sampling, False

    def _parse(self, completion_ids: list[int], prompt_ids: list[int]) -> tuple[Message, dict[str, Any]]:
        """The completion's assistant message, and tool-call statuses (or the parse error) for `extras`."""
        try:
            parsed = self.renderer.parse_completion(completion_ids, prompt_ids=prompt_ids, tools=self.tools)
        except Exception as exc:  # the tokens stay exact; the environment sees an empty message and the error
            return Message(role="assistant", content=""), {"parse_error": f"{type(exc).__name__}: {exc}"}
        record = {"tool_call_statuses": [c.status.value for c in parsed.tool_calls]} if parsed.tool_calls else {}
        return parsed.to_message(), record

    # --- chat mode -------------------------------------------------------------------------

    async def _chat_step(self, conversation: list[Message]) -> Step:
        generation = await self.engine.chat(conversation, self.tools, self.sampling)
        record: dict[str, Any] = {"mode": PromptMode.CHAT.value, "built": "chat", "reason": "chat"}
        has_tokens = generation.has_tokens
        if not has_tokens:
            record["text_only"] = True
            record["trainable"] = False
            self.stats.text_only_steps += 1
        step = Step(
            prompt_ids=list(generation.prompt_ids) if has_tokens else [],
            completion_ids=list(generation.completion_ids) if has_tokens else [],
            prompt_messages=conversation,
            completion_message=generation.message,
            completion_logprobs=None
            if not has_tokens or generation.completion_logprobs is None
            else list(generation.completion_logprobs),
            finish_reason=FinishReason(generation.finish_reason).value,
            is_truncated=generation.finish_reason == FinishReason.LENGTH,
            extras={"prompt": record},
        )
        return step if self.max_seq_len is None or not has_tokens else fit_to_max_seq_len(step, self.max_seq_len)


def _check_prompt_echo(sent: list[int], generation: Generation) -> None:
    """Refuse a generation whose engine reports having used a prompt other than the one sent.

    An engine that does not echo the prompt (empty `prompt_ids`) is taken at its word.
    """
    used = generation.prompt_ids
    if used and used != sent:
        first = next((i for i, (a, b) in enumerate(zip(sent, used, strict=False)) if a != b), min(len(sent), len(used)))
        raise MalformedResponseError(
            f"engine used a prompt of {len(used)} tokens that differs from the {len(sent)} sent, "
            f"first at position {first}"
        )
