"""GLM-4.6 and GLM-4.7: exact ids, the sampled role marker, bridge refusals, XML tool-call parsing."""

from __future__ import annotations

import functools

import pytest

from tests.render.glm_tokenizer import GLM_ADDED_TOKENS, chat_template, glm_hf_tokenizer
from tests.render.harness import ADD_TOOL, SEARCH_TOOL, TOOLS, assistant, call, check_bridge, reference_ids, reference_text, tool, user
from tokenroll.core.attribution import SCAFFOLD
from tokenroll.render import RenderError, ToolCallStatus, detect_family, load_renderer
from tokenroll.render.glm4_6 import GLM46Renderer
from tokenroll.render.glm4_7 import GLM47Renderer


@pytest.fixture(scope="module")
def hf46():
    return glm_hf_tokenizer("glm-4.6")


@pytest.fixture(scope="module")
def hf47():
    return glm_hf_tokenizer("glm-4.7")


@functools.cache
def renderer_for(family: str) -> GLM46Renderer | GLM47Renderer:
    return load_renderer(glm_hf_tokenizer(family))


@pytest.fixture(scope="module")
def glm46() -> GLM46Renderer:
    return renderer_for("glm-4.6")


@pytest.fixture(scope="module")
def glm47() -> GLM47Renderer:
    return renderer_for("glm-4.7")


def ids(renderer, *pieces: str | list[int]) -> list[int]:
    """Expected ids: marker strings become their id, other strings are encoded as text."""
    out: list[int] = []
    for piece in pieces:
        if isinstance(piece, list):
            out += piece
        elif piece in renderer.tokenizer.added_tokens:
            out.append(renderer.tokenizer.added_tokens[piece])
        else:
            out += renderer.tokenizer.encode(piece)
    return out


def owned(rendered, index: int, *, sampled: bool | None = None) -> list[int]:
    return [
        t
        for t, m, s in zip(rendered.token_ids, rendered.message_indices, rendered.sampled_mask)
        if m == index and (sampled is None or s == sampled)
    ]


TOOL_TURN = [
    user("What is 1+2?"),
    assistant("Let me add.", calls=[call("add", {"a": 1, "b": 2}, "c1")]),
    tool("3", "c1"),
]


# --- the stand-in tokenizer and detection ------------------------------------------------------


def test_every_glm_marker_is_one_added_token(hf46):
    for token in GLM_ADDED_TOKENS:
        assert len(hf46.encode(token, add_special_tokens=False)) == 1, token


def test_families_are_detected_from_the_template_text():
    assert detect_family(chat_template("glm-4.6")) == "glm-4.6"
    assert detect_family(chat_template("glm-4.7")) == "glm-4.7"
    assert detect_family(chat_template("glm-4.6").replace("[gMASK]<sop>", "")) is None


def test_stop_tokens_are_the_role_markers_and_endoftext(glm46):
    assert glm46.stop_token_ids == ids(glm46, "<|user|>", "<|observation|>", "<|endoftext|>")


# --- exact ids -------------------------------------------------------------------------------------


def test_glm46_tool_turn_exact_ids(glm46, hf46):
    expected = ids(
        glm46,
        "[gMASK]", "<sop>", "<|user|>", "\nWhat is 1+2?",
        "<|assistant|>", "\n", "<think>", "</think>", "\nLet me add.\n",
        "<tool_call>", "add\n", "<arg_key>", "a", "</arg_key>", "\n", "<arg_value>", "1", "</arg_value>", "\n",
        "<arg_key>", "b", "</arg_key>", "\n", "<arg_value>", "2", "</arg_value>", "\n", "</tool_call>",
        "<|observation|>", "\n", "<tool_response>", "\n3\n", "</tool_response>",
        "<|assistant|>",
    )  # fmt: skip
    assert glm46.render_ids(TOOL_TURN, add_generation_prompt=True) == expected
    assert reference_ids(hf46, TOOL_TURN, add_generation_prompt=True) == expected


