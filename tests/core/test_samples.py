from hypothesis import given

from tests.core.strategies import step_chains
from tokenroll.core.attribution import SCAFFOLD, RenderedTokens
from tokenroll.core.messages import Message
from tokenroll.core.steps import Step, fit_to_max_seq_len
from tokenroll.core.trajectory import Trajectory

USER, TOOL = Message(role="user", content="2+2?"), Message(role="tool", content="4")
CALL = Message(role="assistant", content="<calc>")
ANSWER = Message(role="assistant", content="4")


def two_turn_trajectory() -> Trajectory:
    first_attr = RenderedTokens([90, 1, 2, 91], [0, 0, 0, SCAFFOLD], [False] * 4, [False, True, True, False], ["user"])
    second_attr = first_attr.with_message([10, 11, 99], "assistant", sampled=True, is_content=True)
    second_attr = RenderedTokens(
        token_ids=second_attr.token_ids + [92, 3, 93],
        message_indices=second_attr.message_indices + [2, 2, SCAFFOLD],
        sampled_mask=second_attr.sampled_mask + [False] * 3,
        is_content=second_attr.is_content + [False, True, False],
        message_roles=second_attr.message_roles + ["tool"],
        message_tool_names=second_attr.message_tool_names + ["calc"],
    )
    first = Step(
        prompt_ids=[90, 1, 2, 91], completion_ids=[10, 11, 99], prompt_messages=[USER],
        completion_message=CALL, completion_logprobs=[-0.5, -0.25, -0.125], prompt_attribution=first_attr,
        advantage=1.0,
    )
    second = Step(
        prompt_ids=[90, 1, 2, 91, 10, 11, 99, 92, 3, 93], completion_ids=[12, 99],
        prompt_messages=[USER, CALL, TOOL], completion_message=ANSWER, completion_logprobs=[-2.0, -0.0625],
        completion_mask=[True, False], prompt_attribution=second_attr, completion_advantages=[0.5, 0.25],
    )
    return Trajectory(id="t1", steps=[first, second], reward=1.0)


def test_extending_steps_merge_into_one_sample():
    (sample,) = two_turn_trajectory().to_samples()
    assert sample.token_ids == [90, 1, 2, 91, 10, 11, 99, 92, 3, 93, 12, 99]
    assert sample.loss_mask == [False] * 4 + [True] * 3 + [False] * 3 + [True, False]
    assert sample.logprobs == [0.0] * 4 + [-0.5, -0.25, -0.125] + [0.0] * 3 + [-2.0, -0.0625]
    assert sample.advantages == [0.0] * 4 + [1.0, 1.0, 1.0] + [0.0] * 3 + [0.5, 0.25]
    assert sample.step_indices == [0, 1]
    assert sample.is_truncated is False
    attribution = sample.attribution
    assert attribution.token_ids == sample.token_ids
    assert attribution.message_indices == [0, 0, 0, SCAFFOLD, 1, 1, 1, 2, 2, SCAFFOLD, 3, 3]
    assert attribution.message_roles == ["user", "assistant", "tool", "assistant"]
    assert attribution.content_mask_for_roles({"tool"}) == [False] * 8 + [True] + [False] * 3
    assert attribution.sampled_mask == [False] * 4 + [True] * 3 + [False] * 3 + [True, True]


def test_a_step_that_does_not_extend_starts_a_new_sample():
    trajectory = two_turn_trajectory()
    rerendered = Step(prompt_ids=[90, 1, 2, 91, 10, 11, 92, 3, 93], completion_ids=[12, 99], completion_logprobs=[-2.0, -0.0625])
    trajectory.steps[1] = rerendered
    first, second = trajectory.to_samples()
    assert first.token_ids == [90, 1, 2, 91, 10, 11, 99]
    assert first.step_indices == [0]
    assert second.token_ids == [90, 1, 2, 91, 10, 11, 92, 3, 93, 12, 99]
    assert second.loss_mask == [False] * 9 + [True, True]
    assert second.step_indices == [1]
    assert second.advantages is None
    assert second.attribution is None


def test_a_truncated_completion_breaks_the_chain():
    trajectory = two_turn_trajectory()
    trajectory.steps[0] = fit_to_max_seq_len(trajectory.steps[0], 5)
    samples = trajectory.to_samples()
    assert [s.step_indices for s in samples] == [[0], [1]]
    assert samples[0].token_ids == [90, 1, 2, 91, 10]
    assert samples[0].is_truncated is True


def test_missing_logprobs_make_the_sample_logprobs_none():
    trajectory = two_turn_trajectory()
    trajectory.steps[1].completion_logprobs = None
    (sample,) = trajectory.to_samples()
    assert sample.logprobs is None
    assert sample.advantages is not None


def test_prime_rl_export_has_the_trajectory_step_shape():
    exported = two_turn_trajectory().to_prime_rl()
    assert exported[1]["tokens"] == {
        "prompt_ids": [90, 1, 2, 91, 10, 11, 99, 92, 3, 93],
        "prompt_mask": [0] * 10,
        "completion_ids": [12, 99],
        "completion_mask": [1, 0],
        "completion_logprobs": [-2.0, -0.0625],
        "overlong_prompt": False,
        "is_truncated": False,
        "prompt_attribution": {
            "token_ids": [90, 1, 2, 91, 10, 11, 99, 92, 3, 93],
            "message_indices": [0, 0, 0, -1, 1, 1, 1, 2, 2, -1],
            "sampled_mask": [False] * 4 + [True] * 3 + [False] * 3,
            "is_content": [False, True, True, False, True, True, True, False, True, False],
            "message_roles": ["user", "assistant", "tool"],
            "message_tool_names": [None, None, "calc"],
        },
    }
    assert exported[0]["completion_advantages"] == [1.0, 1.0, 1.0]
    assert exported[1]["completion_advantages"] == [0.5, 0.25]
    assert exported[0]["prompt"] == [{"role": "user", "content": "2+2?"}]
    assert exported[0]["completion"] == [{"role": "assistant", "content": "<calc>"}]
    assert exported[1]["reward"] == 1.0 and exported[1]["trajectory_id"] == "t1"


def test_sample_to_dict_flattens_attribution_columns():
    (sample,) = two_turn_trajectory().to_samples()
    data = sample.to_dict()
    assert sorted(data) == sorted([
        "token_ids", "loss_mask", "logprobs", "advantages", "step_indices", "is_truncated",
        "message_indices", "sampled_mask", "is_content", "message_roles", "message_tool_names",
    ])
    assert data["message_roles"] == ["user", "assistant", "tool", "assistant"]


@given(chain=step_chains())
def test_samples_cover_every_step_once_and_stay_aligned(chain):
    samples = Trajectory(steps=chain).to_samples()
    assert [i for s in samples for i in s.step_indices] == list(range(len(chain)))
    for sample in samples:
        n = len(sample.token_ids)
        assert len(sample.loss_mask) == n
        assert sample.logprobs is None or len(sample.logprobs) == n
        assert sample.advantages is None or len(sample.advantages) == n
        assert sample.attribution is None or sample.attribution.token_ids == sample.token_ids
        last = chain[sample.step_indices[-1]]
        assert sample.token_ids == last.prompt_ids + last.completion_ids
        assert not any(chain[i].is_truncated for i in sample.step_indices[:-1])
        assert sum(sample.loss_mask) == sum(sum(chain[i].completion_mask) for i in sample.step_indices)
