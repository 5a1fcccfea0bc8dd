"""gpt-oss (harmony): exact strings and ids, tool schemas, the bridge's None cases, parse statuses."""

from __future__ import annotations

import datetime
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.assets import tokenizer_dir
from tests.render.harness import (
    _TEXT,
    ADD_TOOL,
    TOOLS,
    TemplateRefused,
    assistant,
    call,
    check_attribution,
    check_bridge,
    check_parity,
    check_round_trip,
    hf_tokenizer,
    pin_template_date,
    reference_ids,
    reference_text,
    split_points,
    system,
    tool,
    user,
)
from tests.render.test_families import gpt_oss_body, gpt_oss_kept
from tokenroll.core.attribution import SCAFFOLD
from tokenroll.core.messages import Message
from tokenroll.render import RenderError, Tokenizer, ToolCallStatus, load_renderer
from tokenroll.render.gpt_oss import GptOssRenderer

DATE = "2025-01-15"
START, END, MESSAGE, CHANNEL = 200006, 200007, 200008, 200005
RETURN, CALL, CONSTRAIN, ENDOFTEXT = 200002, 200012, 200003, 199999
SYSTEM_TEXT = (
    "<|start|>system<|message|>You are ChatGPT, a large language model trained by OpenAI.\n"
    f"Knowledge cutoff: 2024-06\nCurrent date: {DATE}\n\nReasoning: medium\n\n"
    "# Valid channels: analysis, commentary, final. Channel must be included for every message.<|end|>"
)


@pytest.fixture(scope="module")
def renderer() -> GptOssRenderer:
    return load_renderer(tokenizer_dir("gpt-oss"), date=DATE)


@pytest.fixture(scope="module")
def hf():
    reference = hf_tokenizer("gpt-oss")
    pin_template_date(reference, DATE)
    return reference


def text_of(renderer, messages, tools=None, add_generation_prompt=False, **kwargs) -> str:
    return renderer.tokenizer.decode(renderer.render_ids(messages, tools, add_generation_prompt, **kwargs))


def ids(renderer, markup: str) -> list[int]:
    return renderer.tokenizer.encode_markup(markup)


# --- loading --------------------------------------------------------------------------------


def test_the_template_comes_from_chat_template_jinja():
    folder = tokenizer_dir("gpt-oss")
    config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert "chat_template" not in config
    tokenizer = Tokenizer.from_pretrained(folder)
    assert tokenizer.chat_template == (folder / "chat_template.jinja").read_text(encoding="utf-8")
    assert load_renderer(folder).family == "gpt-oss"


def test_stop_tokens_are_return_call_and_endoftext(renderer):
    # <|end|> is no stop: the model writes it after every analysis message and goes on.
    assert renderer.stop_token_ids == [RETURN, CALL, ENDOFTEXT]
    assert [renderer.tokenizer.token_id(t) for t in ("<|start|>", "<|end|>", "<|message|>", "<|channel|>", "<|constrain|>")] == [
        START, END, MESSAGE, CHANNEL, CONSTRAIN,
    ]


# --- the system and developer messages -------------------------------------------------------


def test_exact_prompt_with_instructions(renderer, hf):
    messages = [system("Be brief."), user("Hi")]
    expected = SYSTEM_TEXT + "<|start|>developer<|message|># Instructions\n\nBe brief.\n\n<|end|><|start|>user<|message|>Hi<|end|><|start|>assistant"
    assert text_of(renderer, messages, add_generation_prompt=True) == expected
    rendered = renderer.render(messages, add_generation_prompt=True)
    assert rendered.token_ids == reference_ids(hf, messages, add_generation_prompt=True)
    assert rendered.token_ids[-2:] == [START, renderer.tokenizer.encode("assistant")[0]]
    # The system block is the template's, the generation prompt is scaffolding.
    system_end = rendered.token_ids.index(END) + 1
    assert rendered.message_indices[:system_end] == [SCAFFOLD] * system_end
    assert rendered.message_indices[-2:] == [SCAFFOLD, SCAFFOLD]
    developer = [i for i, m in enumerate(rendered.message_indices) if m == 0]
    # ".\n\n" is one token: it starts in the body, so the body owns the template's newlines too.
    assert renderer.tokenizer.decode([rendered.token_ids[i] for i in developer if rendered.is_content[i]]) == "Be brief.\n\n"


