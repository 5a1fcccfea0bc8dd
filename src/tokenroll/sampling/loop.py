"""A plain N-turn tool loop over an engine: the workload of `bench/engine.py` and of end-to-end tests."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from tokenroll.core.messages import Message, as_messages
from tokenroll.core.steps import Step
from tokenroll.core.trajectory import StopReason, Trajectory
from tokenroll.engines.base import Engine, FinishReason
from tokenroll.render.base import Renderer
from tokenroll.sampling.sampler import TurnSampler
from tokenroll.sampling.stats import BridgeStats, PromptMode

FollowUp = Callable[[int, Step], list[Message]]
"""Given the turn index and its step, the messages the environment answers with."""


def answer_tool_calls(turn: int, step: Step) -> list[Message]:
    """One tool message per tool call (content "ok"), or a user message when there is none.

    Tool results name their call, so templates that key results by name or id render them.
    """
    message = step.completion_message
    calls = (message.tool_calls or []) if message is not None else []
    if not calls:
        return [Message(role="user", content=f"Continue (turn {turn + 1}).")]
    return [Message(role="tool", content="ok", tool_call_id=call.id, name=call.name) for call in calls]


async def run_tool_loop(
    engine: Engine,
    renderer: Renderer | None,
    messages: Sequence[Message | Mapping[str, Any]],
    *,
    turns: int,
    follow_up: FollowUp = answer_tool_calls,
    stats: BridgeStats | None = None,
    **sampler_options: Any,
) -> Trajectory:
    """Run up to `turns` model calls, answering each with `follow_up`; the trajectory carries the stats.

    `sampler_options` go to `TurnSampler` (mode, template_source, sampling, tools,
    max_seq_len, drift_check, template_kwargs). The loop stops early, with the stop reason
    set, when a turn is cut by the token limit or reaches `max_seq_len`.
    """
    if turns < 1:
        raise ValueError(f"turns must be at least 1, got {turns}")
    sampler = TurnSampler(engine, renderer, stats=stats, **sampler_options)
    conversation = as_messages(messages)
    stop_reason = StopReason.MAX_TURNS
    for turn in range(turns):
        step = await sampler.step(conversation)
        if step.overlong_prompt:
            stop_reason = StopReason.CONTEXT_OVERFLOW
            break
        if step.finish_reason == FinishReason.LENGTH:
            stop_reason = StopReason.MAX_TOKENS
            break
        if turn + 1 < turns:
            conversation = [*conversation, step.completion_message, *follow_up(turn, step)]
    return Trajectory(
        input={"messages": [m.to_dict() for m in as_messages(messages)]},
        steps=sampler.steps,
        stop_reason=stop_reason,
        extras={"prompt_stats": sampler.stats.to_dict(), "mode": PromptMode(sampler.mode).value},
    )
