"""The `cruxeval-output` environment: answer extraction, sandbox checks, and the official evaluator's pass@k."""

from __future__ import annotations

import asyncio

import pytest

from tests.render.harness import renderer_at
from tests.sampling.conversations import sampled
from tests.sampling.fakes import Scripted, ScriptedEngine
from tokenroll.core import Message, Trajectory
from tokenroll.core.trajectory import StopReason
from tokenroll.envs.base import Policy
from tokenroll.envs.builtin.cruxeval_output import SYSTEM_PROMPT, cruxeval_output, extract_prediction
from tokenroll.traces.cruxeval import score_output_predictions
from tokenroll.traces.tasks import TaskFileError, TraceTask

# The first three CRUXEval samples, as the environment's rows.
ROW_0 = {
    "id": "sample_0",
    "code": "def f(nums):\n    output = []\n    for n in nums:\n        output.append((nums.count(n), n))\n"
    "    output.sort(reverse=True)\n    return output",
    "call": "f([1, 1, 3, 1, 3, 1])",
    "answer": "[(4, 1), (4, 1), (4, 1), (4, 1), (2, 3), (2, 3)]",
}


@pytest.fixture(scope="module")
def env():
    environment = cruxeval_output(workers=2)
    yield environment
    environment.close()


@pytest.mark.parametrize(
    ("response", "prediction"),
    [
        ("[ANSWER]assert f(1) == 3[/ANSWER]", "3"),
        ("[ANSWER]\nassert f([1, 2]) == [2, 1]\n[/ANSWER]", "[2, 1]"),
        ("[ANSWER] [1, 2] [/ANSWER]", "[1, 2]"),
        ("Let me think. [ANSWER] 3 [/ANSWER] No, wait: [ANSWER] 4 [/ANSWER]", "4"),  # the last block
        ("[ANSWER]\n'abc'\n", "'abc'"),  # a block the model did not close
        ("[ANSWER]assert f(1) == 'a == b'[/ANSWER]", "'a == b'"),  # split at the first ==
        ("[ANSWER]assert f(x)[/ANSWER]", "assert f(x)"),  # an assertion without == is kept whole
        ("  {'a': 1}  ", "{'a': 1}"),  # no block: the whole response
        ("", ""),
    ],
)
def test_extract_prediction(response, prediction):
    assert extract_prediction(response) == prediction


def test_rows_and_prompt(env):
    assert len(env.rows) == 800
    assert env.rows[0] == ROW_0
    assert (env.name, env.pass_metric, env.sampling) == ("cruxeval-output", "correct", {"max_tokens": 256})
    assert env.format_prompt(ROW_0) == [
        Message(role="system", content=SYSTEM_PROMPT),
        Message(role="user", content=f"```python\n{ROW_0['code']}\nassert f([1, 1, 3, 1, 3, 1]) == ??\n```"),
    ]


def test_a_task_file_without_outputs_is_refused(tmp_path):
    path = tmp_path / "tasks.jsonl"
    path.write_text('{"code": "def f(x):\\n    return x", "input": "1", "output": "1"}\n'
                    '{"code": "def f(x):\\n    return x", "input": "2"}\n', encoding="utf-8")
    with pytest.raises(TaskFileError) as info:
        cruxeval_output(str(path))
    assert str(info.value) == f"{path}: 1 rows have no expected output (field 'output'), e.g. line_2"


def test_a_task_file_of_its_own(tmp_path):
    path = tmp_path / "tasks.jsonl"
    path.write_text('{"id": "t1", "code": "def f(x):\\n    return x * 2", "input": "21", "output": "42"}\n', encoding="utf-8")
    environment = cruxeval_output(str(path))
    assert environment.rows == [{"id": "t1", "code": "def f(x):\n    return x * 2", "call": "f(21)", "answer": "42"}]


def answer_turn(text: str) -> Message:
    return Message(role="assistant", content=text)


def rollout(env, row, response: str) -> Trajectory:
    """One rollout of `row` whose model answers `response`, through the real Qwen3 renderer."""
    r = renderer_at("qwen3")
    prompt = env.format_prompt(row)
    engine = ScriptedEngine([Scripted(sampled(r, [*prompt, answer_turn(response)], len(prompt), tools=None))])
    trajectory = asyncio.run(env.rollout(Policy(engine, r), row))
    assert trajectory.stop_reason is StopReason.COMPLETED and trajectory.error is None
    assert trajectory.steps[0].completion_message.content == response
    return trajectory


