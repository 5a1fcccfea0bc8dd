"""Inference engines: token ids in, token ids and logprobs out."""

from tokenroll.engines.base import (
    BadRequestError,
    ChatGeneration,
    ConnectionDroppedError,
    ContextOverflowError,
    Engine,
    EngineError,
    EngineTimeoutError,
    FinishReason,
    Generation,
    MalformedResponseError,
    RateLimitedError,
    RetryPolicy,
    SamplingParams,
    ServerError,
    UnknownModelError,
)

__all__ = [
    "BadRequestError",
    "ChatGeneration",
    "ConnectionDroppedError",
    "ContextOverflowError",
    "Engine",
    "EngineError",
    "EngineTimeoutError",
    "FinishReason",
    "Generation",
    "MalformedResponseError",
    "RateLimitedError",
    "RetryPolicy",
    "SamplingParams",
    "ServerError",
    "UnknownModelError",
]
