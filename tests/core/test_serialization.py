import math

import orjson
import pytest
from hypothesis import given

from tests.core.strategies import trajectories
from tokenroll.core.attribution import SCAFFOLD, RenderedTokens
from tokenroll.core.messages import Message
from tokenroll.core.serialization import append_jsonl, dumps_trajectory, loads_trajectory, read_jsonl, repair_jsonl
from tokenroll.core.steps import Step
from tokenroll.core.trajectory import StopReason, Trajectory


def tool_loop(turns: int) -> Trajectory:
    """A tool-use rollout whose every prompt extends the previous prompt and completion."""
    messages = [Message(role="system", content="You are a calculator."), Message(role="user", content="Add up.")]
    ids = [1, 2, 3, 4, 5, 6, 7, 8]
    attribution = RenderedTokens(ids, [0, 0, 0, 1, 1, 1, SCAFFOLD, SCAFFOLD], [False] * 8, [False, True, False] * 2 + [False, False], ["system", "user"])
    steps = []
    for turn in range(turns):
        completion = [1000 + turn, 1001 + turn, 1002 + turn, 1003 + turn, 9]
        reply = Message(role="assistant", content=f"call {turn}")
        steps.append(
            Step(
                prompt_ids=list(ids), completion_ids=completion, prompt_messages=list(messages),
                completion_message=reply, completion_logprobs=[-0.5 - turn / 1000] * 5,
                prompt_attribution=attribution, advantage=0.5, completion_advantages=[0.5] * 5,
                finish_reason="tool_calls",
            )
        )
        result = [2000 + turn, 2001 + turn, 2002 + turn]
        tool = Message(role="tool", content=f"result {turn}", tool_call_id=f"c{turn}")
        messages += [reply, tool]
        ids = ids + completion + [11, *result, 12, 13]
        attribution = attribution.with_message(completion, "assistant", sampled=True, is_content=True)
        n = len(attribution.message_roles)
        attribution = RenderedTokens(
            ids,
            attribution.message_indices + [n, n, n, n, SCAFFOLD, SCAFFOLD],
            attribution.sampled_mask + [False] * 6,
            attribution.is_content + [False, True, True, True, False, False],
            attribution.message_roles + ["tool"],
            attribution.message_tool_names + ["add"],
        )
    return Trajectory(id=f"loop-{turns}", input={"question": "sum"}, steps=steps, reward=1.0, stop_reason=StopReason.COMPLETED)


def test_round_trip_is_exact_for_a_multi_turn_tool_loop():
    trajectory = tool_loop(5)
    assert loads_trajectory(dumps_trajectory(trajectory)) == trajectory
    assert Trajectory.from_json(trajectory.to_json()) == trajectory


def test_line_size_grows_linearly_with_turns():
    size_32 = len(dumps_trajectory(tool_loop(32)))
    size_64 = len(dumps_trajectory(tool_loop(64)))
    # Quadratic storage of prompts would make this about 4.
    assert size_64 / size_32 < 2.1


def test_attribution_is_stored_once_and_prompts_as_tails():
    data = orjson.loads(dumps_trajectory(tool_loop(2)))
    first, second = data["steps"]
    assert "token_ids" not in first["prompt_attribution"]
    assert first["prompt_attribution"]["message_indices"] == [0, 3, 1, 3, SCAFFOLD, 2]
    assert second["prompt_ids"] == {"tail": [11, 2000, 2001, 2002, 12, 13]}
    assert second["prompt_messages"] == {"tail": [{"role": "tool", "content": "result 0", "tool_call_id": "c0"}]}
    assert second["prompt_attribution"]["message_roles"] == {"tail": ["assistant", "tool"]}
    assert second["completion_advantages"] == [0.5, 5]
    assert "completion_mask" not in second


def test_a_prompt_that_does_not_extend_is_stored_whole():
    trajectory = tool_loop(2)
    trajectory.steps[1].prompt_ids[4] = 77
    trajectory.steps[1].prompt_attribution = None
    data = orjson.loads(dumps_trajectory(trajectory))
    assert data["steps"][1]["prompt_ids"][:6] == [1, 2, 3, 4, 77, 6]
    assert loads_trajectory(dumps_trajectory(trajectory)) == trajectory