def scored(env, row, responses: list[str], example_id=0) -> list[Trajectory]:
    group = [rollout(env, row, response) for response in responses]
    for index, trajectory in enumerate(group):
        trajectory.example_id, trajectory.rollout_index = example_id, index
    asyncio.run(env.score_group(group))
    return group


def test_the_true_output_scores_one(env):
    [trajectory] = scored(env, ROW_0, [f"[ANSWER]assert {ROW_0['call']} == {ROW_0['answer']}[/ANSWER]"])
    assert (trajectory.reward, trajectory.metrics) == (1.0, {"correct": 1.0})
    assert trajectory.extras["state"] == {"prediction": ROW_0["answer"], "checked": True}


def test_an_equal_value_written_differently_scores_one(env):
    # the check runs `assert <expected> == <prediction>`, so any equal literal passes
    [trajectory] = scored(env, ROW_0, ["[ANSWER][(4, 1)] * 4 + [(2, 3), (2, 3)][/ANSWER]"])
    assert trajectory.reward == 1.0


def test_a_wrong_output_scores_zero(env):
    [wrong, broken] = scored(env, ROW_0, ["[ANSWER][(4, 1), (2, 3)][/ANSWER]", "[ANSWER][(4, 1),[/ANSWER]"])
    assert (wrong.reward, wrong.extras["state"]) == (0.0, {"prediction": "[(4, 1), (2, 3)]", "checked": False})
    assert (broken.reward, broken.extras["state"]["checked"]) == (0.0, False)  # a syntax error fails the check


def test_a_prediction_containing_the_call_is_skipped(env):
    response = f"[ANSWER]assert {ROW_0['call']} == {ROW_0['call']}[/ANSWER]"
    [trajectory] = scored(env, ROW_0, [response])
    assert (trajectory.reward, trajectory.metrics) == (0.0, {"correct": 0.0})
    assert trajectory.extras["state"] == {"prediction": ROW_0["call"], "skipped": True}


def test_summarize_equals_the_official_evaluator(env):
    rows = env.rows[:3]
    wrong = "None"

    def true_output(row):
        return row["answer"]

    def the_call(row):
        return row["call"]

    # Per example, five rollouts: true outputs, wrong ones, and predictions that contain the call.
    plans = [
        [true_output, lambda row: wrong, the_call, lambda row: wrong, lambda row: wrong],  # n = 4, c = 1
        [lambda row: wrong, the_call, lambda row: wrong, the_call, lambda row: wrong],  # no pass: n back to 5
        [the_call, the_call, the_call, the_call, the_call],  # all skipped: n = 5, c = 0
    ]
    predictions = {f"sample_{e}": [make(row) for make in plan] for e, (row, plan) in enumerate(zip(rows, plans))}
    trajectories = []
    for e, row in enumerate(rows):
        responses = [f"Thinking...\n[ANSWER]\nassert {row['call']} == {p}\n[/ANSWER]" for p in predictions[f"sample_{e}"]]
        trajectories += scored(env, row, responses, example_id=e)
    assert [t.reward for t in trajectories] == [1.0] + [0.0] * 14

    summary = env.summarize(trajectories)
    tasks = [TraceTask(id=row["id"], code=row["code"], call=row["call"], expected_output=row["answer"]) for row in rows]
    official = score_output_predictions(predictions, tasks)
    assert official.results == {
        "sample_0": [True, False, False, False],
        "sample_1": [False] * 5,
        "sample_2": [False] * 5,
    }
    assert summary == {"pass_at_k": {"1": official.pass_at_1, "5": official.pass_at_5}}
    assert summary == {"pass_at_k": {"1": 0.25 / 3 * 100, "5": 1.0 / 3 * 100}}


def test_summarize_with_several_passes(env):
    rows = env.rows[3:5]
    predictions = {
        "sample_0": [rows[0]["answer"], rows[0]["answer"], "0", rows[0]["call"]],
        "sample_1": ["0", rows[1]["answer"], "0", "0", "0", "0"],
    }
    trajectories = []
    for e, row in enumerate(rows):
        trajectories += scored(env, row, [f"[ANSWER]{p}[/ANSWER]" for p in predictions[f"sample_{e}"]], example_id=e)
    tasks = [TraceTask(id=row["id"], code=row["code"], call=row["call"], expected_output=row["answer"]) for row in rows]
    official = score_output_predictions(predictions, tasks)
    assert official.skipped == 1
    # The fewest rollouts of an example is 4: pass@5 would be the estimator's 1.0-for-anything, so it is left out.
    assert env.summarize(trajectories) == {"pass_at_k": {"1": official.pass_at_1}}
    assert official.pass_at_1 == pytest.approx((2 / 3 + 1 / 6) / 2 * 100)
