"""An in-process aiohttp server that answers like vLLM, SGLang and OpenAI, with scripted faults.

Every request is recorded (path, JSON body, headers). Faults queued with `fail_next` are used
one per request, in order, before normal answers resume. Loopback only.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Self

import orjson
from aiohttp import web

from tokenroll.engines.vllm import VLLMEngine

MODEL = "stub-model"
MAX_MODEL_LEN = 2048
HANG_SECONDS = 3.0
"""How long a `timeout` fault holds a request; tests use client timeouts far below it."""


@dataclass(slots=True)
class Fault:
    """What to do instead of answering: `status` (with `body`), `timeout`, `drop` or `raw` bytes."""

    kind: str
    status: int = 200
    body: Any = None
    headers: dict[str, str] | None = None


@dataclass(slots=True)
class Recorded:
    method: str
    path: str
    json: Any
    headers: dict[str, str]


@dataclass(slots=True)
class Completion:
    """The completion every token endpoint samples."""

    ids: list[int] = field(default_factory=lambda: [100, 101, 102])
    logprobs: list[float] = field(default_factory=lambda: [-0.5, -0.25, -0.125])
    finish_reason: str = "stop"


class StubServer:
    """Answers `/v1/completions`, `/inference/v1/generate`, `/v1/chat/completions`, `/tokenize`,
    `/v1/models`, `/openapi.json` (vLLM) and `/generate` (SGLang)."""

    def __init__(self, *, offer_generate: bool = False, chat_ids: str = "vllm") -> None:
        self.offer_generate = offer_generate
        self.chat_ids = chat_ids
        """How chat answers carry ids: `vllm` (return_token_ids), `content` (logprobs.content[].token_id), `none`."""
        self.completion = Completion()
        self.tokenize_ids = [1, 2, 3, 4]
        self.requests: list[Recorded] = []
        self.faults: deque[Fault] = deque()
        self.base_url = ""
        self._runner: web.AppRunner | None = None

    def fail_next(self, *faults: Fault) -> None:
        self.faults.extend(faults)

    def paths(self) -> list[str]:
        return [r.path for r in self.requests]

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # Cancel a held handler when the client gives up, so timeouts leave nothing running.
        self._runner = web.AppRunner(
            app, handler_cancellation=True, access_log=None, shutdown_timeout=0.5
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        body = orjson.loads(raw) if raw else None
        self.requests.append(Recorded(request.method, request.path, body, dict(request.headers)))
        if self.faults:
            fault = self.faults.popleft()
            if fault.kind == "timeout":
                await asyncio.sleep(HANG_SECONDS)
            elif fault.kind == "drop":
                # Close the socket without an answer, as a crashed server or proxy would.
                assert request.transport is not None
                request.transport.close()
                await asyncio.sleep(HANG_SECONDS)
            elif fault.kind == "raw":
                return web.Response(
                    status=fault.status, body=fault.body, content_type="application/json"
                )
            elif fault.kind == "status":
                return _json(fault.body, status=fault.status, headers=fault.headers)
            else:
                raise ValueError(f"unknown fault {fault.kind!r}")
        handler = _ROUTES.get((request.method, request.path))
        if handler is None:
            return _json({"detail": "Not Found"}, status=404)
        return _json(handler(self, body))

    # --- vLLM ---------------------------------------------------------------------------

    def _completions(self, body: Mapping[str, Any]) -> dict[str, Any]:
        c = self.completion
        return {
            "id": "cmpl-1",
            "object": "text_completion",
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "text": "".join(f"<{i}>" for i in c.ids),
                    "logprobs": {
                        "text_offset": list(range(len(c.ids))),
                        "token_logprobs": c.logprobs,
                        "tokens": [f"<{i}>" for i in c.ids],
                        "top_logprobs": [{f"<{i}>": lp} for i, lp in zip(c.ids, c.logprobs)],
                    },
                    "finish_reason": c.finish_reason,
                    "stop_reason": None,
                    "prompt_token_ids": body["prompt"],
                    "token_ids": c.ids,
                }
            ],
            "usage": _usage(len(body["prompt"]), len(c.ids)),
        }

    def _tokens_generate(self, body: Mapping[str, Any]) -> dict[str, Any]:
        c = self.completion
        return {
            "request_id": "gen-1",
            "choices": [
                {
                    "index": 0,
                    "logprobs": {
                        "content": [
                            {
                                "token": f"token_id:{i}",
                                "logprob": lp,
                                "bytes": None,
                                "top_logprobs": [],
                            }
                            for i, lp in zip(c.ids, c.logprobs)
                        ]
                    },
                    "finish_reason": c.finish_reason,
                    "token_ids": c.ids,
                }
            ],
            "usage": _usage(len(body["token_ids"]), len(c.ids)),
        }

    def _chat(self, body: Mapping[str, Any]) -> dict[str, Any]:
        c = self.completion
        content = [
            {"token": f"<{i}>", "logprob": lp, "bytes": [60], "top_logprobs": []}
            for i, lp in zip(c.ids, c.logprobs)
        ]
        choice: dict[str, Any] = {
            "index": 0,
            "message": {"role": "assistant", "content": "hello", "tool_calls": []},
            "logprobs": {"content": content},
            "finish_reason": c.finish_reason,
        }
        answer: dict[str, Any] = {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "model": body["model"],
            "choices": [choice],
            "usage": _usage(7, len(c.ids)),
        }
        if self.chat_ids == "vllm":
            choice["token_ids"] = c.ids
            answer["prompt_token_ids"] = self.tokenize_ids
        elif self.chat_ids == "content":
            for entry, i in zip(content, c.ids):
                entry["token_id"] = i
        return answer

    def _tokenize(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "count": len(self.tokenize_ids),
            "max_model_len": MAX_MODEL_LEN,
            "tokens": self.tokenize_ids,
            "token_strs": None,
        }

    def _models(self, body: Any) -> dict[str, Any]:
        return {
            "object": "list",
            "data": [
                {"id": MODEL, "object": "model", "owned_by": "vllm", "max_model_len": MAX_MODEL_LEN}
            ],
        }

    def _openapi(self, body: Any) -> dict[str, Any]:
        paths = {"/v1/completions": {}, "/v1/chat/completions": {}, "/tokenize": {}}
        if self.offer_generate:
            paths["/inference/v1/generate"] = {}
        return {"openapi": "3.1.0", "paths": paths}

    # --- SGLang -------------------------------------------------------------------------

    def _sglang_generate(self, body: Mapping[str, Any]) -> dict[str, Any]:
        c = self.completion
        return {
            "text": "".join(f"<{i}>" for i in c.ids),
            "output_ids": c.ids,
            "meta_info": {
                "id": "sg-1",
                "finish_reason": {"type": c.finish_reason, "matched": c.ids[-1]},
                "prompt_tokens": len(body["input_ids"]),
                "completion_tokens": len(c.ids),
                "cached_tokens": 0,
                "output_token_logprobs": [[lp, i, None] for i, lp in zip(c.ids, c.logprobs)],
            },
        }


_ROUTES = {
    ("POST", "/v1/completions"): StubServer._completions,
    ("POST", "/inference/v1/generate"): StubServer._tokens_generate,
    ("POST", "/v1/chat/completions"): StubServer._chat,
    ("POST", "/tokenize"): StubServer._tokenize,
    ("GET", "/v1/models"): StubServer._models,
    ("GET", "/openapi.json"): StubServer._openapi,
    ("POST", "/generate"): StubServer._sglang_generate,
}


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json", headers=headers)


def vllm_error(message: str, status: int = 400) -> Fault:
    """An error answer in vLLM's shape."""
    kind = {400: "BadRequestError", 404: "NotFoundError"}.get(status, "InternalServerError")
    return Fault(
        "status",
        status,
        {"error": {"message": message, "type": kind, "param": None, "code": status}},
    )


def run(
    test, *, server: dict | None = None, engine: dict | None = None, engine_cls: type = VLLMEngine
):
    """Run `await test(stub, engine)` against a fresh stub server and an engine of `engine_cls`."""

    async def main():
        async with (
            StubServer(**(server or {})) as stub,
            engine_cls(stub.base_url, MODEL, **(engine or {})) as client,
        ):
            return await test(stub, client)

    return asyncio.run(main())
