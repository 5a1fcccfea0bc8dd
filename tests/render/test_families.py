"""Every hand-written family against its real tokenizer and Hugging Face chat template."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from tests.assets import tokenizer_dir
from tests.render.harness import (
    CORPUS,
    TOOLS,
    check_attribution,
    check_bridge,
    check_parity,
    check_round_trip,
    conversations,
    hf_tokenizer,
    pin_template_date,
    plain_body,
    split_points,
)
from tokenroll.render import Renderer, load_renderer


@dataclass(frozen=True)
class FamilySpec:
    family: str
    folder: str
    variants: tuple[dict[str, Any], ...] = ({},)
    """Template kwargs to run everything under (e.g. enable_thinking on and off)."""
    conversation_options: dict[str, Any] = field(default_factory=dict)
    """What generated conversations may hold (see harness.conversations)."""
    tools_in_template: bool = True
    pinned_date: str | None = None
    """The date the reference template's `strftime_now` returns (variants pass the same `date=` to ours)."""
    body_text: Callable[[dict], str] = plain_body
    """What a message's content tokens decode to (see harness.check_attribution)."""
    kept: Callable[[dict], dict] = lambda m: m
    """What the template writes of an assistant message (see harness.check_round_trip)."""
    answer_prefix: str = ""
    """Template text the model samples before its answer's text (gpt-oss: the final channel header)."""

    def __str__(self) -> str:
        return self.family


GPT_OSS_DATE = "2025-01-15"


def gpt_oss_body(message: dict) -> str:
    """gpt-oss writes tool results as JSON string literals."""
    return json.dumps(plain_body(message), ensure_ascii=False) if message["role"] == "tool" else plain_body(message)


def gpt_oss_kept(message: dict) -> dict:
    """gpt-oss writes a tool-calling turn's content as its analysis, and only its first call."""
    calls = message.get("tool_calls")
    if not calls:
        return message
    kept = {**message, "content": "", "tool_calls": calls[:1]}
    if message.get("content"):
        kept["reasoning_content"] = message["content"]
    return kept


FAMILIES = [
    FamilySpec("qwen3", "qwen3", ({}, {"enable_thinking": True}, {"enable_thinking": False})),
    FamilySpec("qwen2.5", "qwen2.5", conversation_options={"reasoning": False}),
    FamilySpec("smollm2", "smollm2", conversation_options={"reasoning": False, "tools": False}, tools_in_template=False),
    FamilySpec(
        "gpt-oss",
        "gpt-oss",
        (
            {"date": GPT_OSS_DATE},
            {"date": GPT_OSS_DATE, "reasoning_effort": "low"},
            {"date": GPT_OSS_DATE, "reasoning_effort": "high", "model_identity": "You are a test model.", "builtin_tools": ["browser", "python"]},
        ),
        pinned_date=GPT_OSS_DATE,
        body_text=gpt_oss_body,
        kept=gpt_oss_kept,
        answer_prefix="<|channel|>final<|message|>",
    ),
]
CASES = [(spec, variant) for spec in FAMILIES for variant in spec.variants]
CASE_IDS = [f"{spec.family}{'-' + '-'.join(f'{k}={v}' for k, v in variant.items()) if variant else ''}" for spec, variant in CASES]


@functools.cache
def renderer_for(folder: str) -> Renderer:
    return load_renderer(tokenizer_dir(folder))


def reference_for(spec: FamilySpec):
    """The family's `transformers` tokenizer, its template's date pinned when the spec says so."""
    hf = hf_tokenizer(spec.folder)
    if spec.pinned_date is not None:
        pin_template_date(hf, spec.pinned_date)
    return hf


def _applies(spec: FamilySpec, case) -> bool:
    return spec.tools_in_template or not case.tools


@pytest.mark.parametrize(("spec", "variant"), CASES, ids=CASE_IDS)
@pytest.mark.parametrize("case", CORPUS, ids=repr)
@pytest.mark.parametrize("generation_prompt", [False, True], ids=["no-gen", "gen"])
def test_parity_and_attribution_on_the_corpus(spec, variant, case, generation_prompt):
    renderer, hf = renderer_for(spec.folder), reference_for(spec)
    rendered = check_parity(renderer, hf, case.messages, case.tools, generation_prompt, **variant)
    if rendered is not None and "lookalike" not in case.features and _applies(spec, case):
        check_attribution(renderer, case.messages, rendered, body_text=spec.body_text)


