"""One model call of a rollout, and how it is fitted to a sequence-length limit."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from tokenroll.core.attribution import RenderedTokens
from tokenroll.core.messages import Message, as_message, as_messages


@dataclass(slots=True, kw_only=True)
class Step:
    """One model call: the prompt as the engine saw it and the completion as it sampled it.

    Per completion token: `completion_ids`, `completion_logprobs`, `completion_mask` (tokens
    the trainer may learn on; all True by default) and `completion_advantages`.
    """

    prompt_ids: list[int]
    completion_ids: list[int]
    prompt_messages: list[Message] = field(default_factory=list)
    completion_message: Message | None = None
    completion_logprobs: list[float] | None = None
    completion_mask: list[bool] | None = None
    finish_reason: str | None = None
    is_truncated: bool = False
    overlong_prompt: bool = False
    prompt_attribution: RenderedTokens | None = None
    reward: float | None = None
    advantage: float | None = None
    completion_advantages: list[float] | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.prompt_messages = as_messages(self.prompt_messages)
        if isinstance(self.completion_message, Mapping):
            self.completion_message = as_message(self.completion_message)
        if self.completion_mask is None:
            self.completion_mask = [True] * len(self.completion_ids)
        n = len(self.completion_ids)
        for name in ("completion_logprobs", "completion_mask", "completion_advantages"):
            values = getattr(self, name)
            if values is not None and len(values) != n:
                raise ValueError(
                    f"step {name} has {len(values)} values but completion_ids has {n} tokens"
                )
        if self.prompt_attribution is not None and self.prompt_attribution.token_ids != self.prompt_ids:
            raise ValueError(
                f"step prompt_attribution covers {len(self.prompt_attribution.token_ids)} tokens "
                f"that differ from prompt_ids ({len(self.prompt_ids)} tokens); "
                "attribution must describe exactly the prompt"
            )

    @property
    def num_tokens(self) -> int:
        """Prompt plus completion length."""
        return len(self.prompt_ids) + len(self.completion_ids)

    def extends(self, previous: Step) -> bool:
        """Whether this prompt starts with the previous step's prompt and completion, token for token."""
        n_prompt, n_completion = len(previous.prompt_ids), len(previous.completion_ids)
        return (
            len(self.prompt_ids) >= n_prompt + n_completion
            and self.prompt_ids[:n_prompt] == previous.prompt_ids
            and self.prompt_ids[n_prompt : n_prompt + n_completion] == previous.completion_ids
        )

    def token_advantages(self) -> list[float] | None:
        """One advantage per completion token: `completion_advantages`, else the step's scalar spread."""
        if self.completion_advantages is not None:
            return self.completion_advantages
        if self.advantage is None:
            return None
        return [self.advantage] * len(self.completion_ids)

    def to_prime_rl(self) -> dict[str, Any]:
        """The token fields in the shape prime-rl and verifiers consume (`TrajectoryStepTokens`)."""
        attribution = self.prompt_attribution
        return {
            "prompt_ids": self.prompt_ids,
            "prompt_mask": [0] * len(self.prompt_ids),
            "completion_ids": self.completion_ids,
            "completion_mask": [int(m) for m in self.completion_mask],
            "completion_logprobs": self.completion_logprobs,
            "overlong_prompt": self.overlong_prompt,
            "is_truncated": self.is_truncated,
            "prompt_attribution": None
            if attribution is None
            else {
                "token_ids": attribution.token_ids,
                "message_indices": attribution.message_indices,
                "sampled_mask": attribution.sampled_mask,
                "is_content": attribution.is_content,
                "message_roles": attribution.message_roles,
                "message_tool_names": attribution.message_tool_names,
            },
        }


def fit_to_max_seq_len(step: Step, max_seq_len: int) -> Step:
    """The step cut to at most `max_seq_len` tokens; `step` itself when it already fits.

    A prompt over the limit is cut and the completion emptied (`overlong_prompt` and
    `is_truncated` set); otherwise an overflowing completion is cut (`is_truncated` set).
    Every per-token list is cut in lockstep; per-message lists are kept whole.
    """
    if type(max_seq_len) is not int or max_seq_len < 0:
        raise ValueError(f"max_seq_len must be a non-negative integer, got {max_seq_len!r}")
    n_prompt = len(step.prompt_ids)
    if n_prompt > max_seq_len:
        return replace(
            step,
            prompt_ids=step.prompt_ids[:max_seq_len],
            prompt_attribution=None
            if step.prompt_attribution is None
            else step.prompt_attribution.slice(0, max_seq_len),
            **_cut_completion(step, 0),
            overlong_prompt=True,
            is_truncated=True,
            extras=dict(step.extras),
        )
    keep = max_seq_len - n_prompt
    if len(step.completion_ids) > keep:
        return replace(
            step, **_cut_completion(step, keep), is_truncated=True, extras=dict(step.extras)
        )
    return step


def _cut_completion(step: Step, keep: int) -> dict[str, Any]:
    """The completion's per-token lists cut to their first `keep` tokens."""
    return {
        "completion_ids": step.completion_ids[:keep],
        "completion_mask": step.completion_mask[:keep],
        "completion_logprobs": None
        if step.completion_logprobs is None
        else step.completion_logprobs[:keep],
        "completion_advantages": None
        if step.completion_advantages is None
        else step.completion_advantages[:keep],
    }
