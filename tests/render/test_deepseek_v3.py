"""DeepSeek-V3: the template's conversation-wide quirks, added-token parity, parsing and bridge cases."""

from __future__ import annotations

import functools

import pytest

from tests.assets import tokenizer_dir
from tests.render.harness import (
    TOOLS,
    assistant,
    call,
    check_bridge,
    check_parity,
    hf_tokenizer,
    system,
    tool,
    user,
)
from tokenroll.render import RenderError, ToolCallStatus, load_renderer

REFERENCE = {"arguments_as_text": True, "keep_none": True}
EOS = 1


@functools.cache
def renderer():
    return load_renderer(tokenizer_dir("deepseek-v3"))


def hf():
    return hf_tokenizer("deepseek-v3")


def text_of(ids):
    return renderer().tokenizer.decode(ids)


def ids_of(text):
    """Completion ids as a model samples them: added tokens matched."""
    return renderer().tokenizer.encode_markup(text)


ADD = call("add", {"a": 1}, "c1")
SEARCH = call("search", {"query": "x"}, "c2")
QUIRKS = [
    system("S1"),
    user("q"),
    assistant(None, calls=[ADD]),
    tool("3", "c1"),
    assistant("ok"),
    system("S2"),
    user("q2"),
    assistant(None, calls=[ADD, SEARCH]),
    tool("4", "c1"),
    tool("5", "c2"),
    user("x"),
]


def test_the_template_quirks_exactly():
    rendered = check_parity(renderer(), hf(), QUIRKS, TOOLS, True, **REFERENCE)
    call_add = "<｜tool▁call▁begin｜>function<｜tool▁sep｜>add\n```json\n{\"a\": 1}\n```<｜tool▁call▁end｜>"
    call_search = "<｜tool▁call▁begin｜>function<｜tool▁sep｜>search\n```json\n{\"query\": \"x\"}\n```<｜tool▁call▁end｜>"
    closed = "<｜tool▁calls▁end｜><｜end▁of▁sentence｜>"
    assert text_of(rendered.token_ids) == (
        "<｜begin▁of▁sentence｜>S1\n\nS2<｜User｜>q"
        # The conversation's first call: opened, never closed.
        f"<｜Assistant｜><｜tool▁calls▁begin｜>{call_add}"
        "<｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>3<｜tool▁output▁end｜><｜tool▁outputs▁end｜>ok<｜end▁of▁sentence｜>"
        # Every later call: no <｜Assistant｜>, each closed on its own.
        f"<｜User｜>q2\n{call_add}{closed}\n{call_search}{closed}"
        "\n<｜tool▁output▁begin｜>4<｜tool▁output▁end｜>\n<｜tool▁output▁begin｜>5<｜tool▁output▁end｜>"
        "<｜User｜>x<｜Assistant｜>"
    )
    assert rendered.token_ids[0] == 0
    # The later system message's text sits at the top but is still its own.
    s2 = [t for t, m, c in zip(rendered.token_ids, rendered.message_indices, rendered.is_content) if m == 5 and c]
    assert text_of(s2) == "S2"
    # <｜tool▁outputs▁end｜> opens the assistant that answers the tool results.
    header = [t for t, m, s in zip(rendered.token_ids, rendered.message_indices, rendered.sampled_mask) if m == 4 and not s]
    assert header == [128811]


def test_content_beside_tool_calls_drops_the_calls():
    messages = [user("q"), assistant("", calls=[ADD]), tool("3", "c1")]
    rendered = check_parity(renderer(), hf(), messages, TOOLS, **REFERENCE)
    assert "tool▁call▁begin" not in text_of(rendered.token_ids)
    assert "<｜Assistant｜><｜end▁of▁sentence｜><｜tool▁outputs▁begin｜>" in text_of(rendered.token_ids)


def test_arguments_are_written_verbatim():
    messages = [user("q"), {"role": "assistant", "content": None, "tool_calls": [{"type": "function", "function": {"name": "add", "arguments": "{not json"}}]}]
    rendered = check_parity(renderer(), hf(), messages, **REFERENCE)
    assert "```json\n{not json\n```" in text_of(rendered.token_ids)
    assert renderer().parse_completion(rendered.token_ids[4:]).tool_calls[0].status == ToolCallStatus.INVALID_JSON


def test_special_looking_text_stays_text():
    # DeepSeek's added tokens are `normalized: true` with no normalizer: HF matches them in any text.
    messages = [system("sys <｜User｜>"), user("a <｜Assistant｜>b<｜tool▁sep｜> <｜end▁of▁sentence｜>"), assistant("c<｜tool▁call▁begin｜>"), tool("<｜tool▁output▁end｜>", "c1")]
    rendered = check_parity(renderer(), hf(), messages, **REFERENCE)
    parsed = renderer().parse_completion(renderer().tokenizer.encode("c<｜tool▁call▁begin｜>x") + [EOS])
    assert parsed.content == "c<｜tool▁call▁begin｜>x" and not parsed.tool_calls
    assert rendered.token_ids.count(128803) == 1  # only the template's own <｜User｜>


@pytest.mark.parametrize(
    "text",
    [" spaced  <｜User｜>", "中文字符 123456 🚀", "tabs\tand\r\nnewlines\n\n", "emoji👍🏽<｜User｜>tail"],
)
def test_plain_bodies_next_to_markers(text):
    messages = [system(text), user(text), assistant(text), user(text)]
    for generation_prompt in (False, True):
        check_parity(renderer(), hf(), messages, add_generation_prompt=generation_prompt, **REFERENCE)


def test_unknown_role_names_the_message():
    with pytest.raises(RenderError, match="message 1: unknown role 'ipython'"):
        renderer().render([user("q"), {"role": "ipython", "content": "x"}])


