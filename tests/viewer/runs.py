"""Run directories for viewer tests, built from real renders of shared-asset tokenizers.

`write_sample_run` writes five trajectories of two examples:

0. `multi`: a Qwen2.5 tool loop through `TurnSampler`: step 0 rendered, step 1 bridged and cut
   by the token limit, step 2 re-rendered with fallback reason `length` (two samples);
1. `single`: one turn of the same example, reward 0;
2. `errored`: one turn, then the environment raised;
3. `trace`: a raw-token step (no prompt attribution) with predicted and reference trace frames;
4. `chat`: a chat-mode step whose provider returned no token ids.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from tests.sampling.conversations import TOOL_LOOP, TOOLS, renderer, sampled
from tests.sampling.fakes import Scripted, ScriptedEngine
from tokenroll.core.messages import Message
from tokenroll.core.serialization import append_jsonl
from tokenroll.core.steps import Step
from tokenroll.core.trajectory import StopReason, Trajectory
from tokenroll.engines.base import FinishReason
from tokenroll.render import Renderer
from tokenroll.sampling import TurnSampler

FAMILY = "qwen2.5"
CUT = 4
"""Tokens kept of the second turn's completion (cut by the token limit)."""
ADVANTAGES = (0.5, -0.25, 0.125)
"""Per-step advantages of the multi-turn trajectory."""

REFERENCE_FRAMES = [
    {"event": "call", "source": "def f(xs):\n", "state": {"xs": "[1, 2]"}, "value": None, "problem": None},
    {"event": "line", "source": "    total = 0\n", "state": {"xs": ".."}, "value": None, "problem": None},
    {"event": "line", "source": "    for x in xs:\n", "state": {"xs": "..", "total": "0"}, "value": None, "problem": None},
    {"event": "line", "source": "        total += x\n", "state": {"xs": "..", "total": "0", "x": "1"},
     "value": None, "problem": None},
    {"event": "return", "source": "    return total\n", "state": None, "value": "3", "problem": None},
]
# Frame 1 right; frame 2 has an extra key; the loop line is replaced by a wrong action; frame 3
# has a wrong value and a missing key; the return value is wrong; one extra frame at the end.
PREDICTED_FRAMES = [
    {"event": "call", "source": "def f(xs):\n", "state": {"xs": "[1, 2]"}, "value": None, "problem": None},
    {"event": "line", "source": "    total = 0\n", "state": {"xs": "..", "y": "1"}, "value": None, "problem": None},
    {"event": "line", "source": "    while xs:\n", "state": {"xs": "..", "total": "0"}, "value": None, "problem": None},
    {"event": "line", "source": "        total += x\n", "state": {"xs": "..", "total": "5"},
     "value": None, "problem": None},
    {"event": "return", "source": "    return total\n", "state": None, "value": "4", "problem": None},
    {"event": None, "source": None, "state": None, "value": None, "problem": "no <|action_sep|> in the frame"},
]
TRACE_METRICS = {"action_exact_match": 0.8, "state_exact_match": 0.25, "key_match": 0.6875}


def qwen() -> Renderer:
    return renderer(FAMILY)


def multi_turn_steps(r: Renderer) -> list[Step]:
    """Three turns of the tool loop: rendered, bridged then cut, re-rendered (reason `length`)."""
    second = sampled(r, TOOL_LOOP, 3)[:CUT]
    engine = ScriptedEngine([
        Scripted(sampled(r, TOOL_LOOP, 1)),
        Scripted(second, finish_reason=FinishReason.LENGTH),
        Scripted(sampled(r, TOOL_LOOP, 6)),
    ])
    sampler = TurnSampler(engine, r, tools=TOOLS, drift_check=True)

    async def go() -> list[Step]:
        return [await sampler.step(TOOL_LOOP[:k]) for k in (1, 3, 6)]

    steps = asyncio.run(go())
    for step, advantage in zip(steps, ADVANTAGES):
        step.completion_advantages = [advantage] * len(step.completion_ids)
    return steps


def single_turn_step(r: Renderer, advantage: float) -> Step:
    engine = ScriptedEngine([Scripted(sampled(r, TOOL_LOOP, 1))])
    sampler = TurnSampler(engine, r, tools=TOOLS)
    step = asyncio.run(sampler.step(TOOL_LOOP[:1]))
    step.advantage = advantage
    return step


def trace_step(r: Renderer) -> Step:
    """A raw-token step: prompt and completion encoded as plain text, no chat template, no attribution."""
    prompt = r.tokenizer.encode("def f(xs):\n    total = 0\n")
    completion = r.tokenizer.encode("<|frame_sep|>total += x")
    return Step(
        prompt_ids=prompt,
        completion_ids=completion,
        completion_logprobs=[-0.5 * (i + 1) for i in range(len(completion))],
        finish_reason="stop",
        advantage=1.0,
    )


def chat_step() -> Step:
    return Step(
        prompt_ids=[],
        completion_ids=[],
        prompt_messages=[Message(role="user", content="hi")],
        completion_message=Message(role="assistant", content="hello"),
        finish_reason="stop",
        extras={"prompt": {"mode": "chat", "built": "chat", "reason": "chat", "text_only": True, "trainable": False}},
    )


