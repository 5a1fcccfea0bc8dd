"""An HTTP server over the local engine with vLLM's OpenAI-compatible endpoints.

`/v1/models`, `/v1/completions` (token-id or text prompts), `/v1/chat/completions` and
`/tokenize` take and return vLLM's field names (`return_token_ids`, `prompt_token_ids`,
choice `token_ids`, `stop_token_ids`, `max_model_len`), so tokenroll's HTTP clients run
against a real model on any machine.

The renderer is passed in (`create_app(engine, renderer)`): engines sit below renderers, so
this module never imports `tokenroll.render`; `tokenroll serve` builds both. Logprobs are
the sampled tokens' only: `top_logprobs` entries are None (completions) or empty (chat).
Streaming and `n > 1` are refused with a 400.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from aiohttp import web

from tokenroll.core.messages import Message, as_messages
from tokenroll.engines.base import (
    BadRequestError,
    ContextOverflowError,
    EngineError,
    FinishReason,
    Generation,
    SamplingParams,
    UnknownModelError,
)
from tokenroll.engines.local import LocalEngine

_log = logging.getLogger(__name__)

_COMPLETIONS_MAX_TOKENS = 16
"""vLLM's (and OpenAI's) default `max_tokens` for `/v1/completions`."""


def create_app(engine: LocalEngine, renderer: Any) -> web.Application:
    """The aiohttp application serving `engine`; `renderer` renders and parses chat messages."""
    app = web.Application(middlewares=[_errors_as_json])
    handlers = _Handlers(engine, renderer)
    app.router.add_get("/v1/models", handlers.models)
    app.router.add_post("/v1/completions", handlers.completions)
    app.router.add_post("/v1/chat/completions", handlers.chat_completions)
    app.router.add_post("/tokenize", handlers.tokenize)
    app.on_cleanup.append(lambda _app: engine.aclose())
    return app


class _Handlers:
    """The endpoint handlers, sharing one engine and renderer."""

    def __init__(self, engine: LocalEngine, renderer: Any) -> None:
        self.engine = engine
        self.renderer = renderer
        self.tokenizer = engine.tokenizer
        self.created = int(time.time())

    async def models(self, request: web.Request) -> web.Response:
        card = {
            "id": self.engine.model,
            "object": "model",
            "created": self.created,
            "owned_by": "tokenroll",
            "root": self.engine.model,
            "parent": None,
            "max_model_len": await self.engine.max_model_len(),
            "permission": [],
        }
        return web.json_response({"object": "list", "data": [card]})

    async def completions(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        prompt = body.get("prompt")
        if isinstance(prompt, str):
            prompt_ids = self.tokenizer.encode(prompt, add_special_tokens=True)
        elif isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], list):
            prompt_ids = prompt[0]  # a batch of one token prompt
        elif isinstance(prompt, list) and all(type(t) is int for t in prompt):
            prompt_ids = prompt
        else:
            raise BadRequestError("prompt must be a string, a list of token ids, or one such list in a list")
        sampling = _sampling(body, _int_field(body, "max_tokens", _COMPLETIONS_MAX_TOKENS), ())
        generation = await self.engine.generate(prompt_ids, sampling)
        choice: dict[str, Any] = {
            "index": 0,
            "text": self.tokenizer.decode(generation.completion_ids, skip_special_tokens=True),
            "logprobs": None,
            "finish_reason": str(generation.finish_reason),
            "stop_reason": self._stop_reason(generation),
            "prompt_logprobs": None,
        }
        if body.get("logprobs") is not None:
            choice["logprobs"] = self._completion_logprobs(generation, body)
        if body.get("return_token_ids"):
            choice["prompt_token_ids"] = generation.prompt_ids
            choice["token_ids"] = generation.completion_ids
        return web.json_response(
            {
                "id": f"cmpl-{uuid.uuid4().hex}",
                "object": "text_completion",
                "created": int(time.time()),
                "model": self.engine.model,
                "choices": [choice],
                "usage": _usage(generation),
            }
        )

    async def chat_completions(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        messages, tools = _messages(body), body.get("tools")
        if body.get("continue_final_message"):
            raise BadRequestError("continue_final_message is not supported by this server")
        prompt_ids = self.renderer.render_ids(
            messages, tools, add_generation_prompt=True, **_template_kwargs(body)
        )
        limit = await self.engine.max_model_len() or 0
        default_max = max(1, limit - len(prompt_ids))
        max_tokens = _int_field(body, "max_completion_tokens", None) or _int_field(body, "max_tokens", default_max)
        sampling = _sampling(body, max_tokens, self.renderer.stop_token_ids)
        generation = await self.engine.generate(prompt_ids, sampling)
        parsed = self.renderer.parse_completion(generation.completion_ids, prompt_ids=prompt_ids, tools=tools)
        message = _assistant_dict(parsed.to_message())
        finish = str(generation.finish_reason)
        if message.get("tool_calls") and generation.finish_reason is FinishReason.STOP:
            finish = "tool_calls"
        choice: dict[str, Any] = {
            "index": 0,
            "message": message,
            "logprobs": self._chat_logprobs(generation) if body.get("logprobs") else None,
            "finish_reason": finish,
            "stop_reason": self._stop_reason(generation),
        }
        response: dict[str, Any] = {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.engine.model,
            "choices": [choice],
            "usage": _usage(generation),
            "prompt_logprobs": None,
        }
        if body.get("return_token_ids"):
            choice["token_ids"] = generation.completion_ids
            response["prompt_token_ids"] = generation.prompt_ids
        return web.json_response(response)

    async def tokenize(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        if "messages" in body:
            ids = self.renderer.render_ids(
                _messages(body),
                body.get("tools"),
                add_generation_prompt=bool(body.get("add_generation_prompt", True)),
                **_template_kwargs(body),
            )
        elif isinstance(body.get("prompt"), str):
            ids = self.tokenizer.encode(body["prompt"], add_special_tokens=bool(body.get("add_special_tokens", True)))
        else:
            raise BadRequestError("/tokenize takes a string 'prompt' or a list of 'messages'")
        return web.json_response(
            {
                "count": len(ids),
                "max_model_len": await self.engine.max_model_len(),
                "tokens": ids,
                "token_strs": self.tokenizer.convert_ids_to_tokens(ids) if body.get("return_token_strs") else None,
            }
        )

    # --- helpers -----------------------------------------------------------------------

    async def _body(self, request: web.Request) -> dict[str, Any]:
        """The JSON body, checked to name this server's model when it names one."""
        try:
            body = await request.json()
        except ValueError as exc:
            raise BadRequestError(f"request body is not JSON: {exc}") from None
        if not isinstance(body, dict):
            raise BadRequestError(f"request body must be a JSON object, got {type(body).__name__}")
        model = body.get("model")
        if model is not None and model != self.engine.model:
            raise UnknownModelError(f"The model `{model}` does not exist.")
        if body.get("stream"):
            raise BadRequestError("streaming is not supported by this server")
        if body.get("n", 1) != 1:
            raise BadRequestError("n must be 1 on this server")
        return body

    def _stop_reason(self, generation: Generation) -> int | None:
        """The stop token that ended the completion, None for the model's EOS or a length cut (as vLLM)."""
        if generation.finish_reason is not FinishReason.STOP or not generation.completion_ids:
            return None
        last = generation.completion_ids[-1]
        return None if last in self.engine.eos_token_ids else last

    def _token_strings(self, ids: Sequence[int], as_ids: bool) -> list[str]:
        if as_ids:
            return [f"token_id:{token}" for token in ids]
        return [self.tokenizer.decode([token]) for token in ids]

    def _completion_logprobs(self, generation: Generation, body: Mapping[str, Any]) -> dict[str, Any]:
        tokens = self._token_strings(generation.completion_ids, bool(body.get("return_tokens_as_token_ids")))
        offsets, offset = [], 0
        for token in tokens:
            offsets.append(offset)
            offset += len(token)
        return {
            "text_offset": offsets,
            "token_logprobs": generation.completion_logprobs,
            "tokens": tokens,
            "top_logprobs": [None] * len(tokens),
        }

    def _chat_logprobs(self, generation: Generation) -> dict[str, Any]:
        tokens = self._token_strings(generation.completion_ids, False)
        return {
            "content": [
                {"token": token, "logprob": logprob, "bytes": list(token.encode()), "top_logprobs": []}
                for token, logprob in zip(tokens, generation.completion_logprobs or [])
            ]
        }


