"""What every rollout loop shares: token budgets, limits mapped to stop reasons, errors caught."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass

from tokenroll.core.steps import Step
from tokenroll.core.trajectory import StopReason
from tokenroll.engines.base import EngineError, SamplingParams
from tokenroll.envs.base import Limits


@dataclass(slots=True)
class Clock:
    """Seconds a rollout spent waiting on the model and in the environment's own code."""

    model: float = 0.0
    env: float = 0.0


@dataclass(slots=True)
class TokenBudget:
    """A rollout's sampled-token budgets: per turn (`max_tokens`) and overall (`max_sampled_tokens`)."""

    limits: Limits
    per_turn: int
    sampled: int = 0

    @classmethod
    def of(cls, limits: Limits, sampling: SamplingParams) -> TokenBudget:
        if limits.max_tokens is None:
            return cls(limits, sampling.max_tokens)
        return cls(limits, min(sampling.max_tokens, limits.max_tokens))

    def next_turn(self) -> int | None:
        """`max_tokens` for the next turn, or None when the rollout's budget is spent."""
        if self.limits.max_sampled_tokens is None:
            return self.per_turn
        budget = min(self.per_turn, self.limits.max_sampled_tokens - self.sampled)
        return budget if budget >= 1 else None

    def spend(self, step: Step) -> StopReason | None:
        """Count the step's tokens; the stop reason if a limit cut it short, else None."""
        self.sampled += len(step.completion_ids)
        limits = self.limits
        if step.overlong_prompt:
            return StopReason.CONTEXT_OVERFLOW
        if not step.is_truncated:
            return None
        if limits.max_seq_len is not None and step.num_tokens >= limits.max_seq_len:
            return StopReason.CONTEXT_OVERFLOW
        if (
            limits.max_sampled_tokens is not None
            and self.sampled >= limits.max_sampled_tokens
            and len(step.completion_ids) < self.per_turn
        ):
            return StopReason.MAX_SAMPLED_TOKENS
        return StopReason.MAX_TOKENS


async def guarded(limits: Limits, episode: Awaitable[StopReason]) -> tuple[StopReason, str | None]:
    """Run an episode under the rollout's timeout: its stop reason, or the failure's and its error.

    A timeout of the whole rollout is `TIMEOUT`; an engine failure `ENGINE_ERROR`; anything
    else raised (a `TimeoutError` from inside included) `ENV_ERROR`.
    """
    deadline = None
    try:
        if limits.timeout is None:  # no timer to arm: this runs once per rollout
            return await episode, None
        async with asyncio.timeout(limits.timeout) as deadline:
            return await episode, None
    except TimeoutError:
        if deadline is not None and deadline.expired():
            return StopReason.TIMEOUT, None
        return StopReason.ENV_ERROR, describe(TimeoutError())
    except EngineError as exc:
        return StopReason.ENGINE_ERROR, describe(exc)
    except Exception as exc:
        return StopReason.ENV_ERROR, describe(exc)


def describe(exc: BaseException) -> str:
    """`Type: message` of an exception, for `Trajectory.error`."""
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