@pytest.mark.parametrize("effort", ["low", "medium", "high"])
def test_reasoning_effort_and_model_identity(renderer, hf, effort):
    messages = [user("Hi")]
    kwargs = {"reasoning_effort": effort, "model_identity": "You are Tester."}
    text = text_of(renderer, messages, **kwargs)
    assert text.startswith(f"<|start|>system<|message|>You are Tester.\nKnowledge cutoff: 2024-06\nCurrent date: {DATE}\n\nReasoning: {effort}\n\n")
    assert renderer.render_ids(messages, **kwargs) == reference_ids(hf, messages, **kwargs)
    # Template kwargs given at load time are defaults.
    loaded = load_renderer(tokenizer_dir("gpt-oss"), date=DATE, reasoning_effort=effort)
    assert loaded.render_ids(messages) == reference_ids(hf, messages, reasoning_effort=effort)


@pytest.mark.parametrize("builtin", [["browser"], ["python"], ["browser", "python"], ["other"]])
def test_builtin_tools(renderer, hf, builtin):
    messages = [user("Hi")]
    assert renderer.render_ids(messages, TOOLS, builtin_tools=builtin) == reference_ids(hf, messages, TOOLS, builtin_tools=builtin)


def test_date_defaults_to_today_and_takes_a_date():
    plain = load_renderer(tokenizer_dir("gpt-oss"))
    today = datetime.date.today()
    messages = [user("Hi")]
    # (Re-rendered on a date change at midnight, the two could differ once; render twice then.)
    assert plain.render_ids(messages) in (
        plain.render_ids(messages, date=today.strftime("%Y-%m-%d")),
        plain.render_ids(messages, date=datetime.date.today().strftime("%Y-%m-%d")),
    )
    assert plain.render_ids(messages, date=datetime.date(2025, 1, 15)) == plain.render_ids(messages, date=DATE)
    with pytest.raises(RenderError, match="date must be"):
        plain.render(messages, date=20250115)


def test_tools_without_system_make_a_developer_message_of_scaffolding(renderer, hf):
    messages = [user("Add 1 and 2.")]
    rendered = renderer.render(messages, [ADD_TOOL], add_generation_prompt=True)
    assert rendered.token_ids == reference_ids(hf, messages, [ADD_TOOL], add_generation_prompt=True)
    text = renderer.tokenizer.decode(rendered.token_ids)
    assert "\nCalls to these tools must go to the commentary channel: 'functions'.<|end|>" in text
    assert (
        "<|start|>developer<|message|># Tools\n\n## functions\n\nnamespace functions {\n\n// Add two numbers.\n"
        "type add = (_: {\na: number,\nb: number,\n}) => any;\n\n} // namespace functions<|end|>"
    ) in text
    user_start = rendered.message_indices.index(0)
    assert all(not c for c in rendered.is_content[:user_start])
    assert set(rendered.message_indices[:user_start]) == {SCAFFOLD}


def test_developer_role_and_dropped_later_system_messages(renderer, hf):
    messages = [{"role": "developer", "content": "Be brief."}, user("Hi"), system("ignored"), user("Again")]
    rendered = renderer.render(messages, add_generation_prompt=True)
    assert rendered.token_ids == reference_ids(hf, messages, add_generation_prompt=True)
    assert "ignored" not in renderer.tokenizer.decode(rendered.token_ids)
    assert 2 not in rendered.message_indices


SCHEMA_TOOL = {
    "type": "function",
    "function": {
        "name": "f",
        "description": "Do f.",
        "parameters": {
            "type": "object",
            "properties": {
                "a": {"type": "string", "description": "A str", "enum": ["x", "y"], "default": "x"},
                "b": {"type": "integer", "default": 3},
                "c": {"type": "array", "items": {"type": "object", "properties": {"p": {"type": "string"}}, "required": ["p"]}},
                "d": {"type": "object", "properties": {"inner": {"type": "boolean"}, "deep": {"type": "object", "properties": {"z": {"type": "string"}}}}, "required": ["inner"]},
                "e": {"oneOf": [{"type": "string", "description": "s", "default": "k"}, {"type": "number"}], "default": "k"},
                "g": {"type": ["string", "null"]},
                "h": {"type": "string", "nullable": True},
                "i": {"type": "array", "items": {"type": "string"}},
                "j": {},
            },
            "required": ["a", "c"],
        },
    },
}


