"""The shared HTTP layer of the engines: one aiohttp session, timeouts, counted retries, typed errors.

Every HTTP engine sends its requests through `HTTPClient.request`, which maps what a server
answers to the typed errors of `tokenroll.engines.base` and retries the retryable ones
(429, 5xx, dropped connections, timeouts) with `RetryPolicy` backoff, counting each retry.
"""

from __future__ import annotations

import asyncio
import copy
import datetime
import email.utils
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import yarl
import orjson

from tokenroll.core.messages import Message
from tokenroll.engines.base import (
    BadRequestError,
    ConnectionDroppedError,
    ContextOverflowError,
    Engine,
    EngineError,
    EngineTimeoutError,
    MalformedResponseError,
    RateLimitedError,
    RetryPolicy,
    ServerError,
    UnknownModelError,
)

SESSION_HEADER = "X-Session-ID"
"""The default header naming a rollout, for routers that keep one rollout on one server."""

# How servers say a prompt does not fit (matched lower-cased, anywhere in the error message):
# vLLM's current and older validation errors, SGLang's, and the OpenAI error code.
_CONTEXT_OVERFLOW_PHRASES = (
    "maximum context length",  # vLLM: "This model's maximum context length is N tokens. ..."
    "longer than the maximum model length",  # vLLM: "The decoder prompt (length N) is longer ..."
    "longer than the model's context length",  # SGLang: "The input (N tokens) is longer ..."
    "context_length_exceeded",  # OpenAI error code
)
_BODY_PREVIEW = 200
"""Bytes of a response body quoted in an error message."""


@dataclass(slots=True)
class RequestStats:
    """Counters of one client: requests sent, retries by reason, and requests that failed."""

    requests: int = 0
    retries: int = 0
    failures: int = 0
    retries_by_reason: dict[str, int] = field(default_factory=dict)

    def count_retry(self, reason: str) -> None:
        self.retries += 1
        self.retries_by_reason[reason] = self.retries_by_reason.get(reason, 0) + 1


_JSON_HEADERS = {"Content-Type": "application/json"}


