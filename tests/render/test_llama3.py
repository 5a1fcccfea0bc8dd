"""Llama 3.1/3.2/3.3: exact strings, the date, tool calls (custom and built-in), parsing, bridge cases."""

from __future__ import annotations

import functools
from datetime import datetime

import pytest

from tests.assets import tokenizer_dir
from tests.render.harness import (
    ADD_TOOL,
    SEARCH_TOOL,
    TOOLS,
    assistant,
    call,
    check_bridge,
    check_parity,
    hf_tokenizer,
    tool,
    user,
)
from tokenroll.render import RenderError, Tokenizer, ToolCallStatus, detect_family, load_renderer

ALT_31 = "alt_chat_template.Llama-3.1-8B-Instruct.jinja"
DATE = {"date_string": "26 Jul 2024"}
BUILTIN = ["brave_search", "wolfram_alpha"]


@functools.cache
def llama32():
    return load_renderer(tokenizer_dir("llama-3.2"))


@functools.cache
def llama31():
    tokenizer = Tokenizer.from_pretrained(tokenizer_dir("llama-3.2"))
    tokenizer.chat_template = (tokenizer_dir("llama-3.2") / ALT_31).read_text(encoding="utf-8")
    return load_renderer(tokenizer)


def text_of(renderer, ids):
    return renderer.tokenizer.decode(ids)


def ids_of(renderer, text):
    """Completion ids as a model samples them: template markup, added tokens matched."""
    return renderer.tokenizer.encode_markup(text)


def test_both_templates_are_one_family():
    assert detect_family(llama32().tokenizer.chat_template) == "llama3"
    assert detect_family(llama31().tokenizer.chat_template) == "llama3"
    assert llama32().stop_token_ids == [128009, 128008, 128001]