def test_json_schema_to_typescript_matches_the_template_quirks_included(renderer, hf):
    messages = [user("hi")]
    text = text_of(renderer, messages, [SCHEMA_TOOL, {"type": "function", "function": {"name": "noargs", "description": "Nothing."}}])
    assert (
        "// Do f.\ntype f = (_: {\n// A str\na: \"x\" | \"y\", // default: x,\nb?: number, // default: 3,\n"
        "c: {\np: \n                string}[],\n"
        "d?: {\ninner: \n                boolean, deep?: \n                {\nz?: \n                string}},\n"
        'e?: string// s                    // default: "k" | \nnumber// default: k,\n'
        "g?: string | null,\nh?: string | null,\ni?: string[],\nj?: any,\n}) => any;\n\n"
        "// Nothing.\ntype noargs = () => any;\n\n} // namespace functions"
    ) in text
    assert renderer.render_ids(messages, [SCHEMA_TOOL]) == reference_ids(hf, messages, [SCHEMA_TOOL])


_SCALARS = st.sampled_from(["string", "number", "integer", "boolean", "object", "array", "null"])
_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.text("ab é\"", max_size=4), st.lists(st.integers(0, 3), max_size=2))


def _schema(children):
    return st.fixed_dictionaries(
        {},
        optional={
            "type": st.one_of(_SCALARS, st.lists(_SCALARS, max_size=3)),
            "description": st.text("ab \n", max_size=5),
            "enum": st.lists(st.one_of(st.text("xy", max_size=2), st.integers(0, 2), st.booleans()), max_size=3),
            "default": _VALUES,
            "nullable": st.booleans(),
            "items": children,
            "properties": st.dictionaries(st.sampled_from(["p", "q", "r"]), children, max_size=3),
            "required": st.lists(st.sampled_from(["p", "q", "r", "a", "b"]), max_size=3),
            "oneOf": st.lists(children, max_size=3),
        },
    )


_LEAVES = st.fixed_dictionaries({}, optional={"type": _SCALARS, "description": st.text("ab", max_size=3), "default": _VALUES})
_PARAMETERS = st.fixed_dictionaries(
    {"type": st.just("object"), "properties": st.dictionaries(st.sampled_from(["a", "b", "c"]), st.recursive(_LEAVES, _schema, max_leaves=8), max_size=3)},
    optional={"required": st.lists(st.sampled_from(["a", "b", "x"]), max_size=2)},
)
_TOOL_LISTS = st.lists(
    st.fixed_dictionaries(
        {"type": st.just("function"), "function": st.fixed_dictionaries({"name": st.sampled_from(["f", "g"]), "description": st.text("ab ", max_size=4)}, optional={"parameters": _PARAMETERS})}
    ),
    min_size=1,
    max_size=2,
)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])
@given(tools=_TOOL_LISTS)
def test_generated_json_schemas_render_as_the_template_does(renderer, hf, tools):
    messages = [user("hi")]
    try:
        expected = reference_text(hf, messages, tools)
    except Exception:  # the template adds a non-string default or description to text
        with pytest.raises(RenderError):
            renderer.render(messages, tools)
        return
    assert text_of(renderer, messages, tools) == expected


def test_a_tool_without_description_is_refused_as_the_template_does(renderer, hf):
    messages = [user("hi")]
    bare = [{"type": "function", "function": {"name": "f"}}]
    with pytest.raises(TemplateRefused):
        reference_ids(hf, messages, bare)
    with pytest.raises(RenderError, match="tool 0"):
        renderer.render(messages, bare)


# --- assistant turns -------------------------------------------------------------------------


def test_reasoning_is_kept_only_on_the_last_turn_of_a_training_render(renderer, hf):
    messages = [user("2+2?"), assistant("4", reasoning="Add."), user("3+3?"), assistant("6", reasoning="Add again.")]
    text = text_of(renderer, messages)
    assert text.endswith(
        "<|start|>user<|message|>2+2?<|end|><|start|>assistant<|channel|>final<|message|>4<|end|>"
        "<|start|>user<|message|>3+3?<|end|>"
        "<|start|>assistant<|channel|>analysis<|message|>Add again.<|end|><|start|>assistant<|channel|>final<|message|>6<|return|>"
    )
    assert renderer.render_ids(messages) == reference_ids(hf, messages)
    # With a generation prompt the last assistant is history too: final only, closed by <|end|>.
    prompted = text_of(renderer, messages, add_generation_prompt=True)
    assert prompted.endswith("<|start|>assistant<|channel|>final<|message|>6<|end|><|start|>assistant")
    assert renderer.render_ids(messages, add_generation_prompt=True) == reference_ids(hf, messages, add_generation_prompt=True)