def test_glm47_tool_turn_exact_ids(glm47, hf47):
    expected = ids(
        glm47,
        "[gMASK]", "<sop>", "<|user|>", "What is 1+2?",
        "<|assistant|>", "</think>", "Let me add.",
        "<tool_call>", "add", "<arg_key>", "a", "</arg_key>", "<arg_value>", "1", "</arg_value>",
        "<arg_key>", "b", "</arg_key>", "<arg_value>", "2", "</arg_value>", "</tool_call>",
        "<|observation|>", "<tool_response>", "3", "</tool_response>",
        "<|assistant|>", "<think>",
    )  # fmt: skip
    assert glm47.render_ids(TOOL_TURN, add_generation_prompt=True) == expected
    assert reference_ids(hf47, TOOL_TURN, add_generation_prompt=True) == expected


def test_argument_values_are_json_unless_strings(glm47, hf47):
    messages = [user("go"), assistant("", calls=[call("search", {"query": 'say "hi"', "n": 3, "flag": False, "tags": ["x", None]}, "c")])]
    rendered = glm47.render(messages)
    text = glm47.tokenizer.decode(owned(rendered, 1, sampled=True))
    assert '<arg_value>say "hi"</arg_value>' in text
    assert "<arg_value>3</arg_value><arg_key>flag</arg_key><arg_value>false</arg_value>" in text
    assert '<arg_value>["x", null]</arg_value>' in text
    assert rendered.token_ids == reference_ids(hf47, messages)


# --- the sampled role marker ----------------------------------------------------------------------


@pytest.mark.parametrize("family", ["glm-4.6", "glm-4.7"])
def test_the_marker_after_an_assistant_is_sampled_by_that_assistant(family):
    renderer = renderer_for(family)
    observation, user_marker = ids(renderer, "<|observation|>", "<|user|>")
    messages = TOOL_TURN + [assistant("It is 3."), user("thanks"), tool("late", "x"), user("again")]
    rendered = renderer.render(messages)
    at = {t: [i for i, x in enumerate(rendered.token_ids) if x == t] for t in (observation, user_marker)}
    # <|observation|> after assistant 1, <|user|> after assistant 3: theirs, sampled, content.
    first_obs, second_user = at[observation][0], at[user_marker][1]
    assert (rendered.message_indices[first_obs], rendered.sampled_mask[first_obs], rendered.is_content[first_obs]) == (1, True, True)
    assert (rendered.message_indices[second_user], rendered.sampled_mask[second_user], rendered.is_content[second_user]) == (3, True, True)
    # Markers that follow a user or tool message open their own message and were not sampled.
    for position in (at[user_marker][0], at[observation][1], at[user_marker][2]):
        assert rendered.message_indices[position] not in (1, 3) and not rendered.sampled_mask[position]
        assert not rendered.is_content[position]
    assert owned(rendered, 1, sampled=True)[-1] == observation
    assert owned(rendered, 3, sampled=True)[-1] == user_marker


def test_an_assistant_rendered_last_has_no_stop_token(glm46):
    rendered = glm46.render([user("hi"), assistant("hello")], add_generation_prompt=True)
    sampled = owned(rendered, 1, sampled=True)
    assert sampled == ids(glm46, "\n", "<think>", "</think>", "\nhello")
    assert rendered.token_ids[-1] == glm46.tokenizer.added_tokens["<|assistant|>"]
    assert rendered.message_indices[-1] == SCAFFOLD


def test_glm46_nothink_header_is_the_generation_prompt(glm46, hf46):
    messages = [user("a"), assistant("b"), user("c/nothink")]
    rendered = glm46.render(messages, add_generation_prompt=True, enable_thinking=False)
    # The user's own "/nothink" stays text (Hugging Face would make it the added token).
    assert hf46.decode(rendered.token_ids) == reference_text(hf46, messages, add_generation_prompt=True, enable_thinking=False)
    assert owned(rendered, 1, sampled=False) == ids(glm46, "<|assistant|>", "\n", "<think>", "</think>")
    assert owned(rendered, 1, sampled=True) == ids(glm46, "\nb", "<|user|>")
    # /nothink is template text after a user body (not content), and not added twice.
    assert owned(rendered, 0) == ids(glm46, "<|user|>", "\na", "/nothink")
    user_2 = owned(rendered, 2)
    assert glm46.tokenizer.decode(user_2).count("/nothink") == 1


