"""`tokenroll serve`'s HTTP server: vLLM's field names, errors as JSON, and the real model end to end."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from tests.assets import tokenizer_dir
from tests.engines.local_model import require_local, run, smollm2  # noqa: F401  (fixture)
from tokenroll.core.provider import extract_provider_tokens
from tokenroll.engines.base import ContextOverflowError, FinishReason, Generation, SamplingParams

IM_END = 2


class _StubEngine:
    """Answers every request with fixed completion ids; records what it was asked."""

    model = "stub-model"
    eos_token_ids = (IM_END,)

    def __init__(self, tokenizer: Any, completion: list[int], finish: FinishReason, error: Exception | None = None):
        self.tokenizer = tokenizer
        self.completion = completion
        self.finish = finish
        self.error = error
        self.calls: list[tuple[list[int], SamplingParams]] = []

    async def generate(self, prompt_ids: Sequence[int], sampling: SamplingParams) -> Generation:
        self.calls.append((list(prompt_ids), sampling))
        if self.error is not None:
            raise self.error
        return Generation(list(prompt_ids), self.completion, [-0.5] * len(self.completion), self.finish)

    async def max_model_len(self) -> int:
        return 8192

    async def aclose(self) -> None:
        pass


async def _serve(engine: Any, renderer: Any, requests: list[tuple[str, str, Any]]) -> list[tuple[int, Any]]:
    """Answer `(method, path, json)` requests with an in-process server; returns (status, body) pairs."""
    from aiohttp.test_utils import TestClient, TestServer

    from tokenroll.engines.server import create_app

    answers = []
    async with TestClient(TestServer(create_app(engine, renderer))) as client:
        for method, path, body in requests:
            kwargs = {"data": body} if isinstance(body, str) else {"json": body}
            response = await client.request(method, path, **kwargs)
            answers.append((response.status, await response.json()))
    return answers


@pytest.fixture
def smollm2_files():
    require_local()
    from transformers import AutoTokenizer

    from tokenroll.render import load_renderer

    folder = tokenizer_dir("smollm2")
    return AutoTokenizer.from_pretrained(folder), load_renderer(folder)


def test_completions_with_token_ids_use_vllm_field_names(smollm2_files):
    tokenizer, renderer = smollm2_files
    completion = tokenizer.encode("Four.") + [IM_END]
    engine = _StubEngine(tokenizer, completion, FinishReason.STOP)
    body = {"model": "stub-model", "prompt": [1, 4093, 198], "max_tokens": 5, "temperature": 0,
            "stop_token_ids": [7], "logprobs": 1, "return_token_ids": True, "seed": 3}
    [(status, answer)] = run(_serve(engine, renderer, [("POST", "/v1/completions", body)]))
    assert status == 200
    assert engine.calls == [([1, 4093, 198], SamplingParams(max_tokens=5, temperature=0, seed=3, stop_token_ids=(7,)))]
    choice = answer["choices"][0]
    assert (choice["prompt_token_ids"], choice["token_ids"]) == ([1, 4093, 198], completion)
    assert choice["text"] == "Four."
    assert (choice["finish_reason"], choice["stop_reason"]) == ("stop", None)
    assert choice["logprobs"]["token_logprobs"] == [-0.5] * len(completion)
    assert choice["logprobs"]["top_logprobs"] == [None] * len(completion)
    assert answer["object"] == "text_completion" and answer["model"] == "stub-model"
    assert answer["usage"] == {"prompt_tokens": 3, "completion_tokens": len(completion), "total_tokens": 3 + len(completion)}
    tokens = extract_provider_tokens(answer)
    assert (tokens.prompt_ids, tokens.completion_ids) == ([1, 4093, 198], completion)


def test_chat_completions_render_parse_and_return_ids(smollm2_files):
    tokenizer, renderer = smollm2_files
    completion = tokenizer.encode("Hello there") + [IM_END]
    engine = _StubEngine(tokenizer, completion, FinishReason.STOP)
    messages = [{"role": "user", "content": "Hi"}]
    body = {"messages": messages, "max_tokens": 20, "logprobs": True, "return_token_ids": True}
    [(status, answer)] = run(_serve(engine, renderer, [("POST", "/v1/chat/completions", body)]))
    assert status == 200
    prompt = renderer.render_ids(messages, add_generation_prompt=True)
    [(sent_prompt, sampling)] = engine.calls
    assert sent_prompt == prompt
    assert sampling.stop_token_ids == tuple(renderer.stop_token_ids)
    choice = answer["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "Hello there"}
    assert choice["finish_reason"] == "stop"
    assert (answer["prompt_token_ids"], choice["token_ids"]) == (prompt, completion)
    assert [e["logprob"] for e in choice["logprobs"]["content"]] == [-0.5] * len(completion)
    tokens = extract_provider_tokens(answer)
    assert (tokens.prompt_ids, tokens.completion_ids) == (prompt, completion)


def test_tokenize_takes_prompt_or_messages(smollm2_files):
    tokenizer, renderer = smollm2_files
    engine = _StubEngine(tokenizer, [], FinishReason.STOP)
    messages = [{"role": "user", "content": "Hi"}]
    answers = run(_serve(engine, renderer, [
        ("POST", "/tokenize", {"messages": messages}),
        ("POST", "/tokenize", {"messages": messages, "add_generation_prompt": False}),
        ("POST", "/tokenize", {"prompt": "Hello world", "return_token_strs": True}),
        ("GET", "/v1/models", None),
    ]))
    ids = renderer.render_ids(messages, add_generation_prompt=True)
    assert answers[0] == (200, {"count": len(ids), "max_model_len": 8192, "tokens": ids, "token_strs": None})
    assert answers[1][1]["tokens"] == renderer.render_ids(messages, add_generation_prompt=False)
    hello = tokenizer.encode("Hello world")
    assert answers[2][1]["tokens"] == hello
    assert answers[2][1]["token_strs"] == tokenizer.convert_ids_to_tokens(hello)
    status, models = answers[3]
    assert status == 200
    assert [(m["id"], m["max_model_len"]) for m in models["data"]] == [("stub-model", 8192)]


def test_bad_requests_get_vllm_error_bodies(smollm2_files):
    tokenizer, renderer = smollm2_files
    engine = _StubEngine(tokenizer, [], FinishReason.STOP)
    answers = run(_serve(engine, renderer, [
        ("POST", "/v1/completions", "{not json"),
        ("POST", "/v1/completions", {"model": "other", "prompt": [1]}),
        ("POST", "/v1/completions", {"prompt": [1], "n": 2}),
        ("POST", "/v1/completions", {"prompt": [1], "stream": True}),
        ("POST", "/v1/completions", {"prompt": [1, "x"]}),
        ("POST", "/v1/completions", {"prompt": [1], "temperature": -1}),
        ("POST", "/v1/chat/completions", {"messages": [{"content": "no role"}]}),
        ("POST", "/tokenize", {}),
    ]))
    assert [status for status, _ in answers] == [400, 404, 400, 400, 400, 400, 400, 400]
    assert answers[1][1] == {"error": {"message": "The model `other` does not exist.", "type": "NotFoundError",
                                       "param": None, "code": 404}}
    messages = [body["error"]["message"] for _, body in answers]
    assert messages[0].startswith("request body is not JSON")
    assert messages[2:6] == [
        "n must be 1 on this server",
        "streaming is not supported by this server",
        "prompt must be a string, a list of token ids, or one such list in a list",
        "temperature must be >= 0, got -1.0",
    ]
    assert messages[6] == "message 0: missing 'role'"
    assert messages[7] == "/tokenize takes a string 'prompt' or a list of 'messages'"
    assert engine.calls == []


def test_engine_errors_become_http_statuses(smollm2_files):
    tokenizer, renderer = smollm2_files
    overflow = _StubEngine(tokenizer, [], FinishReason.STOP, ContextOverflowError("too long"))
    failing = _StubEngine(tokenizer, [], FinishReason.STOP, RuntimeError("boom"))
    [(status, body)] = run(_serve(overflow, renderer, [("POST", "/v1/completions", {"prompt": [1]})]))
    assert (status, body["error"]["message"], body["error"]["type"]) == (400, "too long", "BadRequestError")
    [(status, body)] = run(_serve(failing, renderer, [("POST", "/v1/completions", {"prompt": [1]})]))
    assert (status, body["error"]["message"], body["error"]["type"]) == (500, "RuntimeError: boom", "InternalServerError")


@pytest.mark.slow
def test_server_over_the_real_model_equals_direct_generation(smollm2):
    from tokenroll.cli.serve import build_app
    from tokenroll.engines.local import LocalEngine
    from tokenroll.render import load_renderer

    messages = [{"role": "user", "content": "What is 2+2?"}]

    async def main():
        engine = LocalEngine()
        renderer = load_renderer(engine.tokenizer)
        prompt = renderer.render_ids(messages, add_generation_prompt=True)
        direct = await engine.generate(prompt, SamplingParams(max_tokens=12, temperature=0))
        await engine.aclose()
        app = build_app(None)
        from aiohttp.test_utils import TestClient, TestServer

        async with TestClient(TestServer(app)) as client:
            completion = await (await client.post("/v1/completions", json={
                "prompt": prompt, "max_tokens": 12, "temperature": 0, "logprobs": 0, "return_token_ids": True,
            })).json()
            chat = await (await client.post("/v1/chat/completions", json={
                "messages": messages, "max_tokens": 12, "temperature": 0, "return_token_ids": True,
            })).json()
            tokenized = await (await client.post("/tokenize", json={"messages": messages})).json()
            models = await (await client.get("/v1/models")).json()
        return renderer, prompt, direct, completion, chat, tokenized, models

    renderer, prompt, direct, completion, chat, tokenized, models = run(main())
    choice = completion["choices"][0]
    assert (choice["prompt_token_ids"], choice["token_ids"]) == (prompt, direct.completion_ids)
    assert choice["logprobs"]["token_logprobs"] == pytest.approx(direct.completion_logprobs, abs=1e-5)
    assert choice["finish_reason"] == "stop"
    assert (chat["prompt_token_ids"], chat["choices"][0]["token_ids"]) == (prompt, direct.completion_ids)
    assert chat["choices"][0]["message"]["content"] == "The answer to this classic math problem is 4."
    assert tokenized["tokens"] == prompt
    assert models["data"][0]["max_model_len"] == 8192
