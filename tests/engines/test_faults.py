"""Faults at the HTTP layer: each gives a typed error with the server's words, or a counted retry."""

from __future__ import annotations

import pytest

from tests.engines.stub_server import MODEL, Fault, run, vllm_error
from tokenroll.engines import (
    BadRequestError,
    ConnectionDroppedError,
    ContextOverflowError,
    EngineTimeoutError,
    FinishReason,
    MalformedResponseError,
    RateLimitedError,
    RetryPolicy,
    SamplingParams,
    ServerError,
    UnknownModelError,
)

NO_WAIT = RetryPolicy(max_retries=2, initial_backoff=0.0, max_backoff=0.0)
ENGINE = {"tokens_endpoint": "completions", "retry": NO_WAIT}
SAMPLING = SamplingParams(max_tokens=3)

# vLLM's validation error for a prompt that does not fit (served as HTTP 400).
VLLM_OVERFLOW = (
    "This model's maximum context length is 2048 tokens. However, you requested 3 output tokens "
    "and your prompt contains at least 2047 input tokens, for a total of at least 2050 tokens. "
    "Please reduce the length of the input prompt or the number of requested output tokens. "
    "(parameter=input_tokens, value=2047)"
)
VLLM_OLD_OVERFLOW = "The decoder prompt (length 2049) is longer than the maximum model length of 2048. Make sure that `max_model_len` is no smaller than the number of text tokens."


def generate_after(*faults: Fault, engine: dict | None = None):
    """Generate once after queuing `faults`; returns (result or raised error, stats, request count)."""

    async def test(server, vllm):
        server.fail_next(*faults)
        try:
            outcome = await vllm.generate([5, 6], SAMPLING)
        except Exception as exc:  # noqa: BLE001 - the test inspects what was raised
            outcome = exc
        return outcome, vllm.stats, len(server.requests), server.base_url

    return run(test, engine={**ENGINE, **(engine or {})})


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (vllm_error("engine died", 500), "ServerError"),
        (vllm_error("busy", 503), "ServerError"),
        (vllm_error("slow down", 429), "RateLimitedError"),
        (Fault("drop"), "ConnectionDroppedError"),
    ],
)
def test_retryable_fault_then_success_is_counted(fault, reason):
    result, stats, requests, _ = generate_after(fault)
    assert result.completion_ids == [100, 101, 102]
    assert result.finish_reason is FinishReason.STOP
    assert requests == 2
    assert (stats.requests, stats.retries, stats.failures) == (2, 1, 0)
    assert stats.retries_by_reason == {reason: 1}


def test_timeout_is_retried_then_raised():
    error, stats, requests, url = generate_after(
        Fault("timeout"),
        Fault("timeout"),
        engine={"timeout": 0.2, "retry": RetryPolicy(1, 0.0, 0.0)},
    )
    assert type(error) is EngineTimeoutError
    assert str(error) == f"POST {url}/v1/completions: no answer within 0.2 s"
    assert requests == 2
    assert (stats.retries, stats.failures, stats.retries_by_reason) == (
        1,
        1,
        {"EngineTimeoutError": 1},
    )


def test_server_error_beyond_the_retry_budget_is_raised_with_its_message():
    error, stats, requests, url = generate_after(*[vllm_error("engine died", 500)] * 3)
    assert type(error) is ServerError
    assert str(error) == f"POST {url}/v1/completions: HTTP 500: engine died"
    assert requests == 3
    assert (stats.retries, stats.failures) == (2, 1)


def test_persistently_dropped_connection_is_raised():
    error, stats, requests, url = generate_after(Fault("drop"), Fault("drop"), Fault("drop"))
    assert type(error) is ConnectionDroppedError
    assert str(error).startswith(f"POST {url}/v1/completions: connection failed or closed early (")
    assert (requests, stats.retries) == (3, 2)


def test_malformed_json_is_not_retried_and_quotes_the_body():
    error, stats, requests, url = generate_after(Fault("raw", 200, b"<html>proxy error</html>"))
    assert type(error) is MalformedResponseError
    assert str(error).startswith(f"POST {url}/v1/completions: response is not JSON (")
    assert str(error).endswith("body starts b'<html>proxy error</html>'")
    assert (requests, stats.retries, stats.failures) == (1, 0, 1)


def test_truncated_json_is_malformed():
    error, _, _, _ = generate_after(Fault("raw", 200, b'{"choices": [{"token_ids": [1, 2'))
    assert type(error) is MalformedResponseError
    assert str(error).endswith("""body starts b'{"choices": [{"token_ids": [1, 2'""")


def test_unknown_model_is_not_retried():
    error, stats, requests, url = generate_after(
        vllm_error("The model `nope` does not exist.", 404)
    )
    assert type(error) is UnknownModelError
    assert str(error) == f"POST {url}/v1/completions: HTTP 404: The model `nope` does not exist."
    assert (requests, stats.retries) == (1, 0)


