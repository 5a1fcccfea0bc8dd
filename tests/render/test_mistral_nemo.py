"""Mistral-Nemo specifics: exact tokens, system and tools placement, call ids, parsing, bridge cases."""

from __future__ import annotations

import pytest

from tests.render.harness import renderer_at, TOOLS, assistant, call, check_parity, hf_tokenizer, system, tool, user
from tokenroll.core.attribution import SCAFFOLD
from tokenroll.render import RenderError, ToolCallStatus, detect_family

ID1, ID2 = "a1B2c3D4e", "Z9y8X7w6v"


@pytest.fixture(scope="module")
def renderer():
    return renderer_at("mistral-nemo")


@pytest.fixture(scope="module")
def hf():
    return hf_tokenizer("mistral-nemo")


def _text(renderer, ids: list[int]) -> str:
    return renderer.tokenizer.decode(ids)


def test_exact_tokens_and_attribution(renderer):
    rendered = renderer.render([system("Be brief."), user("Hi"), assistant("Hello!"), user("Bye")])
    assert rendered.token_ids == [1, 3, 37133, 4, 22177, 1033, 2, 3, 5934, 13426, 1338, 3606, 1101, 4]
    # <s> | [INST] Hi [/INST] | Hello ! </s> | [INST] (system: Be brief .\n\n) Bye [/INST]
    assert rendered.message_indices == [SCAFFOLD, 1, 1, 1, 2, 2, 2, 3, 0, 0, 0, 3, 3, 3]
    assert rendered.sampled_mask == [False] * 4 + [True] * 3 + [False] * 7
    assert rendered.is_content == [False, False, True, False, True, True, True, False, True, True, True, True, True, False]
    assert renderer.stop_token_ids == [2]
    # No generation prompt: the model answers right after [/INST].
    assert renderer.render_ids([user("Hi")], add_generation_prompt=True) == renderer.render_ids([user("Hi")])


def test_system_prompt_goes_into_the_last_message_only_when_it_is_a_user(renderer, hf):
    last_user = [system("SYS"), user("one"), assistant("two"), user("three")]
    assert _text(renderer, renderer.render_ids(last_user)) == "<s>[INST]one[/INST]two</s>[INST]SYS\n\nthree[/INST]"
    ends_on_assistant = [system("SYS"), user("one"), assistant("two")]
    rendered = renderer.render(ends_on_assistant)
    assert _text(renderer, rendered.token_ids) == "<s>[INST]one[/INST]two</s>"
    assert 0 not in rendered.message_indices
    for messages in (last_user, ends_on_assistant, [system(None), user("x")]):
        check_parity(renderer, hf, messages)


def test_tools_block_sits_before_the_last_user_message(renderer, hf):
    messages = [user("first"), assistant("ok"), user("second")]
    text = _text(renderer, renderer.render_ids(messages, TOOLS))
    assert text.startswith("<s>[INST]first[/INST]ok</s>[AVAILABLE_TOOLS][{\"type\": \"function\", \"function\": {\"name\": \"add\"")
    assert text.endswith("[/AVAILABLE_TOOLS][INST]second[/INST]")
    check_parity(renderer, hf, messages, TOOLS)
    # The template compares whole messages: an earlier user message equal to the last one gets the block too.
    repeated = [user("same"), assistant("ok"), user("same")]
    assert _text(renderer, renderer.render_ids(repeated, TOOLS)).count("[AVAILABLE_TOOLS]") == 2
    check_parity(renderer, hf, repeated, TOOLS)


def test_tool_strings_are_written_raw_and_return_is_dropped(renderer, hf):
    odd = [{"type": "function", "function": {"name": "q", "description": 'say "hi" [INST]', "parameters": {"type": "object"}, "return": {"type": "string"}}}]
    messages = [user("x")]
    assert '"description": "say "hi" [INST]", "parameters": {"type": "object"}}}]' in _text(renderer, renderer.render_ids(messages, odd))
    check_parity(renderer, hf, messages, odd)
    with pytest.raises(RenderError, match="tool 0"):
        renderer.render(messages, [{"name": "flat"}])


