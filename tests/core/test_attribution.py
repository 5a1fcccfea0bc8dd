import pytest

from tokenroll.core.attribution import SCAFFOLD, RenderedTokens


def chat_attribution() -> RenderedTokens:
    # system(0) user(1) assistant(2) tool(3), then a generation prompt of scaffolding.
    return RenderedTokens(
        token_ids=[100, 1, 2, 101, 100, 3, 4, 101, 100, 5, 6, 102, 100, 7, 8, 9, 101, 100],
        message_indices=[0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 3, SCAFFOLD],
        sampled_mask=[False] * 9 + [True, True, True] + [False] * 6,
        is_content=[False, True, True, False, False, True, True, False, False, True, True, True,
                    False, True, True, True, False, False],
        message_roles=["system", "user", "assistant", "tool"],
        message_tool_names=[None, None, None, "search"],
    )


def test_content_mask_for_tool_role_selects_exactly_tool_bodies():
    mask = chat_attribution().content_mask_for_roles({"tool"})
    assert [i for i, m in enumerate(mask) if m] == [13, 14, 15]


def test_content_mask_for_several_roles():
    mask = chat_attribution().content_mask_for_roles({"user", "assistant"})
    assert [i for i, m in enumerate(mask) if m] == [5, 6, 9, 10, 11]
    assert chat_attribution().content_mask_for_roles(set()) == [False] * 18


def test_message_spans():
    assert chat_attribution().message_spans() == [(0, 4), (4, 8), (8, 12), (12, 17)]
    attribution = RenderedTokens([1], [SCAFFOLD], [False], [False], ["user"])
    assert attribution.message_spans() == [None]


def test_slice_cuts_per_token_lists_and_keeps_per_message_lists():
    cut = chat_attribution().slice(2, 10)
    assert cut.token_ids == [2, 101, 100, 3, 4, 101, 100, 5]
    assert cut.message_indices == [0, 0, 1, 1, 1, 1, 2, 2]
    assert cut.sampled_mask == [False] * 7 + [True]
    assert cut.is_content == [True, False, False, True, True, False, False, True]
    assert cut.message_roles == ["system", "user", "assistant", "tool"]
    assert cut.message_tool_names == [None, None, None, "search"]


def test_with_message_appends_a_message():
    extended = RenderedTokens([1, 2], [0, SCAFFOLD], [False, False], [True, False], ["user"]).with_message(
        [7, 8], "assistant", sampled=True, is_content=True
    )
    assert extended == RenderedTokens(
        [1, 2, 7, 8], [0, SCAFFOLD, 1, 1], [False, False, True, True], [True, False, True, True],
        ["user", "assistant"], [None, None],
    )


def test_per_token_lists_of_different_lengths_are_refused():
    with pytest.raises(ValueError) as excinfo:
        RenderedTokens([1, 2, 3], [0, 0], [False] * 3, [True] * 3, ["user"])
    assert str(excinfo.value) == (
        "RenderedTokens per-token lists differ in length: token_ids=3, message_indices=2, "
        "sampled_mask=3, is_content=3"
    )


def test_per_message_lists_of_different_lengths_are_refused():
    with pytest.raises(ValueError, match="message_roles=1, message_tool_names=2"):
        RenderedTokens([1], [0], [False], [True], ["user"], [None, None])


def test_message_index_out_of_range_is_named():
    with pytest.raises(ValueError) as excinfo:
        RenderedTokens([1, 2], [0, 1], [False] * 2, [True] * 2, ["user"])
    assert str(excinfo.value) == (
        "RenderedTokens message index 1 at token 1 is out of range for 1 messages (scaffolding is -1)"
    )
    with pytest.raises(ValueError, match="message index -2 at token 0"):
        RenderedTokens([1], [-2], [False], [True], ["user"])


def test_concat_shifts_the_second_part_s_messages():
    first = RenderedTokens([1, 2], [0, SCAFFOLD], [False, False], [True, False], ["user"])
    second = RenderedTokens([7, 8, 9], [0, 0, 1], [True, True, False], [True, True, True], ["assistant", "tool"], [None, "add"])
    assert first.concat(second) == RenderedTokens(
        [1, 2, 7, 8, 9], [0, SCAFFOLD, 1, 1, 2], [False, False, True, True, False], [True, False, True, True, True],
        ["user", "assistant", "tool"], [None, None, "add"],
    )


def test_concat_can_keep_only_a_prefix_of_the_first_part():
    first = RenderedTokens([1, 2, 3], [0, SCAFFOLD, SCAFFOLD], [False] * 3, [True, False, False], ["user"])
    second = RenderedTokens([3, 7], [0, 0], [False, True], [False, True], ["assistant"])
    joined = first.concat(second, keep=2)
    assert joined.token_ids == [1, 2, 3, 7]
    assert joined.message_indices == [0, SCAFFOLD, 1, 1]
    assert joined.sampled_mask == [False, False, False, True]