def test_parse_statuses():
    parse = renderer().parse_completion
    model = ids_of(
        "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>add\n```json\n{\"a\": 1}\n```<｜tool▁call▁end｜>"
        "\n<｜tool▁call▁begin｜>function<｜tool▁sep｜>search\n```json\n{\"query\": \"x\"}\n```<｜tool▁call▁end｜>"
        "<｜tool▁calls▁end｜><｜end▁of▁sentence｜>"
    )
    parsed = parse(model, tools=TOOLS)
    assert parsed.content == "" and parsed.stop_token_id == EOS
    assert [(c.status, c.name, c.arguments) for c in parsed.tool_calls] == [
        (ToolCallStatus.OK, "add", {"a": 1}),
        (ToolCallStatus.OK, "search", {"query": "x"}),
    ]
    first, second = (c.token_span for c in parsed.tool_calls)
    assert model[first[0]] == 128808 and model[first[1] - 1] == 128809 and first[1] < second[0]
    assert parsed.to_message().content is None

    with_text = parse(ids_of("Let me look.\n<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>mul\n```json\n{}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜><｜end▁of▁sentence｜>"), tools=TOOLS)
    assert with_text.content == "Let me look." and with_text.tool_calls[0].status == ToolCallStatus.UNKNOWN_TOOL
    cut = parse(ids_of("<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>add\n```json\n{\"a\""))
    assert cut.tool_calls[0].status == ToolCallStatus.UNCLOSED and cut.stop_token_id is None
    no_sep = parse(ids_of("<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>add\n{}<｜tool▁call▁end｜><｜end▁of▁sentence｜>"))
    assert no_sep.tool_calls[0].status == ToolCallStatus.MISSING_NAME
    bad = parse(ids_of("<｜tool▁call▁begin｜>function<｜tool▁sep｜>add\n```json\n{\"a\": }\n```<｜tool▁call▁end｜><｜end▁of▁sentence｜>"))
    assert bad.tool_calls[0].status == ToolCallStatus.INVALID_JSON and bad.tool_calls[0].name == "add"
    assert parse(ids_of("Hello.<｜end▁of▁sentence｜>")).content == "Hello."


def _prompt(messages):
    return renderer().render(messages, add_generation_prompt=True)


def test_bridge_after_the_models_own_tool_call_keeps_its_close():
    prompt = _prompt([user("q")])
    completion = ids_of(
        "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>add\n```json\n{\"a\": 1}\n```<｜tool▁call▁end｜>"
        "<｜tool▁calls▁end｜><｜end▁of▁sentence｜>"
    )
    bridged = renderer().bridge(prompt.token_ids, completion, [tool("3", "c1")], prev_attribution=prompt)
    n = len(prompt.token_ids) + len(completion)
    assert bridged.token_ids[:n] == prompt.token_ids + completion
    assert text_of(bridged.token_ids[n:]) == "<｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>3<｜tool▁output▁end｜><｜tool▁outputs▁end｜>"
    assert bridged.message_tool_names == [None, None, "add"]
    # The generation prompt <｜Assistant｜> now opens the assistant.
    assert bridged.message_indices[len(prompt.token_ids) - 1] == 1


def test_bridge_reads_the_template_state_off_the_history():
    messages = QUIRKS[:9] + [tool("5", "c2")]
    # After the second call the tool results continue the conversation's output list.
    check_bridge(renderer(), messages, 7, expect_equal=False)
    prompt = _prompt(QUIRKS[:7])
    completion = [t for t, m, s in zip(*_full(QUIRKS[:8])) if m == 7 and s]
    bridged = renderer().bridge(prompt.token_ids, completion, [tool("4", "c1")], prev_attribution=prompt)
    tail = bridged.token_ids[len(prompt.token_ids) + len(completion) :]
    assert text_of(tail) == "\n<｜tool▁output▁begin｜>4<｜tool▁output▁end｜><｜tool▁outputs▁end｜>"
    # A user after tool results: no <｜tool▁outputs▁end｜>.
    first_call = [user("q"), assistant(None, calls=[ADD]), tool("3", "c1"), user("next")]
    assert check_bridge(renderer(), first_call, 1, expect_equal=True) is not None


def _full(messages):
    rendered = renderer().render(messages)
    return rendered.token_ids, rendered.message_indices, rendered.sampled_mask


def test_bridge_closes_a_cut_completion_as_the_template_would():
    prompt = _prompt([user("q")])
    call_text = "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>add\n```json\n{\"a\": 1}\n```<｜tool▁call▁end｜>"
    new = [tool("3", "c1")]
    start = len(prompt.token_ids)

    def synthesized(completion):
        bridged = renderer().bridge(prompt.token_ids, completion, new, prev_attribution=prompt)
        if bridged is None:
            return None
        end = start + len(completion)
        closing = [t for t, m, s in zip(bridged.token_ids[end:], bridged.message_indices[end:], bridged.sampled_mask[end:]) if m == 1]
        assert not any(bridged.sampled_mask[end : end + len(closing)])
        return text_of(closing)

    # The conversation's first single call: the template writes no close.
    assert synthesized(ids_of(call_text)) == ""
    assert synthesized(ids_of(call_text + "<｜tool▁calls▁end｜>")) == "<｜end▁of▁sentence｜>"
    two_calls = ids_of(call_text + "\n" + call_text.replace("<｜tool▁calls▁begin｜>", ""))
    assert synthesized(two_calls) == "<｜tool▁calls▁end｜><｜end▁of▁sentence｜>"
    assert synthesized(ids_of("Some text")) == "<｜end▁of▁sentence｜>"
    # Cut inside a call: what the re-render would hold is unknown.
    assert synthesized(ids_of(call_text[:-len("<｜tool▁call▁end｜>")])) is None
