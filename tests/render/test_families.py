"""Every hand-written family against its real tokenizer and Hugging Face chat template."""

from __future__ import annotations

import copy
import functools
import hashlib
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
    split_points,
)
from tokenroll.render import Renderer, RenderError, load_renderer


def mistral_call_ids(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The conversation with every tool-call id replaced by the 9-character alphanumeric id Mistral requires."""

    def nine(call_id: str) -> str:
        return hashlib.sha1(call_id.encode()).hexdigest()[:9]

    out = copy.deepcopy(messages)
    for message in out:
        for c in message.get("tool_calls") or []:
            c["id"] = nine(c["id"])
        if message.get("tool_call_id") is not None:
            message["tool_call_id"] = nine(message["tool_call_id"])
    return out


@dataclass(frozen=True)
class FamilySpec:
    family: str
    folder: str
    variants: tuple[dict[str, Any], ...] = ({},)
    """Template kwargs to run everything under (e.g. enable_thinking on and off)."""
    conversation_options: dict[str, Any] = field(default_factory=dict)
    """What generated conversations may hold (see harness.conversations)."""
    tools_in_template: bool = True
    prepare: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] = lambda messages: messages
    """Rewrites a conversation into the form the template accepts (e.g. tool-call ids it requires)."""
    bodies_verbatim: Callable[[dict[str, Any]], bool] = lambda message: True
    """Whether a message's body tokens decode to its text (see harness.check_attribution)."""
    carried: Callable[[dict[str, Any]], dict[str, Any]] = lambda message: message
    """An assistant message as the template writes it (see harness.check_round_trip)."""

    def __str__(self) -> str:
        return self.family


FAMILIES = [
    FamilySpec("qwen3", "qwen3", ({}, {"enable_thinking": True}, {"enable_thinking": False})),
    FamilySpec("qwen2.5", "qwen2.5", conversation_options={"reasoning": False}),
    FamilySpec("smollm2", "smollm2", conversation_options={"reasoning": False, "tools": False}, tools_in_template=False),
    FamilySpec(
        "mistral-nemo",
        "mistral-nemo",
        conversation_options={"reasoning": False},
        prepare=mistral_call_ids,
        bodies_verbatim=lambda m: m["role"] not in ("system", "tool"),
        carried=lambda m: {**m, "content": ""} if m.get("tool_calls") else m,
    ),
    FamilySpec(
        "gemma-3",
        "gemma-3",
        conversation_options={"reasoning": False, "tools": False},
        tools_in_template=False,
        carried=lambda m: {"role": m["role"], "content": (m.get("content") or "").strip()},
    ),
]
CASES = [(spec, variant) for spec in FAMILIES for variant in spec.variants]
CASE_IDS = [f"{spec.family}{'-' + '-'.join(f'{k}={v}' for k, v in variant.items()) if variant else ''}" for spec, variant in CASES]


@functools.cache
def renderer_for(folder: str) -> Renderer:
    return load_renderer(tokenizer_dir(folder))


def _applies(spec: FamilySpec, case) -> bool:
    return spec.tools_in_template or not case.tools


@pytest.mark.parametrize(("spec", "variant"), CASES, ids=CASE_IDS)
@pytest.mark.parametrize("case", CORPUS, ids=repr)
@pytest.mark.parametrize("generation_prompt", [False, True], ids=["no-gen", "gen"])
def test_parity_and_attribution_on_the_corpus(spec, variant, case, generation_prompt):
    renderer, hf = renderer_for(spec.folder), hf_tokenizer(spec.folder)
    messages = spec.prepare(case.messages)
    rendered = check_parity(renderer, hf, messages, case.tools, generation_prompt, **variant)
    if rendered is not None and "lookalike" not in case.features and _applies(spec, case):
        check_attribution(renderer, messages, rendered, bodies_verbatim=spec.bodies_verbatim)


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
    check_round_trip(renderer_for(spec.folder), spec.prepare(case.messages), case.tools, carried=spec.carried)


@pytest.mark.parametrize(("spec", "variant"), CASES, ids=CASE_IDS)
@pytest.mark.parametrize("case", [c for c in CORPUS if split_points(c.messages)], ids=repr)
def test_bridge_keeps_the_prefix_and_matches_a_stable_re_render(spec, variant, case):
    renderer = renderer_for(spec.folder)
    messages = spec.prepare(case.messages)
    try:
        renderer.render(messages, case.tools, **variant)
    except RenderError:
        pytest.skip("the template refuses this conversation (parity checks that Hugging Face does too)")
    for k in split_points(messages):
        check_bridge(renderer, messages, k, case.tools, **variant)


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
    cut = renderer.tokenizer.encode("One, two, three")  # no stop token: cut by the token limit
    bridged = renderer.bridge(prompt.token_ids, cut, [{"role": "user", "content": "Go on."}], prev_attribution=prompt)
    assert bridged is not None
    n = len(prompt.token_ids) + len(cut)
    assert bridged.token_ids[:n] == prompt.token_ids + cut
    closed = renderer.render(messages + [{"role": "assistant", "content": "One, two, three"}, {"role": "user", "content": "Go on."}], add_generation_prompt=True)
    # What follows the cut is the template's turn close (not sampled) and then the new turn.
    assert bridged.token_ids == closed.token_ids
    synthesized = [i for i in range(n, len(bridged.token_ids)) if bridged.message_indices[i] == 1]
    assert synthesized and not any(bridged.sampled_mask[i] for i in synthesized)
    assert [bridged.token_ids[i] for i in synthesized][-1] in renderer.stop_token_ids


@pytest.mark.parametrize(("spec", "variant"), CASES, ids=CASE_IDS)
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=conversations())
def test_generated_conversations(spec, variant, data):
    options = spec.conversation_options
    if not options.get("tools", True) and any(m.get("tool_calls") for m in data):
        return
    if not options.get("reasoning", True) and any(m.get("reasoning_content") for m in data):
        return
    renderer, hf = renderer_for(spec.folder), hf_tokenizer(spec.folder)
    tools = TOOLS if spec.tools_in_template else None
    data = spec.prepare(data)
    for generation_prompt in (False, True):
        rendered = check_parity(renderer, hf, data, tools, generation_prompt, **variant)
        if rendered is None:
            return  # both refused it (e.g. roles that do not alternate): nothing to bridge
        check_attribution(renderer, data, rendered, bodies_verbatim=spec.bodies_verbatim)
    for k in split_points(data):
        check_bridge(renderer, data, k, tools, **variant)
