"""A vLLM server: token ids in, token ids and logprobs out, over its OpenAI-compatible API.

`generate` posts a token-id prompt to `/v1/completions` with `return_token_ids`, or to the
pure tokens-in/tokens-out `/inference/v1/generate` when the server offers it (probed once,
from its OpenAPI schema). `chat` uses `/v1/chat/completions`; `tokenize` renders messages
with the server's chat template through `/tokenize`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from tokenroll.core.messages import Message, as_messages
from tokenroll.engines import _parse
from tokenroll.engines.base import (
    BadRequestError,
    ChatGeneration,
    Generation,
    MalformedResponseError,
    SamplingParams,
    UnknownModelError,
)
from tokenroll.engines.http import HTTPEngine
from tokenroll.engines.openai_chat import CHAT_PATH, chat_payload, parse_chat, wire_message

COMPLETIONS_PATH = "/v1/completions"
GENERATE_PATH = "/inference/v1/generate"
MODELS_PATH = "/v1/models"
TOKENIZE_PATH = "/tokenize"
OPENAPI_PATH = "/openapi.json"

TokensEndpoint = Literal["auto", "completions", "generate"]


class VLLMEngine(HTTPEngine):
    """A model served by vLLM. `cache_salt` (e.g. the policy version) partitions its prefix cache."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        cache_salt: str | None = None,
        tokens_endpoint: TokensEndpoint = "auto",
        **options: Any,
    ) -> None:
        """`options` are `HTTPEngine`'s: api_key, headers, timeout, retry, max_connections, session_header."""
        super().__init__(base_url, model, **options)
        if tokens_endpoint not in ("auto", "completions", "generate"):
            raise ValueError(
                f"tokens_endpoint must be auto, completions or generate, got {tokens_endpoint!r}"
            )
        self.cache_salt = cache_salt
        self.tokens_endpoint: TokensEndpoint = tokens_endpoint
        self._probe_lock: asyncio.Lock | None = None

    async def generate(self, prompt_ids: Sequence[int], sampling: SamplingParams) -> Generation:
        if await self._uses_generate_path():
            return await self._generate_tokens(prompt_ids, sampling)
        payload: dict[str, Any] = {
            "model": self.model,
            "prompt": list(prompt_ids),
            **_parse.openai_sampling(sampling),
            "logprobs": 0,  # the sampled token's logprob only
            "return_token_ids": True,
            "skip_special_tokens": False,
            "stream": False,
        }
        if self.cache_salt is not None:
            payload["cache_salt"] = self.cache_salt
        payload.update(sampling.extra)
        answer = await self._post(COMPLETIONS_PATH, payload)
        return _token_generation(answer, payload["prompt"], f"{self.model} {COMPLETIONS_PATH}")

    async def _generate_tokens(
        self, prompt_ids: Sequence[int], sampling: SamplingParams
    ) -> Generation:
        """`/inference/v1/generate`; `sampling.extra` goes into its `sampling_params`."""
        params = _parse.openai_sampling(sampling)
        params.update({"logprobs": 0, "skip_special_tokens": False, **sampling.extra})
        payload: dict[str, Any] = {
            "model": self.model,
            "token_ids": list(prompt_ids),
            "sampling_params": params,
            "stream": False,
        }
        if self.cache_salt is not None:
            payload["cache_salt"] = self.cache_salt
        answer = await self._post(GENERATE_PATH, payload)
        return _token_generation(answer, payload["token_ids"], f"{self.model} {GENERATE_PATH}")

    async def _uses_generate_path(self) -> bool:
        """Whether to use `/inference/v1/generate`; in auto mode, asked of the server once."""
        if self.tokens_endpoint != "auto":
            return self.tokens_endpoint == "generate"
        if self._probe_lock is None:
            self._probe_lock = asyncio.Lock()
        async with self._probe_lock:
            if self.tokens_endpoint == "auto":
                offered = await self._offers_generate_path()
                self.tokens_endpoint = "generate" if offered else "completions"
        return self.tokens_endpoint == "generate"

    async def _offers_generate_path(self) -> bool:
        try:
            schema = await self._get(OPENAPI_PATH)
        except (UnknownModelError, BadRequestError, MalformedResponseError):
            return False  # no schema served: use the completions endpoint every server has
        paths = schema.get("paths") if isinstance(schema, Mapping) else None
        return isinstance(paths, Mapping) and GENERATE_PATH in paths

    async def chat(
        self,
        messages: Sequence[Message],
        tools: Sequence[Mapping[str, Any]] | None,
        sampling: SamplingParams,
    ) -> ChatGeneration:
        extra: dict[str, Any] = {"return_token_ids": True}
        if self.cache_salt is not None:
            extra["cache_salt"] = self.cache_salt
        payload = chat_payload(self.model, messages, tools, sampling, extra)
        answer = await self._post(CHAT_PATH, payload)
        return parse_chat(answer, f"{self.model} {CHAT_PATH}")

    async def max_model_len(self) -> int | None:
        return _parse.served_max_model_len(await self._get(MODELS_PATH), self.model, MODELS_PATH)

    async def tokenize(
        self,
        messages: Sequence[Message],
        tools: Sequence[Mapping[str, Any]] | None,
        add_generation_prompt: bool,
        chat_template_kwargs: Mapping[str, Any] | None = None,
    ) -> list[int]:
        """The server's chat-template rendering of `messages`, as token ids."""
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": [wire_message(m) for m in as_messages(messages)],
            "add_generation_prompt": add_generation_prompt,
            # The template writes the special tokens itself, as vLLM's chat endpoint assumes.
            "add_special_tokens": False,
        }
        if tools:
            payload["tools"] = list(tools)
        if chat_template_kwargs:
            payload["chat_template_kwargs"] = dict(chat_template_kwargs)
        return await self._tokens(payload)

    async def tokenize_text(self, text: str, add_special_tokens: bool = True) -> list[int]:
        """The server's tokenization of plain text."""
        payload = {"model": self.model, "prompt": text, "add_special_tokens": add_special_tokens}
        return await self._tokens(payload)

    async def _tokens(self, payload: Mapping[str, Any]) -> list[int]:
        answer = await self._post(TOKENIZE_PATH, payload)
        if not isinstance(answer, Mapping):
            raise MalformedResponseError(f"{TOKENIZE_PATH}: response is not an object")
        return _parse.int_list(answer.get("tokens"), f"{TOKENIZE_PATH} tokens")


