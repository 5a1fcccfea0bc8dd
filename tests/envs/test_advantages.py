import pytest

from tokenroll.core import Step, Trajectory
from tokenroll.envs.advantages import Baseline, assign_advantages, group_advantages


def trajectory(reward, turns=1, completion=3, env_advantage=None):
    steps = [Step(prompt_ids=[1], completion_ids=[2] * completion) for _ in range(turns)]
    if env_advantage is not None:
        steps[0].advantage = env_advantage
    return Trajectory(id=f"t{reward}-{turns}", steps=steps, reward=reward)


def test_mean_and_leave_one_out_baselines():
    assert group_advantages([1.0, 0.0, 0.0, 1.0]) == [0.5, -0.5, -0.5, 0.5]
    assert group_advantages([1.0, 0.0, 0.0], Baseline.LEAVE_ONE_OUT) == [1.0, -0.5, -0.5]
    assert group_advantages([3.0]) == [0.0]
    assert group_advantages([2.0], "leave_one_out") == [0.0]
    assert group_advantages([]) == []


def test_std_normalization():
    assert group_advantages([1.0, 0.0], normalize_std=True, epsilon=0.0) == [1.0, -1.0]
    # A group that all scored the same has nothing to learn from, and no division by zero.
    assert group_advantages([1.0, 1.0, 1.0], normalize_std=True) == [0.0, 0.0, 0.0]


def test_every_completion_token_gets_its_steps_advantage_with_discount_across_turns():
    group = [trajectory(1.0, turns=3), trajectory(0.0, turns=3, completion=2)]
    assign_advantages(group, discount=0.5)
    assert [s.advantage for s in group[0].steps] == [0.125, 0.25, 0.5]
    assert group[0].steps[0].completion_advantages == [0.125] * 3
    assert group[1].steps[2].completion_advantages == [-0.5, -0.5]


def test_an_environment_advantage_is_kept():
    group = [trajectory(1.0, turns=2, env_advantage=7.0), trajectory(0.0, turns=2)]
    assign_advantages(group)
    assert [s.advantage for s in group[0].steps] == [7.0, 0.5]
    assign_advantages(group)  # idempotent: ours are replaced, the environment's stays
    assert [s.advantage for s in group[0].steps] == [7.0, 0.5]


def test_unscored_groups_and_bad_discounts_are_refused():
    with pytest.raises(ValueError, match=r"trajectories \['tNone-1'\] have no reward"):
        assign_advantages([trajectory(None)])
    with pytest.raises(ValueError, match="discount must be within"):
        assign_advantages([trajectory(1.0)], discount=1.5)
