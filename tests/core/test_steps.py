import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.core.strategies import steps
from tokenroll.core.attribution import SCAFFOLD, RenderedTokens
from tokenroll.core.messages import Message
from tokenroll.core.steps import Step, fit_to_max_seq_len


def make_step(**overrides) -> Step:
    fields = dict(
        prompt_ids=[1, 2, 3, 4, 5],
        completion_ids=[6, 7, 8],
        prompt_messages=[{"role": "user", "content": "hi"}],
        completion_message=Message(role="assistant", content="yo"),
        completion_logprobs=[-0.5, -1.0, -1.5],
        completion_mask=[True, False, True],
        completion_advantages=[0.25, 0.5, 0.75],
        prompt_attribution=RenderedTokens(
            [1, 2, 3, 4, 5], [0, 0, 0, 0, SCAFFOLD], [False] * 5, [False, True, True, False, False], ["user"]
        ),
        extras={"turn": 0},
    )
    fields.update(overrides)
    return Step(**fields)


def test_prompt_messages_are_coerced_and_mask_defaults_to_all_true():
    step = Step(prompt_ids=[1], completion_ids=[2, 3], prompt_messages=[{"role": "user", "content": "q"}])
    assert step.prompt_messages == [Message(role="user", content="q")]
    assert step.completion_mask == [True, True]
    assert step.num_tokens == 3


@pytest.mark.parametrize("name", ["completion_logprobs", "completion_mask", "completion_advantages"])
def test_per_completion_lists_must_match_completion_length(name):
    with pytest.raises(ValueError) as excinfo:
        make_step(**{name: [0.0, 0.0]})
    assert str(excinfo.value) == f"step {name} has 2 values but completion_ids has 3 tokens"


def test_attribution_must_describe_exactly_the_prompt():
    with pytest.raises(ValueError, match="attribution must describe exactly the prompt"):
        make_step(prompt_attribution=RenderedTokens([1, 2], [0, 0], [False] * 2, [True] * 2, ["user"]))


def test_bad_prompt_message_names_its_index():
    with pytest.raises(TypeError, match="^message 1 is a str, expected a mapping or Message$"):
        make_step(prompt_messages=[{"role": "user", "content": "a"}, "b"])


def test_fit_returns_the_same_step_when_it_fits():
    step = make_step()
    assert fit_to_max_seq_len(step, 8) is step


def test_fit_cuts_the_completion_when_prompt_plus_completion_overflows():
    step = make_step()
    fitted = fit_to_max_seq_len(step, 6)
    assert fitted.prompt_ids == [1, 2, 3, 4, 5]
    assert fitted.completion_ids == [6]
    assert fitted.completion_logprobs == [-0.5]
    assert fitted.completion_mask == [True]
    assert fitted.completion_advantages == [0.25]
    assert fitted.prompt_attribution == step.prompt_attribution
    assert (fitted.is_truncated, fitted.overlong_prompt) == (True, False)
    # The input step is left as it was.
    assert step.completion_ids == [6, 7, 8] and step.is_truncated is False


def test_fit_cuts_the_prompt_and_empties_the_completion_when_the_prompt_overflows():
    fitted = fit_to_max_seq_len(make_step(), 3)
    assert fitted.prompt_ids == [1, 2, 3]
    assert fitted.completion_ids == []
    assert fitted.completion_logprobs == []
    assert fitted.completion_mask == []
    assert fitted.completion_advantages == []
    assert fitted.prompt_attribution == RenderedTokens([1, 2, 3], [0, 0, 0], [False] * 3, [False, True, True], ["user"])
    assert (fitted.is_truncated, fitted.overlong_prompt) == (True, True)
    assert fitted.extras == {"turn": 0}


def test_prompt_exactly_at_the_limit_keeps_the_prompt_and_drops_the_completion():
    fitted = fit_to_max_seq_len(make_step(), 5)
    assert (fitted.prompt_ids, fitted.completion_ids) == ([1, 2, 3, 4, 5], [])
    assert (fitted.is_truncated, fitted.overlong_prompt) == (True, False)


@pytest.mark.parametrize("bad", [-1, 2.5, True, None, "8"])
def test_bad_max_seq_len_is_refused(bad):
    with pytest.raises(ValueError) as excinfo:
        fit_to_max_seq_len(make_step(), bad)
    assert str(excinfo.value) == f"max_seq_len must be a non-negative integer, got {bad!r}"


@given(step=steps(), max_seq_len=st.integers(0, 30))
def test_fit_keeps_every_per_token_list_in_lockstep(step, max_seq_len):
    fitted = fit_to_max_seq_len(step, max_seq_len)
    assert fitted.num_tokens <= max_seq_len
    assert fitted.prompt_ids == step.prompt_ids[: len(fitted.prompt_ids)]
    assert fitted.completion_ids == step.completion_ids[: len(fitted.completion_ids)]
    n = len(fitted.completion_ids)
    assert len(fitted.completion_mask) == n
    for column in (fitted.completion_logprobs, fitted.completion_advantages):
        assert column is None or len(column) == n
    if fitted.prompt_attribution is not None:
        attribution = fitted.prompt_attribution
        assert attribution.token_ids == fitted.prompt_ids
        assert len(attribution.message_indices) == len(attribution.sampled_mask) == len(attribution.is_content) == len(fitted.prompt_ids)
        assert attribution.message_roles == step.prompt_attribution.message_roles
    if step.num_tokens > max_seq_len:
        assert fitted.is_truncated
        assert fitted.overlong_prompt == (step.overlong_prompt or len(step.prompt_ids) > max_seq_len)
    else:
        assert fitted is step
