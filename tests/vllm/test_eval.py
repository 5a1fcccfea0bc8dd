"""`tokenroll eval` against the real vLLM server: exact tokens, and resume after a kill mid-run."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from tests.envs.fakes import RecordingEngine
from tokenroll.cli.main import main
from tokenroll.core.serialization import read_jsonl
from tokenroll.engines.vllm import VLLMEngine
from tokenroll.envs import Policy, load_environment
from tokenroll.runner import EvalConfig, evaluate

pytestmark = pytest.mark.vllm

QUESTIONS = [{"question": f"What is {n} times 3? Answer with the number.", "answer": str(3 * n)} for n in range(1, 21)]


@pytest.fixture
def qa_file(tmp_path: Path) -> Path:
    path = tmp_path / "qa.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in QUESTIONS))
    return path


def test_every_stored_step_is_what_vllm_returned(vllm, renderer, qa_file, tmp_path):
    async def go():
        engine = RecordingEngine(VLLMEngine(vllm.url, vllm.model))
        config = EvalConfig(num_examples=4, rollouts_per_example=3, concurrency=6, sampling={"max_tokens": 24, "seed": 7})
        result = await evaluate(load_environment("jsonl", path=str(qa_file)), Policy(engine, renderer), config,
                                run_dir=tmp_path / "run")
        await engine.aclose()
        return engine, result

    engine, result = asyncio.run(go())
    saved = read_jsonl(tmp_path / "run" / "results.jsonl")
    assert len(saved) == 12 == len(engine.generations)
    by_seed = engine.by_seed()
    for trajectory in saved:
        prompt, generation = by_seed[7 + trajectory.example_id * 3 + trajectory.rollout_index]
        step = trajectory.steps[0]
        assert step.prompt_ids == prompt == renderer.render_ids(
            [{"role": "user", "content": QUESTIONS[trajectory.example_id]["question"]}], add_generation_prompt=True
        )
        assert step.completion_ids == generation.completion_ids
        assert step.completion_logprobs == generation.completion_logprobs
    assert result.metadata["counts"] == {"rollouts": 12, "expected": 12, "errored": 0, "examples": 4}
    assert result.metadata["pass_at_k"].keys() == {"1"}


def test_tool_calc_runs_end_to_end_on_vllm(vllm, renderer, tmp_path):
    async def go():
        async with VLLMEngine(vllm.url, vllm.model) as engine:
            config = EvalConfig(num_examples=3, rollouts_per_example=2, sampling={"max_tokens": 48, "seed": 1})
            return await evaluate(load_environment("tool-calc"), Policy(engine, renderer), config, run_dir=tmp_path)

    result = asyncio.run(go())
    assert result.metadata["counts"]["errored"] == 0
    assert set(result.metadata["metrics"]) == {"correct", "used_calculator"}
    for trajectory in read_jsonl(tmp_path / "results.jsonl"):
        assert trajectory.stop_reason is not None
        for step in trajectory.steps:
            assert len(step.completion_logprobs) == len(step.completion_ids)


def _lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def test_kill_mid_run_then_resume_on_vllm(vllm, qa_file, tmp_path, capsys):
    if vllm.model_dir is None:
        pytest.skip("TOKENROLL_VLLM_MODEL_DIR is unset: the served model folder is needed for its tokenizer")
    run_dir = tmp_path / "run"
    argv = ["eval", "jsonl", "-a", json.dumps({"path": str(qa_file)}), "--base-url", vllm.url, "-m", vllm.model,
            "--tokenizer", str(vllm.model_dir), "-n", "20", "-r", "2", "-c", "2", "--max-tokens", "48", "--seed", "3",
            "--out", str(run_dir), "--no-progress"]
    process = subprocess.Popen([sys.executable, "-m", "tokenroll.cli.main", *argv],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    results = run_dir / "results.jsonl"
    deadline = time.monotonic() + 300
    while _lines(results) == 0 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    written = _lines(results)
    assert 0 < written < 40, process.stderr.read().decode()[-2000:]

    assert main(["eval", "--resume", str(run_dir), "--no-progress"]) == 0
    capsys.readouterr()
    saved = read_jsonl(results)
    assert sorted((t.example_id, t.rollout_index) for t in saved) == [(e, i) for e in range(20) for i in range(2)]
    metadata = orjson.loads((run_dir / "metadata.json").read_bytes())
    assert metadata["status"] == "complete"
    assert metadata["timing"]["rollouts_run"] == 40 - written
    assert metadata["engine"]["kind"] == "vllm"
