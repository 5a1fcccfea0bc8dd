"""What vLLM 0.32 really answers, pinned for the engine clients that rely on it.

Raw HTTP against the server `scripts/vllm-tier` starts (SmolLM2-135M-Instruct, bf16,
`--max-model-len 2048`, `--enable-scale-out`). Sampling is greedy so ids are reproducible.
"""

from __future__ import annotations

import json
import os

import pytest

from tests.vllm.conftest import SKIP_REASON, URL_ENV
from tokenroll.core import extract_provider_tokens, message_from_choice

pytestmark = pytest.mark.vllm
if not os.environ.get(URL_ENV):
    # One skip line for the module instead of one per test.
    pytest.skip(SKIP_REASON, allow_module_level=True)

MAX_MODEL_LEN = 2048
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }
]
TOOL_CONVERSATION = [
    {"role": "system", "content": "You answer with tools."},
    {"role": "user", "content": "What is the weather in Paris?"},
    {
        "role": "assistant",
        "content": "Let me look.",
        "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": '{"temperature": 21}'},
    {"role": "assistant", "content": "It is 21 degrees in Paris."},
    {"role": "user", "content": "And in Rome?"},
]


def _prompt_ids(renderer, text: str) -> list[int]:
    return renderer.render_ids([{"role": "user", "content": text}], add_generation_prompt=True)


def _completion_request(vllm, prompt_ids: list[int], max_tokens: int, **extra) -> dict:
    return {
        "model": vllm.model,
        "prompt": prompt_ids,
        "max_tokens": max_tokens,
        "temperature": 0.0,
        "logprobs": 1,
        "return_token_ids": True,
        **extra,
    }


def test_models_reports_max_model_len(vllm, record):
    reply = vllm.get("/v1/models")
    record("models", None, reply, method="GET", path="/v1/models")
    assert reply.status == 200
    [model] = reply.body["data"]
    assert (model["id"], model["object"], model["owned_by"]) == (vllm.model, "model", "vllm")
    assert model["max_model_len"] == MAX_MODEL_LEN


def test_token_prompt_completion_returns_prompt_and_completion_ids_on_the_choice(vllm, renderer, record):
    prompt = _prompt_ids(renderer, "What is 2+2?")
    request = _completion_request(vllm, prompt, max_tokens=40)
    reply = vllm.post("/v1/completions", request)
    record("completion_stop", request, reply, path="/v1/completions")
    assert reply.status == 200
    [choice] = reply.body["choices"]
    # Both id lists live on the choice; the response itself has neither.
    assert "prompt_token_ids" not in reply.body and "token_ids" not in reply.body
    assert choice["prompt_token_ids"] == prompt
    assert choice["finish_reason"] == "stop"
    # Stopped by EOS: the stop token is the last id, has a logprob, and stop_reason is null.
    assert choice["stop_reason"] is None
    assert choice["token_ids"][-1] == renderer.tokenizer.token_id("<|im_end|>") == 2
    assert choice["logprobs"]["tokens"][-1] == "<|im_end|>"
    # The text leaves the stop token out; ids and logprobs keep it.
    assert choice["text"] == renderer.tokenizer.decode(choice["token_ids"][:-1])
    assert len(choice["token_ids"]) == len(choice["logprobs"]["token_logprobs"]) == reply.body["usage"]["completion_tokens"]
    assert reply.body["usage"]["prompt_tokens"] == len(prompt)
    tokens = extract_provider_tokens(reply.body)
    assert (tokens.prompt_ids, tokens.completion_ids) == (prompt, choice["token_ids"])
    assert tokens.completion_logprobs == choice["logprobs"]["token_logprobs"]


def test_logprob_tokens_as_token_ids_line_up_with_token_ids(vllm, renderer, record):
    prompt = _prompt_ids(renderer, "Name three colours.")
    request = _completion_request(vllm, prompt, max_tokens=12, logprobs=0, return_tokens_as_token_ids=True)
    reply = vllm.post("/v1/completions", request)
    record("completion_tokens_as_token_ids", request, reply, path="/v1/completions")
    assert reply.status == 200
    [choice] = reply.body["choices"]
    logprobs = choice["logprobs"]
    assert logprobs["tokens"] == [f"token_id:{i}" for i in choice["token_ids"]]
    # logprobs=0 still gives one top_logprobs entry per token: the sampled token itself.
    assert [list(top) for top in logprobs["top_logprobs"]] == [[t] for t in logprobs["tokens"]]
    assert [top[t] for top, t in zip(logprobs["top_logprobs"], logprobs["tokens"])] == logprobs["token_logprobs"]
    assert extract_provider_tokens(reply.body).completion_ids == choice["token_ids"]


