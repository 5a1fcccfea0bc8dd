import pytest
from tokenizers import Tokenizer

from tests.assets import tokenizer_dir
from tokenroll.core.messages import Message, ToolCall
from tokenroll.core.provider import ProviderTokens, extract_provider_tokens, message_from_choice


def vllm_chat_response(completion_ids, logprobs, prompt_ids, *, token_strings=None):
    """A chat-completion response as vLLM returns it with return_token_ids and logprobs."""
    content = [
        {"token": token_strings[i] if token_strings else f"t{i}", "logprob": lp, "top_logprobs": []}
        for i, lp in enumerate(logprobs)
    ]
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "prompt_token_ids": prompt_ids,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello", "reasoning_content": None, "tool_calls": []},
                "logprobs": {"content": content},
                "finish_reason": "stop",
                "token_ids": completion_ids,
            }
        ],
    }


def test_vllm_return_token_ids_on_chat_response():
    response = vllm_chat_response([9707, 151645], [-0.125, -0.5], [151644, 872, 198])
    assert extract_provider_tokens(response) == ProviderTokens(
        prompt_ids=[151644, 872, 198], completion_ids=[9707, 151645], completion_logprobs=[-0.125, -0.5]
    )


def test_vllm_tokens_as_token_id_strings_must_agree_with_token_ids():
    response = vllm_chat_response(
        [9707, 151645], [-0.125, -0.5], [1], token_strings=["token_id:9707", "token_id:151645"]
    )
    assert extract_provider_tokens(response).completion_ids == [9707, 151645]
    response["choices"][0]["logprobs"]["content"][1]["token"] = "token_id:151643"
    with pytest.raises(ValueError) as excinfo:
        extract_provider_tokens(response)
    assert str(excinfo.value) == (
        "provider payload disagrees on token ids: choices[0].token_ids has 2 ids, "
        "choices[0].logprobs.content[].token has 2 with different values"
    )


def test_openai_style_content_token_id():
    choice = {
        "message": {"role": "assistant", "content": "ab"},
        "logprobs": {"content": [{"token": "a", "token_id": 64, "logprob": -1.0}, {"token": "b", "token_id": 65, "logprob": -2.5}]},
    }
    assert extract_provider_tokens(choice) == ProviderTokens(None, [64, 65], [-1.0, -2.5])


def test_logprobs_token_ids_list():
    choice = {"logprobs": {"token_ids": [5, 6, 7], "token_logprobs": [-0.1, -0.2, -0.3]}}
    assert extract_provider_tokens(choice) == ProviderTokens(None, [5, 6, 7], [-0.1, -0.2, -0.3])


def test_vllm_completions_choice_with_prompt_ids_and_token_strings():
    response = {
        "object": "text_completion",
        "choices": [
            {
                "text": " world",
                "prompt_token_ids": [1, 2, 3],
                "logprobs": {"tokens": ["token_id:1917", "token_id:2"], "token_logprobs": [-0.75, -0.0625]},
            }
        ],
    }
    assert extract_provider_tokens(response) == ProviderTokens([1, 2, 3], [1917, 2], [-0.75, -0.0625])


def test_logprobs_that_do_not_line_up_with_ids_are_an_error():
    response = vllm_chat_response([1, 2, 3], [-0.1, -0.2], [0])
    with pytest.raises(ValueError) as excinfo:
        extract_provider_tokens(response)
    assert str(excinfo.value) == (
        "provider payload: choices[0].token_ids has 3 ids but choices[0].logprobs has 2 values"
    )


def test_payload_without_ids_leaves_everything_unset():
    response = {
        "choices": [
            {
                "message": {"role": "assistant", "content": "Hi"},
                "logprobs": {"content": [{"token": "Hi", "logprob": -0.2, "bytes": [72, 105]}]},
            }
        ]
    }
    assert extract_provider_tokens(response) == ProviderTokens(None, None, [-0.2])
    message = message_from_choice(response)
    assert message.token_ids is None
    assert message.logprobs == {"content": [{"token": "Hi", "logprob": -0.2, "bytes": [72, 105]}]}


def test_message_from_choice_keeps_ids_tool_calls_and_flat_logprobs():
    response = vllm_chat_response([9707, 151645], [-0.125, -0.5], [1])
    response["choices"][0]["message"] = {
        "role": "assistant",
        "content": None,
        "reasoning": "need a tool",
        "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "add", "arguments": '{"a": 1}'}}],
    }
    assert message_from_choice(response) == Message(
        role="assistant",
        reasoning_content="need a tool",
        tool_calls=[ToolCall(name="add", arguments='{"a": 1}', id="c1")],
        token_ids=[9707, 151645],
        logprobs=[-0.125, -0.5],
    )


def test_bad_payloads_say_what_is_wrong():
    with pytest.raises(ValueError, match=r"provider payload has no choices\[1\]"):
        extract_provider_tokens({"choices": [{}]}, choice_index=1)
    with pytest.raises(TypeError, match=r"choices\[0\].token_ids must hold only ints"):
        extract_provider_tokens({"choices": [{"token_ids": [1, "2"]}]})
    with pytest.raises(TypeError, match="provider payload is a list, expected a mapping"):
        extract_provider_tokens([])


def test_real_qwen3_ids_survive_extraction_and_decode_back():
    tokenizer = Tokenizer.from_file(str(tokenizer_dir("qwen3") / "tokenizer.json"))
    text = "Hello, 世界 🚀 <tool_call> is text here"
    ids = tokenizer.encode(text).ids + [tokenizer.token_to_id("<|im_end|>")]
    assert ids[-1] == 151645
    logprobs = [-(i + 1) / 64 for i in range(len(ids))]
    response = vllm_chat_response(
        ids, logprobs, [151644, 872, 198], token_strings=[f"token_id:{i}" for i in ids]
    )
    message = message_from_choice(response)
    assert message.token_ids == ids
    assert message.logprobs == logprobs
    assert tokenizer.decode(message.token_ids[:-1], skip_special_tokens=False) == text
