import pytest

from tokenroll.core.messages import Message, ToolCall, as_message, as_messages


def test_message_round_trips_through_dict():
    message = Message(
        role="assistant",
        content="Let me check.",
        reasoning_content="The user wants the weather.",
        tool_calls=[ToolCall(name="weather", arguments='{"city": "Paris"}', id="call_1")],
        token_ids=[10, 11, 12],
        logprobs=[-0.5, -0.25, 0.0],
    )
    data = message.to_dict()
    assert data == {
        "role": "assistant",
        "content": "Let me check.",
        "reasoning_content": "The user wants the weather.",
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
            }
        ],
        "token_ids": [10, 11, 12],
        "logprobs": [-0.5, -0.25, 0.0],
    }
    assert Message.from_dict(data) == message


def test_unset_fields_are_left_out_of_the_dict():
    assert Message(role="user", content="hi").to_dict() == {"role": "user", "content": "hi"}


def test_token_ids_and_flat_logprobs_must_line_up():
    with pytest.raises(ValueError) as excinfo:
        Message(role="assistant", content="x", token_ids=[1, 2, 3], logprobs=[-0.1, -0.2])
    assert "token_ids has 3 ids but logprobs has 2 values" in str(excinfo.value)


def test_provider_logprobs_dict_is_kept_unchanged():
    payload = {"content": [{"token": "Hi", "logprob": -0.3, "bytes": [72, 105], "top_logprobs": []}]}
    message = Message(role="assistant", content="Hi", token_ids=[1, 2], logprobs=payload)
    assert message.logprobs is payload
    assert message.token_ids == [1, 2]


def test_token_ids_must_be_ints():
    with pytest.raises(TypeError, match="token_ids must be a list of ints"):
        Message(role="assistant", content="x", token_ids=[1, "2"])


def test_tool_call_dicts_are_coerced_from_openai_and_flat_shapes():
    message = Message(
        role="assistant",
        tool_calls=[
            {"id": "a", "type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}},
            {"id": "b", "name": "g", "arguments": {"y": [1, 2], "z": "é"}},
        ],
    )
    assert message.tool_calls == [
        ToolCall(name="f", arguments='{"x": 1}', id="a"),
        ToolCall(name="g", arguments='{"y": [1, 2], "z": "é"}', id="b"),
    ]


def test_tool_call_without_name_names_the_message_and_call():
    with pytest.raises(ValueError) as excinfo:
        as_messages([{"role": "user", "content": "q"}, {"role": "assistant", "tool_calls": [{"id": "a"}]}])
    assert str(excinfo.value) == "message 1: assistant message tool_calls[0]: missing function name"


def test_tool_call_parsed_arguments_reports_bad_json():
    assert ToolCall(name="f", arguments='{"a": [1, 2.5, null]}').parsed_arguments() == {"a": [1, 2.5, None]}
    with pytest.raises(ValueError) as excinfo:
        ToolCall(name="f", arguments='{"a": ').parsed_arguments()
    assert str(excinfo.value) == "tool call 'f': arguments are not valid JSON (Expecting value at char 6)"


def test_message_that_is_not_a_mapping_names_its_index():
    with pytest.raises(TypeError) as excinfo:
        as_messages([{"role": "user", "content": "hi"}, ["assistant", "hello"]])
    assert str(excinfo.value) == "message 1 is a list, expected a mapping or Message"


def test_messages_that_are_not_a_list_are_refused():
    with pytest.raises(TypeError, match="messages must be a list, got dict"):
        as_messages({"role": "user", "content": "hi"})


def test_missing_role_and_unknown_field_are_named():
    with pytest.raises(ValueError, match=r"^message 2: missing 'role'$"):
        as_message({"content": "hi"}, 2)
    with pytest.raises(ValueError, match=r"^message 0: unknown field 'mood'$"):
        as_message({"role": "user", "content": "hi", "mood": "happy"}, 0)


def test_empty_provider_extras_and_reasoning_alias_are_accepted():
    message = as_message(
        {
            "role": "assistant",
            "content": "ok",
            "reasoning": "thought",
            "refusal": None,
            "annotations": [],
            "function_call": None,
        }
    )
    assert message == Message(role="assistant", content="ok", reasoning_content="thought")


def test_content_parts_and_text():
    message = Message(
        role="user",
        content=[
            {"type": "text", "text": "look at "},
            {"type": "image_url", "image_url": {"url": "data:,"}},
            {"type": "text", "text": "this"},
        ],
    )
    assert message.text == "look at this"
    assert Message(role="user").text == ""
    with pytest.raises(TypeError, match="content must be a string, a list of parts or None, got int"):
        Message(role="user", content=5)


def test_role_must_be_a_non_empty_string():
    with pytest.raises(ValueError, match="message role must be a non-empty string, got ''"):
        Message(role="")