def test_glm47_thinking_header_includes_the_opened_think(glm47):
    rendered = glm47.render([user("a"), assistant("b", reasoning="r")])
    assert owned(rendered, 1, sampled=False) == ids(glm47, "<|assistant|>", "<think>")
    assert owned(rendered, 1, sampled=True) == ids(glm47, "r", "</think>", "b")
    off = glm47.render([user("a"), assistant("b")], enable_thinking=False)
    assert owned(off, 1, sampled=False) == ids(glm47, "<|assistant|>", "</think>")
    assert owned(off, 1, sampled=True) == ids(glm47, "b")


# --- reasoning rules -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("family", "kwargs"),
    [("glm-4.6", {}), ("glm-4.6", {"enable_thinking": False}), ("glm-4.7", {}), ("glm-4.7", {"clear_thinking": False}), ("glm-4.7", {"clear_thinking": True})],
)
def test_reasoning_history_rules_match_the_template(family, kwargs):
    hf, renderer = glm_hf_tokenizer(family), renderer_for(family)
    messages = [
        user("q1"),
        assistant("a1", reasoning="old thoughts"),
        user("q2"),
        assistant("", reasoning="  \n ", calls=[call("add", {"a": 1, "b": 2}, "c")]),  # whitespace reasoning
        tool("3", "c"),
        assistant("  padded  ", reasoning="\n new thoughts \n"),
        assistant("<think>\ninline\n</think>\n\nafter</think>last"),
    ]
    for generation_prompt in (False, True):
        assert renderer.render_ids(messages, add_generation_prompt=generation_prompt, **kwargs) == reference_ids(
            hf, messages, add_generation_prompt=generation_prompt, **kwargs
        )


# --- bridge --------------------------------------------------------------------------------------------


def _turn(renderer, messages, k, **kwargs):
    """Prompt before assistant k and the completion the model sampled, with the marker it stopped on."""
    prompt = renderer.render(messages[:k], TOOLS, add_generation_prompt=True, **kwargs)
    full = renderer.render(messages, TOOLS, **kwargs)
    return prompt, owned(full, k, sampled=True)


@pytest.mark.parametrize("family", ["glm-4.6", "glm-4.7"])
def test_bridge_keeps_the_sampled_marker_once(family):
    renderer = renderer_for(family)
    observation = renderer.tokenizer.added_tokens["<|observation|>"]
    prompt, completion = _turn(renderer, TOOL_TURN, 1, enable_thinking=False)
    assert completion[-1] == observation
    bridged = renderer.bridge(prompt.token_ids, completion, [TOOL_TURN[2]], TOOLS, prev_attribution=prompt, enable_thinking=False)
    full = renderer.render(TOOL_TURN, TOOLS, add_generation_prompt=True, enable_thinking=False)
    assert bridged.token_ids == full.token_ids
    n = len(prompt.token_ids) + len(completion)
    assert bridged.token_ids[n - 1] == observation and observation not in bridged.token_ids[n:]
    assert bridged.message_indices == full.message_indices and bridged.sampled_mask == full.sampled_mask
    assert bridged.message_roles == ["user", "assistant", "tool"]
    assert bridged.message_tool_names == [None, None, "add"]


def test_bridge_exact_ids_after_a_user_marker(glm46):
    prompt = glm46.render([user("hi")], add_generation_prompt=True)
    completion = ids(glm46, "\n", "<think>", "</think>", "\nhello", "<|user|>")
    bridged = glm46.bridge(prompt.token_ids, completion, [user("more")], prev_attribution=prompt)
    assert bridged.token_ids == prompt.token_ids + completion + ids(glm46, "\nmore", "<|assistant|>")
    assert bridged.message_indices[len(prompt.token_ids) - 1] == 1  # the generation prompt became the header
    assert bridged.token_ids == glm46.render_ids([user("hi"), assistant("hello"), user("more")], add_generation_prompt=True)