def sample_trajectories(r: Renderer) -> list[Trajectory]:
    timing = {"total": 3.0, "generation": 1.5, "scoring": 0.25}
    return [
        Trajectory(id="multi", example_id=0, rollout_index=0, steps=multi_turn_steps(r), reward=1.0,
                   metrics={"correct": 1.0}, stop_reason=StopReason.COMPLETED, timing=timing),
        Trajectory(id="single", example_id=0, rollout_index=1, steps=[single_turn_step(r, -0.5)], reward=0.0,
                   metrics={"correct": 0.0}, stop_reason=StopReason.MAX_TURNS, timing={"total": 1.0}),
        Trajectory(id="errored", example_id=1, rollout_index=0, steps=[single_turn_step(r, 0.0)], reward=0.0,
                   stop_reason=StopReason.ENV_ERROR,
                   error="RuntimeError: the tool exploded\nTraceback (most recent call last): ...",
                   timing={"total": 0.5}),
        Trajectory(id="trace", example_id=1, rollout_index=1, steps=[trace_step(r)], reward=0.5,
                   metrics={"correct": 0.0}, stop_reason=StopReason.COMPLETED, timing={"total": 2.0},
                   extras={"trace": {"reference": REFERENCE_FRAMES, "predicted": PREDICTED_FRAMES,
                                     "metrics": TRACE_METRICS}}),
        Trajectory(id="chat", example_id=2, rollout_index=0, steps=[chat_step()], reward=None,
                   stop_reason=StopReason.COMPLETED),
    ]


def metadata(trajectories: list[Trajectory]) -> dict:
    return {
        "format_version": 1,
        "tokenroll_version": "0.1.0",
        "created_at": "2025-01-01T00:00:00Z",
        "environment": {"name": "tool-loop", "args": {"turns": 3}},
        "model": "Qwen/Qwen2.5-0.5B-Instruct",
        "engine": {"kind": "scripted"},
        "config": {"num_examples": 3, "rollouts_per_example": 2, "concurrency": 4,
                   "sampling": {"temperature": 1.0, "max_tokens": 64}, "limits": {"max_turns": 3}, "mode": "renderer"},
        "counts": {"rollouts": len(trajectories), "expected": 6, "errored": 1, "examples": 3},
        "pass_at_k": {"1": 0.375, "2": 0.5},
        "stop_reasons": {"completed": 3, "max_turns": 1, "env_error": 1},
        "prompt_stats": {"turns": 7, "full_renders": 6, "bridge_attempts": 2, "bridge_successes": 1,
                         "fallbacks": {"length": 1}, "drift_checks": 1, "drifted_steps": 0, "drift_tokens": 0,
                         "text_only_steps": 1},
        "timing": {"wall_seconds": 12.5, "rollouts_per_second": 0.4},
    }


def write_vocab(run_dir: Path, r: Renderer, trajectories: list[Trajectory]) -> dict[int, str]:
    """`vocab.json` as the runner writes it: every id of the results decoded on its own."""
    ids = sorted({i for t in trajectories for s in t.steps for i in (*s.prompt_ids, *s.completion_ids)})
    vocab = {i: r.tokenizer.decode([i]) for i in ids}
    (run_dir / "vocab.json").write_text(json.dumps({str(i): text for i, text in vocab.items()}), encoding="utf-8")
    return vocab


def write_sample_run(run_dir: Path, *, with_vocab: bool = True, with_metadata: bool = True) -> list[Trajectory]:
    """Write the five sample trajectories (and metadata and vocab) to `run_dir`; returns them."""
    run_dir.mkdir(parents=True, exist_ok=True)
    r = qwen()
    trajectories = sample_trajectories(r)
    append_jsonl(run_dir / "results.jsonl", trajectories)
    if with_metadata:
        (run_dir / "metadata.json").write_text(json.dumps(metadata(trajectories), indent=1), encoding="utf-8")
    if with_vocab:
        write_vocab(run_dir, r, trajectories)
    return trajectories


def write_large_run(run_dir: Path, count: int, turns: int = 1) -> None:
    """`count` trajectories of 1 turn (208 tokens) or 3 turns (the multi-turn loop, 515 tokens).

    The steps are rendered once and shared; rewards, advantages and timings vary.
    """
    if turns not in (1, 3):
        raise ValueError(f"turns must be 1 or 3, got {turns}")
    run_dir.mkdir(parents=True, exist_ok=True)
    r = qwen()
    steps = [single_turn_step(r, 0.0)] if turns == 1 else multi_turn_steps(r)
    trajectories = []
    for k in range(count):
        reward = float(k % 5) / 4
        copies = [Step(prompt_ids=s.prompt_ids, completion_ids=s.completion_ids, prompt_messages=s.prompt_messages,
                       completion_message=s.completion_message, completion_logprobs=s.completion_logprobs,
                       finish_reason=s.finish_reason, is_truncated=s.is_truncated,
                       prompt_attribution=s.prompt_attribution, advantage=reward - 0.5, extras=s.extras)
                  for s in steps]
        trajectories.append(Trajectory(id=f"t{k:05d}", example_id=k // 8, rollout_index=k % 8, steps=copies,
                                       reward=reward, stop_reason=StopReason.COMPLETED,
                                       timing={"total": 0.5 + (k % 7) / 10}))
    append_jsonl(run_dir / "results.jsonl", trajectories)
    (run_dir / "metadata.json").write_text(json.dumps({"model": "scripted", "counts": {"rollouts": count}}),
                                           encoding="utf-8")
    write_vocab(run_dir, r, trajectories[:1])
