"""Per-run counters of how prompts were built: bridge attempts, successes and fallbacks by reason."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class PromptMode(StrEnum):
    """How a sampler builds prompts."""

    RENDERER = "renderer"
    """tokenroll's renderer renders the first turn; `Renderer.bridge` extends later turns."""
    TEMPLATE = "template"
    """The model's own chat template, bridged by dual tokenization (locally or via the server)."""
    CHAT = "chat"
    """Messages in, tokens (when the provider returns them) out."""


class FallbackReason(StrEnum):
    """Why a later turn was re-rendered in full instead of stitched onto the previous one."""

    LENGTH = "length"
    """The previous completion was cut by the engine's token limit."""
    MAX_SEQ_LEN = "max_seq_len"
    """The previous step was cut (or its completion budget capped) by `max_seq_len`."""
    ABORT = "abort"
    """The engine aborted the previous completion."""
    PREFIX_MISMATCH = "prefix_mismatch"
    """The previous prompt messages plus its completion message are not a prefix of the new messages."""
    NO_NEW_MESSAGES = "no_new_messages"
    """Nothing follows the matched prefix."""
    NEW_MESSAGE_ROLES = "new_message_roles"
    """The new messages are not tool messages with at most one final user message."""
    NO_STOP_TOKEN = "no_stop_token"
    """The previous completion does not end in a stop token (template bridge only)."""
    RENDERER_REFUSED = "renderer_refused"
    """`Renderer.bridge` returned None (see the family's module docstring)."""
    TEMPLATE_MISMATCH = "template_mismatch"
    """The dual tokenization could not locate the previous turn's end in the template's output."""


@dataclass(slots=True)
class BridgeStats:
    """Counters for one rollout or a whole run; `merge` adds them, `to_dict` goes into run metadata.

    Every turn after the first is one bridge attempt, ending in a success or one counted fallback.
    """

    turns: int = 0
    full_renders: int = 0
    bridge_attempts: int = 0
    bridge_successes: int = 0
    fallbacks: dict[str, int] = field(default_factory=dict)
    drift_checks: int = 0
    drifted_steps: int = 0
    drift_tokens: int = 0
    text_only_steps: int = 0

    def count_fallback(self, reason: FallbackReason) -> None:
        self.fallbacks[reason.value] = self.fallbacks.get(reason.value, 0) + 1

    def merge(self, other: BridgeStats) -> BridgeStats:
        """The sum of both counters, as a new object."""
        fallbacks = dict(self.fallbacks)
        for reason, count in other.fallbacks.items():
            fallbacks[reason] = fallbacks.get(reason, 0) + count
        return BridgeStats(
            turns=self.turns + other.turns,
            full_renders=self.full_renders + other.full_renders,
            bridge_attempts=self.bridge_attempts + other.bridge_attempts,
            bridge_successes=self.bridge_successes + other.bridge_successes,
            fallbacks=fallbacks,
            drift_checks=self.drift_checks + other.drift_checks,
            drifted_steps=self.drifted_steps + other.drifted_steps,
            drift_tokens=self.drift_tokens + other.drift_tokens,
            text_only_steps=self.text_only_steps + other.text_only_steps,
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe mapping; fallback reasons sorted so output is stable."""
        return {
            "turns": self.turns,
            "full_renders": self.full_renders,
            "bridge_attempts": self.bridge_attempts,
            "bridge_successes": self.bridge_successes,
            "fallbacks": dict(sorted(self.fallbacks.items())),
            "drift_checks": self.drift_checks,
            "drifted_steps": self.drifted_steps,
            "drift_tokens": self.drift_tokens,
            "text_only_steps": self.text_only_steps,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BridgeStats:
        return cls(**{**data, "fallbacks": dict(data.get("fallbacks", {}))})