def test_tool_calls_and_results(renderer, hf):
    messages = [
        user("Add."),
        assistant("dropped by the template", calls=[call("add", {"a": 1, "b": 2}, ID1), call("search", {"query": "ü"}, ID2)]),
        tool("3", ID1),
        tool("Cats are small.", ID2),
    ]
    rendered = check_parity(renderer, hf, messages, TOOLS)
    assert _text(renderer, rendered.token_ids) == (
        '<s>[AVAILABLE_TOOLS]' + _text(renderer, renderer.render_ids([user("Add.")], TOOLS))[len("<s>[AVAILABLE_TOOLS]"):-len("[INST]Add.[/INST]")]
        + '[INST]Add.[/INST][TOOL_CALLS][{"name": "add", "arguments": {"a": 1, "b": 2}, "id": "a1B2c3D4e"}, '
        '{"name": "search", "arguments": {"query": "ü"}, "id": "Z9y8X7w6v"}]</s>'
        '[TOOL_RESULTS]{"content": 3, "call_id": "a1B2c3D4e"}[/TOOL_RESULTS]'
        '[TOOL_RESULTS]{"content": Cats are small., "call_id": "Z9y8X7w6v"}[/TOOL_RESULTS]'
    )
    bodies = rendered.content_mask_for_roles({"tool"})
    first = [t for t, m, b in zip(rendered.token_ids, rendered.message_indices, bodies) if b and m == 2]
    second = [t for t, m, b in zip(rendered.token_ids, rendered.message_indices, bodies) if b and m == 3]
    assert _text(renderer, first) == "3"
    # " Cats" is one token with the template's space; "., " shares the template's comma.
    assert _text(renderer, second).startswith(" Cats are small.")
    sampled = [t for t, s in zip(rendered.token_ids, rendered.sampled_mask) if s]
    assert sampled[0] == renderer.tokenizer.token_id("[TOOL_CALLS]") and sampled[-1] == 2


def test_none_and_empty_edges_match_hugging_face(renderer, hf):
    check_parity(renderer, hf, [user(None), assistant(None), user("x")])
    check_parity(renderer, hf, [user("x"), assistant(None, calls=[call("add", {"a": 1}, ID1)]), tool(None, ID1)])
    # An empty call list opens [TOOL_CALLS][ and never closes the turn, exactly as the template does.
    empty_calls = [user("x"), {"role": "assistant", "content": None, "tool_calls": []}]
    assert _text(renderer, check_parity(renderer, hf, empty_calls).token_ids) == "<s>[INST]x[/INST][TOOL_CALLS]["


@pytest.mark.parametrize(
    ("messages", "match"),
    [
        ([user("x"), assistant(None, calls=[call("add", {"a": 1}, "call_1")])], r"message 1: tool call 0 \(add\) id is 'call_1'"),
        ([user("x"), assistant(None, calls=[call("add", {"a": 1}, ID1)]), tool("3", "call_1")], "message 2: tool_call_id"),
        ([user("a"), user("b")], "message 1: .*alternate"),
        ([assistant("a")], "message 0: .*alternate"),
        ([system("s"), user("a"), assistant("b"), user("c"), assistant("d"), assistant("e")], "message 5: .*alternate"),
        ([user("a"), system("late")], "message 1: .*only as the first message"),
    ],
)
def test_refusals_name_the_message_like_the_template(renderer, hf, messages, match):
    with pytest.raises(RenderError, match=match):
        renderer.render(messages)
    assert check_parity(renderer, hf, messages) is None  # Hugging Face refuses it too


def test_bad_input_errors(renderer):
    with pytest.raises(RenderError, match="message 1: tool call 0 .*not valid JSON"):
        renderer.render([user("x"), {"role": "assistant", "tool_calls": [{"id": ID1, "function": {"name": "add", "arguments": "{oops"}}]}])
    with pytest.raises(RenderError, match="message 1: unknown role 'robot'"):
        renderer.render([user("x"), {"role": "robot", "content": "beep"}])
    with pytest.raises(TypeError, match="message 1"):
        renderer.render([user("x"), "not a mapping"])


def test_string_arguments_are_written_as_an_object(renderer):
    # Our tool calls carry JSON text; the template would quote a string, the model writes an object.
    as_text = {"role": "assistant", "tool_calls": [{"id": ID1, "function": {"name": "add", "arguments": '{"a": 1}'}}]}
    assert '"arguments": {"a": 1}' in _text(renderer, renderer.render_ids([user("x"), as_text]))


