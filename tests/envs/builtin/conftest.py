"""Shared fixtures: one warm tracer, and a CWM vocabulary made from the Llama 3 tokenizer."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.assets import tokenizer_dir
from tokenroll.render import Renderer, load_renderer
from tokenroll.traces.frames import Special
from tokenroll.traces.ground_truth import Tracer


@pytest.fixture(scope="session")
def tracer():
    with Tracer(workers=1) as session_tracer:
        yield session_tracer


@pytest.fixture(scope="session")
def cwm_renderer(tmp_path_factory) -> Renderer:
    """Llama 3.2's tokenizer with CWM's trace tokens where CWM has them (ids 128100-128107).

    CWM's vocabulary is Llama 3's with reserved special tokens renamed, so this has CWM's ids.
    """
    source = tokenizer_dir("llama-3.2")
    folder = tmp_path_factory.mktemp("cwm-tokenizer")
    spec = json.loads((source / "tokenizer.json").read_text(encoding="utf-8"))
    names = {int(token): token.text for token in Special}
    for added in spec["added_tokens"]:
        added["content"] = names.get(added["id"], added["content"])
    (folder / "tokenizer.json").write_text(json.dumps(spec), encoding="utf-8")
    shutil.copy(source / "tokenizer_config.json", folder / "tokenizer_config.json")
    return load_renderer(folder)
