"""TurnSampler in renderer mode: stitched prompts, exact completions, gates and counted fallbacks."""

from __future__ import annotations

import asyncio

import pytest

from tests.sampling.conversations import (
    ASSISTANT_TURNS,
    NEWLINE,
    QWEN_ASSISTANT,
    QWEN_IM_END,
    QWEN_IM_START,
    QWEN_USER,
    TOOL_LOOP,
    TOOLS,
    call,
    renderer,
    sampled,
    say,
    tool,
    user,
)
from tests.sampling.fakes import Scripted, ScriptedEngine
from tokenroll.core.trajectory import Trajectory
from tokenroll.engines.base import FinishReason, MalformedResponseError, SamplingParams, ServerError
from tokenroll.sampling import BridgeStats, FallbackReason, TurnSampler


def run(sampler: TurnSampler, conversations: list[list]) -> list:
    async def go():
        return [await sampler.step(messages) for messages in conversations]

    return asyncio.run(go())


def loop_script(r, conversation=TOOL_LOOP, turns=ASSISTANT_TURNS, **kwargs) -> list[Scripted]:
    return [Scripted(sampled(r, conversation, k, **kwargs)) for k in turns]


def loop_inputs(conversation=TOOL_LOOP, turns=ASSISTANT_TURNS) -> list[list]:
    return [conversation[:k] for k in turns]


def drive(sampler: TurnSampler, conversation=TOOL_LOOP, turns=ASSISTANT_TURNS) -> list:
    """Run the loop as an environment does: each turn appends the parsed completion, then its own messages."""

    async def go():
        steps, messages = [], list(conversation[: turns[0]])
        for k, turn in enumerate(turns):
            steps.append(await sampler.step(messages))
            if k + 1 < len(turns):
                messages += [steps[-1].completion_message, *conversation[turn + 1 : turns[k + 1]]]
        return steps

    return asyncio.run(go())


@pytest.mark.parametrize("family", ["qwen2.5", "smollm2"])
def test_tool_loop_is_stitched_exactly_with_zero_drift(family):
    r = renderer(family)
    script = loop_script(r)
    engine = ScriptedEngine(script)
    sampler = TurnSampler(engine, r, tools=TOOLS, drift_check=True)
    steps = drive(sampler)

    assert engine.prompts == [s.prompt_ids for s in steps]
    for k, (step, answer) in enumerate(zip(steps, script)):
        assert step.completion_ids == answer.completion_ids
        assert step.completion_logprobs == answer.logprobs
        assert step.finish_reason == "stop" and not step.is_truncated
        assert step.prompt_ids == r.render_ids(step.prompt_messages, TOOLS, add_generation_prompt=True)
    for previous, step in zip(steps, steps[1:]):
        n = len(previous.prompt_ids)
        assert step.prompt_ids[:n] == previous.prompt_ids
        assert step.prompt_ids[n : n + len(previous.completion_ids)] == previous.completion_ids
        assert step.extras["prompt"] == {
            "mode": "renderer",
            "built": "bridge",
            "reason": "bridged",
            "drift": {"tokens": 0, "first_position": None, "full_length": len(step.prompt_ids)},
        }
    assert steps[0].extras["prompt"] == {"mode": "renderer", "built": "render", "reason": "first_turn"}
    if family == "qwen2.5":  # SmolLM2's template writes no tool calls
        assert steps[0].completion_message.tool_calls[0].arguments == '{"a": 1, "b": 2}'
    assert steps[2].completion_message.content == "done"
    assert sampler.stats.to_dict() == {
        "turns": 3,
        "full_renders": 1,
        "bridge_attempts": 2,
        "bridge_successes": 2,
        "fallbacks": {},
        "drift_checks": 2,
        "drifted_steps": 0,
        "drift_tokens": 0,
        "text_only_steps": 0,
    }
    assert len(Trajectory(steps=steps).to_samples()) == 1


