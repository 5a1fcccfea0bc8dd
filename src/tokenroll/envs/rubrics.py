"""Rubrics: weighted reward functions that ask for what they need by argument name.

A reward function takes any of these arguments (by name) and returns a number:
`trajectory`, `input`, `prompt` (the first model call's prompt messages), `completion`
(every message after the prompt), `response` (the last assistant message's text),
`answer` and `info` (from the input row), `state` (`trajectory.extras["state"]`).
A function whose arguments are the plural names (`trajectories`, `inputs`, `prompts`,
`completions`, `responses`, `answers`, `infos`, `states`) scores a whole group at once
and returns one number per trajectory. Functions may be async.

Weight 0 makes a function a logged metric only. A function that raises scores 0 for
that trajectory, and the error is recorded in `trajectory.extras["reward_errors"]`.
"""

from __future__ import annotations

import inspect
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tokenroll.core.messages import Message
from tokenroll.core.trajectory import Trajectory

RewardFunc = Callable[..., Any]

_logger = logging.getLogger(__name__)


def _prompt(trajectory: Trajectory) -> list[Message]:
    return trajectory.steps[0].prompt_messages if trajectory.steps else []


def _completion(trajectory: Trajectory) -> list[Message]:
    return trajectory.messages[len(_prompt(trajectory)) :]


def _response(trajectory: Trajectory) -> str:
    for message in reversed(trajectory.messages):
        if message.role == "assistant":
            return message.text
    return ""


# argument name -> how a trajectory provides it; the plural names give the group's list
_ARGUMENTS: dict[str, Callable[[Trajectory], Any]] = {
    "trajectory": lambda t: t,
    "input": lambda t: t.input,
    "prompt": _prompt,
    "completion": _completion,
    "response": _response,
    "answer": lambda t: t.input.get("answer"),
    "info": lambda t: t.input.get("info", {}),
    "state": lambda t: t.extras.get("state", {}),
}
_PLURALS = {
    "trajectories": "trajectory",
    "inputs": "input",
    "prompts": "prompt",
    "completions": "completion",
    "responses": "response",
    "answers": "answer",
    "infos": "info",
    "states": "state",
}


@dataclass(slots=True)
class _Scorer:
    """One reward function with its weight and how to call it."""

    func: RewardFunc
    weight: float
    name: str
    group: bool
    arguments: list[str]

    @classmethod
    def of(cls, func: RewardFunc, weight: float) -> _Scorer:
        name = getattr(func, "__name__", type(func).__name__)
        parameters = list(inspect.signature(func).parameters)
        singular = [p for p in parameters if p in _ARGUMENTS]
        plural = [p for p in parameters if p in _PLURALS]
        unknown = [p for p in parameters if p not in _ARGUMENTS and p not in _PLURALS]
        if unknown:
            raise TypeError(
                f"reward function {name!r} asks for {', '.join(map(repr, unknown))}; it can ask for "
                f"{', '.join(_ARGUMENTS)} (or their plurals, to score a whole group)"
            )
        if singular and plural:
            raise TypeError(f"reward function {name!r} mixes per-trajectory and group arguments")
        return cls(func, float(weight), name, bool(plural), plural or singular)

    async def scores(self, group: Sequence[Trajectory]) -> list[float | BaseException]:
        """One score (or the error it raised) per trajectory."""
        if self.group:
            kwargs = {name: [_ARGUMENTS[_PLURALS[name]](t) for t in group] for name in self.arguments}
            try:
                values = await _call(self.func, kwargs)
                if len(values) != len(group):
                    raise ValueError(f"returned {len(values)} scores for a group of {len(group)}")
                return [_number(value) for value in values]
            except Exception as exc:
                return [exc] * len(group)
        results: list[float | BaseException] = []
        for trajectory in group:
            try:
                value = await _call(self.func, {name: _ARGUMENTS[name](trajectory) for name in self.arguments})
                results.append(_number(value))
            except Exception as exc:
                results.append(exc)
        return results


@dataclass
class Rubric:
    """Reward functions and their weights; the reward is the weighted sum of their scores."""

    funcs: Sequence[RewardFunc]
    weights: Sequence[float] | None = None
    _scorers: list[_Scorer] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        weights = [1.0] * len(self.funcs) if self.weights is None else list(self.weights)
        if len(weights) != len(self.funcs):
            raise ValueError(f"rubric has {len(self.funcs)} functions but {len(weights)} weights")
        self._scorers = [_Scorer.of(func, weight) for func, weight in zip(self.funcs, weights)]

    async def score_group(self, group: Sequence[Trajectory]) -> list[float]:
        """Score every trajectory: metrics per function, `reward` the weighted sum; returns the rewards."""
        totals = [0.0] * len(group)
        for scorer in self._scorers:
            for i, (trajectory, score) in enumerate(zip(group, await scorer.scores(group))):
                if isinstance(score, BaseException):
                    message = f"{type(score).__name__}: {score}"
                    trajectory.extras.setdefault("reward_errors", {})[scorer.name] = message
                    _logger.warning("reward function %r failed on trajectory %s: %s", scorer.name, trajectory.id, message)
                    score = 0.0
                trajectory.metrics[scorer.name] = score
                totals[i] += scorer.weight * score
        for trajectory, total in zip(group, totals):
            trajectory.reward = total
        return totals

    async def score(self, trajectory: Trajectory) -> float:
        """Score one trajectory (group functions see a group of one)."""
        return (await self.score_group([trajectory]))[0]


@dataclass
class RubricGroup:
    """Several rubrics scored together: metrics from all, reward the sum of the members' rewards."""

    rubrics: Sequence[Rubric]

    async def score_group(self, group: Sequence[Trajectory]) -> list[float]:
        totals = [0.0] * len(group)
        for rubric in self.rubrics:
            for i, reward in enumerate(await rubric.score_group(group)):
                totals[i] += reward
        # The members each wrote their own partial reward; the group's is the sum.
        for trajectory, total in zip(group, totals):
            trajectory.reward = total
        return totals

    async def score(self, trajectory: Trajectory) -> float:
        return (await self.score_group([trajectory]))[0]


async def _call(func: RewardFunc, kwargs: dict[str, Any]) -> Any:
    result = func(**kwargs)
    if inspect.isawaitable(result):
        result = await result
    return result


def _number(value: Any) -> float:
    """A score as a float; True/False count as 1/0."""
    if not isinstance(value, (int, float)):
        raise TypeError(f"returned {type(value).__name__} {value!r}, expected a number")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"returned {number}, expected a finite number")
    return number