class HTTPClient:
    """JSON over HTTP to one server, with a connection pool sized for many concurrent rollouts."""

    def __init__(
        self,
        base_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float = 600.0,
        retry: RetryPolicy | None = None,
        max_connections: int = 1024,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.headers = dict(headers or {})
        self.timeout = timeout
        self.retry = retry if retry is not None else RetryPolicy()
        self.max_connections = max_connections
        self.stats = RequestStats()
        self._session: aiohttp.ClientSession | None = None
        self._urls: dict[str, yarl.URL] = {}

    def _get_session(self) -> aiohttp.ClientSession:
        # Created on first use: an aiohttp session belongs to the running event loop.
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self.max_connections, limit_per_host=self.max_connections, ttl_dns_cache=300
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers=self.headers,
                # The timeout bounds connecting and each wait for bytes from the server, not
                # the wait for a free pooled connection, which is our own queue, not a fault.
                timeout=aiohttp.ClientTimeout(
                    total=None, sock_connect=self.timeout, sock_read=self.timeout
                ),
                # The server's answer is read as bytes and decoded with orjson; no cookies kept.
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._session

    async def request(
        self,
        method: str,
        path: str,
        payload: Any = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """Send one request (retrying retryable failures) and return the decoded JSON answer."""
        url = self._urls.get(path)
        if url is None:  # parsed once per path: aiohttp would parse a string URL on every request
            url = self._urls[path] = yarl.URL(self.base_url + path)
        body = None if payload is None else orjson.dumps(payload)
        attempt = 0
        while True:
            self.stats.requests += 1
            try:
                return await self._send_once(method, url, body, headers)
            except EngineError as exc:
                attempt += 1
                if not (exc.retryable and attempt <= self.retry.max_retries):
                    self.stats.failures += 1
                    raise
                self.stats.count_retry(type(exc).__name__)
                await asyncio.sleep(retry_delay(self.retry, exc, attempt))

    async def _send_once(
        self, method: str, url: yarl.URL, body: bytes | None, headers: Mapping[str, str] | None
    ) -> Any:
        request_headers = _JSON_HEADERS if body is not None else None
        if headers:
            request_headers = {**(request_headers or {}), **headers}
        try:
            async with self._get_session().request(
                method, url, data=body, headers=request_headers
            ) as response:
                status = response.status
                raw = await response.read()
                retry_after = response.headers.get("Retry-After")
        # aiohttp's timeouts are also connection errors, so they are caught first.
        except TimeoutError:
            raise EngineTimeoutError(f"{method} {url}: no answer within {self.timeout:g} s") from None
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
            raise ConnectionDroppedError(
                f"{method} {url}: connection failed or closed early ({type(exc).__name__}: {exc})"
            ) from None
        if status >= 400:
            error = _status_error(f"{method} {url}", status, raw)
            if isinstance(error, RateLimitedError):
                error.retry_after = parse_retry_after(retry_after)
            raise error
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise MalformedResponseError(
                f"{method} {url}: response is not JSON ({exc}); body starts {raw[:_BODY_PREVIEW]!r}"
            ) from None

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


_MAX_RETRY_AFTER = 60.0
"""The longest `Retry-After` we wait; a server asking for more is answered by the retry budget."""


def retry_delay(policy: RetryPolicy, error: EngineError, attempt: int) -> float:
    """Seconds before retry `attempt`: the policy's backoff, or longer when a 429 says how long."""
    delay = policy.backoff(attempt)
    if isinstance(error, RateLimitedError) and error.retry_after is not None:
        delay = max(delay, min(error.retry_after, _MAX_RETRY_AFTER))
    return delay


def parse_retry_after(value: str | None) -> float | None:
    """`Retry-After` as seconds from now: delay-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return max(0.0, (when - datetime.datetime.now(datetime.timezone.utc)).total_seconds())


def _status_error(where: str, status: int, raw: bytes) -> EngineError:
    """The typed error for an HTTP error status, carrying the server's own message."""
    message = _error_message(raw)
    text = f"{where}: HTTP {status}: {message}"
    if status in (400, 413, 422):
        lowered = message.lower()
        if any(phrase in lowered for phrase in _CONTEXT_OVERFLOW_PHRASES):
            return ContextOverflowError(text)
        return BadRequestError(text)
    if status == 404:
        return UnknownModelError(text)
    if status == 429:
        return RateLimitedError(text)
    if status >= 500:
        return ServerError(text)
    return BadRequestError(text)


def _error_message(raw: bytes) -> str:
    """The message of an error body: OpenAI `{"error": {"message"}}`, vLLM `{"message"}`, or the text."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw[:_BODY_PREVIEW].decode("utf-8", "replace")
    if isinstance(body, Mapping):
        error = body.get("error")
        if isinstance(error, Mapping) and isinstance(error.get("message"), str):
            return error["message"]
        for key in ("message", "detail", "error"):
            if isinstance(body.get(key), str):
                return body[key]
    return raw[:_BODY_PREVIEW].decode("utf-8", "replace")


class HTTPEngine(Engine):
    """An engine behind an HTTP server. `session(rollout_id)` gives a view that tags its requests."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 600.0,
        retry: RetryPolicy | None = None,
        max_connections: int = 1024,
        session_header: str = SESSION_HEADER,
    ) -> None:
        self.model = model
        all_headers = dict(headers or {})
        if api_key:
            all_headers["Authorization"] = f"Bearer {api_key}"
        self.client = HTTPClient(
            base_url,
            headers=all_headers,
            timeout=timeout,
            retry=retry,
            max_connections=max_connections,
        )
        self.session_header = session_header
        self.request_headers: dict[str, str] = {}
        """Headers sent with every request of this engine (or of this session view)."""
        self._is_view = False

    @property
    def stats(self) -> RequestStats:
        """Requests, retries and failures of the shared client."""
        return self.client.stats

    def session(self, session_id: str) -> HTTPEngine:
        """A view of this engine whose requests carry `session_id` for sticky routing.

        The view shares the connection pool and counters; closing it does not close them.
        """
        view = copy.copy(self)
        view.request_headers = {**self.request_headers, self.session_header: session_id}
        view._is_view = True
        return view

    async def tokenize(
        self,
        messages: Sequence[Message],
        tools: Sequence[Mapping[str, Any]] | None,
        add_generation_prompt: bool,
        chat_template_kwargs: Mapping[str, Any] | None = None,
    ) -> list[int]:
        """The server's chat-template rendering of `messages` (servers with `/tokenize` only)."""
        raise NotImplementedError(f"{type(self).__name__} cannot render messages to token ids")

    async def _post(self, path: str, payload: Any) -> Any:
        return await self.client.request("POST", path, payload, headers=self.request_headers)

    async def _get(self, path: str) -> Any:
        return await self.client.request("GET", path, headers=self.request_headers)

    async def aclose(self) -> None:
        if not self._is_view:
            await self.client.aclose()
