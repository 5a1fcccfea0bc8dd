"""A stub LLM server for `bench/runner.py` that answers at once, always "The answer is 4.".

- `POST /v1/completions`: vLLM's shape for a token-id prompt with `return_token_ids`
  (what `tokenroll.engines.vllm.VLLMEngine.generate` sends): the choice carries
  `prompt_token_ids` (the prompt echoed), `token_ids` (the answer in SmolLM2's tokenizer,
  end-of-turn token included, as vLLM returns a sampled EOS), and `logprobs` in the
  completions layout (`tokens`, `token_logprobs`, `top_logprobs`, `text_offset`).
- `POST /v1/chat/completions`: OpenAI's shape, as the `openai` client verifiers uses parses it.
- `GET /v1/models`: the one served model.

It depends on aiohttp and the standard library only (orjson when installed), so both the
project's python and the bench's verifiers virtualenv can import it. In-process:
`runner, port = await start()` ... `await runner.cleanup()`. As its own process:
`python bench/_stub_llm.py --port 0` prints `listening on http://127.0.0.1:PORT` once it
accepts connections, and stops by itself after `--seconds`.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sys
import time
from typing import Any

from aiohttp import web

try:
    import orjson

    _loads = orjson.loads
    _dumps = orjson.dumps
except ImportError:  # the stub must run where orjson is not installed
    _loads = json.loads

    def _dumps(value: Any) -> bytes:
        return json.dumps(value, separators=(",", ":")).encode()


MODEL = "bench-stub"
ANSWER_TEXT = "The answer is 4."
# "The answer is 4." in SmolLM2's tokenizer, then <|im_end|> (id 2), the end of the assistant
# turn a model samples. Fixed here because this module must not need a tokenizer; bench/runner.py
# checks them against the shared SmolLM2 tokenizer before it measures anything.
ANSWER_PIECES = ["The", " answer", " is", " ", "4", ".", "<|im_end|>"]
ANSWER_TOKEN_IDS = [504, 2988, 314, 216, 36, 30, 2]
ANSWER_LOGPROBS = [-0.25, -0.5, -0.125, -0.75, -1.5, -0.0625, -0.03125]

_COMPLETION_LOGPROBS = {
    "text_offset": list(itertools.accumulate([0] + [len(p) for p in ANSWER_PIECES[:-1]])),
    "token_logprobs": ANSWER_LOGPROBS,
    "tokens": ANSWER_PIECES,
    "top_logprobs": [{p: lp} for p, lp in zip(ANSWER_PIECES, ANSWER_LOGPROBS)],
}
_MODELS = {
    "object": "list",
    "data": [
        {"id": MODEL, "object": "model", "created": 0, "owned_by": "bench", "max_model_len": 8192}
    ],
}
_ids = itertools.count()


def _json(value: Any) -> web.Response:
    return web.Response(body=_dumps(value), content_type="application/json")


async def completions(request: web.Request) -> web.Response:
    """vLLM `/v1/completions` for a token-id prompt, with `return_token_ids`."""
    body = _loads(await request.read())
    prompt = body["prompt"]
    if not isinstance(prompt, list):
        return web.json_response({"error": "this stub takes token-id prompts only"}, status=400)
    return _json(
        {
            "id": f"cmpl-{next(_ids)}",
            "object": "text_completion",
            "created": int(time.time()),
            "model": body.get("model", MODEL),
            "choices": [
                {
                    "index": 0,
                    "text": ANSWER_TEXT,
                    "logprobs": _COMPLETION_LOGPROBS,
                    "finish_reason": "stop",
                    "stop_reason": None,
                    "prompt_token_ids": prompt,
                    "token_ids": ANSWER_TOKEN_IDS,
                }
            ],
            "usage": {
                "prompt_tokens": len(prompt),
                "completion_tokens": len(ANSWER_TOKEN_IDS),
                "total_tokens": len(prompt) + len(ANSWER_TOKEN_IDS),
            },
        }
    )


async def chat_completions(request: web.Request) -> web.Response:
    """OpenAI `/v1/chat/completions`; token counts are rough (no tokenizer here)."""
    body = _loads(await request.read())
    prompt_tokens = sum(len(str(m.get("content") or "")) for m in body["messages"]) // 4
    completion_tokens = len(ANSWER_TOKEN_IDS)
    return _json(
        {
            "id": f"chatcmpl-{next(_ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", MODEL),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": ANSWER_TEXT},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
    )


async def models(request: web.Request) -> web.Response:
    return _json(_MODELS)


def make_app() -> web.Application:
    app = web.Application()
    app.router.add_post("/v1/completions", completions)
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_get("/v1/models", models)
    return app


async def start(port: int = 0, host: str = "127.0.0.1") -> tuple[web.AppRunner, int]:
    """Serve on the running event loop; returns the runner (stop with `await runner.cleanup()`)
    and the port it listens on."""
    # No access log: at thousands of requests a second it would cost more than the answers.
    runner = web.AppRunner(make_app(), access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    # A deep backlog: 256 clients connect at once when a measurement starts.
    site = web.TCPSite(runner, host, port, backlog=2048)
    await site.start()
    return runner, runner.addresses[0][1]


async def _serve(port: int, seconds: float) -> None:
    runner, bound = await start(port)
    print(f"listening on http://127.0.0.1:{bound}", flush=True)
    try:
        await asyncio.sleep(seconds)  # bounded: the parent usually stops it much sooner
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed)")
    parser.add_argument("--seconds", type=float, default=3600.0, help="stop after this long")
    args = parser.parse_args()
    try:
        asyncio.run(_serve(args.port, args.seconds))
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