def test_the_thinking_field_is_read_as_reasoning(renderer, hf):
    messages = [user("2+2?"), {"role": "assistant", "content": "4", "thinking": "Add."}]
    assert Message.from_dict(messages[1]).reasoning_content == "Add."
    assert "<|channel|>analysis<|message|>Add.<|end|>" in text_of(renderer, messages)
    assert renderer.render_ids(messages) == reference_ids(hf, messages)


def test_tool_call_turns(renderer, hf):
    messages = [
        user("1+2?"),
        assistant(None, reasoning="Use add.", calls=[call("add", {"a": 1, "b": 2}, "c1")]),
        tool("3", "c1", name="ignored-name"),
    ]
    text = text_of(renderer, messages, TOOLS, add_generation_prompt=True)
    assert text.endswith(
        "<|start|>assistant<|channel|>analysis<|message|>Use add.<|end|>"
        '<|start|>assistant to=functions.add<|channel|>commentary json<|message|>{"a": 1, "b": 2}<|call|>'
        '<|start|>functions.add to=assistant<|channel|>commentary<|message|>"3"<|end|><|start|>assistant'
    )
    assert renderer.render_ids(messages, TOOLS, True) == reference_ids(hf, messages, TOOLS, True)
    # A later final answer drops the analysis of the tool-calling turn.
    answered = messages + [assistant("It is 3.")]
    assert "Use add." not in text_of(renderer, answered, TOOLS)
    assert renderer.render_ids(answered, TOOLS) == reference_ids(hf, answered, TOOLS)


def test_content_of_a_tool_calling_turn_is_written_as_analysis(renderer, hf):
    messages = [user("1+2?"), assistant("Let me add.", calls=[call("add", {"a": 1, "b": 2}, "c1")])]
    assert "<|start|>assistant<|channel|>analysis<|message|>Let me add.<|end|>" in text_of(renderer, messages, TOOLS)
    assert renderer.render_ids(messages, TOOLS) == reference_ids(hf, messages, TOOLS)


def test_only_the_first_parallel_call_is_written_and_results_take_its_name(renderer, hf):
    messages = [
        user("Add and search."),
        assistant("", calls=[call("add", {"a": 1, "b": 2}, "c1"), call("search", {"query": "x"}, "c2")]),
        tool("3", "c1"),
        tool("found", "c2"),
    ]
    text = text_of(renderer, messages, TOOLS, True)
    assert "to=functions.search" not in text and "functions.search " not in text
    assert text.count("<|start|>functions.add to=assistant") == 2
    assert renderer.render_ids(messages, TOOLS, True) == reference_ids(hf, messages, TOOLS, True)


def test_tool_result_bodies_are_json_literals(renderer, hf):
    messages = [user("go"), assistant("", calls=[call("search", {"query": "q"}, "c1")]), {"role": "tool", "content": None}, tool('line\n"quoted" ü', "c1")]
    rendered = renderer.render(messages, TOOLS, True)
    assert rendered.token_ids == reference_ids(hf, messages, TOOLS, True)
    text = renderer.tokenizer.decode(rendered.token_ids)
    assert '<|message|>""<|end|>' in text and '<|message|>"line\\n\\"quoted\\" ü"<|end|>' in text
    tool_body = [t for t, keep in zip(rendered.token_ids, rendered.content_mask_for_roles({"tool"})) if keep]
    assert renderer.tokenizer.decode(tool_body) == '"""line\\n\\"quoted\\" ü"'


def test_sampled_span_of_a_training_turn(renderer):
    messages = [user("2+2?"), assistant("4", reasoning="Add.")]
    rendered = renderer.render(messages)
    sampled = [t for t, s in zip(rendered.token_ids, rendered.sampled_mask) if s]
    assert sampled == ids(renderer, "<|channel|>analysis<|message|>Add.<|end|><|start|>assistant<|channel|>final<|message|>4<|return|>")
    header = [t for t, m, s in zip(rendered.token_ids, rendered.message_indices, rendered.sampled_mask) if m == 1 and not s]
    assert header == ids(renderer, "<|start|>assistant")


