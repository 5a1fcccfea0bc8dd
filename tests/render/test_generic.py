"""The generic renderer: the model's own chat template, attributed message by message."""

from __future__ import annotations

import functools

import pytest

from tests.assets import tokenizer_dir
from datetime import datetime

from tests.render.harness import (
    CORPUS,
    TOOLS,
    check_attribution,
    check_bridge,
    check_parity,
    hf_tokenizer,
    pin_template_date,
    split_points,
)
from tokenroll.render import RenderError, Renderer, Tokenizer, load_renderer
from tokenroll.render.generic import TemplateRenderer

# Folders with a real tokenizer and template, and the kwargs that pin their output.
FOLDERS = {
    "qwen3": {},
    "qwen2.5": {},
    "smollm2": {},
    "llama-3.2": {"date_string": "26 Jul 2024"},
    "deepseek-v3": {},
    "mistral-nemo": {},
    "gemma-3": {},
    "gpt-oss": {},
}
# Templates that render each message the same whatever follows, so attribution and bridge hold exactly.
PREFIX_CONSISTENT = ["qwen3", "qwen2.5", "smollm2"]


PINNED_DATE = "2025-01-15"  # gpt-oss's template reads the clock; both sides get this date


@functools.cache
def generic(folder: str) -> Renderer:
    renderer = load_renderer(tokenizer_dir(folder), family="generic")
    renderer._template.globals["strftime_now"] = datetime.strptime(PINNED_DATE, "%Y-%m-%d").strftime
    return renderer


def reference(folder: str):
    hf = hf_tokenizer(folder)
    pin_template_date(hf, PINNED_DATE)
    return hf


@pytest.mark.parametrize("folder", FOLDERS)
@pytest.mark.parametrize("case", CORPUS, ids=repr)
@pytest.mark.parametrize("generation_prompt", [False, True], ids=["no-gen", "gen"])
def test_ids_equal_hugging_face(folder, case, generation_prompt):
    check_parity(generic(folder), reference(folder), case.messages, case.tools, generation_prompt, **FOLDERS[folder])


@pytest.mark.parametrize("folder", PREFIX_CONSISTENT)
@pytest.mark.parametrize("case", [c for c in CORPUS if "lookalike" not in c.features], ids=repr)
def test_attribution_and_bridge(folder, case):
    renderer = generic(folder)
    check_attribution(renderer, case.messages, renderer.render(case.messages, case.tools))
    for k in split_points(case.messages)[-2:]:  # each render of the generic path costs a template call per message
        assert check_bridge(renderer, case.messages, k, case.tools) is not None


def test_generic_attribution_agrees_with_the_hand_written_renderer_on_bodies():
    case = next(c for c in CORPUS if c.name == "parallel-tool-calls")
    ours = generic("qwen2.5").render(case.messages, case.tools)
    hand_written = load_renderer(tokenizer_dir("qwen2.5")).render(case.messages, case.tools)
    assert ours.token_ids == hand_written.token_ids
    assert ours.sampled_mask == hand_written.sampled_mask
    assert ours.is_content == hand_written.is_content
    bodies = [i for i, content in enumerate(ours.is_content) if content]
    assert [ours.message_indices[i] for i in bodies] == [hand_written.message_indices[i] for i in bodies]
    # The template's own preamble (default system prompt, tools) cannot be told from message 0's header.
    assert hand_written.message_indices[0] == -1 and ours.message_indices[0] == 0


def test_an_unknown_template_falls_back_to_generic():
    tokenizer = Tokenizer.from_pretrained(tokenizer_dir("qwen2.5"))
    tokenizer.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    renderer = load_renderer(tokenizer)
    assert isinstance(renderer, TemplateRenderer)
    rendered = renderer.render([{"role": "user", "content": "Hi"}], add_generation_prompt=True)
    assert rendered.token_ids == [151644, 872, 198, 13048, 151645, 198, 151644, 77091, 198]
    assert rendered.message_indices == [0, 0, 0, 0, 0, 0, -1, -1, -1]  # the separator ends message 0's text
    assert rendered.is_content == [False, False, False, True, False, False, False, False, False]
    assert renderer.stop_token_ids == [151645]


def test_template_refusal_is_a_render_error_with_the_templates_words():
    renderer = generic("gemma-3")
    with pytest.raises(RenderError, match="the chat template refused the conversation: Conversation roles must alternate"):
        renderer.render([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}])


def test_a_tokenizer_without_template_needs_a_family():
    tokenizer = Tokenizer.from_pretrained(tokenizer_dir("qwen2.5"))
    tokenizer.chat_template = None
    with pytest.raises(ValueError, match="has no chat template; pass family= one of"):
        load_renderer(tokenizer)


def test_tools_from_a_transformers_tokenizer_object():
    renderer = load_renderer(hf_tokenizer("qwen2.5"))
    assert renderer.family == "qwen2.5"
    assert renderer.render_ids([{"role": "user", "content": "1+1?"}], TOOLS) == hf_tokenizer("qwen2.5").apply_chat_template(
        [{"role": "user", "content": "1+1?"}], tools=TOOLS, tokenize=True, return_dict=False
    )


def test_qwen3_5_template_is_not_taken_for_qwen3():
    from tests.assets import asset_path
    from tokenroll.render import detect_family

    qwen3_5 = asset_path("qwen3.5", "chat_template.jinja").read_text(encoding="utf-8")
    assert detect_family(qwen3_5) is None
    assert detect_family(hf_tokenizer("qwen3").chat_template) == "qwen3"
