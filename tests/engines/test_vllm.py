"""VLLMEngine: exact request payloads and exact parsing of vLLM's answers."""

from __future__ import annotations

import asyncio

import pytest

from tests.engines.stub_server import MAX_MODEL_LEN, MODEL, Fault, run
from tokenroll.core.messages import Message
from tokenroll.engines import (
    ChatGeneration,
    FinishReason,
    Generation,
    MalformedResponseError,
    SamplingParams,
    UnknownModelError,
    connect,
)
from tokenroll.engines.vllm import VLLMEngine

SAMPLING = SamplingParams(
    max_tokens=3, temperature=0.7, top_p=0.9, top_k=20, seed=5, stop_token_ids=(2,)
)


def test_generate_posts_token_prompt_to_completions_and_reads_ids_and_logprobs():
    async def test(server, engine):
        result = await engine.generate([5, 6, 7], SAMPLING)
        return server, result

    server, result = run(test)
    assert server.paths() == ["/openapi.json", "/v1/completions"]
    assert server.requests[1].json == {
        "model": MODEL,
        "prompt": [5, 6, 7],
        "max_tokens": 3,
        "temperature": 0.7,
        "top_p": 0.9,
        "top_k": 20,
        "seed": 5,
        "stop_token_ids": [2],
        "logprobs": 0,
        "return_token_ids": True,
        "skip_special_tokens": False,
        "stream": False,
    }
    assert result == Generation(
        prompt_ids=[5, 6, 7],
        completion_ids=[100, 101, 102],
        completion_logprobs=[-0.5, -0.25, -0.125],
        finish_reason=FinishReason.STOP,
        usage={"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6},
    )


def test_generate_sends_cache_salt_and_extra_fields_and_session_header():
    async def test(server, engine):
        engine.cache_salt = "policy-7"
        await engine.session("rollout-42").generate(
            [1], SamplingParams(max_tokens=3, extra={"min_tokens": 2})
        )
        await engine.generate([1], SamplingParams(max_tokens=3))
        return server

    server = run(test, engine={"tokens_endpoint": "completions"})
    assert server.paths() == ["/v1/completions", "/v1/completions"]
    first, second = server.requests
    assert first.json["cache_salt"] == "policy-7"
    assert first.json["min_tokens"] == 2
    assert first.headers["X-Session-ID"] == "rollout-42"
    assert "X-Session-ID" not in second.headers
    assert (
        "top_k" not in second.json
        and "seed" not in second.json
        and "stop_token_ids" not in second.json
    )


def test_generate_uses_the_tokens_endpoint_when_the_server_offers_it_and_probes_once():
    async def test(server, engine):
        engine.cache_salt = "s"
        a, b = await asyncio.gather(
            engine.generate([5, 6], SAMPLING), engine.generate([5, 6], SAMPLING)
        )
        return server, a, b

    server, a, b = run(test, server={"offer_generate": True})
    assert server.paths() == ["/openapi.json", "/inference/v1/generate", "/inference/v1/generate"]
    assert server.requests[1].json == {
        "model": MODEL,
        "token_ids": [5, 6],
        "sampling_params": {
            "max_tokens": 3,
            "temperature": 0.7,
            "top_p": 0.9,
            "top_k": 20,
            "seed": 5,
            "stop_token_ids": [2],
            "logprobs": 0,
            "skip_special_tokens": False,
        },
        "stream": False,
        "cache_salt": "s",
    }
    assert (
        a
        == b
        == Generation(
            [5, 6],
            [100, 101, 102],
            [-0.5, -0.25, -0.125],
            FinishReason.STOP,
            {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5},
        )
    )


def test_length_finish_reason_is_kept():
    async def test(server, engine):
        server.completion.finish_reason = "length"
        return await engine.generate([1], SamplingParams(max_tokens=3))

    assert run(test, engine={"tokens_endpoint": "completions"}).finish_reason is FinishReason.LENGTH


@pytest.mark.parametrize(
    ("logprobs", "message"),
    [
        (
            [-0.5, -9999.0, -0.1],
            "logprob -9999.0 of completion token 1 is not a finite log-probability",
        ),
        (
            [-0.5, -0.25, -1e6],
            "logprob -1000000.0 of completion token 2 is not a finite log-probability",
        ),
    ],
)
def test_sentinel_or_impossible_logprobs_are_malformed(logprobs, message):
    async def test(server, engine):
        server.completion.logprobs = logprobs
        with pytest.raises(MalformedResponseError) as info:
            await engine.generate([1], SamplingParams(max_tokens=3))
        return str(info.value)

    assert (
        run(test, engine={"tokens_endpoint": "completions"})
        == f"{MODEL} /v1/completions: {message}"
    )


def test_logprobs_misaligned_with_tokens_are_malformed():
    async def test(server, engine):
        server.completion.logprobs = [-0.5, -0.25]
        with pytest.raises(MalformedResponseError) as info:
            await engine.generate([1], SamplingParams(max_tokens=3))
        return str(info.value)

    assert run(test, engine={"tokens_endpoint": "completions"}) == (
        f"{MODEL} /v1/completions: provider payload: choices[0].token_ids has 3 ids but "
        "choices[0].logprobs has 2 values"
    )


def test_missing_token_ids_and_unknown_finish_reason_are_malformed():
    async def test(server, engine):
        body = server._completions({"model": MODEL, "prompt": [1]})
        del body["choices"][0]["token_ids"]
        server.fail_next(Fault("status", 200, body))
        with pytest.raises(MalformedResponseError, match="carries no completion token ids"):
            await engine.generate([1], SamplingParams(max_tokens=3))
        server.completion.finish_reason = "weird"
        with pytest.raises(MalformedResponseError, match="unknown finish_reason 'weird'"):
            await engine.generate([1], SamplingParams(max_tokens=3))

    run(test, engine={"tokens_endpoint": "completions"})


def test_max_model_len_from_models_and_unknown_model():
    async def test(server, engine):
        length = await engine.max_model_len()
        other = VLLMEngine(server.base_url, "other")
        with pytest.raises(UnknownModelError) as info:
            await other.max_model_len()
        await other.aclose()
        return length, str(info.value)

    length, message = run(test)
    assert length == MAX_MODEL_LEN
    assert message == "/v1/models: the server serves ['stub-model'], not 'other'"


def test_tokenize_posts_messages_and_text():
    async def test(server, engine):
        ids = await engine.tokenize(
            [Message("user", "hi"), Message("assistant", "yo", token_ids=[9], logprobs=[-1.0])],
            [{"type": "function", "function": {"name": "f"}}],
            True,
            {"enable_thinking": False},
        )
        text_ids = await engine.tokenize_text("hi")
        return server, ids, text_ids

    server, ids, text_ids = run(test)
    assert ids == text_ids == [1, 2, 3, 4]
    assert server.requests[0].json == {
        "model": MODEL,
        "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}],
        "add_generation_prompt": True,
        "add_special_tokens": False,
        "tools": [{"type": "function", "function": {"name": "f"}}],
        "chat_template_kwargs": {"enable_thinking": False},
    }
    assert server.requests[1].json == {"model": MODEL, "prompt": "hi", "add_special_tokens": True}


def test_chat_asks_for_token_ids_and_keeps_them():
    async def test(server, engine):
        return server, await engine.chat(
            [Message("user", "hi")], None, SamplingParams(max_tokens=3)
        )

    server, result = run(test, engine={"cache_salt": "s"})
    assert server.requests[0].json == {
        "model": MODEL,
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 3,
        "temperature": 1.0,
        "top_p": 1.0,
        "logprobs": True,
        "stream": False,
        "return_token_ids": True,
        "cache_salt": "s",
    }
    assert result == ChatGeneration(
        message=Message(
            "assistant", "hello", token_ids=[100, 101, 102], logprobs=[-0.5, -0.25, -0.125]
        ),
        finish_reason=FinishReason.STOP,
        prompt_ids=[1, 2, 3, 4],
        completion_ids=[100, 101, 102],
        completion_logprobs=[-0.5, -0.25, -0.125],
        usage={"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10},
    )
    assert result.has_tokens


def test_connect_builds_each_kind():
    assert type(connect("http://127.0.0.1:9", MODEL)).__name__ == "VLLMEngine"
    assert type(connect("http://127.0.0.1:9", MODEL, kind="sglang")).__name__ == "SGLangEngine"
    assert (
        type(connect("http://127.0.0.1:9", MODEL, kind="openai", api_key="k")).__name__
        == "OpenAIChatEngine"
    )
    with pytest.raises(ValueError, match="unknown engine kind 'tgi'"):
        connect("http://127.0.0.1:9", MODEL, kind="tgi")


def test_the_prompt_the_engine_used_is_kept_when_it_differs_and_checked():
    async def test(server, engine):
        body = server._completions({"model": MODEL, "prompt": [9, 5, 6]})
        bad = server._completions({"model": MODEL, "prompt": [5, "6"]})
        server.fail_next(Fault("status", 200, body), Fault("status", 200, bad))
        used = await engine.generate([5, 6], SamplingParams(max_tokens=3))
        with pytest.raises(MalformedResponseError) as info:
            await engine.generate([5, 6], SamplingParams(max_tokens=3))
        return used.prompt_ids, str(info.value)

    used, message = run(test, engine={"tokens_endpoint": "completions"})
    assert used == [9, 5, 6]
    assert (
        message
        == f"{MODEL} /v1/completions prompt_token_ids: expected a list of token ids, got [5, '6']"
    )