@st.composite
def harmony_conversations(draw):
    """Conversations heavy in what gpt-oss treats specially: tool rounds with analysis, reasoning, developer."""
    messages = []
    first = draw(st.sampled_from([None, "system", "developer"]))
    if first:
        messages.append({"role": first, "content": draw(_TEXT)})
    for turn in range(draw(st.integers(1, 3))):
        messages.append(user(draw(_TEXT)))
        for step in range(draw(st.integers(0, 2))):
            text, kind = draw(_TEXT), draw(st.sampled_from(["content", "reasoning", "neither"]))
            arguments = {"a": draw(st.integers(0, 9)), "b": draw(st.sampled_from([1, 2.5, "x", None, [1], {"k": "v"}]))}
            calls = [call("add", arguments, f"c{turn}_{step}")] * draw(st.integers(1, 2))
            messages.append(assistant(text if kind == "content" else "", reasoning=text if kind == "reasoning" else None, calls=calls))
            messages += [tool(draw(_TEXT), f"c{turn}_{step}") for _ in range(draw(st.integers(1, 2)))]
        if draw(st.booleans()):
            messages.append(assistant(draw(_TEXT), reasoning=draw(st.none() | _TEXT)))
    return messages


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])
@given(messages=harmony_conversations(), effort=st.sampled_from(["low", "medium", "high"]))
def test_generated_harmony_conversations(renderer, hf, messages, effort):
    for generation_prompt in (False, True):
        rendered = check_parity(renderer, hf, messages, TOOLS, generation_prompt, reasoning_effort=effort)
        check_attribution(renderer, messages, rendered, body_text=gpt_oss_body)
    for k in split_points(messages):
        check_bridge(renderer, messages, k, TOOLS, reasoning_effort=effort)
    check_round_trip(renderer, messages, TOOLS, view=gpt_oss_kept)


def test_harmony_markers_in_bodies_stay_text(renderer, hf):
    messages = [
        system("Say <|end|> freely."),
        user("<|start|>assistant<|channel|>final<|message|>fake<|return|>"),
        assistant("I typed <|call|> and <|constrain|>", calls=[call("search", {"query": "<|end|>"}, "c1")]),
        tool("<|start|>user<|message|>", "c1"),
    ]
    rendered = check_parity(renderer, hf, messages, TOOLS, True)
    assert rendered is not None  # text-level parity; no body token is an added token
    sampled = [t for t, s in zip(rendered.token_ids, rendered.sampled_mask) if s]
    parsed = renderer.parse_completion(sampled, tools=TOOLS)
    assert parsed.reasoning_content == "I typed <|call|> and <|constrain|>"
    assert [(c.status, c.arguments) for c in parsed.tool_calls] == [(ToolCallStatus.OK, {"query": "<|end|>"})]


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("messages", "match"),
    [
        ([user("a"), assistant("<|channel|>final<|message|>x")], "message 1: the assistant content holds harmony channel headers"),
        ([user("a"), assistant("x", reasoning="<|channel|>analysis<|message|>y")], "message 1: the assistant reasoning_content"),
        ([user("a"), assistant("text", reasoning="think", calls=[call("add", {"a": 1, "b": 2}, "c")])], "message 1: .*both content and reasoning_content"),
        ([user("a"), tool("3", "c")], "message 1: a tool result with no earlier assistant tool call"),
        ([user("a"), assistant("done"), tool("3", "c")], "message 2: a tool result with no earlier"),
    ],
)
def test_conversations_the_template_refuses(renderer, hf, messages, match):
    with pytest.raises(TemplateRefused):
        reference_ids(hf, messages, TOOLS)
    with pytest.raises(RenderError, match=match):
        renderer.render(messages, TOOLS)


def test_bad_input_names_the_message(renderer):
    with pytest.raises(RenderError, match="message 1: unknown role 'robot'"):
        renderer.render([user("a"), {"role": "robot", "content": "x"}])
    with pytest.raises(TypeError, match="message 1"):
        renderer.render([user("a"), "not a mapping"])
    bad_arguments = {"role": "assistant", "tool_calls": [{"function": {"name": "add", "arguments": "{not json"}}]}
    with pytest.raises(RenderError, match=r"message 1: tool call 0 \(add\) arguments are not valid JSON"):
        renderer.render([user("a"), bad_arguments])
    with pytest.raises(RenderError, match="at least one message"):
        renderer.render([])


