"""The runner on the real Qwen2.5 renderer with an order-free fake engine: results, metadata, errors, resume."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from tests.sampling.conversations import QWEN_IM_END, renderer
from tests.sampling.fakes import FunctionEngine, Scripted
from tokenroll.core.serialization import read_jsonl
from tokenroll.core.trajectory import Trajectory
from tokenroll.engines.base import SamplingParams, ServerError
from tokenroll.envs import Policy, Rubric, SingleTurnEnv
from tokenroll.runner import EvalConfig, RunDir, RunDirError, evaluate

ROWS = [{"question": f"Is {n} even?", "answer": "yes"} for n in range(4)]


def qwen():
    return renderer("qwen2.5")


def reply(text: str) -> Scripted:
    return Scripted(qwen().tokenizer.encode(text) + [QWEN_IM_END])


def correct(response: str, answer: str) -> float:
    return float(response == answer)


def env() -> SingleTurnEnv:
    return SingleTurnEnv(ROWS, rubric=Rubric([correct]), sampling={"max_tokens": 16})


def by_seed(prompt: list[int], sampling: SamplingParams) -> Scripted:
    """Even seeds answer "yes", odd ones "no": with 2 rollouts per example, one of each."""
    return reply("yes" if sampling.seed % 2 == 0 else "no")


def run(engine, config: EvalConfig, **kwargs):
    return asyncio.run(evaluate(env(), Policy(engine, qwen()), config, **kwargs))


CONFIG = EvalConfig(num_examples=4, rollouts_per_example=2, concurrency=3, sampling={"seed": 10})


def test_a_run_saves_every_group_with_rewards_advantages_and_metadata(tmp_path):
    engine = FunctionEngine(by_seed, delay=0.001)
    result = run(engine, CONFIG, run_dir=tmp_path / "run")
    saved = read_jsonl(tmp_path / "run" / "results.jsonl")
    assert len(saved) == 8
    assert sorted((t.example_id, t.rollout_index) for t in saved) == [(e, i) for e in range(4) for i in range(2)]
    # A group's lines are written together: each example's two rollouts are adjacent in the file.
    assert [t.example_id for t in saved][::2] == [t.example_id for t in saved][1::2]
    for trajectory in saved:
        seed = 10 + trajectory.example_id * 2 + trajectory.rollout_index
        assert trajectory.reward == (1.0 if seed % 2 == 0 else 0.0)
        step = trajectory.steps[0]
        assert step.advantage == (0.5 if seed % 2 == 0 else -0.5)
        assert step.completion_advantages == [step.advantage] * len(step.completion_ids)
        assert step.prompt_ids == qwen().render_ids(
            [{"role": "user", "content": ROWS[trajectory.example_id]["question"]}], add_generation_prompt=True
        )
    assert sorted(sampling.seed for _, sampling in engine.calls) == list(range(10, 18))
    assert all(sampling.max_tokens == 16 for _, sampling in engine.calls)  # the environment's default

    metadata = orjson.loads((tmp_path / "run" / "metadata.json").read_bytes())
    assert metadata == result.metadata
    assert metadata["status"] == "complete"
    assert metadata["counts"] == {"rollouts": 8, "expected": 8, "errored": 0, "examples": 4}
    assert metadata["reward"] == {"count": 8, "mean": 0.5, "std": 0.5, "min": 0.0, "max": 1.0}
    assert metadata["metrics"] == {"correct": 0.5}
    assert metadata["pass_at_k"] == {"1": 50.0}
    assert metadata["stop_reasons"] == {"completed": 8}
    prompt_tokens = sum(len(t.steps[0].prompt_ids) for t in saved)
    completion_tokens = sum(len(t.steps[0].completion_ids) for t in saved)
    assert metadata["tokens"]["prompt"] == prompt_tokens
    assert metadata["tokens"]["completion"] == completion_tokens
    assert metadata["prompt_stats"]["turns"] == 8
    assert metadata["config"]["rollouts_per_example"] == 2
    assert metadata["config"]["sampling"]["seed"] == 10
    assert metadata["config"]["renderer"] == "qwen2.5"
    assert metadata["model"] == "function"
    vocab = orjson.loads((tmp_path / "run" / "vocab.json").read_bytes())
    assert vocab[str(QWEN_IM_END)] == "<|im_end|>"
    assert vocab[str(qwen().tokenizer.encode("yes")[0])] == "yes"


def test_without_a_run_directory_the_trajectories_come_back_in_order():
    result = run(FunctionEngine(by_seed), CONFIG)
    assert [(t.example_id, t.rollout_index) for t in result.trajectories] == [(e, i) for e in range(4) for i in range(2)]
    assert result.run_dir is None


def test_errored_rollouts_are_saved_unscored_and_resume_reruns_exactly_them(tmp_path):
    def flaky(prompt, sampling):
        if sampling.seed == 15:  # example 2, rollout 1
            raise ServerError("overloaded")
        return by_seed(prompt, sampling)

    first = run(FunctionEngine(flaky), CONFIG, run_dir=tmp_path)
    assert first.metadata["status"] == "incomplete"
    assert first.metadata["counts"]["errored"] == 1
    assert first.metadata["errors"] == {"ServerError: overloaded": 1}
    broken = next(t for t in first.trajectories if t.error)
    assert (broken.example_id, broken.rollout_index, broken.reward) == (2, 1, None)
    alone = next(t for t in first.trajectories if (t.example_id, t.rollout_index) == (2, 0))
    assert alone.steps[0].advantage == 0.0  # scored in a group of one

    engine = FunctionEngine(by_seed)
    second = run(engine, CONFIG, run_dir=tmp_path, resume=True)
    assert [sampling.seed for _, sampling in engine.calls] == [15]
    saved = read_jsonl(tmp_path / "results.jsonl")
    assert len(saved) == 8  # the rerun replaced the errored line
    assert len({(t.example_id, t.rollout_index) for t in saved}) == 8
    regrouped = {t.rollout_index: t for t in saved if t.example_id == 2}
    assert (regrouped[0].reward, regrouped[1].reward) == (1.0, 0.0)
    assert (regrouped[0].steps[0].advantage, regrouped[1].steps[0].advantage) == (0.5, -0.5)
    assert regrouped[0].id == alone.id  # the kept rollout was rescored, not rerun
    assert second.metadata["status"] == "complete"
    assert second.metadata["resumed"] == 1
    assert second.metadata["created_at"] == first.metadata["created_at"]


def test_resume_after_a_torn_write_and_lost_groups_runs_exactly_the_missing_rollouts(tmp_path):
    run(FunctionEngine(by_seed), CONFIG, run_dir=tmp_path)
    lines = (tmp_path / "results.jsonl").read_bytes().splitlines(keepends=True)
    # A kill mid-way: the last group's second line is cut short, and the group before it never written.
    kept = lines[:4] + [lines[6], lines[7][:40]]
    (tmp_path / "results.jsonl").write_bytes(b"".join(kept))
    missing = {(t.example_id, t.rollout_index) for t in map(Trajectory.from_json, lines[4:6] + lines[7:])}
    engine = FunctionEngine(by_seed)
    result = run(engine, CONFIG, run_dir=tmp_path, resume=True)
    assert sorted(s.seed for _, s in engine.calls) == sorted(10 + e * 2 + i for e, i in missing)
    saved = read_jsonl(tmp_path / "results.jsonl")
    assert sorted((t.example_id, t.rollout_index) for t in saved) == [(e, i) for e in range(4) for i in range(2)]
    assert result.metadata["counts"] == {"rollouts": 8, "expected": 8, "errored": 0, "examples": 4}


def test_a_new_run_refuses_a_directory_with_results(tmp_path):
    run(FunctionEngine(by_seed), CONFIG, run_dir=tmp_path)
    with pytest.raises(RunDirError, match="already holds results; use --resume"):
        run(FunctionEngine(by_seed), CONFIG, run_dir=tmp_path)


def test_config_refuses_nonsense():
    with pytest.raises(ValueError, match="rollouts_per_example must be at least 1, got 0"):
        EvalConfig(rollouts_per_example=0)
    with pytest.raises(ValueError, match="unknown sampling field"):
        run(FunctionEngine(by_seed), EvalConfig(sampling={"temprature": 0.5}))


def test_concurrency_bounds_the_rollouts_in_flight():
    in_flight = 0
    peak = 0

    class Counting(FunctionEngine):
        async def generate(self, prompt_ids, sampling):
            nonlocal in_flight, peak
            in_flight += 1
            peak = max(peak, in_flight)
            try:
                return await super().generate(prompt_ids, sampling)
            finally:
                in_flight -= 1

    run(Counting(by_seed, delay=0.01), EvalConfig(num_examples=4, rollouts_per_example=2, concurrency=3, sampling={"seed": 0}))
    assert peak == 3


def test_the_run_directory_loader_keeps_the_last_line_of_each_rollout(tmp_path):
    run(FunctionEngine(by_seed), CONFIG, run_dir=tmp_path)
    directory = RunDir(tmp_path)
    first = directory.load()
    changed = first[0]
    changed.reward = 7.0
    directory.append([changed])
    loaded = directory.load()
    assert len(loaded) == 8
    assert next(t for t in loaded if t.id == changed.id).reward == 7.0


def test_the_loader_keeps_every_line_without_a_place_in_a_run(tmp_path):
    directory = RunDir(tmp_path)
    directory.append([Trajectory(reward=1.0), Trajectory(reward=2.0)])
    assert [t.reward for t in directory.load()] == [1.0, 2.0]
