"""The `jsonl` environment: question/answer rows from a file, exact-match and regex rewards."""

from __future__ import annotations

import asyncio
import json
import re

import pytest

from tests.render.harness import renderer_at
from tests.sampling.conversations import sampled
from tests.sampling.fakes import Scripted, ScriptedEngine
from tokenroll.core import Message, Step, Trajectory
from tokenroll.core.trajectory import StopReason
from tokenroll.envs.base import Policy
from tokenroll.envs.builtin.jsonl import extracted_answer, jsonl
from tokenroll.envs.datasets import DatasetError


def write_rows(tmp_path, rows, name="qa.jsonl"):
    path = tmp_path / name
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return str(path)


def answered(row, response: str) -> Trajectory:
    """A finished single-turn rollout of `row` that answered `response`."""
    step = Step(
        prompt_ids=[1, 2],
        completion_ids=[3],
        prompt_messages=[Message(role="user", content=row["question"])],
        completion_message=Message(role="assistant", content=response),
    )
    return Trajectory(input=dict(row), steps=[step])


def scores(env, responses: list[str], row_index: int = 0) -> list[float]:
    group = [answered(env.rows[row_index], response) for response in responses]
    asyncio.run(env.score_group(group))
    assert [t.metrics for t in group] == [{"correct": t.reward} for t in group]
    return [t.reward for t in group]


def test_rows_prompt_and_config(tmp_path):
    path = write_rows(tmp_path, [{"question": "2+2?", "answer": "4", "level": 1}, {"question": "Capital of France?", "answer": "Paris"}])
    env = jsonl(path, system_prompt="Answer briefly.")
    assert env.name == "jsonl" and env.pass_metric == "correct"
    assert env.rows == [{"question": "2+2?", "answer": "4", "level": 1}, {"question": "Capital of France?", "answer": "Paris"}]
    assert env.format_prompt(env.rows[0]) == [
        Message(role="system", content="Answer briefly."),
        Message(role="user", content="2+2?"),
    ]


def test_exact_match_strips_both_sides(tmp_path):
    env = jsonl(write_rows(tmp_path, [{"question": "Capital of France?", "answer": " Paris\n"}]))
    assert scores(env, ["Paris", "  Paris \n", "paris", "Paris.", "The answer is Paris", ""]) == [1.0, 1.0, 0.0, 0.0, 0.0, 0.0]


def test_exact_match_with_extract_group(tmp_path):
    env = jsonl(write_rows(tmp_path, [{"question": "2+2?", "answer": "4"}]), extract=r"ANSWER:\s*(\S+)")
    assert scores(env, ["I think... ANSWER: 4", "ANSWER:\n4 because", "ANSWER: 5", "4", "ANSWER:"]) == [1.0, 1.0, 0.0, 0.0, 0.0]


def test_extract_without_a_group_uses_the_whole_match(tmp_path):
    env = jsonl(write_rows(tmp_path, [{"question": "2+2?", "answer": "4"}]), extract=r"\d+")
    # the first match counts, not the last
    assert scores(env, ["it is 4", "4 or 5", "5 or 4", "four"]) == [1.0, 1.0, 0.0, 0.0]


def test_extract_spans_lines(tmp_path):
    env = jsonl(write_rows(tmp_path, [{"question": "poem?", "answer": "a\nb"}]), extract=r"<poem>(.*)</poem>")
    assert scores(env, ["<poem>a\nb</poem>", "<poem>a b</poem>"]) == [1.0, 0.0]


def test_an_extract_group_that_took_no_part_is_no_answer(tmp_path):
    env = jsonl(write_rows(tmp_path, [{"question": "2+2?", "answer": "4"}]), extract=r"ANSWER: (\d+)|I give up")
    group = [answered(env.rows[0], "ANSWER: 4"), answered(env.rows[0], "I give up")]
    asyncio.run(env.score_group(group))
    assert [t.reward for t in group] == [1.0, 0.0]
    assert "reward_errors" not in group[1].extras
    assert extracted_answer("I give up", re.compile(r"ANSWER: (\d+)|I give up")) is None