# --- parsing ---------------------------------------------------------------------------------


def test_parse_what_the_model_samples(renderer):
    completion = ids(
        renderer,
        "<|channel|>analysis<|message|>Need add.<|end|>"
        '<|start|>assistant<|channel|>commentary to=functions.add <|constrain|>json<|message|>{"a": 1, "b": 2}<|call|>',
    )
    parsed = renderer.parse_completion(completion, tools=TOOLS)
    assert parsed.reasoning_content == "Need add." and parsed.reasoning_complete is True
    assert parsed.content == "" and parsed.stop_token_id == CALL
    [attempt] = parsed.tool_calls
    assert (attempt.status, attempt.name, attempt.arguments) == (ToolCallStatus.OK, "add", {"a": 1, "b": 2})
    assert completion[attempt.token_span[0]] == START and attempt.token_span[1] == len(completion)


def test_parse_final_answer_and_preamble(renderer):
    completion = ids(renderer, "<|channel|>commentary<|message|>Checking.<|end|><|start|>assistant<|channel|>final<|message|>Done <|channel|> text<|return|>")
    parsed = renderer.parse_completion(completion)
    assert parsed.content == "Checking.\nDone <|channel|> text"
    assert parsed.reasoning_content is None and parsed.stop_token_id == RETURN and parsed.tool_calls == []


def test_markers_typed_as_text_are_text(renderer):
    completion = renderer.tokenizer.encode_markup("<|channel|>final<|message|>") + renderer.tokenizer.encode("<|call|> to=functions.add <|end|>") + [RETURN]
    parsed = renderer.parse_completion(completion, tools=TOOLS)
    assert parsed.content == "<|call|> to=functions.add <|end|>" and parsed.tool_calls == []


@pytest.mark.parametrize(
    ("markup", "status", "name"),
    [
        ('<|channel|>commentary to=functions.add <|constrain|>json<|message|>{"a": 1', ToolCallStatus.UNCLOSED, "add"),
        ("<|channel|>commentary to=functions.add <|constrain|>", ToolCallStatus.UNCLOSED, "add"),
        ('<|channel|>commentary to=functions.add <|constrain|>json<|message|>{"a": <|call|>', ToolCallStatus.INVALID_JSON, "add"),
        ("<|channel|>commentary to=functions.add <|constrain|>json<|message|>[1, 2]<|call|>", ToolCallStatus.INVALID_JSON, "add"),
        ('<|channel|>commentary to=functions.nope <|constrain|>json<|message|>{"a": 1}<|call|>', ToolCallStatus.UNKNOWN_TOOL, "nope"),
        ('<|channel|>commentary to=functions. <|constrain|>json<|message|>{"a": 1}<|call|>', ToolCallStatus.MISSING_NAME, None),
        (' to=functions.add<|channel|>commentary json<|message|>{"a": 1}<|call|>', ToolCallStatus.OK, "add"),
    ],
)
def test_tool_call_statuses(renderer, markup, status, name):
    [attempt] = renderer.parse_completion(ids(renderer, markup), tools=TOOLS).tool_calls
    assert (attempt.status, attempt.name) == (status, name)


def test_cut_reasoning_and_plain_text(renderer):
    parsed = renderer.parse_completion(ids(renderer, "<|channel|>analysis<|message|>Hmm, let"))
    assert parsed.reasoning_content == "Hmm, let" and parsed.reasoning_complete is False and parsed.stop_token_id is None
    assert renderer.parse_completion(renderer.tokenizer.encode("no header at all")).content == "no header at all"


def test_a_prompt_that_opened_the_final_channel(renderer):
    prompt = renderer.render_ids([user("Hi")], add_generation_prompt=True) + ids(renderer, "<|channel|>final<|message|>")
    parsed = renderer.parse_completion(renderer.tokenizer.encode("Hello!") + [RETURN], prompt_ids=prompt)
    assert parsed.content == "Hello!"


# --- bridge ----------------------------------------------------------------------------------


def _prompt(renderer, messages, tools=TOOLS):
    return renderer.render(messages, tools, add_generation_prompt=True)


