"""Chat environments: multi-turn with an `env_response` hook, single-turn, and tool use.

A rollout renders the row's prompt, then alternates model turns (through a `TurnSampler`,
so later turns are stitched token-in/token-out) with the environment's reply, until
`is_completed` says so, the reply is empty, or a limit ends it with its stop reason.
The hooks run in this order: `initial_state`, `setup_state`, `format_prompt`, then per
model turn `is_completed` and, unless it ends the episode, `env_response`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from tokenroll.core.messages import Message, as_messages
from tokenroll.core.trajectory import StopReason, Trajectory
from tokenroll.envs._episode import Clock, TokenBudget, guarded
from tokenroll.envs.base import Environment, Limits, Policy
from tokenroll.envs.datasets import DatasetSource
from tokenroll.envs.tools import Toolbox
from tokenroll.sampling.sampler import TurnSampler


class MultiTurnEnv(Environment):
    """An environment that answers each model turn with `env_response(messages, state)`.

    Rows give the prompt as `prompt` (a string or a list of messages) or `question` (a
    string); `system_prompt` is put first unless the row brings its own system message.
    `state` is a JSON-safe dict per rollout, stored as `trajectory.extras["state"]`.
    """

    def __init__(
        self,
        dataset: DatasetSource | None = None,
        *,
        system_prompt: str | None = None,
        tool_schemas: Sequence[Mapping[str, Any]] | None = None,
        **options: Any,
    ) -> None:
        super().__init__(dataset, **options)
        self.system_prompt = system_prompt
        self.tool_schemas = None if tool_schemas is None else [dict(schema) for schema in tool_schemas]

    # --- hooks ------------------------------------------------------------------------------

    def format_prompt(self, row: Mapping[str, Any]) -> list[Message]:
        """The first prompt's messages for `row`."""
        if "prompt" in row:
            prompt = row["prompt"]
            messages = [Message(role="user", content=prompt)] if isinstance(prompt, str) else as_messages(prompt)
        elif isinstance(row.get("question"), str):
            messages = [Message(role="user", content=row["question"])]
        else:
            raise ValueError("the row has neither a 'prompt' nor a string 'question' field")
        if self.system_prompt is not None and not (messages and messages[0].role == "system"):
            messages.insert(0, Message(role="system", content=self.system_prompt))
        return messages

    def initial_state(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """The rollout's state before its first turn."""
        return {}

    async def setup_state(self, row: Mapping[str, Any], state: dict[str, Any]) -> None:
        """Async work before the first turn (e.g. computing ground truth), under the rollout's limits."""

    async def is_completed(self, messages: list[Message], state: dict[str, Any]) -> bool:
        """Whether the episode is over after the model's latest message."""
        return False

    async def env_response(self, messages: list[Message], state: dict[str, Any]) -> list[Message]:
        """The environment's reply to the model's latest message; an empty list ends the episode."""
        raise NotImplementedError(f"{type(self).__name__} must implement env_response")

    # --- the episode ------------------------------------------------------------------------

    async def rollout(self, policy: Policy, row: Mapping[str, Any]) -> Trajectory:
        trajectory = Trajectory(input=dict(row))
        state = self.initial_state(row)
        trajectory.extras["state"] = state
        started = time.perf_counter()
        sampler = policy.sampler(tools=self.tool_schemas, max_seq_len=self.limits.max_seq_len)
        clock = Clock()
        trajectory.stop_reason, trajectory.error = await guarded(self.limits, self._episode(sampler, row, state, clock))
        trajectory.steps = sampler.steps
        trajectory.timing = {"total": time.perf_counter() - started, "model": clock.model, "env": clock.env}
        trajectory.extras["prompt_stats"] = sampler.stats.to_dict()
        return trajectory

    async def _episode(self, sampler: TurnSampler, row: Mapping[str, Any], state: dict[str, Any], clock: Clock) -> StopReason:
        limits = self.limits
        tick = time.perf_counter()
        await self.setup_state(row, state)
        messages = self.format_prompt(row)
        clock.env += time.perf_counter() - tick
        base = sampler.sampling
        budget = TokenBudget.of(limits, base)
        while True:
            max_tokens = budget.next_turn()
            if max_tokens is None:
                return StopReason.MAX_SAMPLED_TOKENS
            sampler.sampling = base if max_tokens == base.max_tokens else replace(base, max_tokens=max_tokens)
            tick = time.perf_counter()
            step = await sampler.step(messages)
            clock.model += time.perf_counter() - tick
            cut = budget.spend(step)
            if cut is not None:
                return cut
            if "parse_error" in step.extras:
                return StopReason.PARSE_ERROR
            messages = [*messages, step.completion_message]
            tick = time.perf_counter()
            completed = await self.is_completed(messages, state)
            clock.env += time.perf_counter() - tick
            if completed:
                return StopReason.COMPLETED
            if limits.max_turns is not None and len(sampler.steps) >= limits.max_turns:
                return StopReason.MAX_TURNS
            tick = time.perf_counter()
            reply = await self.env_response(messages, state)
            clock.env += time.perf_counter() - tick
            if not reply:
                return StopReason.COMPLETED
            messages = [*messages, *as_messages(reply)]


class SingleTurnEnv(MultiTurnEnv):
    """One model turn per rollout: the prompt, the answer, done."""

    async def is_completed(self, messages: list[Message], state: dict[str, Any]) -> bool:
        return True


class ToolEnv(MultiTurnEnv):
    """The model calls Python functions as tools until it answers without a tool call.

    Each call's result (or error, as a tool message starting with `ERROR_PREFIX`) is the
    environment's reply; `state` counts `tool_calls` and `tool_errors`. Without a
    `max_turns` limit, rollouts stop after 10 model turns.
    """

    def __init__(
        self,
        dataset: DatasetSource | None = None,
        *,
        tools: Iterable[Callable[..., Any]] | Toolbox,
        tool_timeout: float = 30.0,
        limits: Limits | None = None,
        **options: Any,
    ) -> None:
        self.toolbox = tools if isinstance(tools, Toolbox) else Toolbox(tools, timeout=tool_timeout)
        limits = limits or Limits()
        if limits.max_turns is None:
            limits = replace(limits, max_turns=10)
        super().__init__(dataset, tool_schemas=self.toolbox.schemas, limits=limits, **options)

    def initial_state(self, row: Mapping[str, Any]) -> dict[str, Any]:
        return {"tool_calls": 0, "tool_errors": 0}

    async def is_completed(self, messages: list[Message], state: dict[str, Any]) -> bool:
        return not messages[-1].tool_calls

    async def env_response(self, messages: list[Message], state: dict[str, Any]) -> list[Message]:
        calls = messages[-1].tool_calls or []
        results = await asyncio.gather(*(self.toolbox.call(call) for call in calls))
        state["tool_calls"] = state.get("tool_calls", 0) + len(results)
        state["tool_errors"] = state.get("tool_errors", 0) + sum(result.error is not None for result in results)
        return [result.message for result in results]
