"""Multi-turn rollouts over the real vLLM server through `VLLMEngine` and `TurnSampler`."""

from __future__ import annotations

import asyncio

import pytest

from tokenroll.engines import SamplingParams
from tokenroll.engines.vllm import VLLMEngine
from tokenroll.core import Trajectory
from tokenroll.sampling import TurnSampler, run_tool_loop

pytestmark = pytest.mark.vllm

QUESTION = [{"role": "user", "content": "Answer in one short sentence: what colour is the sky?"}]


def _rollout(vllm, renderer, *, turns: int, max_tokens: int):
    async def run():
        async with VLLMEngine(vllm.url, vllm.model) as engine:
            return await run_tool_loop(
                engine,
                renderer,
                QUESTION,
                turns=turns,
                sampling=SamplingParams(max_tokens=max_tokens, temperature=0.0),
                drift_check=True,
            )

    return asyncio.run(run())


def _replay(vllm, prompt_ids: list[int], max_tokens: int) -> dict:
    """vLLM's own greedy answer to the same prompt, over raw HTTP."""
    reply = vllm.post(
        "/v1/completions",
        {
            "model": vllm.model,
            "prompt": prompt_ids,
            "max_tokens": max_tokens,
            "temperature": 0.0,
            "logprobs": 0,
            "return_token_ids": True,
            "skip_special_tokens": False,
        },
    )
    assert reply.status == 200, reply.body
    return reply.body["choices"][0]


def test_stitched_turns_extend_exactly_and_match_what_vllm_returns(vllm, renderer):
    trajectory = _rollout(vllm, renderer, turns=4, max_tokens=96)
    steps = trajectory.steps
    assert len(steps) == 4
    stitched = 0
    for previous, step in zip(steps, steps[1:]):
        record = step.extras["prompt"]
        if previous.finish_reason == "stop":
            assert record["built"] == "bridge", record
            n = len(previous.prompt_ids) + len(previous.completion_ids)
            assert step.prompt_ids[:n] == previous.prompt_ids + previous.completion_ids
            assert record["drift"]["tokens"] == 0  # SmolLM2's template is prefix-stable
            stitched += 1
        else:
            assert (record["built"], record["reason"]) == ("render", "length")
    assert stitched >= 1, [s.finish_reason for s in steps]
    for step in steps:
        choice = _replay(vllm, step.prompt_ids, 96)
        assert step.completion_ids == choice["token_ids"]
        assert step.completion_logprobs == pytest.approx(choice["logprobs"]["token_logprobs"], abs=1e-3)
    stats = trajectory.extras["prompt_stats"]
    assert stats["bridge_successes"] == stitched
    (sample, *rest) = trajectory.to_samples()
    assert sample.step_indices[: stitched + 1] == list(range(stitched + 1))


def test_a_turn_cut_by_the_token_limit_is_re_rendered_as_a_new_sample(vllm, renderer):
    async def run():
        async with VLLMEngine(vllm.url, vllm.model) as engine:
            sampler = TurnSampler(engine, renderer, sampling=SamplingParams(max_tokens=3, temperature=0.0))
            first = await sampler.step(QUESTION)
            follow_up = [*QUESTION, first.completion_message, {"role": "user", "content": "Go on."}]
            return first, await sampler.step(follow_up), sampler.stats

    first, second, stats = asyncio.run(run())
    assert first.finish_reason == "length" and len(first.completion_ids) == 3
    assert 2 not in first.completion_ids  # no <|im_end|> in a cut completion
    assert (second.extras["prompt"]["built"], second.extras["prompt"]["reason"]) == ("render", "length")
    assert second.prompt_ids == renderer.render_ids(
        [*QUESTION, first.completion_message, {"role": "user", "content": "Go on."}], add_generation_prompt=True
    )
    assert stats.to_dict()["fallbacks"] == {"length": 1}
    assert [s.step_indices for s in Trajectory(steps=[first, second]).to_samples()] == [[0], [1]]


def test_template_mode_through_the_servers_tokenize_builds_the_same_prompts(vllm, renderer):
    async def run(**options):
        async with VLLMEngine(vllm.url, vllm.model) as engine:
            return await run_tool_loop(
                engine, renderer, QUESTION, turns=3, sampling=SamplingParams(max_tokens=96, temperature=0.0), **options
            )

    ours = asyncio.run(run())
    server = asyncio.run(run(mode="template", template_source="server"))
    assert [s.prompt_ids for s in server.steps] == [s.prompt_ids for s in ours.steps]
    assert [s.completion_ids for s in server.steps] == [s.completion_ids for s in ours.steps]
    assert [s.extras["prompt"]["source"] for s in server.steps] == ["server"] * 3
    assert server.extras["prompt_stats"]["bridge_successes"] == ours.extras["prompt_stats"]["bridge_successes"]
