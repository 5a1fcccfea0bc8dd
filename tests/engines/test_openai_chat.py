"""OpenAIChatEngine: the exact chat request, and token ids kept only when the provider sends them."""

from __future__ import annotations

import pytest

from tests.engines.stub_server import MODEL, run
from tokenroll.core.messages import Message, ToolCall
from tokenroll.engines import FinishReason, MalformedResponseError, SamplingParams
from tokenroll.engines.openai_chat import OpenAIChatEngine

MESSAGES = [
    Message("system", "be brief"),
    Message("user", "add"),
    Message(
        "assistant",
        None,
        tool_calls=[ToolCall("add", '{"a": 1}', id="c1")],
        token_ids=[9],
        logprobs=[-1.0],
    ),
    Message("tool", "2", tool_call_id="c1"),
]
TOOLS = [{"type": "function", "function": {"name": "add", "parameters": {"type": "object"}}}]


def chat(chat_ids, **engine):
    async def test(server, client):
        return server, await client.chat(
            MESSAGES, TOOLS, SamplingParams(max_tokens=3, temperature=0.0)
        )

    return run(test, server={"chat_ids": chat_ids}, engine=engine, engine_cls=OpenAIChatEngine)


def test_request_payload_and_api_key():
    server, _ = chat("none", api_key="sk-test", extra_body={"return_token_ids": True})
    request = server.requests[0]
    assert request.path == "/v1/chat/completions"
    assert request.headers["Authorization"] == "Bearer sk-test"
    assert request.json == {
        "model": MODEL,
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "add"},
            {
                "role": "assistant",
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "add", "arguments": '{"a": 1}'},
                    }
                ],
            },
            {"role": "tool", "content": "2", "tool_call_id": "c1"},
        ],
        "max_tokens": 3,
        "temperature": 0.0,
        "top_p": 1.0,
        "logprobs": True,
        "stream": False,
        "tools": TOOLS,
        "return_token_ids": True,
    }


def test_text_only_provider_gives_no_token_ids():
    _, result = chat("none")
    assert result.message.content == "hello"
    assert (result.prompt_ids, result.completion_ids, result.completion_logprobs) == (
        None,
        None,
        None,
    )
    assert not result.has_tokens
    assert result.finish_reason is FinishReason.STOP


def test_ids_from_logprobs_content_token_id_are_kept():
    _, result = chat("content")
    assert result.completion_ids == [100, 101, 102]
    assert result.completion_logprobs == [-0.5, -0.25, -0.125]
    assert result.message.token_ids == [100, 101, 102]
    assert result.prompt_ids is None and not result.has_tokens


def test_vllm_return_token_ids_are_kept_with_prompt_ids():
    _, result = chat("vllm")
    assert (result.prompt_ids, result.completion_ids) == ([1, 2, 3, 4], [100, 101, 102])
    assert result.has_tokens


def test_ids_that_disagree_with_logprobs_are_malformed():
    async def test(server, client):
        server.completion.logprobs = [-0.5, -0.25]
        with pytest.raises(MalformedResponseError) as info:
            await client.chat(MESSAGES, None, SamplingParams(max_tokens=3))
        return str(info.value)

    message = run(test, server={"chat_ids": "vllm"}, engine_cls=OpenAIChatEngine)
    assert message == (
        f"{MODEL} /v1/chat/completions: provider payload: choices[0].token_ids has 3 ids but "
        "choices[0].logprobs has 2 values"
    )


def test_generate_is_not_offered():
    async def test(server, client):
        with pytest.raises(NotImplementedError, match="takes messages"):
            await client.generate([1], SamplingParams())

    run(test, engine_cls=OpenAIChatEngine)