def test_greedy_completion_is_reproducible_and_its_logprobs_are_the_models(vllm, renderer):
    prompt = _prompt_ids(renderer, "What is 2+2?")
    first = vllm.post("/v1/completions", _completion_request(vllm, prompt, max_tokens=6)).body["choices"][0]
    second = vllm.post("/v1/completions", _completion_request(vllm, prompt, max_tokens=6)).body["choices"][0]
    assert first["token_ids"] == second["token_ids"]
    assert first["logprobs"]["token_logprobs"] == second["logprobs"]["token_logprobs"]
    assert all(lp <= 0.0 for lp in first["logprobs"]["token_logprobs"])


def test_length_finish_has_no_stop_token(vllm, renderer, record):
    prompt = _prompt_ids(renderer, "What is 2+2?")
    request = _completion_request(vllm, prompt, max_tokens=4)
    reply = vllm.post("/v1/completions", request)
    record("completion_length", request, reply, path="/v1/completions")
    [choice] = reply.body["choices"]
    assert (choice["finish_reason"], choice["stop_reason"]) == ("length", None)
    assert len(choice["token_ids"]) == len(choice["logprobs"]["token_logprobs"]) == 4
    assert not set(choice["token_ids"]) & set(renderer.stop_token_ids)


def test_stop_token_ids_end_the_completion_with_that_id(vllm, renderer, record):
    prompt = _prompt_ids(renderer, "What is 2+2?")
    full = vllm.post("/v1/completions", _completion_request(vllm, prompt, max_tokens=40)).body["choices"][0]
    period = renderer.tokenizer.token_id(".")
    assert period in full["token_ids"]
    request = _completion_request(vllm, prompt, max_tokens=40, stop_token_ids=[period])
    reply = vllm.post("/v1/completions", request)
    record("completion_stop_token_ids", request, reply, path="/v1/completions")
    [choice] = reply.body["choices"]
    # A stop_token_ids hit keeps the id (and its logprob) and names it in stop_reason.
    assert (choice["finish_reason"], choice["stop_reason"]) == ("stop", period)
    assert choice["token_ids"] == full["token_ids"][: full["token_ids"].index(period) + 1]
    assert len(choice["logprobs"]["token_logprobs"]) == len(choice["token_ids"])


def test_stop_string_keeps_its_tokens_in_the_ids_but_not_the_text(vllm, renderer, record):
    prompt = _prompt_ids(renderer, "What is 2+2?")
    request = _completion_request(vllm, prompt, max_tokens=40, stop=[" math"])
    reply = vllm.post("/v1/completions", request)
    record("completion_stop_string", request, reply, path="/v1/completions")
    [choice] = reply.body["choices"]
    assert (choice["finish_reason"], choice["stop_reason"]) == ("stop", " math")
    assert renderer.tokenizer.decode(choice["token_ids"]) == choice["text"] + " math"
    assert len(choice["logprobs"]["token_logprobs"]) == len(choice["token_ids"])


def test_tokenize_messages_equals_our_renderer_for_a_tool_conversation(vllm, renderer, record):
    request = {"model": vllm.model, "messages": TOOL_CONVERSATION, "tools": TOOLS, "add_generation_prompt": True}
    reply = vllm.post("/tokenize", request)
    record("tokenize_messages", request, reply, path="/tokenize")
    assert reply.status == 200
    ours = renderer.render_ids(TOOL_CONVERSATION, tools=TOOLS, add_generation_prompt=True)
    assert reply.body["tokens"] == ours
    assert reply.body["count"] == len(ours)
    assert reply.body["max_model_len"] == MAX_MODEL_LEN
    assert reply.body["token_strs"] is None