@pytest.mark.parametrize("family", ["glm-4.6", "glm-4.7"])
def test_bridge_refuses_a_marker_that_opens_the_wrong_message(family):
    renderer = renderer_for(family)
    user_marker, observation, eot = renderer.stop_token_ids
    prompt = renderer.render_ids([user("hi")], TOOLS, add_generation_prompt=True)
    body = renderer.tokenizer.encode("hello")
    assert renderer.bridge(prompt, body + [user_marker], [tool("3", "c1")], TOOLS) is None
    assert renderer.bridge(prompt, body + [observation], [user("more")], TOOLS) is None
    assert renderer.bridge(prompt, body + [eot], [user("more")], TOOLS) is None
    assert renderer.bridge(prompt, body + [observation], [tool("3", "c1"), user("more")], TOOLS) is not None
    assert renderer.bridge(prompt, body + [user_marker], [user("more")], TOOLS) is not None


@pytest.mark.parametrize("family", ["glm-4.6", "glm-4.7"])
def test_bridge_after_a_cut_completion_synthesizes_the_observation_marker(family):
    renderer = renderer_for(family)
    prompt, completion = _turn(renderer, TOOL_TURN, 1, enable_thinking=False)
    cut = completion[:-1]
    bridged = renderer.bridge(prompt.token_ids, cut, [TOOL_TURN[2]], TOOLS, prev_attribution=prompt, enable_thinking=False)
    n = len(prompt.token_ids) + len(cut)
    assert bridged.token_ids[n] == renderer.tokenizer.added_tokens["<|observation|>"]
    assert (bridged.message_indices[n], bridged.sampled_mask[n], bridged.is_content[n]) == (1, False, False)
    assert bridged.token_ids == renderer.render_ids(TOOL_TURN, TOOLS, add_generation_prompt=True, enable_thinking=False)


REASONING_TOOL_TURN = [
    user("What is 1+2?"),
    assistant("Adding.", reasoning="I should call add.", calls=[call("add", {"a": 1, "b": 2}, "c1")]),
    tool("3", "c1"),
    assistant("It is 3.", reasoning="Done."),
    user("And 2+2?"),
]


@pytest.mark.parametrize(
    ("family", "kwargs", "k", "stable"),
    [
        ("glm-4.6", {}, 1, True),  # reasoning kept while only tool results follow
        ("glm-4.6", {}, 3, False),  # a new user message drops the reasoning
        ("glm-4.7", {}, 1, True),
        ("glm-4.7", {}, 3, False),
        ("glm-4.7", {"clear_thinking": False}, 3, True),
        ("glm-4.6", {"enable_thinking": False}, 3, True),
        ("glm-4.7", {"enable_thinking": False}, 3, True),  # reasoning dropped, but the prompt opened none
    ],
)
def test_prefix_stability_is_as_documented(family, kwargs, k, stable):
    messages = REASONING_TOOL_TURN
    if kwargs.get("enable_thinking") is False:
        messages = [{**m, "reasoning_content": None} for m in messages]  # no reasoning with thinking off
    bridged = check_bridge(renderer_for(family), messages, k, TOOLS, expect_equal=stable, **kwargs)
    assert bridged is not None


def test_glm47_thinking_turn_without_reasoning_is_not_prefix_stable(glm47):
    # The prompt opened <think>; a turn whose reasoning is empty re-renders as a bare </think>.
    messages = [user("hi"), assistant("", calls=[call("add", {"a": 1, "b": 2}, "c1")]), tool("3", "c1")]
    assert check_bridge(glm47, messages, 1, TOOLS, expect_equal=False) is not None


# --- parsing -------------------------------------------------------------------------------------------


