"""SGLangEngine: the exact `/generate` request and strict reading of `meta_info`."""

from __future__ import annotations

import pytest

from tests.engines.stub_server import MAX_MODEL_LEN, MODEL, Fault, run
from tokenroll.engines import FinishReason, Generation, MalformedResponseError, SamplingParams
from tokenroll.engines.sglang import SGLangEngine


def sglang(test, **engine):
    return run(test, engine=engine, engine_cls=SGLangEngine)


def test_generate_posts_input_ids_and_reads_output_token_logprobs():
    async def test(server, engine):
        sampling = SamplingParams(
            max_tokens=3, temperature=0.5, top_k=8, seed=3, stop_token_ids=(2, 9)
        )
        return server, await engine.session("r1").generate([4, 5, 6], sampling)

    server, result = sglang(test)
    assert server.paths() == ["/generate"]
    assert server.requests[0].json == {
        "input_ids": [4, 5, 6],
        "sampling_params": {
            "max_new_tokens": 3,
            "temperature": 0.5,
            "top_p": 1.0,
            "skip_special_tokens": False,
            "top_k": 8,
            "sampling_seed": 3,
            "stop_token_ids": [2, 9],
        },
        "return_logprob": True,
        "stream": False,
    }
    assert server.requests[0].headers["X-Session-ID"] == "r1"
    assert result == Generation(
        [4, 5, 6],
        [100, 101, 102],
        [-0.5, -0.25, -0.125],
        FinishReason.STOP,
        {"prompt_tokens": 3, "completion_tokens": 3, "cached_tokens": 0},
    )


def test_length_and_abort_finish_reasons():
    async def test(server, engine):
        server.completion.finish_reason = "length"
        first = await engine.generate([1], SamplingParams(max_tokens=3))
        server.completion.finish_reason = "abort"
        return first.finish_reason, (
            await engine.generate([1], SamplingParams(max_tokens=3))
        ).finish_reason

    assert sglang(test) == (FinishReason.LENGTH, FinishReason.ABORT)


def scripted(meta_changes=None, **answer_changes):
    answer = {
        "text": "ab",
        "output_ids": [7, 8],
        "meta_info": {
            "finish_reason": {"type": "stop"},
            "prompt_tokens": 2,
            "output_token_logprobs": [[-0.1, 7, None], [-0.2, 8, None]],
        },
    }
    answer["meta_info"].update(meta_changes or {})
    answer.update(answer_changes)
    return answer


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (scripted(output_ids=[7, 8, 9]), "output_ids has 3 ids but output_token_logprobs has 2"),
        (
            scripted(output_ids=[7, 9]),
            "output_ids has 2 ids but output_token_logprobs has 2 with different ids",
        ),
        (
            scripted({"output_token_logprobs": [[-0.1, 7], [None, 8]]}),
            "output_token_logprobs[1] is [None, 8], expected [logprob, token_id, ...]",
        ),
        (scripted({"prompt_tokens": 3}), "the server counted 3 prompt tokens, 2 were sent"),
        (
            scripted({"output_token_logprobs": [[-0.1, 7], [-9999.0, 8]]}),
            "logprob -9999.0 of completion token 1 is not a finite log-probability",
        ),
        (scripted({"finish_reason": None}), "unknown finish_reason None"),
        ({"text": "ab"}, "response has no 'meta_info' object"),
    ],
)
def test_answers_that_do_not_line_up_are_malformed(answer, message):
    async def test(server, engine):
        server.fail_next(Fault("status", 200, answer))
        with pytest.raises(MalformedResponseError) as info:
            await engine.generate([1, 2], SamplingParams(max_tokens=3))
        return str(info.value)

    assert sglang(test) == f"{MODEL} /generate: {message}"


def test_max_model_len():
    async def test(server, engine):
        return await engine.max_model_len()

    assert sglang(test) == MAX_MODEL_LEN


def test_tokenize_is_not_offered():
    async def test(server, engine):
        with pytest.raises(
            NotImplementedError, match="SGLangEngine cannot render messages to token ids"
        ):
            await engine.tokenize([], None, True)

    sglang(test)