def test_exact_string_and_ids():
    renderer = llama32()
    rendered = renderer.render([{"role": "system", "content": "  Be brief.  "}, user(" Hi ")], add_generation_prompt=True, **DATE)
    assert text_of(renderer, rendered.token_ids) == (
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
        "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\nBe brief.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )
    assert rendered.token_ids[:5] == [128000, 128006, 9125, 128007, 271]
    assert rendered.token_ids[-4:] == [128006, 78191, 128007, 271]
    # The dated preamble is template text, not the system message's content.
    system_body = [t for t, m, c in zip(rendered.token_ids, rendered.message_indices, rendered.is_content) if m == 0 and c]
    assert text_of(renderer, system_body) == "Be brief."


def test_default_date_is_todays_on_3_2_and_fixed_on_3_1():
    messages = [user("Hi")]
    today = datetime.now().strftime("%d %b %Y")
    assert f"Today Date: {today}\n" in text_of(llama32(), llama32().render_ids(messages))
    assert "Today Date: 26 Jul 2024\n" in text_of(llama31(), llama31().render_ids(messages))
    # A renderer-wide default pins it for every render.
    pinned = load_renderer(tokenizer_dir("llama-3.2"), date_string="1 Jan 2030")
    assert "Today Date: 1 Jan 2030\n" in text_of(pinned, pinned.render_ids(messages))


def test_tool_results_are_json_quoted_and_attributed():
    renderer = llama32()
    messages = [user("q"), assistant(None, calls=[call("add", {"a": 1, "b": 2}, "c1")]), tool('say "hi"\nok', "c1")]
    rendered = check_parity(renderer, hf_tokenizer("llama-3.2"), messages, TOOLS, **DATE)
    text = text_of(renderer, rendered.token_ids)
    assert '<|start_header_id|>ipython<|end_header_id|>\n\n"say \\"hi\\"\\nok"<|eot_id|>' in text
    assert '{"name": "add", "parameters": {"a": 1, "b": 2}}<|eot_id|>' in text
    body = [t for t, m in zip(rendered.token_ids, rendered.content_mask_for_roles({"tool"})) if m]
    assert text_of(renderer, body) == '"say \\"hi\\"\\nok"'


@pytest.mark.parametrize("renderer", [llama32, llama31], ids=["3.2", "3.1"])
def test_template_kwargs_match_hugging_face(renderer):
    renderer = renderer()
    hf = hf_tokenizer("llama-3.2", None if renderer is llama32() else ALT_31)
    messages = [{"role": "system", "content": "sys"}, user("What is 1+2?"), assistant("", calls=[call("add", {"a": 1, "b": 2}, "c1")]), tool("3", "c1")]
    for kwargs in (
        {**DATE, "tools_in_user_message": False},
        {**DATE, "custom_tools": [SEARCH_TOOL]},
        {**DATE, "builtin_tools": BUILTIN},
        {**DATE, "builtin_tools": ["search", "code_interpreter"]},
    ):
        for generation_prompt in (False, True):
            check_parity(renderer, hf, messages, [ADD_TOOL], generation_prompt, **kwargs)
    # With `add` built in, the template needs string arguments: Hugging Face fails with a TypeError.
    if renderer is llama31():
        with pytest.raises(RenderError, match="message 2"):
            renderer.render(messages, [ADD_TOOL], builtin_tools=["add"])


def test_builtin_tool_calls_on_3_1():
    renderer = llama31()
    messages = [user("Find cats"), assistant(None, calls=[call("brave_search", {"query": "cats"}, "c1")]), tool("Cats.", "c1"), assistant("Done.")]
    rendered = check_parity(renderer, hf_tokenizer("llama-3.2", ALT_31), messages, TOOLS, builtin_tools=BUILTIN)
    text = text_of(renderer, rendered.token_ids)
    assert "Environment: ipython\nTools: brave_search, wolfram_alpha\n\n" in text
    assert '<|python_tag|>brave_search.call(query="cats")<|eom_id|>' in text
    sampled = [t for t, m, s in zip(rendered.token_ids, rendered.message_indices, rendered.sampled_mask) if m == 1 and s]
    parsed = renderer.parse_completion(sampled, tools=[{"function": {"name": "brave_search"}}])
    assert [(c.status, c.name, c.arguments) for c in parsed.tool_calls] == [(ToolCallStatus.OK, "brave_search", {"query": "cats"})]
    assert parsed.stop_token_id == 128008
    # The bridge after the <|eom_id|> completion equals the full re-render.
    check_bridge(renderer, messages, 1, TOOLS, expect_equal=True, builtin_tools=BUILTIN)
    with pytest.raises(RenderError, match="message 1: .*built-in"):
        renderer.render([user("x"), assistant(None, calls=[call("brave_search", {"query": 3}, "c1")])], builtin_tools=BUILTIN)


def test_refusals_name_the_message():
    renderer = llama32()
    two_calls = [call("add", {"a": 1, "b": 2}, "c1"), call("add", {"a": 3, "b": 4}, "c2")]
    with pytest.raises(RenderError, match="message 2: .*exactly one tool call"):
        renderer.render([{"role": "system", "content": "s"}, user("q"), assistant(None, calls=two_calls)], **DATE)
    bad = {"role": "assistant", "content": None, "tool_calls": [{"function": {"name": "add", "arguments": "{oops"}}]}
    with pytest.raises(RenderError, match="message 1: tool call 0 \\(add\\) arguments are not valid JSON"):
        renderer.render([user("q"), bad], **DATE)
    with pytest.raises(RenderError, match="message 1: unknown role 'critic'"):
        renderer.render([user("q"), {"role": "critic", "content": "x"}], **DATE)
    with pytest.raises(RenderError, match="message 1: tools go into the first user message"):
        renderer.render([{"role": "system", "content": "s"}], TOOLS, **DATE)


def test_parse_statuses():
    renderer = llama32()
    parse = renderer.parse_completion

    ok = parse(ids_of(renderer, '{"name": "add", "parameters": {"a": 1, "b": 2}}<|eot_id|>'), tools=TOOLS)
    assert ok.content == "" and [(c.status, c.name, c.arguments) for c in ok.tool_calls] == [(ToolCallStatus.OK, "add", {"a": 1, "b": 2})]
    assert ok.to_message().content is None

    tagged = ids_of(renderer, '<|python_tag|>{"name": "search", "arguments": {"query": "x"}}<|eom_id|>')
    parsed = parse(tagged, tools=TOOLS)
    assert [(c.status, c.name, c.token_span) for c in parsed.tool_calls] == [(ToolCallStatus.OK, "search", (0, len(tagged) - 1))]

    assert parse(ids_of(renderer, '{"name": "mul", "parameters": {}}<|eot_id|>'), tools=TOOLS).tool_calls[0].status == ToolCallStatus.UNKNOWN_TOOL
    assert parse(ids_of(renderer, '{"name": "add", "parameters": {"a": 1<|eot_id|>')).tool_calls[0].status == ToolCallStatus.INVALID_JSON
    assert parse(ids_of(renderer, '{"name": "add", "parameters": {"a": 1')).tool_calls[0].status == ToolCallStatus.UNCLOSED
    assert parse(ids_of(renderer, '<|python_tag|>print(1)<|eom_id|>')).tool_calls[0].status == ToolCallStatus.INVALID_JSON
    assert parse(ids_of(renderer, '<|python_tag|>{"parameters": {}}<|eom_id|>')).tool_calls[0].status == ToolCallStatus.MISSING_NAME

    # A plain JSON answer is content; so is the tag typed as text.
    answer = parse(ids_of(renderer, '{"name": "Bob", "age": 3}<|eot_id|>'))
    assert answer.content == '{"name": "Bob", "age": 3}' and not answer.tool_calls
    typed = parse(renderer.tokenizer.encode('<|python_tag|>{"name": "add", "parameters": {}}x') + [128009])
    assert typed.content.startswith("<|python_tag|>") and not typed.tool_calls

    two = ids_of(renderer, '{"name": "add", "parameters": {"a": 1}}; {"name": "search", "parameters": {"query": "q"}}<|eot_id|>')
    parsed = parse(two, tools=TOOLS)
    assert [(c.status, c.name) for c in parsed.tool_calls] == [(ToolCallStatus.OK, "add"), (ToolCallStatus.OK, "search")]
    first, second = (c.token_span for c in parsed.tool_calls)
    assert first[0] == 0 and first[1] <= second[0] and second[1] == len(two) - 1
    assert renderer.tokenizer.decode(two[second[0] : second[1]]).strip() == '{"name": "search", "parameters": {"query": "q"}}'


def test_bridge_cases():
    renderer = llama32()
    prompt = renderer.render([user("hi")], add_generation_prompt=True, **DATE)
    new = [user("more")]
    # <|end_of_text|> is not how the template closes a turn.
    assert renderer.bridge(prompt.token_ids, renderer.tokenizer.encode("hello") + [128001], new, **DATE) is None
    # <|eom_id|> is followed as <|eot_id|> is, and stays in the prompt verbatim.
    completion = ids_of(renderer, '<|python_tag|>{"name": "add", "parameters": {"a": 1}}<|eom_id|>')
    bridged = renderer.bridge(prompt.token_ids, completion, [tool("2", "c1")], prev_attribution=prompt, **DATE)
    n = len(prompt.token_ids) + len(completion)
    assert bridged.token_ids[:n] == prompt.token_ids + completion
    assert text_of(renderer, bridged.token_ids[n:]) == (
        '<|start_header_id|>ipython<|end_header_id|>\n\n"2"<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n'
    )
    assert bridged.message_roles == ["user", "assistant", "tool"] and bridged.message_tool_names[2] == "add"


def test_a_bare_python_tag_is_an_attempt():
    renderer = llama32()
    assert renderer.parse_completion([128010]).tool_calls[0].status == ToolCallStatus.UNCLOSED
    assert renderer.parse_completion([128010, 128008]).tool_calls[0].status == ToolCallStatus.INVALID_JSON
