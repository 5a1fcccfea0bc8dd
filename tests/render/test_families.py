"""Every hand-written family against its real tokenizer and Hugging Face chat template."""

from __future__ import annotations

import copy
import functools
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.assets import tokenizer_dir
from tests.render.harness import (
    BUILT_TOKENIZERS,
    CORPUS,
    TOOLS,
    check_attribution,
    check_bridge,
    check_parity,
    check_round_trip,
    conversations,
    hf_tokenizer,
    message_text,
    pin_template_date,
    split_points,
)
from tokenroll.render import Renderer, RenderError, Tokenizer, load_renderer


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
    plain_turn_prefix_stable: bool = True
    """Under the default kwargs, a turn without reasoning re-renders as the model sampled it."""
    label: str = ""
    """Test id when one family is tested with several templates; the family name otherwise."""
    template: str | None = None
    """A chat template file in the folder to use instead of the config's."""
    reference: dict[str, bool] = field(default_factory=dict)
    """How the Hugging Face reference gets conversations (`check_parity`'s arguments_as_text, keep_none)."""
    parallel_tool_calls: bool = True
    """False when the template refuses more than one call per message."""
    body_text: Callable[[dict], str] = message_text
    """A non-assistant body as the template writes it."""
    round_trip_view: Callable[[dict], dict] = lambda m: m
    """What the template keeps of an assistant message."""
    pinned_date: str | None = None
    """The date the reference template's `strftime_now` returns (variants pass the same `date=` to ours)."""
    answer_prefix: str = ""
    """Template text the model samples before its answer's text (gpt-oss: the final channel header)."""
    prepare: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] = lambda messages: messages
    """Rewrites a conversation into the form the template accepts (e.g. tool-call ids it requires)."""
    bodies_verbatim: Callable[[dict[str, Any]], bool] = lambda message: True
    """Whether a message's body tokens decode to its text (see harness.check_attribution)."""

    def __str__(self) -> str:
        return self.label or self.family


def _llama_body(message: dict[str, Any]) -> str:
    """Llama trims bodies and writes tool results with tojson."""
    text = message_text(message)
    return json.dumps(text, ensure_ascii=False) if message["role"] == "tool" else text.strip()


def _llama_view(message: dict[str, Any]) -> dict[str, Any]:
    """Llama writes only the call of an assistant that calls a tool."""
    return {**message, "content": ""} if message.get("tool_calls") else message


def _deepseek_view(message: dict[str, Any]) -> dict[str, Any]:
    """DeepSeek-V3 writes tool calls only when the content is None, and then no content."""
    if message.get("content") is not None:
        return {key: value for key, value in message.items() if key != "tool_calls"}
    return message


LLAMA_DATE = {"date_string": "26 Jul 2024"}


GPT_OSS_DATE = "2025-01-15"


def gpt_oss_body(message: dict) -> str:
    """gpt-oss writes tool results as JSON string literals."""
    return json.dumps(message_text(message), ensure_ascii=False) if message["role"] == "tool" else message_text(message)


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
    FamilySpec("glm-4.6", "glm-4.6", ({}, {"enable_thinking": True}, {"enable_thinking": False})),
    # GLM-4.7's thinking prompt opens <think>, which a turn without reasoning re-renders without.
    FamilySpec("glm-4.7", "glm-4.7", ({}, {"enable_thinking": False}, {"clear_thinking": False}), plain_turn_prefix_stable=False),
    FamilySpec(
        "llama3",
        "llama-3.2",
        # The 3.2 template dates the system turn with the clock unless date_string pins it.
        (LLAMA_DATE, {"date_string": "3 Feb 2025", "tools_in_user_message": False}),
        conversation_options={"reasoning": False, "parallel": False},
        label="llama3.2",
        parallel_tool_calls=False,
        body_text=_llama_body,
        round_trip_view=_llama_view,
    ),
    FamilySpec(
        "llama3",
        "llama-3.2",
        ({}, {"tools_in_user_message": False}, {**LLAMA_DATE, "builtin_tools": ["brave_search", "wolfram_alpha", "code_interpreter"]}),
        conversation_options={"reasoning": False, "parallel": False},
        label="llama3.1",
        template="alt_chat_template.Llama-3.1-8B-Instruct.jinja",
        parallel_tool_calls=False,
        body_text=_llama_body,
        round_trip_view=_llama_view,
    ),
    FamilySpec(
        "deepseek-v3",
        "deepseek-v3",
        conversation_options={"reasoning": False, "none_content": True},
        reference={"arguments_as_text": True, "keep_none": True},
        round_trip_view=_deepseek_view,
    ),
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
        round_trip_view=gpt_oss_kept,
        answer_prefix="<|channel|>final<|message|>",
    ),
    FamilySpec(
        "mistral-nemo",
        "mistral-nemo",
        conversation_options={"reasoning": False},
        prepare=mistral_call_ids,
        bodies_verbatim=lambda m: m["role"] not in ("system", "tool"),
        round_trip_view=lambda m: {**m, "content": ""} if m.get("tool_calls") else m,
    ),
    FamilySpec(
        "gemma-3",
        "gemma-3",
        conversation_options={"reasoning": False, "tools": False},
        tools_in_template=False,
        round_trip_view=lambda m: {"role": m["role"], "content": (m.get("content") or "").strip()},
    ),
]
CASES = [(spec, variant) for spec in FAMILIES for variant in spec.variants]
CASE_IDS = [f"{spec}{'-' + '-'.join(f'{k}={v}' for k, v in variant.items()) if variant else ''}" for spec, variant in CASES]


