"""trace-step: one frame per turn, the true frame as the tool reply, and the export's two masks."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from tests.engines.local_model import smollm2  # noqa: F401  (fixture)
from tests.envs.fakes import RaisingEngine, RecordingEngine, StalledEngine
from tests.sampling.conversations import renderer
from tests.sampling.fakes import Scripted, ScriptedEngine
from tokenroll.core.trajectory import StopReason, Trajectory
from tokenroll.engines.base import FinishReason, SamplingParams, ServerError
from tokenroll.envs.base import Limits, Policy
from tokenroll.envs.builtin.trace_step import (
    METRICS,
    SYSTEM_PROMPT,
    TraceStepEnv,
    frame_text,
    read_frame,
    trace_step,
)
from tokenroll.envs.registry import load_environment
from tokenroll.traces.frames import Event, Frame

SAMPLE = 3  # f('bcksrut', 'q'): 7 frames after the seed, 5 of them with locals
IM_START, IM_END = 1, 2  # SmolLM2's turn open and close


@pytest.fixture(scope="module")
def env(tracer):
    return trace_step(tracer=tracer)


@pytest.fixture(scope="module")
def row(env):
    return env.rows[SAMPLE]


@pytest.fixture(scope="module")
def frames(tracer, row):
    return tracer.trace_call(row["code"], row["call"]).frames[1:]


@pytest.fixture(scope="module")
def smol():
    return renderer("smollm2")


def replies(smol, texts, **kwargs) -> list[Scripted]:
    """Each text as a sampled turn, closed by <|im_end|>."""
    return [Scripted(smol.tokenizer.encode(text) + [IM_END], **kwargs) for text in texts]


def rollout(env, engine, policy_renderer, row) -> Trajectory:
    policy = Policy(engine, policy_renderer, SamplingParams(max_tokens=200))

    async def go():
        trajectory = await env.rollout(policy, row)
        await env.score_group([trajectory])
        return trajectory

    return asyncio.run(go())


def runs(mask: list[bool]) -> list[tuple[int, int]]:
    """The [start, end) ranges where mask is True."""
    spans, start = [], None
    for position, on in enumerate([*mask, False]):
        if on and start is None:
            start = position
        elif not on and start is not None:
            spans.append((start, position))
            start = None
    return spans


def test_prompt_gives_the_code_the_call_and_the_seeded_frame(env, row):
    system, user = env.format_prompt(row)
    assert (system.role, system.content) == ("system", SYSTEM_PROMPT)
    assert user.role == "user"
    assert user.content == (
        "Trace this program from the call of main():\n\n```python\n"
        "def f(text, value):\n    text_list = list(text)\n    text_list.append(value)\n"
        "    return ''.join(text_list)\ndef main():  # << START_OF_TRACE\n"
        "    return f('bcksrut', 'q')\n```\n\n"
        "The first frame is:\n<|call_sep|>{}<|action_sep|>def main():\n\nPredict the next frame.")


def test_true_frames_score_everything_and_export_both_masks(env, row, frames, smol):
    texts = [frame_text(frame) for frame in frames]
    engine = ScriptedEngine(replies(smol, texts))
    trajectory = rollout(env, engine, smol, row)

    assert trajectory.stop_reason is StopReason.COMPLETED
    assert trajectory.reward == 1.0
    assert trajectory.metrics == {name: 1.0 for name in METRICS}
    state = trajectory.extras["state"]
    assert (state["frames"], state["trace_frames"]) == (7, 7)
    assert state["turns"] == [{"exact": True, "event": True, "action": True, "state": True, "well_formed": True}] * 7
    reference = [frame.to_dict() for frame in frames]
    assert trajectory.extras["trace"] == {
        "reference": reference, "predicted": reference, "metrics": {name: 1.0 for name in METRICS}}

    steps = trajectory.steps
    assert len(steps) == 7 and engine.prompts == [step.prompt_ids for step in steps]
    assert [step.extras["prompt"]["built"] for step in steps] == ["render"] + ["bridge"] * 6
    tool_messages = [m for m in trajectory.messages if m.role == "tool"]
    assert [m.content for m in tool_messages] == texts[:6]  # the last frame ends the episode

    [sample] = trajectory.to_samples()
    assert sample.token_ids == steps[-1].prompt_ids + steps[-1].completion_ids
    # RL mask: exactly the sampled tokens of every turn.
    assert runs(sample.loss_mask) == [
        (len(step.prompt_ids), len(step.prompt_ids) + len(step.completion_ids)) for step in steps]
    # World-model mask: exactly the true frames' tokens in the tool replies.
    tool_mask = sample.attribution.content_mask_for_roles({"tool"})
    spans = runs(tool_mask)
    assert [sample.token_ids[a:b] for a, b in spans] == [smol.tokenizer.encode(text) for text in texts[:6]]
    assert [smol.tokenizer.decode(sample.token_ids[a:b]) for a, b in spans] == texts[:6]
    # Each reply comes right after the turn it answers: only the tool header between them.
    header = [*smol.tokenizer.encode("\n"), IM_START, *smol.tokenizer.encode("tool\n")]
    turn_ends = [len(step.prompt_ids) + len(step.completion_ids) for step in steps[:6]]
    assert [sample.token_ids[end:a] for end, (a, _) in zip(turn_ends, spans)] == [header] * 6
    assert not any(rl and wm for rl, wm in zip(sample.loss_mask, tool_mask))
    assert Trajectory.from_json(trajectory.to_json()) == trajectory


def test_wrong_frames_cost_what_they_should(env, row, frames, smol):
    texts = [frame_text(frame) for frame in frames]
    # A CALL frame writes every value: `..` for text is wrong too, so no (key, value) pair matches.
    texts[1] = frame_text(replace(frames[1], state={"text": "..", "value": "'z'"}))
    texts[5] = frame_text(replace(frames[5], value="'bcksrut'"))
    texts[3] = f"The next frame is:\n```\n{texts[3].rstrip()}\n```"  # read leniently: still exact
    trajectory = rollout(env, ScriptedEngine(replies(smol, texts)), smol, row)

    assert trajectory.stop_reason is StopReason.COMPLETED
    assert trajectory.metrics == {
        "frame_exact_match": 5 / 7, "action_exact_match": 6 / 7, "state_exact_match": 4 / 5,
        "key_match": 1.0, "key_value_match": (4 + 0 / 4) / 5, "valid_json_format": 1.0,
        "valid_frame_format": 1.0,
    }
    assert trajectory.reward == 5 / 7
    turns = trajectory.extras["state"]["turns"]
    assert turns[1] == {"exact": False, "event": True, "action": True, "state": False, "well_formed": True}
    assert turns[5] == {"exact": False, "event": True, "action": False, "state": True, "well_formed": True}
    assert [t["exact"] for t in turns] == [True, False, True, True, True, False, True]
    # The replies are the true frames whatever the model said.
    assert [m.content for m in trajectory.messages if m.role == "tool"] == [frame_text(f) for f in frames[:6]]


def test_a_reply_without_a_frame(tracer, row, frames, smol):
    short = trace_step(tracer=tracer, max_frames=2)
    trajectory = rollout(short, ScriptedEngine(replies(smol, ["I am not sure.", frame_text(frames[1])])), smol, row)
    assert trajectory.metrics["frame_exact_match"] == 1 / 2
    assert trajectory.metrics["valid_frame_format"] == 1 / 2
    assert trajectory.extras["trace"]["predicted"][0] == {
        "event": None, "source": None, "state": None, "value": None, "problem": "no event marker"}


def test_max_frames_ends_the_episode_early_and_bounds_turns(tracer, row, frames, smol):
    short = trace_step(tracer=tracer, max_frames=3)
    assert short.limits.max_turns == 3
    engine = ScriptedEngine(replies(smol, [frame_text(f) for f in frames[:3]]))
    trajectory = rollout(short, engine, smol, row)
    assert trajectory.stop_reason is StopReason.COMPLETED and len(trajectory.steps) == 3
    state = trajectory.extras["state"]
    assert (state["frames"], state["trace_frames"]) == (3, 7)
    assert len(trajectory.extras["trace"]["reference"]) == 3
    assert trajectory.reward == 1.0


def test_max_turns_below_the_frames_counts_the_rest_as_wrong(tracer, row, frames, smol):
    limited = trace_step(tracer=tracer, max_frames=4, limits=Limits(max_turns=2))
    engine = ScriptedEngine(replies(smol, [frame_text(f) for f in frames[:2]]))
    trajectory = rollout(limited, engine, smol, row)
    assert trajectory.stop_reason is StopReason.MAX_TURNS and len(trajectory.steps) == 2
    assert trajectory.metrics["frame_exact_match"] == 2 / 4
    assert trajectory.metrics["state_exact_match"] == 2 / 4  # frames 0-3 all have locals


def test_a_turn_cut_by_max_tokens(env, row, frames, smol):
    script = [*replies(smol, [frame_text(frames[0])]),
              Scripted(smol.tokenizer.encode(frame_text(frames[1]))[:5], finish_reason=FinishReason.LENGTH)]
    trajectory = rollout(env, ScriptedEngine(script), smol, row)
    assert trajectory.stop_reason is StopReason.MAX_TOKENS
    assert trajectory.metrics["frame_exact_match"] == 1 / 7
    assert len(trajectory.extras["trace"]["predicted"]) == 1


def test_engine_failure_and_timeout(tracer, env, row, smol):
    failed = rollout(env, RaisingEngine(ServerError("down")), smol, row)
    assert failed.stop_reason is StopReason.ENGINE_ERROR and failed.error == "ServerError: down"
    assert failed.reward == 0.0 and failed.extras["trace"]["predicted"] == []
    assert failed.extras["state"]["metrics"]["frame_exact_match"] == 0.0

    slow = trace_step(tracer=tracer, limits=Limits(timeout=0.3))
    timed_out = rollout(slow, StalledEngine(), smol, row)
    assert timed_out.stop_reason is StopReason.TIMEOUT and timed_out.steps == []


@pytest.mark.parametrize("reply", [
    '<|line_sep|>{"a": "1"}<|action_sep|>    b = a\n',
    '<|line_sep|>{"a": "1"}<|action_sep|>    b = a',
    'Next:\n```\n<|line_sep|>{"a": "1"}<|action_sep|>    b = a\n```',
    '  <|line_sep|>{"a": "1"}<|action_sep|>    b = a\n<|frame_sep|>',
    '<|line_sep|>{"a": "1"}<|action_sep|>    b = a\nbecause a is 1',
    '<|line_sep|>{"a": "1"}<|action_sep|>    b = a\n<|line_sep|>{}<|action_sep|>    c = b\n',
])
def test_replies_are_read_leniently(reply):
    assert read_frame(reply) == Frame(Event.LINE, "    b = a\n", state={"a": "1"})


def test_value_frames_and_problems_are_read():
    assert read_frame('<|return_sep|><|action_sep|>    return x<|arg_sep|>"3"') == Frame(
        Event.RETURN, "    return x\n", value="3")
    assert read_frame("<|line_sep|>{a: 1}<|action_sep|>    b = a\n").problem == "locals are not a JSON object"
    assert read_frame("<|line_sep|>{}").problem == "no <|action_sep|>"
    assert read_frame("nothing").problem == "no event marker"


def test_registry_and_arguments(tracer):
    built = load_environment("trace-step", tracer=tracer, max_frames=5)
    assert isinstance(built, TraceStepEnv) and len(built.rows) == 800
    assert built.limits.max_turns == 5 and built.sampling == {"max_tokens": 512}
    with pytest.raises(ValueError, match="max_frames must be a positive integer"):
        trace_step(tracer=tracer, max_frames=0)


@pytest.mark.slow
def test_a_real_rollout_on_the_embedded_model(smollm2, tracer, row):  # noqa: F811
    from tokenroll.engines.local import LocalEngine
    from tokenroll.render import load_renderer

    short = trace_step(tracer=tracer, max_frames=2)

    async def go():
        async with LocalEngine() as local:
            engine = RecordingEngine(local)
            policy = Policy(engine, load_renderer(local.tokenizer), SamplingParams(max_tokens=32, temperature=0))
            trajectory = await short.rollout(policy, row)
            await short.score_group([trajectory])
            return engine, trajectory

    engine, trajectory = asyncio.run(go())
    assert len(trajectory.steps) == len(engine.generations) >= 1
    for step, prompt, generation in zip(trajectory.steps, engine.prompts, engine.generations):
        assert step.prompt_ids == prompt
        assert step.completion_ids == generation.completion_ids
        assert step.completion_logprobs == generation.completion_logprobs
        assert step.finish_reason == generation.finish_reason.value
    assert set(trajectory.metrics) == set(METRICS)
    assert Trajectory.from_json(trajectory.to_json()) == trajectory
