"""Raw-completion environments: one model call on a token prompt built without a chat template.

A subclass gives `prompt_ids(row, policy)` and `parse(completion_ids, row, policy)`; the
rollout samples once under the environment's limits (per-turn `max_tokens`, `max_seq_len`,
`timeout`) and stores what `parse` returns as `trajectory.extras["state"]` for the rubric.
The policy's chat stop tokens mean nothing without the template, so requests stop on the
environment's own `stop_token_ids` (plus any the user set) instead.
"""

from __future__ import annotations

import time
from abc import abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from tokenroll.core.trajectory import StopReason, Trajectory
from tokenroll.engines.base import SamplingParams
from tokenroll.envs._episode import Clock, TokenBudget, guarded
from tokenroll.envs.base import Environment, Policy
from tokenroll.sampling.sampler import TurnSampler
from tokenroll.sampling.stats import PromptMode


class CompletionEnv(Environment):
    """One model call per rollout on raw prompt ids; `parse` turns the completion into state."""

    # --- hooks ------------------------------------------------------------------------------

    @abstractmethod
    def prompt_ids(self, row: Mapping[str, Any], policy: Policy) -> list[int]:
        """The prompt's token ids for `row`, in the policy's vocabulary."""

    def stop_token_ids(self, row: Mapping[str, Any], policy: Policy) -> Sequence[int]:
        """Token ids that end the completion (the engine's own EOS ends it anyway)."""
        return ()

    @abstractmethod
    async def parse(self, completion_ids: list[int], row: Mapping[str, Any], policy: Policy) -> dict[str, Any]:
        """The rollout's state from its completion (also a cut one); JSON-safe."""

    # --- the episode ------------------------------------------------------------------------

    async def rollout(self, policy: Policy, row: Mapping[str, Any]) -> Trajectory:
        trajectory = Trajectory(input=dict(row))
        trajectory.extras["state"] = {}
        started = time.perf_counter()
        clock = Clock()
        sampler: TurnSampler | None = None

        async def episode() -> StopReason:
            nonlocal sampler
            tick = time.perf_counter()
            if policy.renderer is None or policy.mode is PromptMode.CHAT:
                raise ValueError(
                    f"{self.name} prompts with raw token ids; it needs a token-mode policy with a renderer")
            prompt = self.prompt_ids(row, policy)
            sampling = self._sampling(row, policy)
            clock.env += time.perf_counter() - tick
            budget = TokenBudget.of(self.limits, sampling)
            # The only call: nothing is spent yet, so next_turn() is a positive budget, never None.
            sampler = TurnSampler(
                policy.engine, policy.renderer, sampling=replace(sampling, max_tokens=budget.next_turn()),
                max_seq_len=self.limits.max_seq_len,
            )
            tick = time.perf_counter()
            step = await sampler.complete(prompt)
            clock.model += time.perf_counter() - tick
            tick = time.perf_counter()
            trajectory.extras["state"] = await self.parse(list(step.completion_ids), row, policy)
            clock.env += time.perf_counter() - tick
            return budget.spend(step) or StopReason.COMPLETED

        trajectory.stop_reason, trajectory.error = await guarded(self.limits, episode())
        trajectory.steps = [] if sampler is None else sampler.steps
        trajectory.timing = {"total": time.perf_counter() - started, "model": clock.model, "env": clock.env}
        return trajectory

    def _sampling(self, row: Mapping[str, Any], policy: Policy) -> SamplingParams:
        """The policy's sampling with the chat stop tokens replaced by this environment's."""
        chat_stops = set(policy.renderer.stop_token_ids)
        user_stops = [t for t in policy.sampling.stop_token_ids if t not in chat_stops]
        stops = tuple(dict.fromkeys([*self.stop_token_ids(row, policy), *user_stops]))
        return replace(policy.sampling, stop_token_ids=stops)