def test_tokenize_without_generation_prompt_is_a_prefix(vllm, renderer):
    body = {"model": vllm.model, "messages": TOOL_CONVERSATION, "tools": TOOLS}
    without = vllm.post("/tokenize", {**body, "add_generation_prompt": False}).body["tokens"]
    with_prompt = vllm.post("/tokenize", {**body, "add_generation_prompt": True}).body["tokens"]
    assert without == renderer.render_ids(TOOL_CONVERSATION, tools=TOOLS, add_generation_prompt=False)
    assert with_prompt[: len(without)] == without


def test_tokenize_text_prompt(vllm, renderer, record):
    request = {"model": vllm.model, "prompt": "hello world"}
    reply = vllm.post("/tokenize", request)
    record("tokenize_prompt", request, reply, path="/tokenize")
    assert reply.body == {
        "count": 2,
        "max_model_len": MAX_MODEL_LEN,
        "tokens": renderer.tokenizer.encode("hello world"),
        "token_strs": None,
    }


def test_cache_salt_is_accepted_and_does_not_change_greedy_output(vllm, renderer, record):
    prompt = _prompt_ids(renderer, "What is 2+2?")
    plain = vllm.post("/v1/completions", _completion_request(vllm, prompt, max_tokens=5)).body["choices"][0]
    request = _completion_request(vllm, prompt, max_tokens=5, cache_salt="policy-v1")
    reply = vllm.post("/v1/completions", request)
    record("completion_cache_salt", request, reply, path="/v1/completions")
    assert reply.status == 200
    assert reply.body["choices"][0]["token_ids"] == plain["token_ids"]


@pytest.mark.parametrize("salt", ["", 5])
def test_cache_salt_must_be_a_non_empty_string(vllm, renderer, salt):
    reply = vllm.post("/v1/completions", _completion_request(vllm, [1, 2], max_tokens=1, cache_salt=salt))
    assert reply.status == 400
    assert reply.body == {
        "error": {
            "message": "Parameter 'cache_salt' must be a non-empty string if provided. (parameter=cache_salt)",
            "type": "BadRequestError",
            "param": "cache_salt",
            "code": 400,
        }
    }


def test_prompt_over_the_context_length_is_a_400(vllm, record):
    request = {"model": vllm.model, "prompt": [100] * (MAX_MODEL_LEN + 52), "max_tokens": 3}
    reply = vllm.post("/v1/completions", request)
    record("error_context_overflow", request, reply, path="/v1/completions")
    assert reply.status == 400
    assert reply.body == {
        "error": {
            "message": "This model's maximum context length is 2048 tokens. However, your prompt contains "
            "2100 input tokens, which exceeds this limit even without any output tokens. Please reduce "
            "the length of the input prompt. (parameter=input_tokens, value=2100)",
            "type": "BadRequestError",
            "param": "input_tokens",
            "code": 400,
        }
    }


def test_prompt_filling_the_context_exactly_is_a_max_tokens_error(vllm, record):
    request = {"model": vllm.model, "prompt": [100] * MAX_MODEL_LEN, "max_tokens": 1}
    reply = vllm.post("/v1/completions", request)
    record("error_context_full", request, reply, path="/v1/completions")
    assert reply.status == 400
    assert reply.body["error"] == {
        "message": "max_tokens must be at least 1, got 0. (parameter=max_tokens, value=0)",
        "type": "BadRequestError",
        "param": "max_tokens",
        "code": 400,
    }


def test_max_tokens_past_the_context_is_clamped_not_refused(vllm, record):
    # A client must not read finish_reason "length" as "max_tokens reached": the server cut
    # max_tokens to what the context had left.
    request = {"model": vllm.model, "prompt": [100] * (MAX_MODEL_LEN - 8), "max_tokens": 30, "return_token_ids": True}
    reply = vllm.post("/v1/completions", request)
    record("completion_clamped_max_tokens", request, reply, path="/v1/completions")
    assert reply.status == 200
    [choice] = reply.body["choices"]
    assert choice["finish_reason"] == "length"
    assert len(choice["token_ids"]) == reply.body["usage"]["completion_tokens"] == 8
    assert reply.body["usage"]["total_tokens"] == MAX_MODEL_LEN


