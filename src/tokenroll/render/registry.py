"""Finding the renderer for a tokenizer: by the chat template's fingerprint, or by name."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tokenroll.render.base import Renderer
from tokenroll.render.tokenizer import Tokenizer

# family name -> "module:Class" under tokenroll.render, imported on first use
_FAMILIES: dict[str, str] = {
    "qwen3": "qwen3:Qwen3Renderer",
    "qwen2.5": "qwen2_5:Qwen25Renderer",
    "smollm2": "smollm2:SmolLM2Renderer",
    "mistral-nemo": "mistral_nemo:MistralNemoRenderer",
    "gemma-3": "gemma3:Gemma3Renderer",
}

# (family, test on the chat template), most specific first
_FINGERPRINTS: list[tuple[str, Callable[[str], bool]]] = [
    ("qwen3", lambda t: "<|im_start|>" in t and "last_query_index" in t and "<think>" in t),
    ("qwen2.5", lambda t: "<|im_start|>" in t and "You are Qwen, created by Alibaba Cloud" in t),
    ("smollm2", lambda t: "<|im_start|>" in t and "named SmolLM, trained by Hugging Face" in t),
    # "[INST]" glued to the system prompt (no space: tekken), the [TOOL_CALLS] JSON list, and
    # untrimmed assistant bodies (Ministral-8B's otherwise similar template trims them).
    (
        "mistral-nemo",
        lambda t: '"[INST]" + system_message + "\\n\\n"' in t
        and '"[TOOL_CALLS]["' in t
        and 'message["content"] + eos_token' in t
        and '" " + message["content"]|trim' not in t,
    ),
    ("gemma-3", lambda t: "<start_of_turn>" in t and "first_user_prefix" in t and 'set role = "model"' in t),
]


def families() -> list[str]:
    """Names of the hand-written renderer families."""
    return list(_FAMILIES)


def detect_family(chat_template: str | None) -> str | None:
    """The family whose template this is, or None when no hand-written renderer matches."""
    if not chat_template:
        return None
    for family, matches in _FINGERPRINTS:
        if matches(chat_template):
            return family
    return None


def load_renderer(tokenizer_or_path: Any, family: str | None = None, **template_kwargs: Any) -> Renderer:
    """A renderer for a tokenizer object or a folder with `tokenizer.json` + `tokenizer_config.json`.

    The family comes from the chat template unless `family=` names it; `template_kwargs`
    (e.g. `enable_thinking=False`) become defaults for every render.
    """
    if isinstance(tokenizer_or_path, (str, Path)):
        tokenizer = Tokenizer.from_pretrained(tokenizer_or_path)
    else:
        tokenizer = Tokenizer.from_object(tokenizer_or_path)
    if family is None:
        family = detect_family(tokenizer.chat_template)
        if family is None:
            raise ValueError(
                f"no hand-written renderer matches the chat template of {tokenizer.name_or_path or 'this tokenizer'}; "
                f"pass family= one of {', '.join(families())}"
            )
    if family not in _FAMILIES:
        raise ValueError(f"unknown renderer family {family!r}; known: {', '.join(families())}")
    module_name, class_name = _FAMILIES[family].split(":")
    import importlib

    module = importlib.import_module(f"tokenroll.render.{module_name}")
    return getattr(module, class_name)(tokenizer, **template_kwargs)
