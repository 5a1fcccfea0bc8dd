import asyncio

import pytest

from tokenroll.core import Message, Step, Trajectory
from tokenroll.envs.advantages import assign_advantages
from tokenroll.envs.rubrics import Rubric, RubricGroup


def rollout(answer: str, reply: str, example: str = "q1") -> Trajectory:
    prompt = [Message(role="user", content="What is 2+2?")]
    step = Step(
        prompt_ids=[1, 2, 3],
        completion_ids=[4, 5, 6, 7],
        prompt_messages=prompt,
        completion_message=Message(role="assistant", content=reply),
    )
    return Trajectory(id=f"{example}-{reply}", input={"prompt": "What is 2+2?", "answer": answer}, steps=[step])


def correct(response, answer):
    return response.strip() == answer


async def brevity(completion):
    return -0.1 * len(completion[-1].text)


def group_pass_rate(responses, answers):
    passed = sum(r.strip() == a for r, a in zip(responses, answers))
    return [passed / len(responses)] * len(responses)


def test_weighted_reward_metrics_and_group_functions():
    group = [rollout("4", "4"), rollout("4", "five"), rollout("4", " 4 ")]
    rubric = Rubric([correct, brevity, group_pass_rate], weights=[1.0, 1.0, 0.0])
    rewards = asyncio.run(rubric.score_group(group))
    assert rewards == pytest.approx([1.0 - 0.1, 0.0 - 0.4, 1.0 - 0.3])
    assert group[1].metrics == pytest.approx({"correct": 0.0, "brevity": -0.4, "group_pass_rate": 2 / 3})
    assert [t.reward for t in group] == rewards


def test_a_failing_reward_function_scores_zero_and_is_recorded():
    def needs_info(info):
        return info["difficulty"]

    trajectory = rollout("4", "4")
    reward = asyncio.run(Rubric([correct, needs_info]).score(trajectory))
    assert reward == 1.0
    assert trajectory.metrics["needs_info"] == 0.0
    assert trajectory.extras["reward_errors"] == {"needs_info": "KeyError: 'difficulty'"}


def test_bad_reward_functions_are_refused_when_the_rubric_is_built():
    def odd(prompt, banana):
        return 0.0

    with pytest.raises(TypeError, match="reward function 'odd' asks for 'banana'"):
        Rubric([odd])
    with pytest.raises(ValueError, match="rubric has 1 functions but 2 weights"):
        Rubric([correct], weights=[1.0, 2.0])

    def mixed(response, answers):
        return 0.0

    with pytest.raises(TypeError, match="mixes per-trajectory and group arguments"):
        Rubric([mixed])


def test_non_numbers_are_errors_not_silent_scores():
    trajectory = rollout("4", "4")
    asyncio.run(Rubric([lambda response: "yes"]).score(trajectory))
    assert trajectory.extras["reward_errors"] == {"<lambda>": "TypeError: returned str 'yes', expected a number"}


def test_rubric_group_advantages_come_from_the_summed_reward():
    # Seed 003: a group's first member's partial advantage must not stick on the steps.
    group = [rollout("4", "4"), rollout("4", "five")]
    first, second = Rubric([correct]), Rubric([brevity])
    asyncio.run(first.score_group(group))
    assign_advantages(group)  # a partial assignment, as a careless caller might make
    assert [t.steps[0].advantage for t in group] == [0.5, -0.5]
    rewards = asyncio.run(RubricGroup([first, second]).score_group(group))
    assert rewards == pytest.approx([0.9, -0.4])
    assign_advantages(group)
    assert [t.steps[0].advantage for t in group] == pytest.approx([0.65, -0.65])
    assert group[0].steps[0].completion_advantages == pytest.approx([0.65] * 4)
