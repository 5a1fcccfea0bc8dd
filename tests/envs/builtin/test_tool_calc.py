"""The `tool-calc` environment: the calculator tool, its questions, its reward, and whole rollouts."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.render.harness import renderer_at
from tests.sampling.conversations import sampled
from tests.sampling.fakes import Scripted, ScriptedEngine
from tokenroll.core import Message, ToolCall
from tokenroll.core.trajectory import StopReason
from tokenroll.envs import ERROR_PREFIX
from tokenroll.envs.base import Limits, Policy
from tokenroll.envs.builtin.tool_calc import SYSTEM_PROMPT, calculator, correct, make_rows, tool_calc, used_calculator

# --- the calculator ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "result"),
    [
        ("2 + 3", "5"),
        ("2 - 3", "-1"),
        ("6 * 7", "42"),
        ("7 / 2", "3.5"),
        ("6 / 3", "2"),  # a whole float is printed as an integer
        ("1 / 3", "0.3333333333333333"),
        ("7 // 2", "3"),
        ("-7 // 2", "-4"),
        ("7 % 3", "1"),
        ("-7 % 3", "2"),
        ("2 ** 10", "1024"),
        ("2 ** -2", "0.25"),
        ("2 ** 0.5", "1.4142135623730951"),
        ("-3", "-3"),
        ("--3", "3"),
        ("+4", "4"),
        ("-(2 + 3) * 4", "-20"),
        ("(3 + 4) * 5", "35"),
        ("2 + 3 * 4 ** 2", "50"),
        ("0.1 + 0.2", "0.30000000000000004"),
        ("1e3", "1000"),
        ("10 ** 64", "1" + "0" * 64),
        ("(2 ** 64) ** 63", str(2**4032)),  # 4032 bits: within the limit
        ("10.0 ** 15", "1000000000000000"),
        ("10.0 ** 20", "1e+20"),  # past 2 ** 53 a whole float is not printed as if its digits were exact
        ("10.0 ** 64", "1e+64"),  # not 10000000000000000213204190094543968723012578712679649467743338496
        ("   12 +  30  ", "42"),
        ("\n(1 +\n 2)\n", "3"),
    ],
)
def test_calculator_results(expression, result):
    assert calculator(expression) == result


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("x", "unsupported element 'x': only numbers and + - * / // % ** are allowed"),
        ("x + 1", "unsupported element 'x': only numbers and + - * / // % ** are allowed"),
        ("abs(-3)", "unsupported element 'abs(-3)': only numbers and + - * / // % ** are allowed"),
        ("__import__('os').system('ls')", "unsupported element \"__import__('os').system('ls')\": only numbers and + - * / // % ** are allowed"),
        ("(1).real", "unsupported element '1 .real': only numbers and + - * / // % ** are allowed"),
        ("True + 1", "unsupported element 'True': only numbers and + - * / // % ** are allowed"),
        ("'a' * 3", "unsupported element \"'a'\": only numbers and + - * / // % ** are allowed"),
        ("1 < 2", "unsupported element '1 < 2': only numbers and + - * / // % ** are allowed"),
        ("~1", "unsupported element '~1': only numbers and + - * / // % ** are allowed"),
        ("1 << 70", "unsupported element '1 << 70': only numbers and + - * / // % ** are allowed"),
        ("2 ** 65", "exponent 65 is too large (at most 64)"),
        ("2 ** -65", "exponent -65 is too large (at most 64)"),
        ("9 ** 9 ** 9", "exponent 387420489 is too large (at most 64)"),
        ("((9 ** 64) ** 64) ** 64", "the result of a power is too large (more than 4096 bits)"),
        ("(2 ** 64) ** 64", "the result of a power is too large (more than 4096 bits)"),
        ("(-8) ** 0.5", "'(-8) ** 0.5' is not a real number"),
        ("1 +", "not an arithmetic expression: '1 +'"),
        ("", "not an arithmetic expression: ''"),
        ("import os", "not an arithmetic expression: 'import os'"),
    ],
)
def test_calculator_refuses(expression, message):
    with pytest.raises(ValueError) as info:
        calculator(expression)
    assert str(info.value) == message


def test_division_by_zero_raises():
    with pytest.raises(ZeroDivisionError):
        calculator("1 / (2 - 2)")


def test_nested_powers_are_refused_quickly():
    # Each level keeps the exponent at 64 but multiplies the result's size by 64; without a
    # limit on the result, the fifth level would need a 1-gigabit integer.
    with pytest.raises(ValueError, match="too large"):
        calculator("((((3 ** 64) ** 64) ** 64) ** 64) ** 64")


# --- questions and reward ----------------------------------------------------------------


def test_make_rows_is_deterministic_for_a_seed():
    rows = make_rows(3, seed=0)
    assert rows == [
        {"id": "calc-0", "question": "What is 876 - 51 + 777?", "answer": "1602"},
        {"id": "calc-1", "question": "What is 277 - 67 - 498?", "answer": "-288"},
        {"id": "calc-2", "question": "What is 500 + 47 + 598?", "answer": "1145"},
    ]
    assert make_rows(3, seed=0) == rows
    assert make_rows(3, seed=1) != rows
    assert make_rows(5, seed=0)[:3] == rows  # a longer run starts with the same questions
    for row in make_rows(50, seed=4):
        expression = row["question"].removeprefix("What is ").removesuffix("?")
        assert row["answer"] == str(eval(expression))  # noqa: S307 - our own generated arithmetic


@pytest.mark.parametrize(
    ("response", "answer", "score"),
    [
        ("1602", "1602", 1.0),
        ("The answer is 1602.", "1602", 1.0),
        ("1,602", "1602", 1.0),
        ("1602.0", "1602", 1.0),
        ("876 - 51 + 777 = 1602", "1602", 1.0),
        ("-288", "-288", 1.0),
        ("It is 288", "-288", 0.0),
        ("1602 is wrong, it is 1603", "1602", 0.0),  # the last number counts
        ("I don't know", "1602", 0.0),
        ("", "1602", 0.0),
    ],
)
def test_correct(response, answer, score):
    assert correct(response, answer) == score


def test_used_calculator():
    assert used_calculator({"tool_calls": 2, "tool_errors": 0}) == 1.0
    assert used_calculator({"tool_calls": 0, "tool_errors": 0}) == 0.0
    assert used_calculator({}) == 0.0


def test_environment_settings():
    env = tool_calc(size=4, seed=2)
    assert (env.name, env.pass_metric, len(env.rows)) == ("tool-calc", "correct", 4)
    assert env.rows == make_rows(4, seed=2)
    assert env.limits == Limits(max_turns=10)  # ToolEnv's default
    assert tool_calc(size=1, limits=Limits(max_turns=3)).limits.max_turns == 3
    assert env.tool_schemas == [
        {
            "type": "function",
            "function": {
                "name": "calculator",
                "description": "Evaluate an arithmetic expression and return the result.",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "expression": {
                            "type": "string",
                            "description": 'Numbers with + - * / // % ** and parentheses, e.g. "(3 + 4) * 5".',
                        }
                    },
                    "required": ["expression"],
                },
            },
        }
    ]
    assert env.format_prompt(env.rows[0]) == [
        Message(role="system", content=SYSTEM_PROMPT),
        Message(role="user", content=env.rows[0]["question"]),
    ]


# --- rollouts through the real Qwen3 renderer --------------------------------------------


def calls(*expressions: str) -> Message:
    return Message(
        role="assistant",
        content="",
        tool_calls=[ToolCall(name="calculator", arguments=json.dumps({"expression": e})) for e in expressions],
    )


def say(text: str) -> Message:
    return Message(role="assistant", content=text)


def tool_result(text: str) -> Message:
    return Message(role="tool", content=text, name="calculator")


def script_for(r, env, row, turns: list[Message]) -> list[Scripted]:
    """Each assistant turn as the Qwen3 token ids the model samples for it."""
    conversation = env.format_prompt(row)
    script = []
    for turn in turns:
        script.append(Scripted(sampled(r, [*conversation, turn], len(conversation), tools=env.tool_schemas)))
        conversation = [*conversation, turn, *(tool_result("x") for _ in turn.tool_calls or [])]
    return script


def run_rollout(env, row, turns):
    r = renderer_at("qwen3")
    script = script_for(r, env, row, turns)
    engine = ScriptedEngine(script)
    trajectory = asyncio.run(env.rollout(Policy(engine, r), row))
    return r, engine, script, trajectory


def test_tool_calc_rollout_with_qwen3():
    env = tool_calc(size=1, seed=0)
    row = env.rows[0]
    assert row == {"id": "calc-0", "question": "What is 876 - 51 + 777?", "answer": "1602"}
    r, engine, script, trajectory = run_rollout(env, row, [calls("876 - 51 + 777"), say("The answer is 1602.")])

    first_completion = script[0].completion_ids
    # the scripted ids are Qwen3's own: an empty think block, then the <tool_call> block
    assert r.tokenizer.decode(first_completion) == (
        '<think>\n\n</think>\n\n<tool_call>\n{"name": "calculator", "arguments": {"expression": "876 - 51 + 777"}}\n'
        "</tool_call><|im_end|>"
    )
    assert trajectory.stop_reason is StopReason.COMPLETED and trajectory.error is None
    assert trajectory.extras["state"] == {"tool_calls": 1, "tool_errors": 0}
    first, second = trajectory.steps
    assert first.completion_message.tool_calls == [ToolCall(name="calculator", arguments='{"expression": "876 - 51 + 777"}')]
    tool_message = second.prompt_messages[-1]
    assert (tool_message.role, tool_message.name, tool_message.content) == ("tool", "calculator", "1602")
    assert first.extras["prompt"]["built"] == "render"
    assert second.extras["prompt"]["built"] == "bridge"
    # the second prompt is the first prompt and completion, then only the tool message and the generation prompt
    assert engine.prompts[0] == r.render_ids(env.format_prompt(row), env.tool_schemas, add_generation_prompt=True)
    assert engine.prompts[1] == [
        *engine.prompts[0], *first_completion,
        198, 151644, 872, 198, 151665, 198, *r.tokenizer.encode("1602"), 198, 151666, 151645, 198, 151644, 77091, 198,
    ]
    assert second.completion_message.content == "The answer is 1602."
    assert trajectory.extras["prompt_stats"]["bridge_successes"] == 1

    asyncio.run(env.score_group([trajectory]))
    assert trajectory.reward == 1.0
    assert trajectory.metrics == {"correct": 1.0, "used_calculator": 1.0}


def test_a_bad_expression_comes_back_as_an_error_message():
    env = tool_calc(size=2, seed=0)
    row = env.rows[1]
    _, _, _, trajectory = run_rollout(env, row, [calls("277 - x"), say("-288")])
    assert trajectory.stop_reason is StopReason.COMPLETED
    assert trajectory.extras["state"] == {"tool_calls": 1, "tool_errors": 1}
    tool_message = trajectory.steps[1].prompt_messages[-1]
    assert tool_message.role == "tool"
    assert tool_message.content.startswith(ERROR_PREFIX)
    assert tool_message.content == (
        "Error: tool 'calculator' raised ValueError: unsupported element 'x': only numbers and + - * / // % ** are allowed"
    )
    assert trajectory.steps[1].extras["prompt"]["built"] == "bridge"
    asyncio.run(env.score_group([trajectory]))
    assert trajectory.metrics == {"correct": 1.0, "used_calculator": 1.0}


def test_parallel_calls_and_errors_are_counted():
    env = tool_calc(size=1, seed=0)
    _, _, _, trajectory = run_rollout(env, env.rows[0], [calls("876 - 51", "1 / 0", "825 + 777"), say("1603")])
    assert trajectory.extras["state"] == {"tool_calls": 3, "tool_errors": 1}
    results = [m.content for m in trajectory.steps[1].prompt_messages[-3:]]
    assert results == ["825", "Error: tool 'calculator' raised ZeroDivisionError: division by zero", "1602"]
    asyncio.run(env.score_group([trajectory]))
    assert (trajectory.reward, trajectory.metrics) == (0.0, {"correct": 0.0, "used_calculator": 1.0})


def test_an_answer_without_the_tool_scores_but_is_logged():
    env = tool_calc(size=1, seed=0)
    _, engine, _, trajectory = run_rollout(env, env.rows[0], [say("1602")])
    assert len(engine.prompts) == 1 and trajectory.stop_reason is StopReason.COMPLETED
    assert trajectory.extras["state"] == {"tool_calls": 0, "tool_errors": 0}
    asyncio.run(env.score_group([trajectory]))
    assert (trajectory.reward, trajectory.metrics) == (1.0, {"correct": 1.0, "used_calculator": 0.0})


def test_max_turns_ends_a_rollout_that_keeps_calling():
    env = tool_calc(size=1, seed=0, limits=Limits(max_turns=2))
    _, engine, _, trajectory = run_rollout(env, env.rows[0], [calls("1 + 1"), calls("2 + 2")])
    assert trajectory.stop_reason is StopReason.MAX_TURNS
    assert len(trajectory.steps) == 2 and len(engine.prompts) == 2
    assert trajectory.extras["state"] == {"tool_calls": 1, "tool_errors": 0}  # the last turn's call is not run
