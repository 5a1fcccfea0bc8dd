"""The environment interface: dataset rows in, scored trajectories out, under per-rollout limits.

An `Environment` owns its dataset rows, its rubric and its limits; `rollout(policy, row)`
runs one episode against a `Policy` (an engine, the renderer for its prompts and default
sampling) and returns the trajectory. The runner scores each group with `score_group` and
then assigns advantages.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from tokenroll.core.trajectory import Trajectory
from tokenroll.engines.base import Engine, SamplingParams
from tokenroll.envs.datasets import DatasetSource, load_rows
from tokenroll.envs.rubrics import Rubric, RubricGroup
from tokenroll.render.base import Renderer
from tokenroll.sampling.sampler import TurnSampler
from tokenroll.sampling.stats import PromptMode


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-rollout limits; each ends the rollout with its own `StopReason` (None: no limit)."""

    max_turns: int | None = None
    """Model calls per rollout (`max_turns`)."""
    max_tokens: int | None = None
    """Sampled tokens per turn; a turn cut by it ends the rollout (`max_tokens`)."""
    max_seq_len: int | None = None
    """Prompt plus completion tokens of any turn (`context_overflow`)."""
    max_sampled_tokens: int | None = None
    """Sampled tokens over the whole rollout (`max_sampled_tokens`)."""
    timeout: float | None = None
    """Wall-clock seconds per rollout (`timeout`); the turn in flight is dropped."""

    def __post_init__(self) -> None:
        for name in ("max_turns", "max_tokens", "max_seq_len", "max_sampled_tokens"):
            value = getattr(self, name)
            if value is not None and (type(value) is not int or value < 1):
                raise ValueError(f"limit {name} must be a positive integer or None, got {value!r}")
        if self.timeout is not None and not self.timeout > 0:
            raise ValueError(f"limit timeout must be a positive number of seconds or None, got {self.timeout!r}")

    def merged(self, overrides: Mapping[str, Any]) -> Limits:
        """These limits with the non-None `overrides` applied."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class Policy:
    """The model rollouts sample from: an engine, the renderer of its prompts, default sampling.

    `renderer` may be None only in chat mode. Its stop tokens are added to every request,
    so a turn ends where the template ends an assistant turn.
    """

    engine: Engine
    renderer: Renderer | None
    sampling: SamplingParams = field(default_factory=SamplingParams)
    mode: PromptMode = PromptMode.RENDERER
    template_source: str = "local"
    template_kwargs: dict[str, Any] = field(default_factory=dict)
    drift_check: bool = False

    def __post_init__(self) -> None:
        self.mode = PromptMode(self.mode)
        if self.renderer is not None and self.mode is not PromptMode.CHAT:
            stops = tuple(dict.fromkeys([*self.sampling.stop_token_ids, *self.renderer.stop_token_ids]))
            self.sampling = replace(self.sampling, stop_token_ids=stops)

    def sampler(
        self,
        *,
        tools: Sequence[Mapping[str, Any]] | None = None,
        max_seq_len: int | None = None,
        sampling: SamplingParams | None = None,
    ) -> TurnSampler:
        """A `TurnSampler` for one rollout."""
        return TurnSampler(
            self.engine,
            self.renderer,
            mode=self.mode,
            template_source=self.template_source,
            sampling=sampling or self.sampling,
            tools=tools,
            max_seq_len=max_seq_len,
            drift_check=self.drift_check,
            template_kwargs=self.template_kwargs,
        )


class Environment(ABC):
    """Dataset rows, a rubric, limits, and how one rollout runs.

    `sampling` holds the environment's default sampling fields (e.g. `max_tokens`), which
    the user's settings override. `pass_metric` names the 0/1 metric pass@k counts; without
    it a rollout passes when its reward is at least 1.
    """

    name: str = "environment"
    pass_metric: str | None = None

    def __init__(
        self,
        dataset: DatasetSource | None = None,
        *,
        rubric: Rubric | RubricGroup | None = None,
        limits: Limits | None = None,
        sampling: Mapping[str, Any] | None = None,
        name: str | None = None,
    ) -> None:
        self.rows: list[dict[str, Any]] = [] if dataset is None else load_rows(dataset)
        self.rubric: Rubric | RubricGroup = rubric if rubric is not None else Rubric([])
        self.limits = limits or Limits()
        self.sampling: dict[str, Any] = dict(sampling or {})
        if name is not None:
            self.name = name

    @abstractmethod
    async def rollout(self, policy: Policy, row: Mapping[str, Any]) -> Trajectory:
        """Run one episode on `row`; limits end it with their stop reason, never by raising."""

    async def score_group(self, group: Sequence[Trajectory]) -> None:
        """Score the rollouts of one example together (rewards and metrics on each)."""
        await self.rubric.score_group(group)

    def summarize(self, trajectories: Sequence[Trajectory]) -> dict[str, Any]:
        """Run-level figures of this environment for the run's metadata (e.g. an official pass@k)."""
        return {}

    def close(self) -> None:
        """Release what the environment holds (sandbox workers, files); the runner calls it at the end."""

    def config(self) -> dict[str, Any]:
        """A JSON-safe description of this environment for the run's metadata."""
        return {
            "name": self.name,
            "class": f"{type(self).__module__}.{type(self).__qualname__}",
            "rows": len(self.rows),
            "limits": self.limits.to_dict(),
            "sampling": self.sampling,
        }
