"""Reading engine responses strictly: finish reasons, logprobs, provider token ids, usage."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from tokenroll.core.provider import ProviderTokens, extract_provider_tokens
from tokenroll.engines.base import (
    FinishReason,
    MalformedResponseError,
    SamplingParams,
    UnknownModelError,
)

# vLLM clamps a -inf logprob to this value before sending it as JSON.
_VLLM_LOGPROB_FLOOR = -9999.0

_FINISH_REASONS = {
    "stop": FinishReason.STOP,
    "eos": FinishReason.STOP,
    "tool_calls": FinishReason.STOP,
    "function_call": FinishReason.STOP,
    "length": FinishReason.LENGTH,
    "abort": FinishReason.ABORT,
    # The provider cut the answer short for its own reasons, as an abort would.
    "content_filter": FinishReason.ABORT,
}


def finish_reason(value: Any, where: str) -> FinishReason:
    """The finish reason a server gave, or MalformedResponseError for a missing or unknown one."""
    reason = _FINISH_REASONS.get(value) if isinstance(value, str) else None
    if reason is None:
        raise MalformedResponseError(f"{where}: unknown finish_reason {value!r}")
    return reason


def checked_logprobs(values: list[float], where: str) -> list[float]:
    """`values` when every one is finite; vLLM's -9999 floor (a -inf) or below is an error."""
    # Fast path for the common case: a sum is finite only if every value is.
    if not values or (math.isfinite(sum(values)) and min(values) > _VLLM_LOGPROB_FLOOR):
        return values
    for i, value in enumerate(values):
        if not math.isfinite(value) or value <= _VLLM_LOGPROB_FLOOR:
            raise MalformedResponseError(
                f"{where}: logprob {value!r} of completion token {i} is not a finite log-probability"
            )
    return values


def provider_tokens(payload: Mapping[str, Any], where: str) -> ProviderTokens:
    """Token ids and logprobs of an OpenAI-shaped response; disagreements become MalformedResponseError."""
    try:
        return extract_provider_tokens(payload)
    except (TypeError, ValueError) as exc:
        raise MalformedResponseError(f"{where}: {exc}") from None


def int_list(values: Any, where: str) -> list[int]:
    """A list of ints from a response, or MalformedResponseError."""
    if not isinstance(values, list) or not all(type(v) is int for v in values):
        raise MalformedResponseError(f"{where}: expected a list of token ids, got {values!r:.80}")
    return values


def usage(payload: Mapping[str, Any]) -> dict[str, int]:
    """The integer counts of an OpenAI `usage` object (empty when absent)."""
    raw = payload.get("usage")
    if not isinstance(raw, Mapping):
        return {}
    return {key: value for key, value in raw.items() if type(value) is int}


def openai_sampling(sampling: SamplingParams) -> dict[str, Any]:
    """Sampling fields in the OpenAI/vLLM request shape (`top_k` and `seed` only when set)."""
    fields: dict[str, Any] = {
        "max_tokens": sampling.max_tokens,
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
    }
    if sampling.top_k > 0:
        fields["top_k"] = sampling.top_k
    if sampling.seed is not None:
        fields["seed"] = sampling.seed
    if sampling.stop_token_ids:
        fields["stop_token_ids"] = list(sampling.stop_token_ids)
    return fields


def served_max_model_len(answer: Any, model: str, where: str) -> int | None:
    """`max_model_len` of `model` in an OpenAI `/v1/models` answer (vLLM and SGLang report it)."""
    cards = answer.get("data") if isinstance(answer, Mapping) else None
    if not isinstance(cards, list):
        raise MalformedResponseError(f"{where}: response has no 'data' list")
    for card in cards:
        if isinstance(card, Mapping) and card.get("id") == model:
            length = card.get("max_model_len")
            return length if type(length) is int else None
    served = [card.get("id") for card in cards if isinstance(card, Mapping)]
    raise UnknownModelError(f"{where}: the server serves {served}, not {model!r}")
