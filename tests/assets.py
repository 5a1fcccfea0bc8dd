"""Where the shared test assets are: real tokenizer files and chat templates of ten model families.

`TOKENROLL_TEST_ASSETS` names the tokenizers folder; otherwise `../shared/tokenizers` next to
the repository is used. A missing asset skips the test with the reason, unless
`TOKENROLL_REQUIRE_ASSETS=1`, where it fails the run (CI sets it).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ASSETS_ENV = "TOKENROLL_TEST_ASSETS"
REQUIRE_ENV = "TOKENROLL_REQUIRE_ASSETS"
REPO_ROOT = Path(__file__).resolve().parents[1]


def tokenizers_root() -> Path:
    """The folder holding one sub-folder per model family."""
    configured = os.environ.get(ASSETS_ENV)
    if configured:
        return Path(configured)
    return REPO_ROOT.parent / "shared" / "tokenizers"


def asset_path(*parts: str) -> Path:
    """The path of an asset under the tokenizers folder; skips (or fails) the test when missing."""
    path = tokenizers_root().joinpath(*parts)
    if not path.exists():
        reason = (
            f"test asset {path} is missing; set {ASSETS_ENV} to the folder of tokenizer files "
            f"(see the README's 'Tests' section)"
        )
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return path


def tokenizer_dir(family: str) -> Path:
    """The folder of one family, e.g. `tokenizer_dir("qwen3")`."""
    return asset_path(family)
