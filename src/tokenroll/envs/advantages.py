"""Advantages: group-relative baselines on the final reward, spread per token over each step.

The group's rewards (after every rubric has been summed) give each trajectory one advantage:
its reward minus the group mean, or minus the mean of the others (leave-one-out),
optionally divided by the group's standard deviation. A step whose environment already
wrote `step.advantage` keeps it; the others get the trajectory's advantage, discounted by
`discount ** (turns after this one)` when a discount is given. Every step then gets
`completion_advantages`: its advantage once per completion token.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from enum import StrEnum

from tokenroll.core.trajectory import Trajectory

_SOURCE, _GROUP = "advantage_source", "group"


class Baseline(StrEnum):
    """What a trajectory's reward is compared with."""

    MEAN = "mean"
    """The mean reward of its group."""
    LEAVE_ONE_OUT = "leave_one_out"
    """The mean reward of the rest of its group (RLOO)."""


def group_advantages(
    rewards: Sequence[float], baseline: Baseline | str = Baseline.MEAN, normalize_std: bool = False, epsilon: float = 1e-6
) -> list[float]:
    """One advantage per reward of a group."""
    baseline = Baseline(baseline)
    n = len(rewards)
    if n == 0:
        return []
    total = sum(rewards)
    if baseline is Baseline.MEAN:
        advantages = [r - total / n for r in rewards]
    else:
        advantages = [r - (total - r) / (n - 1) if n > 1 else 0.0 for r in rewards]
    if normalize_std and n > 1:
        scale = statistics.pstdev(rewards) + epsilon
        advantages = [a / scale for a in advantages]
    return advantages


def assign_advantages(
    group: Sequence[Trajectory],
    *,
    baseline: Baseline | str = Baseline.MEAN,
    normalize_std: bool = False,
    discount: float | None = None,
) -> None:
    """Set `advantage` and `completion_advantages` on every step of a scored group."""
    missing = [t.id for t in group if t.reward is None]
    if missing:
        raise ValueError(f"trajectories {missing} have no reward: score the group before assigning advantages")
    if discount is not None and not 0.0 <= discount <= 1.0:
        raise ValueError(f"discount must be within [0, 1], got {discount!r}")
    advantages = group_advantages([t.reward for t in group], baseline, normalize_std)
    for trajectory, advantage in zip(group, advantages):
        last = len(trajectory.steps) - 1
        for index, step in enumerate(trajectory.steps):
            # Ours are marked, so assigning again (after more rubrics scored) replaces them
            # instead of letting a partial value stick; an environment's own stay.
            if step.advantage is None or step.extras.get(_SOURCE) == _GROUP:
                step.advantage = advantage if discount is None else advantage * discount ** (last - index)
                step.extras[_SOURCE] = _GROUP
            step.completion_advantages = [step.advantage] * len(step.completion_ids)
