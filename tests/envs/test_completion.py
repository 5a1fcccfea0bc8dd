"""CompletionEnv: one raw model call, the engine's tokens kept exactly, limits as stop reasons."""

from __future__ import annotations

import asyncio

import pytest

from tests.envs.fakes import RaisingEngine, StalledEngine
from tests.sampling.conversations import renderer
from tests.sampling.fakes import Scripted, ScriptedEngine
from tokenroll.core.trajectory import StopReason, Trajectory
from tokenroll.engines.base import FinishReason, SamplingParams, ServerError
from tokenroll.envs.base import Limits, Policy
from tokenroll.envs.completion import CompletionEnv

SMOLLM2_CHAT_STOPS = (2, 0)  # <|im_end|>, <|endoftext|>


class Echo(CompletionEnv):
    """Prompts with the row's ids, stops on 5, and records what it was given."""

    name = "echo"

    def prompt_ids(self, row, policy):
        return list(row["ids"])

    def stop_token_ids(self, row, policy):
        return (5,)

    async def parse(self, completion_ids, row, policy):
        if row.get("fail"):
            raise ValueError("cannot parse")
        return {"completion": completion_ids}


def rollout(env, engine, row, **sampling) -> Trajectory:
    policy = Policy(engine, renderer("smollm2"), SamplingParams(**{"max_tokens": 10, **sampling}))
    return asyncio.run(env.rollout(policy, row))


def test_the_step_holds_what_the_engine_returned():
    engine = ScriptedEngine([Scripted([11, 12, 5], logprobs=[-0.5, -0.25, -0.125])])
    trajectory = rollout(Echo([]), engine, {"ids": [1, 2, 3]}, stop_token_ids=(7,))

    assert engine.prompts == [[1, 2, 3]]
    # The chat stops the policy added are gone; the environment's come first, the user's stay.
    assert engine.samplings[0] == SamplingParams(max_tokens=10, stop_token_ids=(5, 7))
    assert trajectory.stop_reason is StopReason.COMPLETED and trajectory.error is None
    [step] = trajectory.steps
    assert (step.prompt_ids, step.completion_ids, step.completion_logprobs) == ([1, 2, 3], [11, 12, 5], [-0.5, -0.25, -0.125])
    assert (step.finish_reason, step.is_truncated, step.overlong_prompt) == ("stop", False, False)
    assert (step.prompt_attribution, step.prompt_messages, step.completion_message) == (None, [], None)
    assert step.extras == {"prompt": {"mode": "raw", "built": "raw"}}
    assert trajectory.extras == {"state": {"completion": [11, 12, 5]}}
    assert set(trajectory.timing) == {"total", "model", "env"}
    [sample] = trajectory.to_samples()
    assert sample.token_ids == [1, 2, 3, 11, 12, 5]
    assert sample.loss_mask == [False] * 3 + [True] * 3
    assert Trajectory.from_json(trajectory.to_json()) == trajectory


def test_policy_stops_are_chat_stops_only_in_chat():
    policy = Policy(ScriptedEngine([]), renderer("smollm2"), SamplingParams(stop_token_ids=(7,)))
    assert policy.sampling.stop_token_ids == (7, *SMOLLM2_CHAT_STOPS)


def test_per_turn_max_tokens_caps_the_request_and_a_cut_completion_is_still_parsed():
    engine = ScriptedEngine([Scripted([11, 12, 13], finish_reason=FinishReason.LENGTH)])
    trajectory = rollout(Echo([], limits=Limits(max_tokens=3)), engine, {"ids": [1, 2, 3]})
    assert engine.samplings[0].max_tokens == 3
    assert trajectory.stop_reason is StopReason.MAX_TOKENS
    assert trajectory.steps[0].is_truncated
    assert trajectory.extras["state"] == {"completion": [11, 12, 13]}


def test_max_seq_len_caps_the_request_to_the_room_left():
    engine = ScriptedEngine([Scripted([11, 12, 13], finish_reason=FinishReason.LENGTH)])
    trajectory = rollout(Echo([], limits=Limits(max_seq_len=6)), engine, {"ids": [1, 2, 3]})
    assert engine.samplings[0].max_tokens == 3
    assert trajectory.stop_reason is StopReason.CONTEXT_OVERFLOW


def test_a_prompt_at_max_seq_len_is_not_sent():
    engine = ScriptedEngine([])
    trajectory = rollout(Echo([], limits=Limits(max_seq_len=3)), engine, {"ids": [1, 2, 3]})
    assert engine.prompts == []
    assert trajectory.stop_reason is StopReason.CONTEXT_OVERFLOW
    [step] = trajectory.steps
    assert (step.completion_ids, step.overlong_prompt, step.finish_reason) == ([], True, "length")


def test_engine_failure():
    trajectory = rollout(Echo([]), RaisingEngine(ServerError("boom")), {"ids": [1]})
    assert trajectory.stop_reason is StopReason.ENGINE_ERROR
    assert trajectory.error == "ServerError: boom"
    assert trajectory.steps == [] and trajectory.extras == {"state": {}}


def test_parse_failure_is_an_environment_error_and_keeps_the_step():
    engine = ScriptedEngine([Scripted([11, 5])])
    trajectory = rollout(Echo([]), engine, {"ids": [1], "fail": True})
    assert trajectory.stop_reason is StopReason.ENV_ERROR
    assert trajectory.error == "ValueError: cannot parse"
    assert [step.completion_ids for step in trajectory.steps] == [[11, 5]]


def test_timeout():
    trajectory = rollout(Echo([], limits=Limits(timeout=0.2)), StalledEngine(), {"ids": [1]})
    assert trajectory.stop_reason is StopReason.TIMEOUT
    assert trajectory.error is None and trajectory.steps == []
    assert trajectory.timing["total"] >= 0.2


def test_a_chat_mode_policy_is_refused():
    policy = Policy(ScriptedEngine([]), None, mode="chat")
    trajectory = asyncio.run(Echo([]).rollout(policy, {"ids": [1]}))
    assert trajectory.stop_reason is StopReason.ENV_ERROR
    assert trajectory.error == (
        "ValueError: echo prompts with raw token ids; it needs a token-mode policy with a renderer")


@pytest.mark.parametrize(("limit", "reason"), [
    ({"max_sampled_tokens": 2}, StopReason.MAX_SAMPLED_TOKENS),
    ({"max_tokens": 2}, StopReason.MAX_TOKENS),
])
def test_sampled_token_limits_cap_the_single_call_as_they_cap_turns(limit, reason):
    engine = ScriptedEngine([Scripted([11, 12], finish_reason=FinishReason.LENGTH)])
    trajectory = rollout(Echo([], limits=Limits(**limit)), engine, {"ids": [1]})
    assert engine.samplings[0].max_tokens == 2
    assert trajectory.stop_reason is reason
