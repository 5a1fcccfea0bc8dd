"""The real-vLLM tier: a running vLLM 0.32 server named by `TOKENROLL_VLLM_URL`.

`scripts/vllm-tier` installs vLLM, serves SmolLM2-135M-Instruct and runs these tests with
`-m vllm`; without the variable every test here skips. `TOKENROLL_VLLM_RECORD=1` saves the
responses the tests name as JSON fixtures for the engine clients' offline unit tests.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

URL_ENV = "TOKENROLL_VLLM_URL"
SKIP_REASON = f"{URL_ENV} is unset: run scripts/vllm-tier to test against a real vLLM server"
FIXTURES = Path(__file__).resolve().parents[1] / "engines" / "fixtures" / "vllm-0.32"
# One request should take well under a second on the 135M model; this only bounds a hang.
_TIMEOUT_S = 120


@dataclass(frozen=True, slots=True)
class Reply:
    """An HTTP status and its JSON body."""

    status: int
    body: Any


class VLLMServer:
    """Raw HTTP to the server under test: no client library, so its real shapes are what we see."""

    def __init__(self, url: str, model: str, model_dir: Path | None) -> None:
        self.url = url.rstrip("/")
        self.model = model
        self.model_dir = model_dir

    def get(self, path: str) -> Reply:
        """GET a JSON endpoint."""
        return self._send(urllib.request.Request(self.url + path))

    def post(self, path: str, body: Any) -> Reply:
        """POST a JSON body; error statuses are returned, not raised."""
        request = urllib.request.Request(
            self.url + path,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        return self._send(request)

    def _send(self, request: urllib.request.Request) -> Reply:
        try:
            with urllib.request.urlopen(request, timeout=_TIMEOUT_S) as response:
                return Reply(response.status, _json_or_text(response.read()))
        except urllib.error.HTTPError as error:
            return Reply(error.code, _json_or_text(error.read()))


def _json_or_text(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")


@pytest.fixture(scope="session")
def vllm() -> VLLMServer:
    """The server under test; skips when `TOKENROLL_VLLM_URL` is unset."""
    url = os.environ.get(URL_ENV)
    if not url:
        pytest.skip(SKIP_REASON)
    model_dir = os.environ.get("TOKENROLL_VLLM_MODEL_DIR")
    return VLLMServer(url, os.environ.get("TOKENROLL_VLLM_MODEL", "smollm2"), Path(model_dir) if model_dir else None)


@pytest.fixture(scope="session")
def renderer(vllm: VLLMServer):
    """tokenroll's renderer over the tokenizer of the folder the server serves."""
    from tokenroll.render import load_renderer

    if vllm.model_dir is None:
        pytest.skip("TOKENROLL_VLLM_MODEL_DIR is unset: the served model folder is needed for its tokenizer")
    return load_renderer(vllm.model_dir)


@pytest.fixture
def record():
    """`record(name, request, reply)` saves a fixture when `TOKENROLL_VLLM_RECORD=1`."""

    def save(name: str, request: Any, reply: Reply, *, method: str = "POST", path: str = "") -> None:
        if os.environ.get("TOKENROLL_VLLM_RECORD") != "1":
            return
        FIXTURES.mkdir(parents=True, exist_ok=True)
        fixture = {"method": method, "path": path, "request": request, "status": reply.status, "response": reply.body}
        text = json.dumps(fixture, indent=1, ensure_ascii=False) + "\n"
        model_dir = os.environ.get("TOKENROLL_VLLM_MODEL_DIR")
        if model_dir:  # /v1/models names the served folder; keep machine paths out of the repository
            text = text.replace(json.dumps(model_dir)[1:-1], "MODEL_DIR")
        (FIXTURES / f"{name}.json").write_text(text)

    return save
