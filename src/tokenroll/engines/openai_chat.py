"""Any OpenAI-compatible chat endpoint: messages in, the assistant message (and its tokens when given) out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tokenroll.core.messages import Message, as_messages
from tokenroll.core.provider import message_from_choice
from tokenroll.engines import _parse
from tokenroll.engines.base import (
    ChatGeneration,
    Generation,
    MalformedResponseError,
    SamplingParams,
)
from tokenroll.engines.http import HTTPEngine

CHAT_PATH = "/v1/chat/completions"


def chat_payload(
    model: str,
    messages: Sequence[Message | Mapping[str, Any]],
    tools: Sequence[Mapping[str, Any]] | None,
    sampling: SamplingParams,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The request body of a chat completion; `extra` then `sampling.extra` override its fields."""
    payload: dict[str, Any] = {
        "model": model,
        "messages": [wire_message(m) for m in as_messages(messages)],
        **_parse.openai_sampling(sampling),
        "logprobs": True,
        "stream": False,
    }
    if tools:
        payload["tools"] = list(tools)
    payload.update(extra or {})
    payload.update(sampling.extra)
    return payload


def parse_chat(payload: Any, where: str) -> ChatGeneration:
    """A chat response as a ChatGeneration; token ids stay None when the provider sent none."""
    if not isinstance(payload, Mapping) or not isinstance(payload.get("choices"), list):
        raise MalformedResponseError(f"{where}: response has no 'choices' list")
    if not payload["choices"]:
        raise MalformedResponseError(f"{where}: response has no choices")
    choice = payload["choices"][0]
    if not isinstance(choice, Mapping):
        raise MalformedResponseError(f"{where}: choices[0] is not an object")
    tokens = _parse.provider_tokens(payload, where)
    try:
        message = message_from_choice(payload)
    except (TypeError, ValueError) as exc:
        raise MalformedResponseError(f"{where}: {exc}") from None
    logprobs = tokens.completion_logprobs if tokens.completion_ids is not None else None
    if logprobs is not None:
        _parse.checked_logprobs(logprobs, where)
    return ChatGeneration(
        message=message,
        finish_reason=_parse.finish_reason(choice.get("finish_reason"), where),
        prompt_ids=tokens.prompt_ids,
        completion_ids=tokens.completion_ids,
        completion_logprobs=logprobs,
        usage=_parse.usage(payload),
    )


def wire_message(message: Message) -> dict[str, Any]:
    """A message as a provider takes it: engine token ids and logprobs stay with us."""
    out = message.to_dict()
    out.pop("token_ids", None)
    out.pop("logprobs", None)
    return out


class OpenAIChatEngine(HTTPEngine):
    """Chat completions from any OpenAI-compatible provider; token-in generation is not offered.

    `extra_body` is merged into every request, e.g. `{"return_token_ids": True}` for a vLLM server.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        extra_body: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> None:
        """`options` are `HTTPEngine`'s: api_key, headers, timeout, retry, max_connections, session_header."""
        super().__init__(base_url, model, **options)
        self.extra_body = dict(extra_body or {})

    async def generate(self, prompt_ids: Sequence[int], sampling: SamplingParams) -> Generation:
        raise NotImplementedError("OpenAIChatEngine takes messages (chat), not token ids")

    async def chat(
        self,
        messages: Sequence[Message],
        tools: Sequence[Mapping[str, Any]] | None,
        sampling: SamplingParams,
    ) -> ChatGeneration:
        payload = chat_payload(self.model, messages, tools, sampling, self.extra_body)
        answer = await self._post(CHAT_PATH, payload)
        return parse_chat(answer, f"{self.model} {CHAT_PATH}")
