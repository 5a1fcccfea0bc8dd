"""`tokenroll serve` as a real process: it starts, answers vLLM's endpoints, and stops."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from tests.engines.local_model import require_local

READY_TIMEOUT_S = 300  # loading the model takes about 30 s on a shared 2-core machine


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _get(url: str):
    with urllib.request.urlopen(url, timeout=30) as reply:
        return json.loads(reply.read())


def _post(url: str, body: dict):
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as reply:
        return json.loads(reply.read())


@pytest.mark.slow
def test_serve_answers_token_completions_and_tokenize():
    require_local()
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "tokenroll.cli.main", "serve", "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            try:
                models = _get(base + "/v1/models")
                break
            except (urllib.error.URLError, ConnectionError):
                assert server.poll() is None, server.stdout.read().decode(errors="replace")[-2000:]
                assert time.monotonic() < deadline, "tokenroll serve did not become ready"
                time.sleep(1)
        assert models["data"][0]["max_model_len"] == 8192
        messages = [{"role": "user", "content": "Say hi."}]
        prompt = _post(base + "/tokenize", {"model": models["data"][0]["id"], "messages": messages, "add_generation_prompt": True})["tokens"]
        assert prompt[:3] == [1, 9690, 198]  # <|im_start|>system\n: the template's default system turn
        completion = _post(
            base + "/v1/completions",
            {"model": models["data"][0]["id"], "prompt": prompt, "max_tokens": 8, "temperature": 0, "logprobs": 0, "return_token_ids": True},
        )["choices"][0]
        assert completion["prompt_token_ids"] == prompt
        assert 1 <= len(completion["token_ids"]) <= 8
        assert len(completion["logprobs"]["token_logprobs"]) == len(completion["token_ids"])
    finally:
        server.terminate()
        server.wait(timeout=30)