def test_qwen25_user_turn_bridge_exact_ids():
    r = renderer("qwen2.5")
    completion = r.tokenizer.encode("hello") + [QWEN_IM_END]
    engine = ScriptedEngine([Scripted(completion), Scripted([QWEN_IM_END])])
    sampler = TurnSampler(engine, r)
    first, second = run(sampler, [[user("hi")], [user("hi"), say("hello"), user("more")]])
    assert first.prompt_ids == [QWEN_IM_START, 8948, NEWLINE, *r.tokenizer.encode(
        "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."
    ), QWEN_IM_END, NEWLINE, QWEN_IM_START, QWEN_USER, NEWLINE, *r.tokenizer.encode("hi"), QWEN_IM_END, NEWLINE,
        QWEN_IM_START, QWEN_ASSISTANT, NEWLINE]
    assert second.prompt_ids == first.prompt_ids + completion + [
        NEWLINE, QWEN_IM_START, QWEN_USER, NEWLINE, *r.tokenizer.encode("more"), QWEN_IM_END, NEWLINE,
        QWEN_IM_START, QWEN_ASSISTANT, NEWLINE,
    ]
    attribution = second.prompt_attribution
    assert attribution.token_ids == second.prompt_ids
    assert attribution.message_roles == ["user", "assistant", "user"]  # the default system prompt is scaffolding
    assert sum(attribution.sampled_mask) == len(completion)


def test_qwen3_reasoning_in_history_keeps_prefix_and_records_drift():
    r = renderer("qwen3")
    history = [user("What is 2+2?"), say("4", reasoning="Two and two make four."), user("And 3+3?")]
    completion = sampled(r, history[:2], 1, tools=None)
    think = r.tokenizer.token_id("<think>")
    assert completion[0] == think
    engine = ScriptedEngine([Scripted(completion), Scripted(r.tokenizer.encode("6") + [QWEN_IM_END])])
    sampler = TurnSampler(engine, r, drift_check=True)
    first, second = run(sampler, [history[:1], history])
    assert first.completion_message.reasoning_content == "Two and two make four."
    n = len(first.prompt_ids)
    assert second.prompt_ids[: n + len(completion)] == first.prompt_ids + completion
    drift = second.extras["prompt"]["drift"]
    full = r.render_ids(history, add_generation_prompt=True)
    assert drift["first_position"] == n  # the full render drops the earlier turn's think block
    assert drift["full_length"] == len(full) and drift["tokens"] > 0
    assert sampler.stats.drifted_steps == 1 and sampler.stats.bridge_successes == 1


def test_length_cut_turn_falls_back_to_a_full_render_and_a_new_sample():
    r = renderer("qwen2.5")
    cut = sampled(r, TOOL_LOOP, 1)[:5]
    engine = ScriptedEngine([Scripted(cut, finish_reason=FinishReason.LENGTH), *loop_script(r)[1:]])
    sampler = TurnSampler(engine, r, tools=TOOLS)
    # The environment keeps going with what it parsed (here: the intended call).
    first, second = run(sampler, loop_inputs()[:2])
    assert first.is_truncated and first.finish_reason == "length"
    assert second.extras["prompt"] == {"mode": "renderer", "built": "render", "reason": "length"}
    assert second.prompt_ids == r.render_ids(TOOL_LOOP[:3], TOOLS, add_generation_prompt=True)
    # The re-render happens to start with the cut tokens; the sample still ends at the truncated step.
    assert sampler.stats.fallbacks == {"length": 1} and sampler.stats.bridge_attempts == 1
    assert [s.step_indices for s in Trajectory(steps=[first, second]).to_samples()] == [[0], [1]]


def test_assistant_among_new_messages_falls_back():
    r = renderer("qwen2.5")
    engine = ScriptedEngine([Scripted(r.tokenizer.encode("a") + [QWEN_IM_END])] * 2)
    sampler = TurnSampler(engine, r)
    conversation = [user("hi"), say("a"), user("x"), say("injected"), user("y")]
    first, second = run(sampler, [conversation[:1], conversation])
    assert second.extras["prompt"]["reason"] == FallbackReason.NEW_MESSAGE_ROLES.value
    assert second.prompt_ids == r.render_ids(conversation, add_generation_prompt=True)
    assert sampler.stats.fallbacks == {"new_message_roles": 1}


@pytest.mark.parametrize(
    ("second_input", "reason"),
    [
        ([user("hi"), say("edited"), user("y")], "prefix_mismatch"),
        ([user("hi"), say("a")], "no_new_messages"),
        ([user("hi"), say("a"), user("x"), tool("3")], "new_message_roles"),
    ],
)
def test_gates_refuse_with_their_reason(second_input, reason):
    r = renderer("qwen2.5")
    engine = ScriptedEngine([Scripted(r.tokenizer.encode("a") + [QWEN_IM_END])] * 2)
    sampler = TurnSampler(engine, r, tools=TOOLS)
    _, second = run(sampler, [[user("hi")], second_input])
    assert second.extras["prompt"]["reason"] == reason
    assert sampler.stats.fallbacks == {reason: 1}


