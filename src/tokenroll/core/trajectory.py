"""One rollout: its input row, its steps, how it ended, and what it scored."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from tokenroll.core.messages import Message
from tokenroll.core.samples import TrainingSample, build_samples
from tokenroll.core.steps import Step


class StopReason(StrEnum):
    """Why a rollout ended."""

    COMPLETED = "completed"
    """The environment finished the episode normally."""
    MAX_TURNS = "max_turns"
    """The rollout reached its limit on model calls."""
    MAX_TOKENS = "max_tokens"
    """A turn was cut by the engine's token limit (`finish_reason == "length"`)."""
    CONTEXT_OVERFLOW = "context_overflow"
    """The trajectory reached `max_seq_len`."""
    MAX_SAMPLED_TOKENS = "max_sampled_tokens"
    """The rollout sampled its budget of tokens over all turns."""
    PARSE_ERROR = "parse_error"
    """The model's output could not be parsed into what the environment needs."""
    ENV_ERROR = "env_error"
    """The environment, a tool or a reward function raised."""
    ENGINE_ERROR = "engine_error"
    """The engine failed (after its retries); the rollout is rerun by `--resume`."""
    TIMEOUT = "timeout"
    """The rollout ran past its wall-clock limit."""


@dataclass(slots=True, kw_only=True)
class Trajectory:
    """One rollout of an environment on one input row.

    `example_id` and `rollout_index` place it in its group (rollouts of the same example);
    `timing` holds durations in seconds; `extras` is free-form JSON-safe data.
    """

    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    input: dict[str, Any] = field(default_factory=dict)
    steps: list[Step] = field(default_factory=list)
    reward: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    stop_reason: StopReason | None = None
    error: str | None = None
    timing: dict[str, float] = field(default_factory=dict)
    example_id: int | str | None = None
    rollout_index: int = 0
    extras: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.stop_reason is not None:
            self.stop_reason = StopReason(self.stop_reason)
        for index, step in enumerate(self.steps):
            if not isinstance(step, Step):
                raise TypeError(f"trajectory step {index} is a {type(step).__name__}, expected a Step")

    @property
    def messages(self) -> list[Message]:
        """The conversation as the last model call left it: its prompt plus its completion."""
        if not self.steps:
            return []
        last = self.steps[-1]
        tail = [] if last.completion_message is None else [last.completion_message]
        return last.prompt_messages + tail

    def to_samples(self) -> list[TrainingSample]:
        """Training samples: steps whose prompt extends the previous prompt+completion merge into one."""
        return build_samples(self.steps)

    def to_prime_rl(self) -> list[dict[str, Any]]:
        """Each step in verifiers' `TrajectoryStep` shape, tokens as prime-rl consumes them."""
        return [
            {
                "prompt": [m.to_dict() for m in step.prompt_messages],
                "completion": []
                if step.completion_message is None
                else [step.completion_message.to_dict()],
                "tokens": step.to_prime_rl(),
                "reward": self.reward if step.reward is None else step.reward,
                "advantage": step.advantage,
                "completion_advantages": step.token_advantages(),
                "is_truncated": step.is_truncated,
                "trajectory_id": self.id,
                "extras": step.extras,
            }
            for step in self.steps
        ]

    def to_json(self) -> bytes:
        """One JSON line (without the newline); see `tokenroll.core.serialization`."""
        # Imported here: the serialization module depends on this one.
        from tokenroll.core.serialization import dumps_trajectory

        return dumps_trajectory(self)

    @classmethod
    def from_json(cls, line: bytes | str) -> Trajectory:
        """Read a trajectory written by `to_json`."""
        from tokenroll.core.serialization import loads_trajectory

        return loads_trajectory(line)