@pytest.mark.parametrize("message", [VLLM_OVERFLOW, VLLM_OLD_OVERFLOW])
def test_context_overflow_is_recognised_from_vllm_wording(message):
    error, stats, requests, url = generate_after(vllm_error(message, 400))
    assert type(error) is ContextOverflowError
    assert str(error) == f"POST {url}/v1/completions: HTTP 400: {message}"
    assert (requests, stats.retries) == (1, 0)


@pytest.mark.parametrize("status", [400, 422])
def test_bad_request_is_not_retried(status):
    error, stats, requests, url = generate_after(
        vllm_error("temperature must be non-negative", status)
    )
    assert type(error) is BadRequestError
    assert (
        str(error) == f"POST {url}/v1/completions: HTTP {status}: temperature must be non-negative"
    )
    assert (requests, stats.retries) == (1, 0)


def test_old_vllm_error_shape_and_plain_text_bodies_give_their_message():
    error, _, _, url = generate_after(
        Fault(
            "status",
            400,
            {"object": "error", "message": "bad stop ids", "type": "BadRequestError", "code": 400},
        )
    )
    assert str(error) == f"POST {url}/v1/completions: HTTP 400: bad stop ids"
    error, _, _, url = generate_after(*[Fault("raw", 502, b"Bad Gateway")] * 3)
    assert type(error) is ServerError
    assert str(error) == f"POST {url}/v1/completions: HTTP 502: Bad Gateway"


def test_misaligned_logprobs_in_a_scripted_answer_are_malformed():
    body = {
        "choices": [
            {
                "index": 0,
                "logprobs": {"token_logprobs": [-0.1], "tokens": ["a", "b"]},
                "finish_reason": "stop",
                "prompt_token_ids": [5, 6],
                "token_ids": [7, 8],
            }
        ]
    }
    error, stats, _, _ = generate_after(Fault("status", 200, body))
    assert type(error) is MalformedResponseError
    assert str(error) == (
        f"{MODEL} /v1/completions: provider payload: choices[0].token_ids has 2 ids but "
        "choices[0].logprobs has 1 values"
    )
    assert stats.retries == 0


def test_refused_connection_is_a_counted_dropped_connection():
    import asyncio
    import socket

    from tokenroll.engines.vllm import VLLMEngine

    with socket.socket() as sock:  # a loopback port that nothing listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    async def main():
        async with VLLMEngine(
            f"http://127.0.0.1:{port}", MODEL, tokens_endpoint="completions", retry=NO_WAIT
        ) as vllm:
            with pytest.raises(ConnectionDroppedError) as info:
                await vllm.generate([1], SAMPLING)
            return str(info.value), vllm.stats

    message, stats = asyncio.run(main())
    assert message.startswith(
        f"POST http://127.0.0.1:{port}/v1/completions: connection failed or closed early ("
    )
    assert (stats.requests, stats.retries, stats.failures) == (3, 2, 1)


def test_session_views_share_the_pool_and_counters_and_do_not_close_it():
    async def test(server, vllm):
        view = vllm.session("a")
        server.fail_next(vllm_error("busy", 503))
        await view.generate([1], SAMPLING)
        await view.aclose()
        await vllm.generate([1], SAMPLING)
        return vllm.stats, [r.headers.get("X-Session-ID") for r in server.requests]

    stats, sessions = run(test, engine=ENGINE)
    assert (stats.requests, stats.retries) == (3, 1)
    assert sessions == ["a", "a", None]


def test_rate_limit_carries_retry_after_and_is_retried():
    fault = vllm_error("slow down", 429)
    fault.headers = {"Retry-After": "0"}
    result, stats, requests, _ = generate_after(fault)
    assert result.completion_ids == [100, 101, 102]
    assert (requests, stats.retries_by_reason) == (2, {"RateLimitedError": 1})
    persistent = vllm_error("slow down", 429)
    persistent.headers = {"Retry-After": "0"}
    error, _, _, _ = generate_after(*[persistent] * 8, engine={"retry": RetryPolicy(max_retries=1, initial_backoff=0.0)})
    assert isinstance(error, RateLimitedError) and error.retry_after == 0.0


def test_retry_after_is_parsed_and_bounds_the_delay():
    from tokenroll.engines.http import parse_retry_after, retry_delay

    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past: no wait
    limited = RateLimitedError("429")
    limited.retry_after = 2.5
    no_backoff = RetryPolicy(initial_backoff=0.0)
    assert retry_delay(no_backoff, limited, 1) == 2.5
    limited.retry_after = 3600.0
    assert retry_delay(no_backoff, limited, 1) == 60.0  # capped: the retry budget answers longer waits
    assert retry_delay(no_backoff, ServerError("500"), 1) == 0.0