# conversation_options that the generator takes (the others only filter what it drew)
_STRATEGY_OPTIONS = {"parallel", "none_content"}


@functools.cache
def _renderer(folder: str, template: str | None) -> Renderer:
    if folder in BUILT_TOKENIZERS:
        return load_renderer(hf_tokenizer(folder))
    if template is None:
        return load_renderer(tokenizer_dir(folder))
    tokenizer = Tokenizer.from_pretrained(tokenizer_dir(folder))
    tokenizer.chat_template = (tokenizer_dir(folder) / template).read_text(encoding="utf-8")
    return load_renderer(tokenizer)


def renderer_for(spec: FamilySpec) -> Renderer:
    return _renderer(spec.folder, spec.template)


def hf_for(spec: FamilySpec):
    """The family's `transformers` tokenizer, its template's date pinned when the spec says so."""
    hf = hf_tokenizer(spec.folder, spec.template)
    if spec.pinned_date is not None:
        pin_template_date(hf, spec.pinned_date)
    return hf


def _applies(spec: FamilySpec, case) -> bool:
    return spec.tools_in_template or not case.tools


@pytest.mark.parametrize(("spec", "variant"), CASES, ids=CASE_IDS)
@pytest.mark.parametrize("case", CORPUS, ids=repr)
@pytest.mark.parametrize("generation_prompt", [False, True], ids=["no-gen", "gen"])
def test_parity_and_attribution_on_the_corpus(spec, variant, case, generation_prompt):
    renderer, hf = renderer_for(spec), hf_for(spec)
    messages = spec.prepare(case.messages)
    rendered = check_parity(renderer, hf, messages, case.tools, generation_prompt, **spec.reference, **variant)
    if rendered is not None and "lookalike" not in case.features and _applies(spec, case):
        check_attribution(renderer, messages, rendered, body_text=spec.body_text, bodies_verbatim=spec.bodies_verbatim)


@pytest.mark.parametrize("spec", FAMILIES, ids=str)
def test_family_is_detected_from_the_chat_template(spec):
    assert renderer_for(spec).family == spec.family


@pytest.mark.parametrize("spec", FAMILIES, ids=str)
@pytest.mark.parametrize("case", [c for c in CORPUS if "lookalike" not in c.features], ids=repr)
def test_assistant_turns_round_trip_through_the_parser(spec, case):
    carries_reasoning = spec.conversation_options.get("reasoning", True)
    if not _applies(spec, case) or ("reasoning" in case.features and not carries_reasoning):
        pytest.skip("the template does not carry this content")
    if case.name == "reasoning-inline-think":
        pytest.skip("inline <think> text is split into reasoning by the template, so it parses differently by design")
    if "parallel" in case.features and not spec.parallel_tool_calls:
        pytest.skip("the template refuses parallel tool calls")
    renderer, messages = renderer_for(spec), spec.prepare(case.messages)
    try:
        renderer.render(messages, case.tools)
    except RenderError:
        pytest.skip("the template refuses this conversation (parity checks that Hugging Face does too)")
    check_round_trip(renderer, messages, case.tools, view=spec.round_trip_view)


@pytest.mark.parametrize(("spec", "variant"), CASES, ids=CASE_IDS)
@pytest.mark.parametrize("case", [c for c in CORPUS if split_points(c.messages)], ids=repr)
def test_bridge_keeps_the_prefix_and_matches_a_stable_re_render(spec, variant, case):
    if "parallel" in case.features and not spec.parallel_tool_calls:
        pytest.skip("the template refuses parallel tool calls")
    renderer = renderer_for(spec)
    messages = spec.prepare(case.messages)
    try:
        renderer.render(messages, case.tools, **variant)
    except RenderError:
        pytest.skip("the template refuses this conversation (parity checks that Hugging Face does too)")
    for k in split_points(messages):
        check_bridge(renderer, messages, k, case.tools, **variant)


@pytest.mark.parametrize("spec", FAMILIES, ids=str)
def test_bridge_refuses_assistant_messages(spec):
    renderer = renderer_for(spec)
    prompt = renderer.render_ids([{"role": "user", "content": "hi"}], add_generation_prompt=True)
    completion = renderer.tokenizer.encode("hello") + [renderer.stop_token_ids[0]]
    assert renderer.bridge(prompt, completion, [{"role": "assistant", "content": "x"}]) is None
    assert renderer.bridge(prompt, completion, [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]) is None
    assert renderer.bridge(prompt, completion, []) is None


