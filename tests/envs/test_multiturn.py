"""Chat environments on the real Qwen2.5 renderer with scripted engines: prompts, turns, limits, errors."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.sampling.conversations import NEWLINE, QWEN_IM_END, renderer, user
from tests.sampling.fakes import Scripted, ScriptedEngine
from tokenroll.core.messages import Message
from tokenroll.core.trajectory import StopReason
from tokenroll.engines.base import FinishReason, SamplingParams, ServerError
from tokenroll.envs import Limits, MultiTurnEnv, Policy, SingleTurnEnv


def qwen():
    return renderer("qwen2.5")


def words(text: str, stop: bool = True) -> list[int]:
    """The Qwen2.5 tokens of an assistant reply, ending with <|im_end|> when `stop`."""
    return qwen().tokenizer.encode(text) + ([QWEN_IM_END] if stop else [])


def rollout(env, engine, row: dict[str, Any], **policy: Any):
    return asyncio.run(env.rollout(Policy(engine, qwen(), **policy), row))


class Echo(MultiTurnEnv):
    """Replies "again" until the model has spoken `rounds` times."""

    def __init__(self, rounds: int = 3, **options: Any) -> None:
        super().__init__([{"question": "start"}], **options)
        self.rounds = rounds

    def initial_state(self, row):
        return {"replies": 0}

    async def is_completed(self, messages, state):
        return state["replies"] >= self.rounds

    async def env_response(self, messages, state):
        state["replies"] += 1
        return [Message(role="user", content="again")] if state["replies"] < self.rounds else []


def test_single_turn_prompt_is_the_rendered_row_and_the_step_holds_the_engine_tokens():
    env = SingleTurnEnv([{"question": "hi"}], system_prompt="Be brief.")
    engine = ScriptedEngine([Scripted(words("hello"))])
    trajectory = rollout(env, engine, env.rows[0])
    expected_prompt = qwen().render_ids(
        [Message(role="system", content="Be brief."), user("hi")], add_generation_prompt=True
    )
    assert engine.prompts == [expected_prompt]
    step = trajectory.steps[0]
    assert step.prompt_ids == expected_prompt
    assert step.completion_ids == words("hello")
    assert step.completion_logprobs == [-0.125 * (i + 1) for i in range(len(words("hello")))]
    assert step.completion_message.content == "hello"
    assert trajectory.stop_reason is StopReason.COMPLETED
    assert trajectory.error is None
    assert trajectory.input == {"question": "hi"}
    assert sorted(trajectory.timing) == ["env", "model", "total"]
    # The renderer's end-of-turn token is always a stop token in token mode.
    assert QWEN_IM_END in engine.samplings[0].stop_token_ids


def test_a_row_prompt_may_be_messages_with_their_own_system_message():
    env = SingleTurnEnv(system_prompt="ignored")
    row = {"prompt": [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}]}
    assert env.format_prompt(row) == [Message(role="system", content="S"), Message(role="user", content="U")]
    assert SingleTurnEnv(system_prompt="P").format_prompt({"prompt": "U"}) == [
        Message(role="system", content="P"),
        Message(role="user", content="U"),
    ]


def test_multi_turn_replies_are_stitched_into_one_training_sample():
    env = Echo(rounds=3)
    engine = ScriptedEngine([Scripted(words(f"reply {i}")) for i in range(3)])
    trajectory = rollout(env, engine, env.rows[0])
    assert trajectory.stop_reason is StopReason.COMPLETED
    assert trajectory.extras["state"] == {"replies": 3}
    assert [s.extras["prompt"]["built"] for s in trajectory.steps] == ["render", "bridge", "bridge"]
    second = trajectory.steps[1]
    first = trajectory.steps[0]
    assert second.prompt_ids == first.prompt_ids + words("reply 0") + [
        NEWLINE, 151644, 872, NEWLINE, *qwen().tokenizer.encode("again"), QWEN_IM_END, NEWLINE, 151644, 77091, NEWLINE
    ]
    samples = trajectory.to_samples()
    assert len(samples) == 1
    assert sum(samples[0].loss_mask) == sum(len(words(f"reply {i}")) for i in range(3))
    assert trajectory.extras["prompt_stats"]["bridge_successes"] == 2
    assert [m.role for m in trajectory.messages] == ["user", "assistant", "user", "assistant", "user", "assistant"]


def test_an_empty_reply_completes_the_episode():
    env = Echo(rounds=2)
    trajectory = rollout(env, ScriptedEngine([Scripted(words("a")), Scripted(words("b"))]), env.rows[0])
    assert trajectory.stop_reason is StopReason.COMPLETED
    assert len(trajectory.steps) == 2


def test_max_turns_ends_the_rollout():
    env = Echo(rounds=10, limits=Limits(max_turns=2))
    trajectory = rollout(env, ScriptedEngine([Scripted(words("a"))] * 2), env.rows[0])
    assert trajectory.stop_reason is StopReason.MAX_TURNS
    assert len(trajectory.steps) == 2


def test_a_turn_cut_by_max_tokens_ends_the_rollout_and_the_limit_caps_the_request():
    env = Echo(rounds=10, limits=Limits(max_tokens=3))
    cut = Scripted(words("one two three", stop=False)[:3], finish_reason=FinishReason.LENGTH)
    engine = ScriptedEngine([cut])
    trajectory = rollout(env, engine, env.rows[0], sampling=SamplingParams(max_tokens=100))
    assert engine.samplings[0].max_tokens == 3
    assert trajectory.stop_reason is StopReason.MAX_TOKENS
    assert trajectory.steps[0].is_truncated


def test_max_sampled_tokens_shrinks_the_last_turn_and_ends_the_rollout():
    four = words("a b c", stop=True)
    assert len(four) == 4
    env = Echo(rounds=10, limits=Limits(max_sampled_tokens=10))
    last = Scripted(four[:2], finish_reason=FinishReason.LENGTH)
    engine = ScriptedEngine([Scripted(four), Scripted(four), last])
    trajectory = rollout(env, engine, env.rows[0], sampling=SamplingParams(max_tokens=50))
    assert [s.max_tokens for s in engine.samplings] == [10, 6, 2]  # each turn asks for at most what is left
    assert trajectory.stop_reason is StopReason.MAX_SAMPLED_TOKENS
    assert sum(len(s.completion_ids) for s in trajectory.steps) == 10


def test_a_spent_token_budget_stops_before_calling_the_engine():
    env = Echo(rounds=10, limits=Limits(max_sampled_tokens=4))
    engine = ScriptedEngine([Scripted(words("a b c"))])
    trajectory = rollout(env, engine, env.rows[0])
    assert len(engine.prompts) == 1
    assert trajectory.stop_reason is StopReason.MAX_SAMPLED_TOKENS


def test_max_seq_len_cuts_the_completion_and_reports_context_overflow():
    env = Echo(rounds=10)
    prompt_length = len(qwen().render_ids(env.format_prompt(env.rows[0]), add_generation_prompt=True))
    env.limits = Limits(max_seq_len=prompt_length + 3)
    engine = ScriptedEngine([Scripted(words("one two three four five"), finish_reason=FinishReason.STOP)])
    trajectory = rollout(env, engine, env.rows[0])
    assert engine.samplings[0].max_tokens == 3
    step = trajectory.steps[0]
    assert len(step.prompt_ids) + len(step.completion_ids) == prompt_length + 3
    assert trajectory.stop_reason is StopReason.CONTEXT_OVERFLOW


def test_the_wall_clock_timeout_ends_the_rollout_keeping_finished_turns():
    env = Echo(rounds=10, limits=Limits(timeout=0.2))

    class SlowSecond(ScriptedEngine):
        async def generate(self, prompt_ids, sampling):
            if self.prompts:
                await asyncio.sleep(5)
            return await super().generate(prompt_ids, sampling)

    trajectory = rollout(env, SlowSecond([Scripted(words("a"))] * 2), env.rows[0])
    assert trajectory.stop_reason is StopReason.TIMEOUT
    assert trajectory.error is None
    assert len(trajectory.steps) == 1


class Failing(ScriptedEngine):
    async def generate(self, prompt_ids, sampling):
        raise ServerError("upstream exploded")


def test_an_engine_failure_is_an_engine_error_with_its_message():
    env = Echo()
    trajectory = rollout(env, Failing(), env.rows[0])
    assert trajectory.stop_reason is StopReason.ENGINE_ERROR
    assert trajectory.error == "ServerError: upstream exploded"
    assert trajectory.steps == []


def test_an_env_response_exception_is_an_env_error_and_keeps_the_turns():
    class Broken(Echo):
        async def env_response(self, messages, state):
            raise KeyError("frame")

    env = Broken()
    trajectory = rollout(env, ScriptedEngine([Scripted(words("a"))]), env.rows[0])
    assert trajectory.stop_reason is StopReason.ENV_ERROR
    assert trajectory.error == "KeyError: 'frame'"
    assert len(trajectory.steps) == 1


def test_a_row_without_a_prompt_is_an_env_error_naming_the_fields():
    env = SingleTurnEnv([{"text": "x"}])
    trajectory = rollout(env, ScriptedEngine([]), env.rows[0])
    assert trajectory.stop_reason is StopReason.ENV_ERROR
    assert trajectory.error == "ValueError: the row has neither a 'prompt' nor a string 'question' field"


def test_an_unparseable_completion_ends_with_parse_error(monkeypatch):
    r = qwen()

    def refuse(*args, **kwargs):
        raise ValueError("unbalanced <tool_call>")

    monkeypatch.setattr(r, "parse_completion", refuse)
    env = Echo()
    trajectory = asyncio.run(env.rollout(Policy(ScriptedEngine([Scripted(words("a"))]), r), env.rows[0]))
    assert trajectory.stop_reason is StopReason.PARSE_ERROR
    assert trajectory.steps[0].extras["parse_error"] == "ValueError: unbalanced <tool_call>"


def test_limits_refuse_nonsense_values():
    with pytest.raises(ValueError, match="limit max_turns must be a positive integer or None, got 0"):
        Limits(max_turns=0)
    with pytest.raises(ValueError, match="limit timeout must be a positive number of seconds or None, got -1"):
        Limits(timeout=-1)
    assert Limits(max_turns=2).merged({"max_turns": None, "timeout": 5.0}) == Limits(max_turns=2, timeout=5.0)