def _token_generation(answer: Any, sent: list[int], where: str) -> Generation:
    """A completions or generate response to prompt `sent`, with every id and logprob checked."""
    if not isinstance(answer, Mapping) or not isinstance(answer.get("choices"), list):
        raise MalformedResponseError(f"{where}: response has no 'choices' list")
    if not answer["choices"] or not isinstance(answer["choices"][0], Mapping):
        raise MalformedResponseError(f"{where}: response has no choices[0] object")
    choice = answer["choices"][0]
    # The prompt the engine used is compared with the one sent (one C-level list comparison)
    # instead of being type-scanned id by id with the completion, which costs more than the
    # rest of the turn at long prompts.
    used = choice.pop("prompt_token_ids", None)
    prompt_ids = (
        sent if used is None or used == sent else _parse.int_list(used, f"{where} prompt_token_ids")
    )
    tokens = _parse.provider_tokens(answer, where)
    if tokens.completion_ids is None:
        raise MalformedResponseError(
            f"{where}: response carries no completion token ids (does the server take return_token_ids?)"
        )
    if tokens.completion_logprobs is None and tokens.completion_ids:
        raise MalformedResponseError(
            f"{where}: response carries no logprobs for its completion tokens"
        )
    return Generation(
        prompt_ids=prompt_ids,
        completion_ids=tokens.completion_ids,
        completion_logprobs=_parse.checked_logprobs(tokens.completion_logprobs or [], where),
        finish_reason=_parse.finish_reason(choice.get("finish_reason"), where),
        usage=_parse.usage(answer),
    )