@pytest.mark.parametrize("spec", FAMILIES, ids=str)
def test_bridge_after_a_cut_completion_synthesizes_the_close(spec):
    renderer = renderer_for(spec)
    messages = [{"role": "user", "content": "Count to ten."}]
    prompt = renderer.render(messages, add_generation_prompt=True)
    closed = renderer.render(messages + [{"role": "assistant", "content": "One, two, three"}, {"role": "user", "content": "Go on."}], add_generation_prompt=True)
    # The turn as the model samples it, without its close: cut by the token limit.
    if spec.answer_prefix:
        cut = renderer.tokenizer.encode_markup(spec.answer_prefix) + renderer.tokenizer.encode("One, two, three")
    else:
        cut = [t for t, m, s in zip(closed.token_ids, closed.message_indices, closed.sampled_mask) if m == 1 and s]
        while cut and cut[-1] in renderer.stop_token_ids:
            cut.pop()
    bridged = renderer.bridge(prompt.token_ids, cut, [{"role": "user", "content": "Go on."}], prev_attribution=prompt)
    assert bridged is not None
    n = len(prompt.token_ids) + len(cut)
    assert bridged.token_ids[:n] == prompt.token_ids + cut
    # What follows the cut is the template's turn close (not sampled) and then the new turn.
    assert closed.token_ids[len(closed.token_ids) - len(bridged.token_ids) + n :] == bridged.token_ids[n:]
    assert (bridged.token_ids == closed.token_ids) == spec.plain_turn_prefix_stable
    synthesized = [i for i in range(n, len(bridged.token_ids)) if bridged.message_indices[i] == 1]
    assert synthesized and not any(bridged.sampled_mask[i] for i in synthesized)
    closes_with_stop = getattr(renderer, "assistant_turn_ends_with_stop", True)
    assert [bridged.token_ids[i] for i in synthesized][-1] in renderer.stop_token_ids or not closes_with_stop


@pytest.mark.parametrize(("spec", "variant"), CASES, ids=CASE_IDS)
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])
@given(draw=st.data())
def test_generated_conversations(spec, variant, draw):
    options = spec.conversation_options
    data = draw.draw(conversations(**{k: v for k, v in options.items() if k in _STRATEGY_OPTIONS}))
    if not options.get("tools", True) and any(m.get("tool_calls") for m in data):
        return
    if not options.get("reasoning", True) and any(m.get("reasoning_content") for m in data):
        return
    renderer, hf = renderer_for(spec), hf_for(spec)
    tools = TOOLS if spec.tools_in_template else None
    data = spec.prepare(data)
    for generation_prompt in (False, True):
        rendered = check_parity(renderer, hf, data, tools, generation_prompt, **spec.reference, **variant)
        if rendered is None:
            return  # both refused it (e.g. roles that do not alternate): nothing to bridge
        check_attribution(renderer, data, rendered, body_text=spec.body_text, bodies_verbatim=spec.bodies_verbatim)
    for k in split_points(data):
        check_bridge(renderer, data, k, tools, **variant)


@pytest.mark.parametrize("spec", FAMILIES, ids=str)
def test_bad_messages_are_named_by_index(spec):
    renderer = renderer_for(spec)
    with pytest.raises(RenderError, match=r"^message 1: unknown role 'robot'; the .* template renders "):
        renderer.render([{"role": "user", "content": "hi"}, {"role": "robot", "content": "beep"}])
    with pytest.raises(TypeError, match=r"^message 1 is a int, expected a mapping or Message$"):
        renderer.render([{"role": "user", "content": "hi"}, 7])
    with pytest.raises(ValueError, match=r"^message 0: missing 'role'$"):
        renderer.render([{"content": "hi"}])


def test_qwen2_5_needs_json_arguments_and_qwen3_writes_them_verbatim():
    bad = [
        {"role": "user", "content": "add"},
        {"role": "assistant", "content": "", "tool_calls": [{"id": "c1", "name": "add", "arguments": '{"a": 1,'}]},
    ]
    with pytest.raises(RenderError) as excinfo:
        renderer_for(FAMILIES[1]).render(bad, TOOLS)
    assert str(excinfo.value) == (
        "message 1: tool call 0 (add) arguments are not valid JSON (Expecting property name enclosed in "
        "double quotes at char 8); this template writes them as a JSON object"
    )
    qwen3 = renderer_for(FAMILIES[0])
    text = qwen3.tokenizer.decode(qwen3.render_ids(bad, TOOLS))
    assert text.endswith('<tool_call>\n{"name": "add", "arguments": {"a": 1,}\n</tool_call><|im_end|>\n')