def test_unknown_model_is_a_404(vllm, record):
    request = {"model": "no-such-model", "prompt": [1, 2], "max_tokens": 1}
    reply = vllm.post("/v1/completions", request)
    record("error_unknown_model", request, reply, path="/v1/completions")
    assert reply.status == 404
    assert reply.body == {
        "error": {
            "message": f"The model `no-such-model` does not exist. Valid aliases: {vllm.model}.",
            "type": "NotFoundError",
            "param": "model",
            "code": 404,
        }
    }


def test_out_of_vocabulary_token_is_a_400(vllm, record):
    request = {"model": vllm.model, "prompt": [60000], "max_tokens": 1}
    reply = vllm.post("/v1/completions", request)
    record("error_out_of_vocabulary", request, reply, path="/v1/completions")
    assert (reply.status, reply.body) == (
        400,
        {"error": {"message": "Token id 60000 is out of vocabulary", "type": "BadRequestError", "param": None, "code": 400}},
    )


def test_chat_completion_returns_prompt_ids_on_the_response_and_ids_on_the_choice(vllm, renderer, record):
    messages = [{"role": "user", "content": "What is 2+2?"}]
    request = {
        "model": vllm.model,
        "messages": messages,
        "max_tokens": 40,
        "temperature": 0.0,
        "logprobs": True,
        "return_token_ids": True,
    }
    reply = vllm.post("/v1/chat/completions", request)
    record("chat_completion", request, reply, path="/v1/chat/completions")
    assert reply.status == 200
    [choice] = reply.body["choices"]
    # Unlike /v1/completions, chat puts prompt_token_ids on the response, not the choice.
    assert "prompt_token_ids" not in choice
    assert reply.body["prompt_token_ids"] == renderer.render_ids(messages, add_generation_prompt=True)
    assert choice["finish_reason"] == "stop"
    assert choice["token_ids"][-1] == 2
    assert [entry["token"] for entry in choice["logprobs"]["content"]][-1] == "<|im_end|>"
    message = message_from_choice(reply.body)
    assert message.token_ids == choice["token_ids"]
    assert message.logprobs == [entry["logprob"] for entry in choice["logprobs"]["content"]]


def _generate_request(prompt_ids: list[int], max_tokens: int, **extra) -> dict:
    return {
        "token_ids": prompt_ids,
        "sampling_params": {"max_tokens": max_tokens, "temperature": 0.0, "logprobs": 0},
        **extra,
    }


def test_inference_generate_is_tokens_in_tokens_out(vllm, renderer, record):
    prompt = _prompt_ids(renderer, "What is 2+2?")
    completion = vllm.post("/v1/completions", _completion_request(vllm, prompt, max_tokens=40)).body["choices"][0]
    request = _generate_request(prompt, 40, model=vllm.model, return_token_ids=True, cache_salt="policy-v1")
    reply = vllm.post("/inference/v1/generate", request)
    record("generate", request, reply, path="/inference/v1/generate")
    assert reply.status == 200
    assert reply.body["output_mode"] == "tokens"
    assert reply.body["prompt_token_ids"] == prompt
    [choice] = reply.body["choices"]
    assert (choice["finish_reason"], choice["stop_reason"]) == ("stop", None)
    # Same ids and logprobs as /v1/completions; logprobs are `content[]` entries keyed by token_id.
    assert choice["token_ids"] == completion["token_ids"]
    content = choice["logprobs"]["content"]
    assert [entry["token_id"] for entry in content] == choice["token_ids"]
    assert [entry["logprob"] for entry in content] == completion["logprobs"]["token_logprobs"]
    assert "text" not in choice
    tokens = extract_provider_tokens(reply.body)
    assert (tokens.prompt_ids, tokens.completion_ids) == (prompt, choice["token_ids"])
    assert reply.body["usage"]["completion_tokens"] == len(choice["token_ids"])


def test_inference_generate_returns_prompt_ids_only_when_asked(vllm, renderer, record):
    prompt = _prompt_ids(renderer, "What is 2+2?")
    request = _generate_request(prompt, 4)
    reply = vllm.post("/inference/v1/generate", request)
    record("generate_length", request, reply, path="/inference/v1/generate")
    assert reply.body["prompt_token_ids"] is None
    [choice] = reply.body["choices"]
    assert (choice["finish_reason"], len(choice["token_ids"])) == ("length", 4)
    assert reply.body["usage"]["prompt_tokens"] == len(prompt)