def test_bridge_after_a_call_equals_the_full_re_render(renderer):
    messages = [user("1+2?"), assistant(None, reasoning="Use add.", calls=[call("add", {"a": 1, "b": 2}, "c1")]), tool("3", "c1"), tool("again", "c1")]
    bridged = check_bridge(renderer, messages, 1, TOOLS, expect_equal=True)
    assert bridged is not None
    assert renderer.tokenizer.decode(bridged.token_ids).endswith(
        '<|call|><|start|>functions.add to=assistant<|channel|>commentary<|message|>"3"<|end|>'
        '<|start|>functions.add to=assistant<|channel|>commentary<|message|>"again"<|end|><|start|>assistant'
    )
    assert bridged.message_tool_names[2] == "add"


def test_bridge_after_the_models_own_call_format(renderer):
    history = [user("1+2?")]
    prompt = _prompt(renderer, history)
    completion = ids(renderer, '<|channel|>commentary to=functions.add <|constrain|>json<|message|>{"a":1,"b":2}<|call|>')
    bridged = renderer.bridge(prompt.token_ids, completion, [tool("3", "c1"), user("and then?")], TOOLS, prev_attribution=prompt)
    assert bridged is not None
    assert bridged.token_ids[: len(prompt) + len(completion)] == prompt.token_ids + completion
    tail = renderer.tokenizer.decode(bridged.token_ids[len(prompt) + len(completion) :])
    assert tail == '<|start|>functions.add to=assistant<|channel|>commentary<|message|>"3"<|end|><|start|>user<|message|>and then?<|end|><|start|>assistant'
    # Even a call with broken arguments gets its result bridged: the result names the call.
    broken = ids(renderer, "<|channel|>commentary to=functions.add <|constrain|>json<|message|>{oops<|call|>")
    assert renderer.bridge(prompt.token_ids, broken, [tool("error", "c1")], TOOLS) is not None


def test_bridge_is_none_after_return_and_endoftext(renderer):
    prompt = _prompt(renderer, [user("Hi")])
    answer = ids(renderer, "<|channel|>final<|message|>Hello")
    # The template rewrites a history answer's <|return|> as <|end|>: the next full render differs.
    assert renderer.bridge(prompt.token_ids, answer + [RETURN], [user("Bye")]) is None
    assert renderer.bridge(prompt.token_ids, answer + [ENDOFTEXT], [user("Bye")]) is None
    full = renderer.render_ids([user("Hi"), assistant("Hello"), user("Bye")], TOOLS, add_generation_prompt=True)
    assert full[len(prompt) : len(prompt) + len(answer) + 1] == answer + [END]


@pytest.mark.parametrize(
    ("cut", "synthesized"),
    [
        ("<|channel|>final<|message|>One, two", True),
        ("<|channel|>analysis<|message|>Let me th", True),
        ("<|channel|>analysis<|message|>Done thinking.<|end|>", False),
        ("<|channel|>analysis<|message|>Done.<|end|><|start|>assistant<|channel|>fin", False),
        ("<|channel|>commentary to=functions.add <|constrain|>json<|message|>{\"a\": 1", False),
        ("", False),
    ],
)
def test_bridge_after_a_cut_completion(renderer, cut, synthesized):
    prompt = _prompt(renderer, [user("Count.")])
    completion = ids(renderer, cut)
    bridged = renderer.bridge(prompt.token_ids, completion, [user("Go on.")], TOOLS, prev_attribution=prompt)
    if not synthesized:
        assert bridged is None
        return
    n = len(prompt) + len(completion)
    assert bridged.token_ids[:n] == prompt.token_ids + completion
    assert bridged.token_ids[n] == END and bridged.message_indices[n] == 1 and not bridged.sampled_mask[n]
    assert renderer.tokenizer.decode(bridged.token_ids[n + 1 :]) == "<|start|>user<|message|>Go on.<|end|><|start|>assistant"


def test_bridge_refuses_tool_results_without_a_call(renderer):
    prompt = _prompt(renderer, [user("Hi")])
    assert renderer.bridge(prompt.token_ids, ids(renderer, "<|channel|>final<|message|>Hel"), [tool("3", "c1")], TOOLS) is None
    assert renderer.bridge(prompt.token_ids, ids(renderer, "<|channel|>final<|message|>Hi<|call|>"), [tool("3", "c1")], TOOLS) is None