# --- parsing --------------------------------------------------------------------------------


def _completion(renderer, text: str, *, stop: bool = True) -> list[int]:
    ids = renderer.tokenizer.encode_markup(text)
    return ids + [2] if stop else ids


def test_parse_content_and_lookalike_text(renderer):
    parsed = renderer.parse_completion(_completion(renderer, "Hello there."))
    assert (parsed.content, parsed.tool_calls, parsed.stop_token_id) == ("Hello there.", [], 2)
    # "[TOOL_CALLS]" typed as text is text.
    typed = renderer.tokenizer.encode('[TOOL_CALLS][{"name": "add", "arguments": {}}]') + [2]
    parsed = renderer.parse_completion(typed)
    assert parsed.tool_calls == [] and parsed.content.startswith("[TOOL_CALLS]")


def test_parse_parallel_calls_with_spans(renderer):
    ids = _completion(renderer, '[TOOL_CALLS][{"name": "add", "arguments": {"a": 1, "b": 2.5}, "id": "a1B2c3D4e"}, {"name": "search", "arguments": {"query": "x"}, "id": "Z9y8X7w6v"}]')
    parsed = renderer.parse_completion(ids, tools=TOOLS)
    assert [(c.status, c.name, c.arguments, c.id) for c in parsed.tool_calls] == [
        (ToolCallStatus.OK, "add", {"a": 1, "b": 2.5}, ID1),
        (ToolCallStatus.OK, "search", {"query": "x"}, ID2),
    ]
    first, second = (c.token_span for c in parsed.tool_calls)
    assert first[0] == 0 and second[1] == len(ids) - 1
    assert '"add"' in _text(renderer, ids[first[0] : first[1]]) and '"add"' not in _text(renderer, ids[second[0] : second[1]])
    assert '"search"' in _text(renderer, ids[second[0] : second[1]])
    message = parsed.to_message()
    assert [(c.name, c.parsed_arguments(), c.id) for c in message.tool_calls] == [("add", {"a": 1, "b": 2.5}, ID1), ("search", {"query": "x"}, ID2)]


@pytest.mark.parametrize(
    ("text", "stop", "statuses"),
    [
        ('[TOOL_CALLS][{"name": "add", "arguments": {"a": 1', False, [ToolCallStatus.UNCLOSED]),
        ('[TOOL_CALLS][{"name": "add", "arguments": {"a": 1}}, {"name": "sea', False, [ToolCallStatus.OK, ToolCallStatus.UNCLOSED]),
        ("[TOOL_CALLS]", False, [ToolCallStatus.UNCLOSED]),
        ('[TOOL_CALLS][{"name": "add", "arguments": {"a": 1]', True, [ToolCallStatus.INVALID_JSON]),
        ('[TOOL_CALLS]{"name": "add"}', True, [ToolCallStatus.INVALID_JSON]),
        ('[TOOL_CALLS][{"name": "nope", "arguments": {}}]', True, [ToolCallStatus.UNKNOWN_TOOL]),
        ('[TOOL_CALLS][{"arguments": {}}, 3]', True, [ToolCallStatus.MISSING_NAME, ToolCallStatus.INVALID_JSON]),
    ],
)
def test_parse_statuses(renderer, text, stop, statuses):
    parsed = renderer.parse_completion(_completion(renderer, text, stop=stop), tools=TOOLS)
    assert [c.status for c in parsed.tool_calls] == statuses


def test_parse_keeps_text_around_calls(renderer):
    parsed = renderer.parse_completion(_completion(renderer, 'Let me check.[TOOL_CALLS][{"name": "add", "arguments": {}}] done'))
    assert parsed.content == "Let me check.\ndone"
    assert [c.name for c in parsed.tool_calls] == ["add"]


# --- bridge -----------------------------------------------------------------------------------


def _turn(renderer, history, reply, tools=None):
    prompt = renderer.render(history, tools)
    full = renderer.render(history + [reply], tools)
    completion = [t for t, m, s in zip(full.token_ids, full.message_indices, full.sampled_mask) if m == len(history) and s]
    return prompt, completion