def test_round_trip_keeps_argument_types(glm46):
    arguments = {"query": "ünïcode <b> \"q\"", "n": 3, "ok": True, "none": None, "list": [1, "a"], "obj": {"k": 0.5}}
    messages = [user("go"), assistant("Sure.", reasoning="think", calls=[call("search", arguments, "c")])]
    sampled = owned(glm46.render(messages, TOOLS), 1, sampled=True)
    parsed = glm46.parse_completion(sampled, tools=TOOLS)
    assert (parsed.content, parsed.reasoning_content) == ("Sure.", "think")
    assert [(c.status, c.name, c.arguments) for c in parsed.tool_calls] == [(ToolCallStatus.OK, "search", arguments)]


def test_string_parameters_stay_strings_when_the_schema_says_so(glm47):
    completion = ids(glm47, "</think>", "<tool_call>", "search", "<arg_key>", "query", "</arg_key>", "<arg_value>", "42", "</arg_value>",
                     "<arg_key>", "limit", "</arg_key>", "<arg_value>", "42", "</arg_value>", "</tool_call>", "<|observation|>")  # fmt: skip
    [parsed] = glm47.parse_completion(completion, tools=TOOLS).tool_calls
    assert parsed.arguments == {"query": "42", "limit": 42}
    [untyped] = glm47.parse_completion(completion).tool_calls
    assert untyped.arguments == {"query": 42, "limit": 42}  # without a schema, "42" reads as JSON


def test_text_that_is_not_json_stays_a_string(glm47):
    completion = ids(glm47, "<tool_call>", "f", "<arg_key>", "a", "</arg_key>", "<arg_value>", "NaN", "</arg_value>",
                     "<arg_key>", "b", "</arg_key>", "<arg_value>", "[1,", "</arg_value>", "</tool_call>")  # fmt: skip
    [parsed] = glm47.parse_completion(completion).tool_calls
    assert parsed.arguments == {"a": "NaN", "b": "[1,"}


def test_parse_statuses_and_spans(glm46):
    def call_ids(*inner: str) -> list[int]:
        return ids(glm46, "\n", "<tool_call>", *inner, "</tool_call>")

    good = call_ids("add\n", "<arg_key>", "a", "</arg_key>", "\n", "<arg_value>", "1", "</arg_value>", "\n")
    unknown = call_ids("divide\n")
    nameless = call_ids("<arg_key>", "a", "</arg_key>", "<arg_value>", "1", "</arg_value>")
    no_value = call_ids("add\n", "<arg_key>", "a", "</arg_key>", "\n")
    stray = call_ids("add\n", "<arg_key>", "a", "</arg_key>", "oops", "<arg_value>", "1", "</arg_value>")
    unclosed = ids(glm46, "\n", "<tool_call>", "add\n", "<arg_key>", "a")
    head = ids(glm46, "\n", "<think>", "r", "</think>", "\nText")
    completion = head + good + unknown + nameless + no_value + stray + unclosed
    parsed = glm46.parse_completion(completion, tools=[ADD_TOOL, SEARCH_TOOL])
    assert [c.status for c in parsed.tool_calls] == [
        ToolCallStatus.OK,
        ToolCallStatus.UNKNOWN_TOOL,
        ToolCallStatus.MISSING_NAME,
        ToolCallStatus.INVALID_JSON,
        ToolCallStatus.INVALID_JSON,
        ToolCallStatus.UNCLOSED,
    ]
    assert (parsed.content, parsed.reasoning_content, parsed.stop_token_id) == ("Text", "r", None)
    first = parsed.tool_calls[0]
    assert completion[first.token_span[0]] == glm46.tokenizer.added_tokens["<tool_call>"]
    assert completion[first.token_span[1] - 1] == glm46.tokenizer.added_tokens["</tool_call>"]
    assert parsed.tool_calls[-1].token_span[1] == len(completion)
    assert [c.name for c in parsed.to_message().tool_calls] == ["add"]


