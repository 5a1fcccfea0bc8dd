"""cruxeval-trace: CWM's full-trace prompt by id or as text, scored exactly as `tokenroll trace score`."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace

import pytest

from tests.assets import tokenizer_dir
from tests.engines.local_model import smollm2  # noqa: F401  (fixture)
from tests.envs.fakes import RaisingEngine, RecordingEngine, StalledEngine
from tests.sampling.conversations import renderer
from tests.sampling.fakes import Scripted, ScriptedEngine
from tokenroll.core.trajectory import StopReason, Trajectory
from tokenroll.engines.base import FinishReason, SamplingParams, ServerError
from tokenroll.envs.base import Limits, Policy
from tokenroll.envs.builtin.cruxeval_trace import METRICS, CruxEvalTraceEnv, cruxeval_trace
from tokenroll.envs.registry import load_environment
from tokenroll.traces.format import frames_to_text, text_to_ids
from tokenroll.traces.frames import Special
from tokenroll.traces.prompts import build_context, full_trace_completion, full_trace_prompt, prompt_text

SAMPLE = 3  # f('bcksrut', 'q'): 7 frames after the seed, 5 of them with locals
IM_END = 2  # SmolLM2's EOS


@pytest.fixture(scope="module")
def env(tracer):
    return cruxeval_trace(tracer=tracer)


@pytest.fixture(scope="module")
def row(env):
    return env.rows[SAMPLE]


@pytest.fixture(scope="module")
def trace(tracer, row):
    return tracer.trace_call(row["code"], row["call"])


def rollout(env, engine, policy_renderer, row, **sampling) -> Trajectory:
    policy = Policy(engine, policy_renderer, SamplingParams(**{"max_tokens": 400, **sampling}))

    async def go():
        trajectory = await env.rollout(policy, row)
        await env.score_group([trajectory])
        return trajectory

    return asyncio.run(go())


def encoder(family):
    tokenizers = pytest.importorskip("tokenizers")
    backend = tokenizers.Tokenizer.from_file(str(tokenizer_dir(family) / "tokenizer.json"))
    return lambda text: backend.encode(text, add_special_tokens=False).ids


def test_id_mode_prompt_is_cwm_full_trace_prompt_by_id(env, row, cwm_renderer):
    encode = encoder("llama-3.2")
    policy = Policy(ScriptedEngine([]), cwm_renderer)
    assert env.vocabulary(policy).mode == "ids"
    assert env.prompt_ids(row, policy) == [
        128000, 128107, *encode(build_context(row["code"], row["call"])), 128100,
        128103, *encode("{}"), 128101, *encode("def main():\n"), 128100,
    ]


def test_text_mode_prompt_is_the_prompt_text_encoded(env, row):
    policy = Policy(ScriptedEngine([]), renderer("smollm2"))
    assert env.vocabulary(policy).mode == "text"
    assert env.prompt_ids(row, policy) == encoder("smollm2")(prompt_text(full_trace_prompt(row["code"], row["call"])))


def test_the_true_trace_by_id_scores_everything(env, row, trace, cwm_renderer):
    completion = text_to_ids(full_trace_completion(trace), cwm_renderer.tokenizer.encode)
    assert completion[-1] == Special.END_OF_TEXT
    engine = ScriptedEngine([Scripted(completion)])
    trajectory = rollout(env, engine, cwm_renderer, row)

    # Llama 3's chat stops (eot, eom, end_of_text) are replaced by CWM's end_of_text alone.
    assert engine.samplings[0].stop_token_ids == (128001,)
    assert trajectory.stop_reason is StopReason.COMPLETED
    assert trajectory.reward == 1.0
    assert trajectory.metrics == {name: 1.0 for name in METRICS}
    assert trajectory.extras["vocab"] == "ids"
    reference = [frame.to_dict() for frame in trace.frames[1:]]
    assert trajectory.extras["trace"] == {
        "reference": reference, "predicted": reference, "metrics": {name: 1.0 for name in METRICS}}
    state = trajectory.extras["state"]
    assert "trace" not in state and state["problems"] == []
    assert state["score"]["predicted_output"] == "'bcksrutq'"
    assert trajectory.steps[0].completion_ids == completion
    assert Trajectory.from_json(trajectory.to_json()) == trajectory
    assert env.summarize([trajectory]) == {
        **{name: 100.0 for name in METRICS}, "samples": 1, "scored": 1, "unscored": 0}


def test_a_wrong_local_and_a_wrong_output_score_what_they_cost(env, row, trace, cwm_renderer):
    frames = list(trace.frames[1:])
    frames[3] = replace(frames[3], state={**frames[3].state, "text_list": "['x']"})
    frames[6] = replace(frames[6], value="'wrong'")
    completion = text_to_ids(frames_to_text(frames), cwm_renderer.tokenizer.encode)
    trajectory = rollout(env, ScriptedEngine([Scripted(completion)]), cwm_renderer, row)

    assert trajectory.stop_reason is StopReason.COMPLETED
    assert trajectory.metrics == {
        "pass_at_1": 0.0, "valid_trace_format": 1.0, "state_exact_match": 4 / 5,
        "action_exact_match": 6 / 7, "valid_json_format": 1.0, "key_match": 1.0,
        "key_value_match": (4 + 2 / 4) / 5, "action_exact_match_source": 1.0,
        "valid_json_format_at_reference": 1.0, "action_lcs_match": 1.0, "state_lcs_match": 4 / 5,
        "resolved_state_match": 4 / 5, "value_match": 5 / 7,
    }
    assert trajectory.reward == pytest.approx((4 / 5 + 6 / 7) / 2)
    assert trajectory.extras["state"]["score"]["predicted_output"] == "'wrong'"


def test_a_trace_cut_by_max_tokens(env, row, trace, cwm_renderer):
    full = text_to_ids(full_trace_completion(trace), cwm_renderer.tokenizer.encode)
    third_frame_end = [i for i, t in enumerate(full) if t == Special.FRAME_SEP][2] + 1
    engine = ScriptedEngine([Scripted(full[:third_frame_end], finish_reason=FinishReason.LENGTH)])
    trajectory = rollout(env, engine, cwm_renderer, row)

    assert trajectory.stop_reason is StopReason.MAX_TOKENS
    assert trajectory.steps[0].is_truncated
    assert trajectory.metrics == {
        "pass_at_1": 0.0, "valid_trace_format": 0.0, "state_exact_match": 3 / 5,
        "action_exact_match": 3 / 7, "valid_json_format": 1.0, "key_match": 3 / 5,
        "key_value_match": 3 / 5, "action_exact_match_source": 3 / 7,
        "valid_json_format_at_reference": 3 / 5, "action_lcs_match": 3 / 7, "state_lcs_match": 3 / 5,
        "resolved_state_match": 3 / 5, "value_match": 3 / 7,
    }
    assert trajectory.extras["state"]["problems"] == ["no <|end_of_text|>"]
    assert len(trajectory.extras["trace"]["predicted"]) == 3


def test_text_mode_reads_the_trace_from_text(env, row, trace):
    smol = renderer("smollm2")
    completion = smol.tokenizer.encode(full_trace_completion(trace)) + [IM_END]
    engine = ScriptedEngine([Scripted(completion)])
    trajectory = rollout(env, engine, smol, row)

    assert engine.samplings[0].stop_token_ids == (IM_END,)  # the model's EOS; <|endoftext|> was a chat stop
    assert trajectory.extras["vocab"] == "text"
    assert trajectory.stop_reason is StopReason.COMPLETED
    assert trajectory.reward == 1.0 and trajectory.metrics == {name: 1.0 for name in METRICS}


def test_run_summary_is_the_macro_average_in_percent(env, row, trace, cwm_renderer):
    true = text_to_ids(full_trace_completion(trace), cwm_renderer.tokenizer.encode)
    frames = list(trace.frames[1:])
    frames[6] = replace(frames[6], value="'wrong'")
    wrong = text_to_ids(frames_to_text(frames), cwm_renderer.tokenizer.encode)
    good = rollout(env, ScriptedEngine([Scripted(true)]), cwm_renderer, row)
    bad = rollout(env, ScriptedEngine([Scripted(wrong)]), cwm_renderer, row)
    failed = rollout(env, RaisingEngine(ServerError("down")), cwm_renderer, row)

    summary = env.summarize([good, bad, failed])
    assert summary["pass_at_1"] == 50.0
    assert summary["action_exact_match"] == pytest.approx(100 * (1 + 6 / 7) / 2)
    assert summary["state_exact_match"] == 100.0
    assert (summary["samples"], summary["scored"], summary["unscored"]) == (3, 2, 1)


def test_engine_failure_and_timeout(env, row, cwm_renderer, tracer):
    failed = rollout(env, RaisingEngine(ServerError("down")), cwm_renderer, row)
    assert failed.stop_reason is StopReason.ENGINE_ERROR
    assert failed.error == "ServerError: down"
    assert failed.steps == [] and "trace" not in failed.extras
    assert failed.reward == 0.0 and failed.metrics == {name: 0.0 for name in METRICS}

    slow = cruxeval_trace(tracer=tracer, limits=Limits(timeout=0.3))
    timed_out = rollout(slow, StalledEngine(), cwm_renderer, row)
    assert timed_out.stop_reason is StopReason.TIMEOUT and timed_out.steps == []


def test_config_records_the_vocabulary_modes_used(tracer, row, cwm_renderer):
    fresh = cruxeval_trace(tracer=tracer)
    assert (fresh.config()["vocab"], fresh.config()["vocab_modes"]) == ("auto", [])
    for policy_renderer in (renderer("smollm2"), cwm_renderer):
        fresh.prompt_ids(row, Policy(ScriptedEngine([]), policy_renderer))
    assert fresh.config()["vocab_modes"] == ["ids", "text"]


def test_forcing_the_id_vocabulary_on_a_tokenizer_without_it(tracer, row):
    forced = cruxeval_trace(tracer=tracer, vocab="ids")
    trajectory = rollout(forced, ScriptedEngine([]), renderer("smollm2"), row)
    assert trajectory.stop_reason is StopReason.ENV_ERROR
    assert trajectory.error.startswith("ValueError: the tokenizer lacks CWM's trace tokens <|begin_of_text|>")
    with pytest.raises(ValueError, match="vocab must be auto, ids or text"):
        cruxeval_trace(tracer=tracer, vocab="bytes")


def test_text_vocabulary_can_be_forced_on_cwm(tracer, row, cwm_renderer):
    forced = cruxeval_trace(tracer=tracer, vocab="text")
    policy = Policy(ScriptedEngine([]), cwm_renderer)
    assert forced.vocabulary(policy).mode == "text"
    assert 128100 not in forced.prompt_ids(row, policy)


def test_registry_and_task_files(tracer, tmp_path):
    built = load_environment("cruxeval-trace", tracer=tracer)
    assert isinstance(built, CruxEvalTraceEnv) and len(built.rows) == 800
    assert built.pass_metric == "pass_at_1" and built.sampling == {"max_tokens": 4096}
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text(json.dumps({"code": "def g(x):\n    return x", "input": "1", "function": "g"}) + "\n")
    assert load_environment("cruxeval-trace", path=str(tasks), tracer=tracer).rows == [
        {"id": "line_1", "code": "def g(x):\n    return x", "call": "g(1)", "expected_output": None}]


@pytest.mark.slow
def test_a_real_rollout_on_the_embedded_model(smollm2, env, row):  # noqa: F811
    from tokenroll.engines.local import LocalEngine
    from tokenroll.render import load_renderer

    async def go():
        async with LocalEngine() as local:
            engine = RecordingEngine(local)
            policy = Policy(engine, load_renderer(local.tokenizer), SamplingParams(max_tokens=32, temperature=0))
            trajectory = await env.rollout(policy, row)
            await env.score_group([trajectory])
            return engine, trajectory

    engine, trajectory = asyncio.run(go())
    [generation] = engine.generations
    [step] = trajectory.steps
    assert step.prompt_ids == engine.prompts[0]
    assert step.completion_ids == generation.completion_ids
    assert step.completion_logprobs == generation.completion_logprobs
    assert step.finish_reason == generation.finish_reason.value
    cut = generation.finish_reason is FinishReason.LENGTH
    assert trajectory.stop_reason is (StopReason.MAX_TOKENS if cut else StopReason.COMPLETED)
    assert trajectory.extras["vocab"] == "text"
    assert set(trajectory.metrics) == set(METRICS)
    assert Trajectory.from_json(trajectory.to_json()) == trajectory