def _int_field(body: Mapping[str, Any], name: str, default: int | None) -> int | None:
    value = body.get(name)
    if value is None:
        return default
    if type(value) is not int:
        raise BadRequestError(f"{name} must be an integer, got {value!r}")
    return value


def _sampling(body: Mapping[str, Any], max_tokens: int | None, stop_token_ids: Sequence[int]) -> SamplingParams:
    """SamplingParams from vLLM's request fields; the renderer's stop tokens join the request's."""
    requested = body.get("stop_token_ids") or []
    if not isinstance(requested, list) or not all(type(t) is int for t in requested):
        raise BadRequestError("stop_token_ids must be a list of token ids")
    try:
        return SamplingParams(
            max_tokens=max_tokens,
            temperature=float(body.get("temperature", 1.0)),
            top_p=float(body.get("top_p", 1.0)),
            top_k=int(body.get("top_k", -1)),
            seed=_int_field(body, "seed", None),
            stop_token_ids=tuple(dict.fromkeys([*stop_token_ids, *requested])),
        )
    except (TypeError, ValueError) as exc:
        raise BadRequestError(str(exc)) from None


def _messages(body: Mapping[str, Any]) -> list[Message]:
    try:
        return as_messages(body.get("messages") or [])
    except (TypeError, ValueError) as exc:
        raise BadRequestError(str(exc)) from None