@pytest.mark.parametrize("spec", FAMILIES, ids=str)
def test_family_is_detected_from_the_chat_template(spec):
    assert renderer_for(spec.folder).family == spec.family


@pytest.mark.parametrize("spec", FAMILIES, ids=str)
@pytest.mark.parametrize("case", [c for c in CORPUS if "lookalike" not in c.features], ids=repr)
def test_assistant_turns_round_trip_through_the_parser(spec, case):
    carries_reasoning = spec.conversation_options.get("reasoning", True)
    if not _applies(spec, case) or ("reasoning" in case.features and not carries_reasoning):
        pytest.skip("the template does not carry this content")
    if case.name == "reasoning-inline-think":
        pytest.skip("inline <think> text is split into reasoning by the template, so it parses differently by design")
    check_round_trip(renderer_for(spec.folder), case.messages, case.tools, kept=spec.kept)


@pytest.mark.parametrize(("spec", "variant"), CASES, ids=CASE_IDS)
@pytest.mark.parametrize("case", [c for c in CORPUS if split_points(c.messages)], ids=repr)
def test_bridge_keeps_the_prefix_and_matches_a_stable_re_render(spec, variant, case):
    renderer = renderer_for(spec.folder)
    for k in split_points(case.messages):
        check_bridge(renderer, case.messages, k, case.tools, **variant)


@pytest.mark.parametrize("spec", FAMILIES, ids=str)
def test_bridge_refuses_assistant_messages(spec):
    renderer = renderer_for(spec.folder)
    prompt = renderer.render_ids([{"role": "user", "content": "hi"}], add_generation_prompt=True)
    completion = renderer.tokenizer.encode("hello") + [renderer.stop_token_ids[0]]
    assert renderer.bridge(prompt, completion, [{"role": "assistant", "content": "x"}]) is None
    assert renderer.bridge(prompt, completion, [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]) is None
    assert renderer.bridge(prompt, completion, []) is None


@pytest.mark.parametrize("spec", FAMILIES, ids=str)
def test_bridge_after_a_cut_completion_synthesizes_the_close(spec):
    renderer = renderer_for(spec.folder)
    messages = [{"role": "user", "content": "Count to ten."}]
    prompt = renderer.render(messages, add_generation_prompt=True)
    # No stop token: cut by the token limit.
    cut = renderer.tokenizer.encode_markup(spec.answer_prefix) + renderer.tokenizer.encode("One, two, three")
    bridged = renderer.bridge(prompt.token_ids, cut, [{"role": "user", "content": "Go on."}], prev_attribution=prompt)
    assert bridged is not None
    n = len(prompt.token_ids) + len(cut)
    assert bridged.token_ids[:n] == prompt.token_ids + cut
    closed = renderer.render(messages + [{"role": "assistant", "content": "One, two, three"}, {"role": "user", "content": "Go on."}], add_generation_prompt=True)
    # What follows the cut is the template's turn close (not sampled) and then the new turn.
    assert bridged.token_ids == closed.token_ids
    synthesized = [i for i in range(n, len(bridged.token_ids)) if bridged.message_indices[i] == 1]
    assert synthesized and not any(bridged.sampled_mask[i] for i in synthesized)
    closes_with_stop = getattr(renderer, "assistant_turn_ends_with_stop", True)
    assert [bridged.token_ids[i] for i in synthesized][-1] in renderer.stop_token_ids or not closes_with_stop


@pytest.mark.parametrize(("spec", "variant"), CASES, ids=CASE_IDS)
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=conversations())
def test_generated_conversations(spec, variant, data):
    options = spec.conversation_options
    if not options.get("tools", True) and any(m.get("tool_calls") for m in data):
        return
    if not options.get("reasoning", True) and any(m.get("reasoning_content") for m in data):
        return
    renderer, hf = renderer_for(spec.folder), reference_for(spec)
    tools = TOOLS if spec.tools_in_template else None
    for generation_prompt in (False, True):
        rendered = check_parity(renderer, hf, data, tools, generation_prompt, **variant)
        if rendered is not None:
            check_attribution(renderer, data, rendered, body_text=spec.body_text)
    for k in split_points(data):
        check_bridge(renderer, data, k, tools, **variant)
