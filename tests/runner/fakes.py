"""A deterministic engine for runner tests: each answer is a function of its prompt alone.

Rollouts run concurrently, so the order in which an engine is called is not fixed; an
engine that answers from the prompt (and the sampling seed, which the runner derives from
the rollout's place) gives every rollout the same completions in any order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tests.sampling.conversations import sampled
from tokenroll.core.messages import Message
from tokenroll.engines.base import Engine, Generation, SamplingParams
from tokenroll.render.base import Renderer

Respond = Callable[[str, SamplingParams], Message]
"""(the decoded prompt, the request's sampling) -> the assistant message to sample; may raise."""


def logprobs_for(completion_ids: Sequence[int]) -> list[float]:
    """The logprobs `PromptEngine` reports: -0.25, -0.5, ... (exact in binary floating point)."""
    return [-0.25 * (i + 1) for i in range(len(completion_ids))]


@dataclass
class PromptEngine(Engine):
    """Samples `respond(prompt text, sampling)`, as the tokens the renderer gives that assistant message."""

    renderer: Renderer
    respond: Respond
    tools: Sequence[Mapping[str, Any]] | None = None
    model: str = "prompt-engine"
    prompts: list[list[int]] = field(default_factory=list)

    def completion_ids(self, message: Message) -> list[int]:
        """The ids the model samples for `message` (through its stop token)."""
        return sampled(self.renderer, [Message(role="user", content="?"), message], 1, tools=self.tools)

    async def generate(self, prompt_ids: Sequence[int], sampling: SamplingParams) -> Generation:
        self.prompts.append(list(prompt_ids))
        message = self.respond(self.renderer.tokenizer.decode(list(prompt_ids)), sampling)
        completion = self.completion_ids(message)
        return Generation(
            prompt_ids=list(prompt_ids),
            completion_ids=completion,
            completion_logprobs=logprobs_for(completion),
            finish_reason="stop",
        )