def _template_kwargs(body: Mapping[str, Any]) -> dict[str, Any]:
    kwargs = body.get("chat_template_kwargs") or {}
    if not isinstance(kwargs, dict):
        raise BadRequestError("chat_template_kwargs must be an object")
    return kwargs


def _assistant_dict(message: Message) -> dict[str, Any]:
    """The OpenAI message shape; tool calls get ids, as vLLM gives them."""
    out = message.to_dict()
    out.setdefault("content", None)
    for call in out.get("tool_calls") or []:
        call.setdefault("id", f"chatcmpl-tool-{uuid.uuid4().hex}")
    return out


def _usage(generation: Generation) -> dict[str, int]:
    prompt, completion = len(generation.prompt_ids), len(generation.completion_ids)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


_STATUS = {BadRequestError: 400, ContextOverflowError: 400, UnknownModelError: 404}
_ERROR_TYPES = {400: "BadRequestError", 404: "NotFoundError", 500: "InternalServerError"}


@web.middleware
async def _errors_as_json(request: web.Request, handler: Any) -> web.StreamResponse:
    """Engine and request errors as vLLM's error body `{"error": {message, type, param, code}}`."""
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except EngineError as exc:
        status = _STATUS.get(type(exc), 500)
        message = str(exc)
    except ValueError as exc:  # a conversation the renderer refuses (RenderError)
        status, message = 400, str(exc)
    except Exception as exc:  # a bug still answers in the error shape clients read
        _log.exception("request to %s failed", request.path)
        status, message = 500, f"{type(exc).__name__}: {exc}"
    error = {"message": message, "type": _ERROR_TYPES[status], "param": None, "code": status}
    return web.json_response({"error": error}, status=status)
