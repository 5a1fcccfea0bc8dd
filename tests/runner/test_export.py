"""export_run and `tokenroll export`: a real run directory out as Parquet samples, prime-rl JSONL and TRL JSONL."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import orjson
import pytest

from tests.render.harness import renderer_at
from tests.runner.fakes import PromptEngine, logprobs_for
from tokenroll.cli.main import main
from tokenroll.core import Message, ToolCall, Trajectory
from tokenroll.core.trajectory import StopReason
from tokenroll.engines.base import EngineError, SamplingParams
from tokenroll.envs.base import Policy
from tokenroll.envs.builtin.tool_calc import calculator, tool_calc
from tokenroll.runner.export import export_run
from tokenroll.runner.rundir import RunDir
from tokenroll.runner.run import EvalConfig, evaluate

# Rollout seeds are seed + example * rollouts + index (base seed 0, two rollouts per example):
WRONG_SEED = 1  # example 0, rollout 1 answers the tool's result plus one
FAILING_SEED = 2  # example 1, rollout 0: the engine fails on the second turn

IM_START, IM_END, NEWLINE, USER, ASSISTANT, TOOL_RESPONSE, END_TOOL_RESPONSE = 151644, 151645, 198, 872, 77091, 151665, 151666


def call(expression: str) -> Message:
    return Message(role="assistant", content="", tool_calls=[ToolCall(name="calculator", arguments=json.dumps({"expression": expression}))])


def say(text: str) -> Message:
    return Message(role="assistant", content=text)


def respond(text: str, sampling: SamplingParams) -> Message:
    """Call the calculator on the question; then answer with its result (wrong or failing for some seeds)."""
    expression = re.findall(r"What is (.*?)\?", text)[-1]
    results = re.findall(r"<tool_response>\n(.*?)\n</tool_response>", text)
    if not results:
        return call(expression)
    if sampling.seed == FAILING_SEED:
        raise EngineError("the server went away")
    if sampling.seed == WRONG_SEED:
        return say(str(int(results[-1]) + 1))
    return say(results[-1])


class Run:
    """A finished tool-calc run: 2 examples x 2 rollouts, one wrong, one errored."""

    def __init__(self, directory: Path) -> None:
        self.renderer = renderer_at("qwen3")
        self.env = tool_calc(size=2, seed=0)
        self.tools = self.env.tool_schemas
        self.engine = PromptEngine(self.renderer, respond, tools=self.tools)
        config = EvalConfig(num_examples=2, rollouts_per_example=2, sampling={"seed": 0})
        self.result = asyncio.run(evaluate(self.env, Policy(self.engine, self.renderer), config, run_dir=directory))
        self.directory = directory

    def trajectory(self, example: int, rollout: int) -> Trajectory:
        [found] = [t for t in self.result.trajectories if (t.example_id, t.rollout_index) == (example, rollout)]
        return found

    def expected_tokens(self, example: int, answer: str) -> tuple[list[int], list[tuple[int, int]], tuple[int, int]]:
        """The sample's token ids, its two completion spans, and the span of the tool result's content."""
        row = self.env.rows[example]
        expression = row["question"].removeprefix("What is ").removesuffix("?")
        result = calculator(expression)
        prompt = self.renderer.render_ids(self.env.format_prompt(row), self.tools, add_generation_prompt=True)
        first = self.engine.completion_ids(call(expression))
        second = self.engine.completion_ids(say(answer))
        content = self.renderer.tokenizer.encode(result)
        bridge = [NEWLINE, IM_START, USER, NEWLINE, TOOL_RESPONSE, NEWLINE, *content, NEWLINE, END_TOOL_RESPONSE, IM_END, NEWLINE,
                  IM_START, ASSISTANT, NEWLINE]
        tokens = [*prompt, *first, *bridge, *second]
        a = len(prompt)
        b = a + len(first) + len(bridge)
        tool_start = a + len(first) + 6
        return tokens, [(a, a + len(first)), (b, b + len(second))], (tool_start, tool_start + len(content))


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Run:
    return Run(tmp_path_factory.mktemp("run"))


def by_place(rows: list[dict]) -> dict[tuple, dict]:
    return {(str(row["example_id"]), row["rollout_index"]): row for row in rows}


def inside(spans: list[tuple[int, int]], length: int) -> list[bool]:
    return [any(start <= i < end for start, end in spans) for i in range(length)]


def test_the_run_is_what_the_tests_expect(run):
    outcomes = {(t.example_id, t.rollout_index): (t.reward, t.stop_reason, t.error) for t in run.result.trajectories}
    assert outcomes == {
        (0, 0): (1.0, StopReason.COMPLETED, None),
        (0, 1): (0.0, StopReason.COMPLETED, None),
        (1, 0): (None, StopReason.ENGINE_ERROR, "EngineError: the server went away"),
        (1, 1): (1.0, StopReason.COMPLETED, None),
    }
    assert run.env.rows[0]["answer"] == "1602"


def test_samples_parquet(run):
    pq = pytest.importorskip("pyarrow.parquet")
    target, count = export_run(run.directory, "samples-parquet")
    assert (target, count) == (run.directory / "export-samples-parquet.parquet", 3)
    rows = by_place(pq.read_table(target).to_pylist())
    assert set(rows) == {("0", 0), ("0", 1), ("1", 1)}

    for place, answer, advantage in [(("0", 0), "1602", 0.5), (("0", 1), "1603", -0.5), (("1", 1), "-288", 0.0)]:
        example = int(place[0])
        row = rows[place]
        trajectory = run.trajectory(example, place[1])
        tokens, completions, (tool_start, tool_end) = run.expected_tokens(example, answer)
        n = len(tokens)
        assert row["token_ids"] == tokens
        assert row["loss_mask"] == inside(completions, n)
        assert row["sampled_mask"] == inside(completions, n)
        assert row["tool_mask"] == [tool_start <= i < tool_end for i in range(n)]
        assert run.renderer.tokenizer.decode(tokens[tool_start:tool_end]) == run.env.rows[example]["answer"]
        expected_logprobs = [0.0] * n
        for start, end in completions:
            expected_logprobs[start:end] = logprobs_for(tokens[start:end])
        assert row["logprobs"] == expected_logprobs
        assert row["advantages"] == [advantage if m else 0.0 for m in inside(completions, n)]
        assert row["message_roles"] == ["system", "user", "assistant", "tool", "assistant"]
        assert row["message_tool_names"] == [None, None, None, "calculator", None]
        assert (row["trajectory_id"], row["sample_index"], row["step_indices"], row["is_truncated"]) == (trajectory.id, 0, [0, 1], False)
        assert (row["reward"], row["stop_reason"]) == (trajectory.reward, "completed")


def test_samples_parquet_with_errored_rollouts(run, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    target, count = export_run(run.directory, "samples-parquet", tmp_path / "deep" / "all.parquet", include_errored=True)
    assert (target, count) == (tmp_path / "deep" / "all.parquet", 4)
    row = by_place(pq.read_table(target).to_pylist())[("1", 0)]
    tokens, completions, _ = run.expected_tokens(1, "unused")
    first_turn = completions[0][1]  # the prompt and the tool call; the engine failed on the next turn
    assert row["token_ids"] == tokens[:first_turn]
    assert row["loss_mask"] == inside(completions[:1], first_turn)
    assert row["tool_mask"] == [False] * first_turn
    assert (row["reward"], row["advantages"], row["stop_reason"]) == (None, None, "engine_error")


def read_lines(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_prime_rl_jsonl(run):
    target, count = export_run(run.directory, "prime-rl-jsonl")
    assert (target, count) == (run.directory / "export-prime-rl-jsonl.jsonl", 3)
    lines = read_lines(target)
    assert len(lines) == 3
    record = by_place(lines)[("0", 0)]
    trajectory = run.trajectory(0, 0)
    assert set(record) == {"trajectory_id", "example_id", "rollout_index", "reward", "metrics", "stop_reason", "trajectory"}
    assert (record["trajectory_id"], record["example_id"], record["rollout_index"]) == (trajectory.id, 0, 0)
    assert (record["reward"], record["stop_reason"]) == (1.0, "completed")
    assert record["metrics"] == {"correct": 1.0, "used_calculator": 1.0}
    first, second = record["trajectory"]
    tokens, completions, _ = run.expected_tokens(0, "1602")
    assert first["tokens"]["prompt_ids"] == tokens[: completions[0][0]]
    assert first["tokens"]["completion_ids"] == tokens[completions[0][0] : completions[0][1]]
    assert second["tokens"]["prompt_ids"] == tokens[: completions[1][0]]  # the whole prompt, not only its new tokens
    assert second["tokens"]["completion_ids"] == run.engine.completion_ids(say("1602"))
    assert second["tokens"]["completion_mask"] == [1] * len(second["tokens"]["completion_ids"])
    assert second["tokens"]["completion_logprobs"] == logprobs_for(second["tokens"]["completion_ids"])
    assert second["completion_advantages"] == [0.5] * len(second["tokens"]["completion_ids"])
    assert second["prompt"][-1] == {"role": "tool", "content": "1602", "name": "calculator"}
    assert second["completion"] == [{"role": "assistant", "content": "1602"}]
    assert (second["reward"], second["trajectory_id"]) == (1.0, trajectory.id)
    assert first["completion"][0]["tool_calls"] == [
        {"type": "function", "function": {"name": "calculator", "arguments": '{"expression": "876 - 51 + 777"}'}}
    ]


def test_prime_rl_jsonl_with_errored_rollouts(run, tmp_path):
    target, count = export_run(run.directory, "prime-rl-jsonl", tmp_path / "all.jsonl", include_errored=True)
    assert count == 4
    record = by_place(read_lines(target))[("1", 0)]
    assert (record["reward"], record["stop_reason"], len(record["trajectory"])) == (None, "engine_error", 1)


def test_trl_jsonl(run, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    target, count = export_run(run.directory, "trl")
    assert (target, count) == (run.directory / "export-trl.jsonl", 3)
    samples = {row["trajectory_id"]: row for row in pq.read_table(export_run(run.directory, "samples-parquet", tmp_path / "s.parquet")[0]).to_pylist()}
    lines = read_lines(target)
    assert len(lines) == 3
    for line in lines:
        assert set(line) == {"input_ids", "completion_mask", "assistant_masks", "advantages", "logprobs", "reward", "trajectory_id"}
        sample = samples[line["trajectory_id"]]
        assert line["input_ids"] == sample["token_ids"]
        assert line["completion_mask"] == [int(m) for m in sample["loss_mask"]]
        assert line["assistant_masks"] == line["completion_mask"]
        assert (line["advantages"], line["logprobs"], line["reward"]) == (sample["advantages"], sample["logprobs"], sample["reward"])
    tokens, completions, _ = run.expected_tokens(0, "1602")
    [line] = [line for line in lines if line["trajectory_id"] == run.trajectory(0, 0).id]
    assert line["input_ids"] == tokens
    assert line["completion_mask"] == [int(m) for m in inside(completions, len(tokens))]
    assert export_run(run.directory, "trl", tmp_path / "all.jsonl", include_errored=True)[1] == 4


def test_unknown_format_and_missing_run(run, tmp_path):
    with pytest.raises(ValueError) as info:
        export_run(run.directory, "csv")
    assert str(info.value) == "unknown export format 'csv'; choose one of samples-parquet, prime-rl-jsonl, trl"
    missing = tmp_path / "nothing"
    with pytest.raises(FileNotFoundError) as info:
        export_run(missing, "trl")
    assert str(info.value) == f"{missing}/results.jsonl does not exist: is {missing} a run directory?"


def test_a_run_with_no_exportable_rollouts(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    RunDir(tmp_path).append([Trajectory(example_id=0, stop_reason=StopReason.ENGINE_ERROR, error="EngineError: down")])
    target, count = export_run(tmp_path, "samples-parquet")
    assert count == 0
    table = pq.read_table(target)
    assert (table.num_rows, table.column_names) == (0, ["trajectory_id", "token_ids", "loss_mask"])
    target, count = export_run(tmp_path, "trl")
    assert (count, target.read_bytes()) == (0, b"")


def test_cli_export(run, tmp_path, capsys):
    out = tmp_path / "trl.jsonl"
    assert main(["export", str(run.directory), "--format", "trl", "-o", str(out)]) == 0
    assert capsys.readouterr().out == f"wrote 3 records to {out}\n"
    assert len(read_lines(out)) == 3
    assert main(["export", str(run.directory), "--format", "prime-rl-jsonl", "--include-errored", "-o", str(out)]) == 0
    assert capsys.readouterr().out == f"wrote 4 records to {out}\n"


def test_cli_export_of_a_missing_run_dir(tmp_path, capsys):
    missing = tmp_path / "no-run"
    assert main(["export", str(missing), "--format", "samples-parquet"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"error: {missing}/results.jsonl does not exist: is {missing} a run directory?\n"
    assert not missing.exists()


def test_cli_export_needs_a_known_format(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["export", str(tmp_path), "--format", "csv"])
    assert info.value.code == 2
    assert "invalid choice: 'csv'" in capsys.readouterr().err
