"""`tokenroll eval`: option errors, and end-to-end runs on the embedded local engine (kill and resume)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from tests.engines.local_model import require_local, smollm2  # noqa: F401 (fixture)
from tests.envs.fakes import RecordingEngine
from tokenroll.cli.main import main
from tokenroll.core.serialization import read_jsonl

QUESTIONS = [{"question": f"What is {n} plus {n}?", "answer": str(2 * n)} for n in range(1, 7)]


@pytest.fixture
def qa_file(tmp_path: Path) -> Path:
    path = tmp_path / "qa.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in QUESTIONS))
    return path


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["eval"], "error: name an environment (ENV) or give --resume DIR"),
        (["eval", "jsonl", "--engine", "vllm", "-m", "x"], "error: --engine vllm needs --base-url"),
        (["eval", "jsonl", "--base-url", "http://127.0.0.1:9"], "error: -m MODEL is needed with --base-url"),
        (["eval", "jsonl", "-a", "[1]"], "error: --env-args must be a JSON object, got list"),
        (["eval", "jsonl", "-a", "{"], "error: --env-args is not valid JSON"),
        (["eval", "no-such-env", "--base-url", "http://127.0.0.1:9", "-m", "x", "--mode", "chat"],
         "error: no environment named 'no-such-env': built-ins are cruxeval-output"),
    ],
)
def test_bad_options_exit_2_with_a_clear_message(argv, message, capsys):
    assert main(argv) == 2
    assert capsys.readouterr().err.startswith(message)


def test_resume_of_a_folder_that_is_not_a_run(tmp_path, capsys):
    assert main(["eval", "--resume", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (
        f"error: {tmp_path / 'metadata.json'} does not exist: is {tmp_path} a tokenroll run directory?\n"
    )


def test_http_engines_need_a_tokenizer_unless_in_chat_mode(tmp_path):
    from tokenroll.cli.eval import _engine

    settings = {"engine": "vllm", "base_url": "http://127.0.0.1:9", "model": str(tmp_path / "absent")}
    with pytest.raises(ValueError, match="no tokenizer for .*: give --tokenizer FOLDER"):
        asyncio.run(_engine(settings))
    engine, renderer, info = asyncio.run(_engine({**settings, "mode": "chat"}))
    assert renderer is None
    assert info == {"kind": "vllm", "model": str(tmp_path / "absent"), "base_url": "http://127.0.0.1:9"}


def test_a_local_run_saves_exactly_what_the_engine_returned(smollm2, qa_file, tmp_path):  # noqa: F811
    """Library path with a recording proxy: every stored step is token for token the engine's answer."""
    from tokenroll.engines.local import LocalEngine
    from tokenroll.envs import Policy, load_environment
    from tokenroll.render import load_renderer
    from tokenroll.runner import EvalConfig, evaluate

    async def go():
        engine = RecordingEngine(LocalEngine())
        policy = Policy(engine, load_renderer(engine.inner.tokenizer))
        config = EvalConfig(num_examples=2, rollouts_per_example=2, concurrency=4, sampling={"max_tokens": 12, "seed": 5})
        result = await evaluate(load_environment("jsonl", path=str(qa_file)), policy, config, run_dir=tmp_path / "run")
        await engine.aclose()
        return engine, result

    engine, result = asyncio.run(go())
    saved = read_jsonl(tmp_path / "run" / "results.jsonl")
    assert len(saved) == 4 == len(engine.generations)
    by_seed = engine.by_seed()
    for trajectory in saved:
        prompt, generation = by_seed[5 + trajectory.example_id * 2 + trajectory.rollout_index]
        step = trajectory.steps[0]
        assert step.prompt_ids == prompt
        assert step.completion_ids == generation.completion_ids
        assert step.completion_logprobs == generation.completion_logprobs
        assert step.finish_reason == generation.finish_reason.value
    assert result.metadata["counts"]["rollouts"] == 4


def _lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def test_kill_mid_run_then_resume_leaves_every_rollout_exactly_once(smollm2, qa_file, tmp_path, capsys):  # noqa: F811
    run_dir = tmp_path / "run"
    argv = ["eval", "jsonl", "-a", json.dumps({"path": str(qa_file)}), "-n", "6", "-r", "2", "-c", "2",
            "--max-tokens", "24", "--seed", "1", "--out", str(run_dir), "--no-progress"]
    process = subprocess.Popen([sys.executable, "-m", "tokenroll.cli.main", *argv],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    results = run_dir / "results.jsonl"
    deadline = time.monotonic() + 600
    while _lines(results) == 0 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    written = _lines(results)
    assert 0 < written < 12, process.stderr.read().decode()[-2000:]
    metadata = orjson.loads((run_dir / "metadata.json").read_bytes())
    assert metadata["status"] == "running"

    assert main(["eval", "--resume", str(run_dir), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^rollouts +12 of 12 \(0 errored\)$", out, re.MULTILINE)
    saved = read_jsonl(results)
    assert sorted((t.example_id, t.rollout_index) for t in saved) == [(e, i) for e in range(6) for i in range(2)]
    metadata = orjson.loads((run_dir / "metadata.json").read_bytes())
    assert metadata["status"] == "complete"
    assert metadata["resumed"] == 1
    assert metadata["timing"]["rollouts_run"] == 12 - written
    assert metadata["config"]["sampling"]["max_tokens"] == 24  # the saved settings were used again
    for trajectory in saved:
        step = trajectory.steps[0]
        assert len(step.completion_logprobs) == len(step.completion_ids) <= 24
        assert trajectory.reward in (0.0, 1.0)
