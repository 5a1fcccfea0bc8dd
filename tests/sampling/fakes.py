"""A scripted engine for sampling tests: returns given completions and records the prompts it got."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tokenroll.core.messages import Message
from tokenroll.engines.base import ChatGeneration, Engine, FinishReason, Generation, SamplingParams
from tokenroll.render.base import Renderer


@dataclass
class Scripted:
    """One scripted completion."""

    completion_ids: list[int]
    logprobs: list[float] | None = None
    finish_reason: FinishReason = FinishReason.STOP
    echo: list[int] | None = None
    """The prompt the engine claims to have used; the prompt sent when None."""

    def __post_init__(self) -> None:
        if self.logprobs is None:
            self.logprobs = [-0.125 * (i + 1) for i in range(len(self.completion_ids))]


@dataclass
class ScriptedEngine(Engine):
    """Answers `generate` from a script, in order; `tokenize` renders with `template` when given."""

    script: list[Scripted] = field(default_factory=list)
    chat_script: list[ChatGeneration] = field(default_factory=list)
    template: Renderer | None = None
    model: str = "scripted"
    prompts: list[list[int]] = field(default_factory=list)
    samplings: list[SamplingParams] = field(default_factory=list)
    tokenize_calls: int = 0

    async def generate(self, prompt_ids: Sequence[int], sampling: SamplingParams) -> Generation:
        self.prompts.append(list(prompt_ids))
        self.samplings.append(sampling)
        answer = self.script[len(self.prompts) - 1]
        return Generation(
            prompt_ids=list(prompt_ids) if answer.echo is None else answer.echo,
            completion_ids=list(answer.completion_ids),
            completion_logprobs=list(answer.logprobs),
            finish_reason=answer.finish_reason,
        )

    async def chat(
        self, messages: Sequence[Message], tools: Sequence[Mapping[str, Any]] | None, sampling: SamplingParams
    ) -> ChatGeneration:
        self.samplings.append(sampling)
        return self.chat_script[len(self.samplings) - 1]

    async def tokenize(
        self,
        messages: Sequence[Message],
        tools: Sequence[Mapping[str, Any]] | None,
        add_generation_prompt: bool,
        chat_template_kwargs: Mapping[str, Any] | None = None,
    ) -> list[int]:
        if self.template is None:
            raise NotImplementedError("this engine has no template")
        self.tokenize_calls += 1
        return self.template.render_ids(messages, tools, add_generation_prompt, **(chat_template_kwargs or {}))


@dataclass
class FunctionEngine(Engine):
    """Answers each `generate` with `respond(prompt_ids, sampling)`, after `delay` seconds; order-free.

    Concurrent rollouts call it in any order, so its answers depend only on the request.
    `respond` may raise (e.g. an `EngineError`) to fail that request.
    """

    respond: Callable[[list[int], SamplingParams], Scripted]
    delay: float = 0.0
    model: str = "function"
    calls: list[tuple[list[int], SamplingParams]] = field(default_factory=list)

    async def generate(self, prompt_ids: Sequence[int], sampling: SamplingParams) -> Generation:
        self.calls.append((list(prompt_ids), sampling))
        if self.delay:
            await asyncio.sleep(self.delay)
        answer = self.respond(list(prompt_ids), sampling)
        return Generation(
            prompt_ids=list(prompt_ids),
            completion_ids=list(answer.completion_ids),
            completion_logprobs=list(answer.logprobs),
            finish_reason=answer.finish_reason,
        )