def test_markers_typed_as_text_are_text(glm47):
    completion = glm47.tokenizer.encode("<tool_call>add<arg_key>a</arg_key></tool_call>") + ids(glm47, "<|user|>")
    parsed = glm47.parse_completion(completion)
    assert parsed.tool_calls == [] and parsed.content == "<tool_call>add<arg_key>a</arg_key></tool_call>"
    assert parsed.stop_token_id == glm47.tokenizer.added_tokens["<|user|>"]


def test_glm47_reasoning_opened_by_the_prompt(glm47):
    prompt = glm47.render_ids([user("hi")], add_generation_prompt=True)
    completion = ids(glm47, "thinking", "</think>", "answer", "<|user|>")
    parsed = glm47.parse_completion(completion, prompt_ids=prompt)
    assert (parsed.reasoning_content, parsed.content, parsed.reasoning_complete) == ("thinking", "answer", True)
    cut = glm47.parse_completion(ids(glm47, "still thinking"), prompt_ids=prompt)
    assert (cut.reasoning_content, cut.content, cut.reasoning_complete) == ("still thinking", "", False)
    off = glm47.render_ids([user("hi")], add_generation_prompt=True, enable_thinking=False)
    assert glm47.parse_completion(ids(glm47, "answer"), prompt_ids=off).reasoning_content is None


# --- template quirks and errors -------------------------------------------------------------------------


@pytest.mark.parametrize("family", ["glm-4.6", "glm-4.7"])
def test_none_tool_content_is_a_bare_observation_marker(family):
    hf, renderer = glm_hf_tokenizer(family), renderer_for(family)
    messages = [user("x"), assistant("", calls=[call("add", {"a": 1, "b": 2}, "c1")]), {"role": "tool", "content": None}, tool("3", "c1"), user("y")]
    assert renderer.render_ids(messages, TOOLS) == reference_ids(hf, messages, TOOLS)


def test_glm46_empty_arguments_render_as_no_arguments(glm46, hf46):
    messages = [user("x"), {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {"name": "add", "arguments": ""}}]}]
    assert glm46.render_ids(messages) == reference_ids(hf46, messages)
    with pytest.raises(RenderError, match=r"message 1: tool call 0 \(add\) arguments are a list"):
        glm46.render([user("x"), assistant("", calls=[call("add", [1, 2], "c")])])  # type: ignore[arg-type]


def test_glm47_arguments_must_be_an_object(glm47):
    with pytest.raises(RenderError, match=r"message 1: tool call 0 \(add\)"):
        glm47.render([user("x"), {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "add", "arguments": ""}}]}])
    with pytest.raises(RenderError, match=r"message 1: tool call 0 \(add\) arguments are not valid JSON"):
        glm47.render([user("x"), {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "add", "arguments": "{oops"}}]}])


def test_errors_name_the_message(glm46):
    with pytest.raises(RenderError, match="message 1: unknown role 'developer'"):
        glm46.render([user("x"), {"role": "developer", "content": "y"}])
    with pytest.raises(RenderError, match="message 2: tool content must be text"):
        glm46.render([user("x"), assistant("y"), {"role": "tool", "content": [{"type": "text", "text": "z"}]}])
    with pytest.raises(TypeError, match="message 1"):
        glm46.render([user("x"), "not a mapping"])  # type: ignore[list-item]


def test_tool_definitions_are_scaffolding(glm47, hf47):
    messages = [{"role": "system", "content": "Be brief."}, user("hi")]
    rendered = glm47.render(messages, TOOLS)
    assert rendered.token_ids == reference_ids(hf47, messages, TOOLS)
    first_system = rendered.token_ids.index(glm47.tokenizer.added_tokens["<|system|>"])
    tools_block = range(first_system, rendered.message_indices.index(0))
    assert all(rendered.message_indices[i] == SCAFFOLD and not rendered.is_content[i] for i in tools_block)
    assert glm47.tokenizer.decode([t for t, m, c in zip(rendered.token_ids, rendered.message_indices, rendered.is_content) if m == 0 and c]) == "Be brief."
