import pytest

from tokenroll.viewer.tokens import EMPTY, is_special, token_label, visible_text, vocab_payload


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("Hello", "Hello"),
        (" world", "·world"),
        ("\n", "↵"),
        ("}}\n", "}}↵"),
        ("\t\tx", "→→x"),
        ("\r\n", "␍↵"),
        ("\x00\x1b\x7f", "␀␛␡"),
        ("", EMPTY),
    ],
)
def test_whitespace_and_control_characters_are_made_visible(text, shown):
    assert visible_text(text) == shown


@pytest.mark.parametrize(
    "text",
    ["<|im_start|>", "<|im_end|>", "<｜begin▁of▁sentence｜>", "<think>", "</tool_call>", "</s>", "<start_of_turn>",
     "[INST]", "[/INST]", "[TOOL_CALLS]"],
)
def test_added_tokens_of_the_supported_families_are_special(text):
    assert is_special(text)


@pytest.mark.parametrize("text", ["Hello", " <", "<", "|>", "< a>", "[a]", "[1]", "<|im_start|> x", "a<b>"])
def test_ordinary_text_is_not_special(text):
    assert not is_special(text)


def test_token_label_without_a_vocab_shows_the_id():
    assert token_label(None, 42) == ("#42", False)
    assert token_label({1: "x"}, 42) == ("#42", False)
    assert token_label({42: " <|im_end|>"}, 42) == ("·<|im_end|>", False)
    assert token_label({42: "<|im_end|>"}, 42) == ("<|im_end|>", True)


def test_vocab_payload_keeps_the_ids_used_with_special_and_line_end_flags():
    vocab = {1: "a", 2: "\n", 3: "<|im_end|>", 4: "unused", 5: " b\n"}
    assert vocab_payload(vocab, [3, 1, 2, 5, 3, 9]) == {
        "text": {"1": "a", "2": "↵", "3": "<|im_end|>", "5": "·b↵"},
        "special": [3],
        "newline": [2, 5],
    }
    assert vocab_payload(None, [1]) == {"text": {}, "special": [], "newline": []}
