"""A stand-in GLM-4.x tokenizer for tests: a real byte-level BPE vocabulary plus GLM's added tokens.

No GLM-4.x `tokenizer.json` is in the shared assets, only the chat templates. Renderers care
about two things a stand-in reproduces faithfully: byte-level BPE merges across template and
body text, and every GLM marker being one added-token id. The vocabulary is Qwen2.5's (the
same byte-level family as GLM's) with its own added tokens removed, so ids differ from real
GLM ids but every structural property holds.
"""

from __future__ import annotations

import functools
import json

import tokenizers
from tokenizers import AddedToken

from tests.assets import asset_path

# GLM-4.5/4.6/4.7 added tokens, in their order in the real tokenizer (ids follow the vocabulary).
GLM_ADDED_TOKENS = (
    "<|endoftext|>",
    "[MASK]",
    "[gMASK]",
    "[sMASK]",
    "<sop>",
    "<eop>",
    "<|system|>",
    "<|user|>",
    "<|assistant|>",
    "<|observation|>",
    "/nothink",
    "<think>",
    "</think>",
    "<tool_call>",
    "</tool_call>",
    "<tool_response>",
    "</tool_response>",
    "<arg_key>",
    "</arg_key>",
    "<arg_value>",
    "</arg_value>",
)

TEMPLATES = {"glm-4.6": "GLM-4.6.chat_template.jinja", "glm-4.7": "GLM-4.7-Flash.chat_template.jinja"}


def chat_template(family: str) -> str:
    """The shared GLM chat template of `family` ("glm-4.6" or "glm-4.7")."""
    return asset_path("glm-4.x", TEMPLATES[family]).read_text(encoding="utf-8")


@functools.cache
def glm_backend() -> tokenizers.Tokenizer:
    """Qwen2.5's BPE model and pre-tokenizer, with GLM's markers as single-id special tokens."""
    spec = json.loads(asset_path("qwen2.5", "tokenizer.json").read_text(encoding="utf-8"))
    spec["added_tokens"] = []
    backend = tokenizers.Tokenizer.from_str(json.dumps(spec))
    backend.add_special_tokens([AddedToken(token, special=True, normalized=False) for token in GLM_ADDED_TOKENS])
    return backend


@functools.cache
def glm_hf_tokenizer(family: str):
    """A `transformers` fast tokenizer with the stand-in vocabulary and `family`'s chat template."""
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizers.Tokenizer.from_str(glm_backend().to_str()),
        chat_template=chat_template(family),
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        name_or_path=f"test-{family}",
    )
