"""Training samples: consecutive steps whose prompts extend each other, merged into one sequence."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tokenroll.core.attribution import RenderedTokens
from tokenroll.core.steps import Step


@dataclass(slots=True, kw_only=True)
class TrainingSample:
    """One token sequence for a trainer, with per-token loss mask, logprobs and advantages.

    `loss_mask` is True on sampled completion tokens only. `logprobs` and `advantages` are
    None when a merged step with completion tokens lacks them (0.0 on prompt tokens otherwise).
    `attribution` covers every token when the last merged step has prompt attribution.
    """

    token_ids: list[int]
    loss_mask: list[bool]
    logprobs: list[float] | None
    advantages: list[float] | None
    attribution: RenderedTokens | None
    step_indices: list[int]
    is_truncated: bool

    def to_dict(self) -> dict[str, Any]:
        """Plain columns for export; attribution columns are flattened next to the token ids."""
        out: dict[str, Any] = {
            "token_ids": self.token_ids,
            "loss_mask": self.loss_mask,
            "logprobs": self.logprobs,
            "advantages": self.advantages,
            "step_indices": self.step_indices,
            "is_truncated": self.is_truncated,
        }
        if self.attribution is not None:
            out["message_indices"] = self.attribution.message_indices
            out["sampled_mask"] = self.attribution.sampled_mask
            out["is_content"] = self.attribution.is_content
            out["message_roles"] = self.attribution.message_roles
            out["message_tool_names"] = self.attribution.message_tool_names
        return out


def build_samples(steps: Sequence[Step]) -> list[TrainingSample]:
    """Merge each run of steps whose prompt extends the previous prompt and completion.

    A truncated step ends its run: what follows a cut sequence cannot be trained as its continuation.
    """
    runs: list[list[int]] = []
    for index, step in enumerate(steps):
        previous = steps[runs[-1][-1]] if runs else None
        if previous is not None and not previous.is_truncated and step.extends(previous):
            runs[-1].append(index)
        else:
            runs.append([index])
    return [_merge([steps[i] for i in run], run) for run in runs]


def _merge(steps: list[Step], indices: list[int]) -> TrainingSample:
    token_ids: list[int] = []
    loss_mask: list[bool] = []
    logprobs: list[float] | None = []
    advantages: list[float] | None = []
    for step in steps:
        new_prompt = step.prompt_ids[len(token_ids) :]
        token_ids += new_prompt
        token_ids += step.completion_ids
        loss_mask += [False] * len(new_prompt)
        loss_mask += step.completion_mask
        logprobs = _extend(logprobs, len(new_prompt), step.completion_logprobs, step)
        advantages = _extend(advantages, len(new_prompt), step.token_advantages(), step)
    last = steps[-1]
    attribution = None
    if last.prompt_attribution is not None:
        attribution = last.prompt_attribution.with_message(
            last.completion_ids, "assistant", sampled=True, is_content=True
        )
    return TrainingSample(
        token_ids=token_ids,
        loss_mask=loss_mask,
        logprobs=logprobs,
        advantages=advantages,
        attribution=attribution,
        step_indices=indices,
        is_truncated=any(step.is_truncated for step in steps),
    )


def _extend(
    column: list[float] | None, n_prompt: int, completion: list[float] | None, step: Step
) -> list[float] | None:
    """Append zeros for new prompt tokens and the step's completion values; None once any are missing."""
    if column is None or (completion is None and step.completion_ids):
        return None
    column += [0.0] * n_prompt
    column += completion or []
    return column