def test_bridge_tool_results_equal_a_re_render_without_system(renderer):
    history = [user("Add 1 and 2.")]
    reply = assistant(None, calls=[call("add", {"a": 1, "b": 2}, ID1)])
    prompt, completion = _turn(renderer, history, reply, TOOLS)
    bridged = renderer.bridge(prompt.token_ids, completion, [tool("3", ID1)], TOOLS, prev_attribution=prompt)
    full = renderer.render(history + [reply, tool("3", ID1)], TOOLS)
    assert bridged.token_ids == full.token_ids
    assert bridged.message_indices == full.message_indices
    assert bridged.message_tool_names == [None, None, "add"]


def test_bridge_tool_results_keep_the_system_prompt_the_re_render_drops(renderer):
    history = [system("SYS"), user("Add 1 and 2.")]
    reply = assistant(None, calls=[call("add", {"a": 1, "b": 2}, ID1)])
    prompt, completion = _turn(renderer, history, reply)
    bridged = renderer.bridge(prompt.token_ids, completion, [tool("3", ID1)], prev_attribution=prompt)
    assert _text(renderer, bridged.token_ids).startswith("<s>[INST]SYS\n\nAdd 1 and 2.[/INST][TOOL_CALLS]")
    full = renderer.render(history + [reply, tool("3", ID1)])
    assert _text(renderer, full.token_ids).startswith("<s>[INST]Add 1 and 2.[/INST]")
    assert bridged.token_ids[len(prompt) + len(completion) :] == full.token_ids[-(len(bridged) - len(prompt) - len(completion)) :]


def test_bridge_user_message(renderer):
    history = [user("Hi")]
    prompt, completion = _turn(renderer, history, assistant("Hello."))
    bridged = renderer.bridge(prompt.token_ids, completion, [user("Bye")], prev_attribution=prompt)
    assert bridged.token_ids == renderer.render_ids(history + [assistant("Hello."), user("Bye")])
    # Without the previous attribution a system prompt cannot be ruled out.
    assert renderer.bridge(prompt.token_ids, completion, [user("Bye")]) is None
    # Tool results alone never need it.
    assert renderer.bridge(prompt.token_ids, completion, [tool("r", ID1)]) is not None


def test_bridge_user_message_with_system_prompt_is_none(renderer):
    history = [system("SYS"), user("Hi")]
    prompt, completion = _turn(renderer, history, assistant("Hello."))
    assert renderer.bridge(prompt.token_ids, completion, [user("Bye")], prev_attribution=prompt) is None
    assert renderer.bridge(prompt.token_ids, completion, [tool("r", ID1), user("Bye")], prev_attribution=prompt) is None


def test_bridge_user_message_with_tools_repeats_the_block(renderer):
    history = [user("Hi")]
    prompt, completion = _turn(renderer, history, assistant("Hello."), TOOLS)
    bridged = renderer.bridge(prompt.token_ids, completion, [user("Bye")], TOOLS, prev_attribution=prompt)
    text = _text(renderer, bridged.token_ids)
    assert text.count("[AVAILABLE_TOOLS]") == 2 and text.endswith("[/AVAILABLE_TOOLS][INST]Bye[/INST]")
    # The re-render moves the block instead; the bridge's new turn is written as the re-render writes it.
    full = renderer.render(history + [assistant("Hello."), user("Bye")], TOOLS)
    assert _text(renderer, full.token_ids).count("[AVAILABLE_TOOLS]") == 1
    n = len(prompt) + len(completion)
    assert bridged.token_ids[n:] == full.token_ids[-(len(bridged) - n) :]


def test_bridge_refuses_bad_call_ids_like_a_render(renderer):
    history = [user("Hi")]
    prompt, completion = _turn(renderer, history, assistant("Hello."))
    with pytest.raises(RenderError, match="tool_call_id"):
        renderer.bridge(prompt.token_ids, completion, [tool("r", "short")], prev_attribution=prompt)


def test_fingerprint_skips_the_ministral_template_that_trims_bodies(renderer):
    template = renderer.tokenizer.chat_template
    assert detect_family(template) == "mistral-nemo"
    ministral = template.replace('{{- message["content"] + eos_token}}', '{{- " " + message["content"]|trim + eos_token}}')
    assert ministral != template and detect_family(ministral) is None