@given(trajectory=trajectories())
def test_round_trip_is_exact(trajectory):
    line = dumps_trajectory(trajectory)
    assert b"\n" not in line
    assert loads_trajectory(line) == trajectory


def test_non_finite_numbers_are_refused_with_their_place():
    trajectory = tool_loop(2)
    trajectory.steps[1].completion_logprobs[3] = math.nan
    with pytest.raises(ValueError) as excinfo:
        dumps_trajectory(trajectory)
    assert str(excinfo.value) == (
        "trajectory 'loop-2' step 1 completion_logprobs[3] is nan: JSON cannot store non-finite numbers"
    )
    trajectory = tool_loop(1)
    trajectory.metrics["kl"] = math.inf
    with pytest.raises(ValueError, match=r"trajectory 'loop-1' metrics\['kl'\] is inf"):
        dumps_trajectory(trajectory)


def test_values_json_cannot_hold_are_refused():
    with pytest.raises(ValueError, match="trajectory 'x' cannot be written as JSON: Type is not JSON serializable: set"):
        dumps_trajectory(Trajectory(id="x", input={"tags": {"a"}}))


def test_bad_lines_name_what_is_wrong(tmp_path):
    with pytest.raises(ValueError, match="unsupported trajectory format 7"):
        loads_trajectory(b'{"format": 7}')
    with pytest.raises(ValueError, match="missing field 'rollout_index'"):
        loads_trajectory(b'{"format": 1, "id": "a", "steps": []}')
    line = orjson.loads(dumps_trajectory(tool_loop(2)))
    del line["steps"][1]["completion_ids"]
    with pytest.raises(ValueError, match="^step 1: missing field 'completion_ids'$"):
        loads_trajectory(orjson.dumps(line))
    line = orjson.loads(dumps_trajectory(tool_loop(1)))
    line["steps"][0]["prompt_ids"] = {"tail": [1]}
    with pytest.raises(ValueError, match="^step 0: a column stored as a tail has no previous step to extend$"):
        loads_trajectory(orjson.dumps(line))


def test_append_and_read_back(tmp_path):
    path = tmp_path / "results.jsonl"
    append_jsonl(path, [tool_loop(1), tool_loop(2)])
    append_jsonl(path, [tool_loop(3)])
    assert read_jsonl(path) == [tool_loop(1), tool_loop(2), tool_loop(3)]


def test_an_encoding_error_writes_nothing(tmp_path):
    path = tmp_path / "results.jsonl"
    append_jsonl(path, [tool_loop(1)])
    before = path.read_bytes()
    with pytest.raises(ValueError):
        append_jsonl(path, [tool_loop(2), Trajectory(id="bad", input={"x": {1, 2}})])
    assert path.read_bytes() == before


def test_a_torn_final_line_is_skipped_then_repaired_before_appending(tmp_path, caplog):
    path = tmp_path / "results.jsonl"
    append_jsonl(path, [tool_loop(1)])
    whole = path.read_bytes()
    with open(path, "ab") as file:
        file.write(dumps_trajectory(tool_loop(2))[:100])
    assert read_jsonl(path) == [tool_loop(1)]
    assert "skipping a line cut short" in caplog.text
    append_jsonl(path, [tool_loop(3)])
    assert path.read_bytes().startswith(whole)
    assert read_jsonl(path) == [tool_loop(1), tool_loop(3)]
    assert repair_jsonl(path) == 0


def test_repair_of_a_file_holding_only_a_torn_line(tmp_path):
    path = tmp_path / "results.jsonl"
    path.write_bytes(b'{"format": 1, "id"')
    assert repair_jsonl(path) == 18
    assert path.read_bytes() == b""
    assert repair_jsonl(tmp_path / "absent.jsonl") == 0


def test_a_corrupt_line_names_file_and_line(tmp_path):
    path = tmp_path / "results.jsonl"
    append_jsonl(path, [tool_loop(1)])
    with open(path, "ab") as file:
        file.write(b'{"format": 1, "id": 3\n')
    with pytest.raises(ValueError, match=rf"^{path}:2: not valid JSON"):
        read_jsonl(path)