def test_regex_match_is_a_full_match(tmp_path):
    env = jsonl(write_rows(tmp_path, [{"question": "Year of the moon landing?", "answer": r"(19)?69"}]), match="regex")
    assert scores(env, ["1969", " 69\n", "1969!", "in 1969", "2069"]) == [1.0, 1.0, 0.0, 0.0, 0.0]


def test_regex_match_with_extract(tmp_path):
    path = write_rows(tmp_path, [{"question": "A colour?", "answer": "red|gr[ae]y"}])
    env = jsonl(path, match="regex", extract=r"\[(.*?)\]")
    assert scores(env, ["I pick [grey].", "[gray]", "[red] [blue]", "[blue] [red]", "grey"]) == [1.0, 1.0, 1.0, 0.0, 0.0]


def test_bad_match_is_refused(tmp_path):
    path = write_rows(tmp_path, [{"question": "q", "answer": "a"}])
    with pytest.raises(ValueError) as info:
        jsonl(path, match="fuzzy")
    assert str(info.value) == "match must be one of exact, regex, got 'fuzzy'"


def test_bad_extract_is_a_value_error(tmp_path):
    path = write_rows(tmp_path, [{"question": "q", "answer": "a"}])
    with pytest.raises(ValueError) as info:
        jsonl(path, extract="ANSWER: (")
    assert str(info.value) == "extract is not a valid regular expression (missing ), unterminated subpattern at position 8): 'ANSWER: ('"


def test_bad_regex_answer_names_the_row(tmp_path):
    path = write_rows(tmp_path, [{"question": "q", "answer": "a"}, {"question": "q2", "answer": "[a-"}])
    with pytest.raises(DatasetError) as info:
        jsonl(path, match="regex")
    assert str(info.value) == f"{path}: row 2: 'answer' is not a valid regular expression (unterminated character set at position 0)"
    assert jsonl(path).rows[1]["answer"] == "[a-"  # exact match takes it as text


@pytest.mark.parametrize(("row", "kind"), [({"question": "q"}, "missing"), ({"question": "q", "answer": 4}, "int"), ({"question": "q", "answer": None}, "null")])
def test_rows_need_a_string_answer(tmp_path, row, kind):
    path = write_rows(tmp_path, [{"question": "ok", "answer": "yes"}, row])
    with pytest.raises(DatasetError) as info:
        jsonl(path)
    assert str(info.value) == f"{path}: row 2 needs a string 'answer' field"


def test_a_missing_file_is_a_dataset_error(tmp_path):
    path = tmp_path / "absent.jsonl"
    with pytest.raises(DatasetError) as info:
        jsonl(str(path))
    assert str(info.value) == f"cannot read dataset {path}: No such file or directory"


def test_rollout_and_score_through_a_real_renderer(tmp_path):
    r = renderer_at("qwen3")
    env = jsonl(write_rows(tmp_path, [{"question": "Capital of France?", "answer": "Paris"}]), system_prompt="Be terse.")
    row = env.rows[0]
    prompt = env.format_prompt(row)
    completion = sampled(r, [*prompt, Message(role="assistant", content="Paris")], 2, tools=None)
    engine = ScriptedEngine([Scripted(completion)])
    trajectory = asyncio.run(env.rollout(Policy(engine, r), row))
    assert trajectory.stop_reason is StopReason.COMPLETED and trajectory.error is None
    assert len(trajectory.steps) == 1
    assert engine.prompts == [r.render_ids(prompt, add_generation_prompt=True)]
    assert trajectory.steps[0].completion_ids == completion
    asyncio.run(env.score_group([trajectory]))
    assert (trajectory.reward, trajectory.metrics) == (1.0, {"correct": 1.0})