def test_tool_call_ids_and_empty_content_added_by_the_environment_still_stitch():
    r = renderer("qwen2.5")
    engine = ScriptedEngine(loop_script(r)[:2])
    sampler = TurnSampler(engine, r, tools=TOOLS)
    env_view = call(1, 2)
    env_view.content = ""
    env_view.tool_calls[0].id = "call_0"
    first, second = run(sampler, [TOOL_LOOP[:1], [TOOL_LOOP[0], env_view, tool("3")]])
    assert second.extras["prompt"]["reason"] == "bridged"


def test_the_renderer_refusing_is_counted():
    r = renderer("qwen2.5")
    endoftext = r.tokenizer.token_id("<|endoftext|>")
    engine = ScriptedEngine([Scripted(r.tokenizer.encode("a") + [endoftext]), Scripted([QWEN_IM_END])])
    sampler = TurnSampler(engine, r)
    _, second = run(sampler, [[user("hi")], [user("hi"), say("a"), user("more")]])
    assert second.extras["prompt"]["reason"] == "renderer_refused"
    assert sampler.stats.fallbacks == {"renderer_refused": 1}


def test_max_seq_len_caps_the_budget_and_refuses_the_next_stitch():
    r = renderer("qwen2.5")
    prompt_len = len(r.render_ids([user("hi")], add_generation_prompt=True))
    limit = prompt_len + 3
    engine = ScriptedEngine([Scripted([64, 65, 66], finish_reason=FinishReason.LENGTH), Scripted([QWEN_IM_END])])
    sampler = TurnSampler(engine, r, max_seq_len=limit, sampling=SamplingParams(max_tokens=100))
    first, second = run(sampler, [[user("hi")], [user("hi"), say("abc"), user("more")]])
    assert engine.samplings[0].max_tokens == 3
    assert second.extras["prompt"]["reason"] == "max_seq_len"
    # The second prompt is already over the limit: the engine is not called again.
    assert len(engine.prompts) == 1
    assert second.overlong_prompt and second.is_truncated and second.completion_ids == []
    assert len(second.prompt_ids) == limit
    assert sampler.stats.fallbacks == {"max_seq_len": 1}


def test_a_completion_beyond_max_seq_len_is_cut():
    r = renderer("qwen2.5")
    prompt_len = len(r.render_ids([user("hi")], add_generation_prompt=True))
    engine = ScriptedEngine([Scripted([64, 65, 66, 67, QWEN_IM_END])])  # an engine ignoring max_tokens
    sampler = TurnSampler(engine, r, max_seq_len=prompt_len + 2)
    (step,) = run(sampler, [[user("hi")]])
    assert step.completion_ids == [64, 65] and step.completion_logprobs == [-0.125, -0.25]
    assert step.is_truncated


def test_an_engine_reporting_another_prompt_is_refused():
    r = renderer("qwen2.5")
    engine = ScriptedEngine([Scripted([QWEN_IM_END], echo=[1, 2, 3])])
    sampler = TurnSampler(engine, r)
    with pytest.raises(MalformedResponseError, match=r"engine used a prompt of 3 tokens that differs from the \d+ sent, first at position 0"):
        run(sampler, [[user("hi")]])


def test_engine_errors_propagate_without_a_step():
    class Failing(ScriptedEngine):
        async def generate(self, prompt_ids, sampling):
            raise ServerError("HTTP 500: boom")

    sampler = TurnSampler(Failing(), renderer("qwen2.5"))
    with pytest.raises(ServerError, match="HTTP 500: boom"):
        run(sampler, [[user("hi")]])
    assert sampler.steps == [] and sampler.stats.turns == 1


def test_stats_merge_and_round_trip():
    a = BridgeStats(turns=3, full_renders=1, bridge_attempts=2, bridge_successes=1, fallbacks={"length": 1})
    b = BridgeStats(turns=2, bridge_attempts=1, fallbacks={"length": 1, "prefix_mismatch": 1}, drift_checks=1, drifted_steps=1, drift_tokens=4)
    merged = a.merge(b)
    assert merged.to_dict() == {
        "turns": 5,
        "full_renders": 1,
        "bridge_attempts": 3,
        "bridge_successes": 1,
        "fallbacks": {"length": 2, "prefix_mismatch": 1},
        "drift_checks": 1,
        "drifted_steps": 1,
        "drift_tokens": 4,
        "text_only_steps": 0,
    }
    assert BridgeStats.from_dict(merged.to_dict()) == merged
    assert a.fallbacks == {"length": 1}  # merge does not mutate
