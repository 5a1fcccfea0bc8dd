"""Finding the renderer for a tokenizer: by the chat template's fingerprint, or by name."""

from __future__ import annotations

import importlib
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
    "glm-4.6": "glm4_6:GLM46Renderer",
    "glm-4.7": "glm4_7:GLM47Renderer",
    "llama3": "llama3:Llama3Renderer",
    "deepseek-v3": "deepseek_v3:DeepSeekV3Renderer",
    "gpt-oss": "gpt_oss:GptOssRenderer",
    "mistral-nemo": "mistral_nemo:MistralNemoRenderer",
    "gemma-3": "gemma3:Gemma3Renderer",
    "generic": "generic:TemplateRenderer",
}

# (family, test on the chat template), most specific first
_FINGERPRINTS: list[tuple[str, Callable[[str], bool]]] = [
    # Qwen3.5/3.6 templates share these but call tools in XML (<function=...>) and handle vision.
    (
        "qwen3",
        lambda t: "<|im_start|>" in t and "last_query_index" in t and "<think>" in t and "<function=" not in t,
    ),
    ("qwen2.5", lambda t: "<|im_start|>" in t and "You are Qwen, created by Alibaba Cloud" in t),
    ("smollm2", lambda t: "<|im_start|>" in t and "named SmolLM, trained by Hugging Face" in t),
    # GLM-4.7 has `clear_thinking` and no newline after role markers; GLM-4.6/4.5 has `/nothink`.
    ("glm-4.7", lambda t: "[gMASK]<sop>" in t and "<arg_key>" in t and "clear_thinking" in t and "<|user|>{{" in t),
    ("glm-4.6", lambda t: "[gMASK]<sop>" in t and "<arg_key>" in t and "/nothink" in t and "<|user|>\n{{" in t),
    # Llama 3.1/3.2/3.3 text templates (the 3.2 Vision one, with <|image|>, differs).
    ("llama3", lambda t: "<|start_header_id|>" in t and "Cutting Knowledge Date: December 2023" in t and "<|image|>" not in t),
    # The original V3 template (tool calls only when content is none); R1/V3.1 templates add <think>.
    (
        "deepseek-v3",
        lambda t: "<｜tool▁calls▁begin｜>" in t and "ns.is_output_first" in t and "message['content'] is none" in t
        and "think>" not in t,
    ),
    ("gpt-oss", lambda t: "<|start|>system<|message|>" in t and "<|channel|>final<|message|>" in t),
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
    """Names of the renderer families, `generic` (the tokenizer's own template) last."""
    return [f for f in _FAMILIES if f != "generic"] + ["generic"]


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

    The family comes from the chat template unless `family=` names it; a template no
    hand-written renderer matches gets the `generic` one. `template_kwargs` (e.g.
    `enable_thinking=False`) become defaults for every render.
    """
    if isinstance(tokenizer_or_path, (str, Path)):
        tokenizer = Tokenizer.from_pretrained(tokenizer_or_path)
    else:
        tokenizer = Tokenizer.from_object(tokenizer_or_path)
    if family is None:
        family = detect_family(tokenizer.chat_template)
        if family is None and not tokenizer.chat_template:
            raise ValueError(
                f"{tokenizer.name_or_path or 'this tokenizer'} has no chat template; "
                f"pass family= one of {', '.join(families())}"
            )
        family = family or "generic"
    if family not in _FAMILIES:
        raise ValueError(f"unknown renderer family {family!r}; known: {', '.join(families())}")
    module_name, class_name = _FAMILIES[family].split(":")
    module = importlib.import_module(f"tokenroll.render.{module_name}")
    return getattr(module, class_name)(tokenizer, **template_kwargs)
