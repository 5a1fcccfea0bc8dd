"""Inference engines: token ids in, token ids and logprobs out."""

from __future__ import annotations

from typing import Any, Literal

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
    "connect",
]

EngineKind = Literal["vllm", "sglang", "openai"]


def connect(base_url: str, model: str, kind: EngineKind = "vllm", **options: Any) -> Engine:
    """An HTTP engine of `kind` for `model` at `base_url`; `options` go to its constructor."""
    # Imported here so that the data types above do not pull in the HTTP client.
    if kind == "vllm":
        from tokenroll.engines.vllm import VLLMEngine

        return VLLMEngine(base_url, model, **options)
    if kind == "sglang":
        from tokenroll.engines.sglang import SGLangEngine

        return SGLangEngine(base_url, model, **options)
    if kind == "openai":
        from tokenroll.engines.openai_chat import OpenAIChatEngine

        return OpenAIChatEngine(base_url, model, **options)
    raise ValueError(f"unknown engine kind {kind!r}; expected vllm, sglang or openai")
