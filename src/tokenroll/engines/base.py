"""The engine interface: token ids in, token ids and logprobs out; typed errors; retry policy.

Every engine speaks `generate(prompt_ids, sampling) -> Generation`; engines that take
messages (an OpenAI-compatible chat endpoint) speak `chat(messages, tools, sampling)`.
A result is never silently wrong: ids and logprobs that do not line up, or a response
that cannot be read, raise `MalformedResponseError`.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from tokenroll.core.messages import Message


class FinishReason(StrEnum):
    """Why the engine stopped sampling a completion."""

    STOP = "stop"
    """A stop token or stop string was sampled."""
    LENGTH = "length"
    """The completion reached `max_tokens` (or the model's context); it has no stop token."""
    ABORT = "abort"
    """The engine aborted the request (preemption, shutdown)."""


@dataclass(slots=True, frozen=True)
class SamplingParams:
    """How to sample one completion. `extra` is passed through to the engine unchanged."""

    max_tokens: int = 512
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = -1
    seed: int | None = None
    stop_token_ids: tuple[int, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if type(self.max_tokens) is not int or self.max_tokens < 1:
            raise ValueError(f"max_tokens must be a positive integer, got {self.max_tokens!r}")
        if not self.temperature >= 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature!r}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p!r}")


@dataclass(slots=True)
class Generation:
    """One sampled completion: the prompt the engine used, and the completion with its logprobs."""

    prompt_ids: list[int]
    completion_ids: list[int]
    completion_logprobs: list[float] | None
    finish_reason: FinishReason
    usage: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.finish_reason = FinishReason(self.finish_reason)
        if self.completion_logprobs is not None and len(self.completion_logprobs) != len(self.completion_ids):
            raise MalformedResponseError(
                f"engine returned {len(self.completion_ids)} completion ids but "
                f"{len(self.completion_logprobs)} logprobs"
            )


@dataclass(slots=True)
class ChatGeneration:
    """A chat completion: the assistant message, and token ids when the provider returned them.

    `prompt_ids`/`completion_ids` are None for a text-only provider; such a step is not trainable.
    """

    message: Message
    finish_reason: FinishReason
    prompt_ids: list[int] | None = None
    completion_ids: list[int] | None = None
    completion_logprobs: list[float] | None = None
    usage: dict[str, int] = field(default_factory=dict)

    @property
    def has_tokens(self) -> bool:
        return self.prompt_ids is not None and self.completion_ids is not None


# --- errors --------------------------------------------------------------------------------


class EngineError(Exception):
    """An engine request failed. `retryable` errors are retried by `RetryPolicy`."""

    retryable = False


class BadRequestError(EngineError):
    """The engine refused the request as malformed (HTTP 400/422)."""


class UnknownModelError(EngineError):
    """The engine does not serve the model asked for (HTTP 404)."""


class ContextOverflowError(EngineError):
    """The prompt (plus `max_tokens`) does not fit the model's context."""


class EngineTimeoutError(EngineError):
    """No answer within the request timeout."""

    retryable = True


class RateLimitedError(EngineError):
    """The engine asked us to slow down (HTTP 429); `retry_after` is its `Retry-After`, in seconds."""

    retryable = True
    retry_after: float | None = None


class ServerError(EngineError):
    """The engine failed (HTTP 5xx)."""

    retryable = True


class ConnectionDroppedError(EngineError):
    """The connection failed or closed before a full response arrived."""

    retryable = True


class MalformedResponseError(EngineError):
    """The response could not be read, or its ids and logprobs do not line up."""


@dataclass(slots=True, frozen=True)
class RetryPolicy:
    """Bounded retries with exponential backoff and full jitter for retryable engine errors."""

    max_retries: int = 3
    initial_backoff: float = 0.5
    max_backoff: float = 8.0

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before retry number `attempt` (1-based)."""
        return random.uniform(0, min(self.max_backoff, self.initial_backoff * 2 ** (attempt - 1)))


# --- the interface -------------------------------------------------------------------------


class Engine(ABC):
    """A model that samples completions. Engines are async and safe to call concurrently."""

    model: str
    """The model name the engine serves or is asked for."""

    @abstractmethod
    async def generate(self, prompt_ids: Sequence[int], sampling: SamplingParams) -> Generation:
        """Sample one completion of a token-id prompt."""

    async def chat(
        self,
        messages: Sequence[Message],
        tools: Sequence[Mapping[str, Any]] | None,
        sampling: SamplingParams,
    ) -> ChatGeneration:
        """Sample one assistant message (message-in engines only)."""
        raise NotImplementedError(f"{type(self).__name__} takes token ids, not messages")

    async def max_model_len(self) -> int | None:
        """The model's context length, when the engine says."""
        return None

    async def aclose(self) -> None:
        """Release connections and workers."""

    async def __aenter__(self) -> Engine:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
