"""Qwen3 specifics: the thinking switch, history reasoning, bridge refusals, parse statuses."""

from __future__ import annotations

import pytest

from tests.render.harness import TOOLS, assistant, call, check_bridge, renderer_at, tool, user
from tokenroll.core.attribution import SCAFFOLD
from tokenroll.render import ToolCallStatus

IM_START, IM_END, THINK, END_THINK, CALL, END_CALL, EOT = 151644, 151645, 151667, 151668, 151657, 151658, 151643
ASSISTANT_NL, NL, NL2 = [77091, 198], 198, 271


@pytest.fixture(scope="module")
def qwen3():
    return renderer_at("qwen3")


def test_generation_prompt_with_and_without_thinking(qwen3):
    messages = [user("Hi")]
    assert qwen3.render_ids(messages, add_generation_prompt=True)[-3:] == [IM_START, *ASSISTANT_NL]
    off = qwen3.render(messages, add_generation_prompt=True, enable_thinking=False)
    assert off.token_ids[-7:] == [IM_START, *ASSISTANT_NL, THINK, NL2, END_THINK, NL2]
    assert off.message_indices[-7:] == [SCAFFOLD] * 7
    # A default set at load time applies to every render.
    assert renderer_at("qwen3").__class__(qwen3.tokenizer, enable_thinking=False).render_ids(messages, add_generation_prompt=True) == off.token_ids


def test_reasoning_is_kept_only_after_the_last_user_query(qwen3):
    history = [user("2+2?"), assistant("4", reasoning="add"), user("3+3?"), assistant("6", reasoning="add again")]
    rendered = qwen3.render(history)
    thinks = [i for i, t in enumerate(rendered.token_ids) if t == THINK]
    assert [rendered.message_indices[i] for i in thinks] == [3]
    assert qwen3.tokenizer.decode(rendered.token_ids) == (
        "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>\n<|im_start|>user\n3+3?<|im_end|>\n"
        "<|im_start|>assistant\n<think>\nadd again\n</think>\n\n6<|im_end|>\n"
    )


def test_bridge_keeps_dropped_reasoning_that_a_re_render_would_strip(qwen3):
    messages = [user("2+2?"), assistant("4", reasoning="Two and two."), user("3+3?")]
    bridged = check_bridge(qwen3, messages, 1, expect_equal=False)
    assert THINK in bridged.token_ids  # the model saw its reasoning; the bridge keeps it


def test_bridge_after_a_tool_call_equals_a_re_render(qwen3):
    messages = [
        user("1+2?"),
        assistant("", reasoning="Use the tool.", calls=[call("add", {"a": 1, "b": 2}, "c1")]),
        tool("3", "c1"),
    ]
    bridged = check_bridge(qwen3, messages, 1, TOOLS, expect_equal=True)
    assert bridged.message_tool_names[-1] == "add"
    assert bridged.token_ids[-3:] == [IM_START, *ASSISTANT_NL]


def test_bridge_refuses_a_completion_that_stopped_on_endoftext(qwen3):
    prompt = qwen3.render([user("Hi")], add_generation_prompt=True)
    completion = qwen3.tokenizer.encode("Hello") + [EOT]
    assert qwen3.bridge(prompt.token_ids, completion, [user("Bye")], prev_attribution=prompt) is None


def test_parse_statuses_and_spans(qwen3):
    encode = qwen3.tokenizer.encode
    ids = (
        [THINK] + encode("\nplan\n") + [END_THINK] + encode("\n\nSure.\n")
        + [CALL] + encode('\n{"name": "add", "arguments": {"a": 1}}\n') + [END_CALL] + encode("\n")
        + [CALL] + encode('\n{"name": "add", "arguments": ') + [END_CALL] + encode("\n")
        + [CALL] + encode('\n{"arguments": {}}\n') + [END_CALL] + encode("\n")
        + [CALL] + encode('\n{"name": "mul", "arguments": {}}\n') + [END_CALL] + encode("\n")
        + [CALL] + encode('\n{"name": "add"')
    )
    parsed = qwen3.parse_completion(ids, tools=TOOLS)
    assert parsed.reasoning_content == "plan"
    assert parsed.content == "Sure."
    assert [c.status for c in parsed.tool_calls] == [
        ToolCallStatus.OK,
        ToolCallStatus.INVALID_JSON,
        ToolCallStatus.MISSING_NAME,
        ToolCallStatus.UNKNOWN_TOOL,
        ToolCallStatus.UNCLOSED,
    ]
    assert parsed.tool_calls[0].arguments == {"a": 1}
    for attempt in parsed.tool_calls:
        start, end = attempt.token_span
        assert ids[start] == CALL
        assert ids[end - 1] == END_CALL or attempt.status is ToolCallStatus.UNCLOSED
    assert parsed.stop_token_id is None
    assert parsed.to_message().tool_calls[0].arguments == '{"a": 1}'


def test_tool_call_typed_as_text_is_not_a_call(qwen3):
    ids = qwen3.tokenizer.encode('<tool_call>\n{"name": "add", "arguments": {}}\n</tool_call>') + [IM_END]
    assert CALL not in ids
    parsed = qwen3.parse_completion(ids, tools=TOOLS)
    assert parsed.tool_calls == []
    assert parsed.content.startswith("<tool_call>")
    assert parsed.stop_token_id == IM_END


def test_reasoning_opened_by_the_prompt(qwen3):
    prompt = [IM_START, *ASSISTANT_NL, THINK, NL]
    parsed = qwen3.parse_completion(qwen3.tokenizer.encode("think more") + [END_THINK] + qwen3.tokenizer.encode("\n\nDone") + [IM_END], prompt_ids=prompt)
    assert (parsed.reasoning_content, parsed.content, parsed.reasoning_complete) == ("think more", "Done", True)
    cut = qwen3.parse_completion(qwen3.tokenizer.encode("still thinking"), prompt_ids=prompt)
    assert (cut.reasoning_content, cut.content, cut.reasoning_complete) == ("still thinking", "", False)