def test_inference_generate_errors(vllm, record):
    request = _generate_request([100] * (MAX_MODEL_LEN + 52), 3)
    reply = vllm.post("/inference/v1/generate", request)
    record("generate_error_context_overflow", request, reply, path="/inference/v1/generate")
    # Not the /v1/completions wording: a client must recognise both.
    assert (reply.status, reply.body) == (
        400,
        {
            "error": {
                "message": "The decoder prompt (length 2100) is longer than the maximum model length of 2048. "
                "Make sure that `max_model_len` is no smaller than the number of text tokens.",
                "type": "BadRequestError",
                "param": None,
                "code": 400,
            }
        },
    )
    reply = vllm.post("/inference/v1/generate", _generate_request([1, 2], 1, model="no-such-model"))
    assert reply.status == 404
    assert reply.body["error"]["message"] == f"The model `no-such-model` does not exist. Valid aliases: {vllm.model}."


def test_inference_generate_streams_one_token_per_event(vllm, renderer, record):
    prompt = _prompt_ids(renderer, "What is 2+2?")
    expected = vllm.post("/v1/completions", _completion_request(vllm, prompt, max_tokens=3)).body["choices"][0]
    request = _generate_request(prompt, 3, stream=True)
    reply = vllm.post("/inference/v1/generate", request)
    record("generate_stream", request, reply, path="/inference/v1/generate")
    assert reply.status == 200
    events = [line.removeprefix("data: ") for line in reply.body.split("\n\n") if line]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    assert [c["choices"][0]["token_ids"] for c in chunks] == [[i] for i in expected["token_ids"]]
    # Each chunk carries the logprobs of its own tokens.
    streamed = [entry["logprob"] for c in chunks for entry in c["choices"][0]["logprobs"]["content"]]
    assert streamed == expected["logprobs"]["token_logprobs"]
    assert [c["choices"][0]["finish_reason"] for c in chunks] == [None, None, "length"]


def test_served_tokenizer_renders_as_the_shared_smollm2_asset(vllm, renderer):
    # The folder converted from the GGUF and the test asset reconstructed from it must agree,
    # so renderer tests on the asset speak for the served model.
    from tests.assets import tokenizer_dir
    from tokenroll.render import load_renderer

    assert renderer.family == "smollm2"
    asset = load_renderer(tokenizer_dir("smollm2"))
    served = vllm.post(
        "/tokenize", {"model": vllm.model, "messages": TOOL_CONVERSATION, "add_generation_prompt": True}
    ).body["tokens"]
    assert asset.render_ids(TOOL_CONVERSATION, add_generation_prompt=True) == served


def test_bridged_second_turn_extends_the_first_and_matches_a_full_render(vllm, renderer):
    first_user = {"role": "user", "content": "What is 2+2?"}
    second_user = {"role": "user", "content": "And 3+3?"}
    prompt = renderer.render([first_user], add_generation_prompt=True)
    first = vllm.post("/v1/completions", _completion_request(vllm, prompt.token_ids, max_tokens=40)).body
    [choice] = first["choices"]
    assert choice["finish_reason"] == "stop"
    bridged = renderer.bridge(prompt.token_ids, choice["token_ids"], [second_user], prev_attribution=prompt)
    assert bridged is not None
    assert bridged.token_ids[: len(prompt.token_ids) + len(choice["token_ids"])] == prompt.token_ids + choice["token_ids"]
    # Zero drift: vLLM's own rendering of the whole history gives the same ids.
    history = [first_user, {"role": "assistant", "content": choice["text"]}, second_user]
    full = vllm.post("/tokenize", {"model": vllm.model, "messages": history, "add_generation_prompt": True})
    assert full.body["tokens"] == bridged.token_ids
    second = vllm.post("/v1/completions", _completion_request(vllm, bridged.token_ids, max_tokens=8)).body
    assert second["choices"][0]["prompt_token_ids"] == bridged.token_ids
