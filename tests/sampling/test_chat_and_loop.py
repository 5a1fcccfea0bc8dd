"""Chat mode (message in, tokens out when the provider gives them) and the bench's N-turn tool loop."""

from __future__ import annotations

import asyncio

from tests.render.glm_tokenizer import glm_hf_tokenizer
from tests.sampling.conversations import QWEN_IM_END, TOOLS, call, renderer, sampled, tool, user
from tests.sampling.fakes import Scripted, ScriptedEngine
from tokenroll.core.messages import Message
from tokenroll.core.trajectory import StopReason, Trajectory
from tokenroll.engines.base import ChatGeneration, FinishReason
from tokenroll.render import load_renderer
from tokenroll.sampling import BridgeStats, TurnSampler, run_tool_loop


def test_chat_mode_keeps_provider_ids_and_marks_text_only_steps():
    with_ids = ChatGeneration(
        message=Message(role="assistant", content="hi"),
        finish_reason=FinishReason.STOP,
        prompt_ids=[1, 2, 3],
        completion_ids=[4, 5],
        completion_logprobs=[-0.5, -0.25],
    )
    text_only = ChatGeneration(message=Message(role="assistant", content="bye"), finish_reason=FinishReason.LENGTH)
    engine = ScriptedEngine(chat_script=[with_ids, text_only])
    sampler = TurnSampler(engine, mode="chat")

    async def go():
        first = await sampler.step([user("hello")])
        return first, await sampler.step([user("hello"), first.completion_message, user("again")])

    first, second = asyncio.run(go())
    assert (first.prompt_ids, first.completion_ids, first.completion_logprobs) == ([1, 2, 3], [4, 5], [-0.5, -0.25])
    assert first.extras["prompt"] == {"mode": "chat", "built": "chat", "reason": "chat"}
    assert first.completion_message.content == "hi"
    assert second.prompt_ids == [] and second.completion_ids == [] and second.completion_logprobs is None
    assert second.extras["prompt"] == {"mode": "chat", "built": "chat", "reason": "chat", "text_only": True, "trainable": False}
    assert second.is_truncated and second.finish_reason == "length"
    assert sampler.stats.to_dict()["text_only_steps"] == 1 and sampler.stats.bridge_attempts == 0


def test_glm_renderer_mode_keeps_the_observation_marker_once():
    r = load_renderer(glm_hf_tokenizer("glm-4.6"))
    conversation = [user("What is 1+2?"), call(1, 2), tool("3")]
    completion = sampled(r, conversation, 1)
    observation = r.tokenizer.added_tokens["<|observation|>"]
    engine = ScriptedEngine([Scripted(completion), Scripted([observation])])
    sampler = TurnSampler(engine, r, tools=TOOLS, drift_check=True)

    async def go():
        first = await sampler.step(conversation[:1])
        return first, await sampler.step([conversation[0], first.completion_message, conversation[2]])

    first, second = asyncio.run(go())
    n = len(first.prompt_ids) + len(completion)
    assert second.prompt_ids[:n] == first.prompt_ids + completion
    assert second.prompt_ids[n - 1] == observation and observation not in second.prompt_ids[n:]
    assert second.extras["prompt"]["drift"]["tokens"] == 0


def test_tool_loop_runs_n_turns_and_reports_stats():
    r = renderer("qwen2.5")
    answer = sampled(r, [user("q"), call(1, 2)], 1)
    engine = ScriptedEngine([Scripted(answer)] * 4)
    stats = BridgeStats()
    trajectory = asyncio.run(run_tool_loop(engine, r, [user("q")], turns=4, tools=TOOLS, stats=stats))
    assert isinstance(trajectory, Trajectory) and len(trajectory.steps) == 4
    assert trajectory.stop_reason is StopReason.MAX_TURNS
    assert all(b.extends(a) for a, b in zip(trajectory.steps, trajectory.steps[1:]))
    assert trajectory.steps[1].prompt_messages[-1] == Message(role="tool", content="ok", name="add")
    assert stats.bridge_successes == 3 and trajectory.extras["prompt_stats"] == stats.to_dict()
    assert len(trajectory.to_samples()) == 1


def test_tool_loop_stops_on_a_length_cut_turn_and_answers_plain_text_with_a_user_turn():
    r = renderer("qwen2.5")
    engine = ScriptedEngine([Scripted(r.tokenizer.encode("hm") + [QWEN_IM_END]), Scripted([64, 65], finish_reason=FinishReason.LENGTH)])
    trajectory = asyncio.run(run_tool_loop(engine, r, [user("q")], turns=5))
    assert trajectory.stop_reason is StopReason.MAX_TOKENS and len(trajectory.steps) == 2
    assert trajectory.steps[1].prompt_messages[-1] == user("Continue (turn 1).")
