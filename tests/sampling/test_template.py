"""Template mode: the model's own chat template, bridged locally or through the server's `tokenize`."""

from __future__ import annotations

import asyncio

import pytest

from tests.render.glm_tokenizer import glm_hf_tokenizer
from tests.sampling.conversations import ASSISTANT_TURNS, QWEN_IM_END, TOOL_LOOP, TOOLS, call, renderer, sampled, say, tool, user
from tests.sampling.fakes import Scripted, ScriptedEngine
from tests.sampling.test_sampler import drive
from tokenroll.engines.base import SamplingParams
from tokenroll.render import load_renderer
from tokenroll.render.generic import TemplateRenderer
from tokenroll.sampling import PROBE, FallbackReason, ServerTemplate, TurnSampler


def template_of(family: str) -> TemplateRenderer:
    return renderer(family, family="generic")


def test_template_modes_give_the_renderer_mode_ids_for_qwen25():
    r = renderer("qwen2.5")
    script = [Scripted(sampled(r, TOOL_LOOP, k)) for k in ASSISTANT_TURNS]
    runs = {}
    for name, options in {
        "renderer": {},
        "local": {"mode": "template"},
        "server": {"mode": "template", "template_source": "server"},
    }.items():
        engine = ScriptedEngine(list(script), template=template_of("qwen2.5"))
        sampler = TurnSampler(engine, r, tools=TOOLS, drift_check=True, **options)
        steps = drive(sampler)
        runs[name] = [s.prompt_ids for s in steps]
        assert [s.extras["prompt"]["reason"] for s in steps] == ["first_turn", "bridged", "bridged"]
        assert [s.extras["prompt"].get("drift", {}).get("tokens") for s in steps] == [None, 0, 0]
        assert [s.completion_ids for s in steps] == [a.completion_ids for a in script]
        assert sampler.stats.bridge_successes == 2
    assert runs["local"] == runs["renderer"] == runs["server"]
    assert isinstance(TurnSampler(ScriptedEngine(), r, mode="template").renderer, TemplateRenderer)


def test_server_mode_records_its_source_and_has_no_attribution():
    r = renderer("qwen2.5")
    engine = ScriptedEngine([Scripted(sampled(r, TOOL_LOOP, k)) for k in ASSISTANT_TURNS[:2]], template=template_of("qwen2.5"))
    sampler = TurnSampler(engine, r, tools=TOOLS, mode="template", template_source="server")
    steps = drive(sampler, turns=ASSISTANT_TURNS[:2])
    assert steps[1].extras["prompt"] == {"mode": "template", "built": "bridge", "reason": "bridged", "source": "server"}
    assert steps[1].prompt_attribution is None
    # Full render, then per bridge one call (the probes are cached): 1 + 2 probes + 1.
    assert engine.tokenize_calls == 4


def _glm(family: str):
    hand_written = load_renderer(glm_hf_tokenizer(family))
    return hand_written, load_renderer(glm_hf_tokenizer(family), family="generic")


GLM_LOOP = [user("What is 1+2?"), call(1, 2), tool("3"), say("3")]


@pytest.mark.slow
@pytest.mark.parametrize("family", ["glm-4.6", "glm-4.7"])
def test_glm_stop_marker_that_opens_the_tool_turn_is_not_doubled(family):
    hand_written, generic = _glm(family)
    kwargs = {"enable_thinking": False}
    completion = sampled(hand_written, GLM_LOOP, 1, **kwargs)
    observation = hand_written.tokenizer.added_tokens["<|observation|>"]
    assert completion[-1] == observation
    server = ServerTemplate(ScriptedEngine(template=generic).tokenize, generic.stop_token_ids, kwargs)
    first = generic.render_ids(GLM_LOOP[:1], TOOLS, add_generation_prompt=True, **kwargs)
    result = asyncio.run(server.bridge(first, completion, [GLM_LOOP[2]], TOOLS))
    full = generic.render_ids(GLM_LOOP[:3], TOOLS, add_generation_prompt=True, **kwargs)
    assert result.refusal is None
    assert result.prompt_ids == full
    n = len(first) + len(completion)
    assert result.prompt_ids[:n] == first + completion and observation not in result.prompt_ids[n:]
    # The hand-written renderer's bridge agrees token for token.
    assert result.prompt_ids == hand_written.bridge(first, completion, [GLM_LOOP[2]], TOOLS, **kwargs).token_ids


@pytest.mark.slow
@pytest.mark.parametrize("family", ["glm-4.6", "glm-4.7"])
def test_glm_marker_that_opens_the_wrong_message_is_refused(family):
    hand_written, generic = _glm(family)
    server = ServerTemplate(ScriptedEngine(template=generic).tokenize, generic.stop_token_ids)
    tokens = hand_written.tokenizer.added_tokens
    first = generic.render_ids(GLM_LOOP[:1], TOOLS, add_generation_prompt=True)
    body = hand_written.tokenizer.encode("hello")
    refused = asyncio.run(server.bridge(first, body + [tokens["<|user|>"]], [tool("3")], TOOLS))
    assert refused.prompt_ids is None and refused.refusal is FallbackReason.TEMPLATE_MISMATCH
    refused = asyncio.run(server.bridge(first, body + [tokens["<|observation|>"]], [user("more")], TOOLS))
    assert refused.refusal is FallbackReason.TEMPLATE_MISMATCH
    accepted = asyncio.run(server.bridge(first, body + [tokens["<|user|>"]], [user("more")], TOOLS))
    assert accepted.prompt_ids == first + body + [tokens["<|user|>"]] + generic.render_ids(
        [user("x"), say("hello"), user("more")], TOOLS, add_generation_prompt=True
    )[len(generic.render_ids([user("x"), say("hello")], TOOLS)) + 1 :]


@pytest.mark.slow
def test_qwen3_server_bridge_drops_the_probe_think_block_and_matches_the_renderer():
    r = renderer("qwen3")
    generic = template_of("qwen3")
    history = [user("What is 2+2?"), say("4", reasoning="Two and two."), user("And 3+3?")]
    completion = sampled(r, history[:2], 1, tools=None)
    first = r.render_ids(history[:1], add_generation_prompt=True)
    server = ServerTemplate(ScriptedEngine(template=generic).tokenize, r.stop_token_ids)
    user_only, probe = asyncio.run(server._probe(None))
    assert r.tokenizer.token_id("<think>") in probe[len(user_only):]  # the probe assistant rendered last
    result = asyncio.run(server.bridge(first, completion, history[2:], None))
    assert result.prompt_ids == r.bridge(first, completion, history[2:]).token_ids


def test_server_bridge_refuses_a_completion_without_a_stop_token():
    r = renderer("qwen2.5")
    server = ServerTemplate(ScriptedEngine(template=template_of("qwen2.5")).tokenize, r.stop_token_ids)
    result = asyncio.run(server.bridge([1, 2], r.tokenizer.encode("hi"), [user("more")], None))
    assert result.prompt_ids is None and result.refusal is FallbackReason.NO_STOP_TOKEN


def test_server_mode_falls_back_and_counts_a_template_mismatch():
    r = renderer("qwen2.5")
    endoftext = r.tokenizer.token_id("<|endoftext|>")  # a stop token the template never writes
    engine = ScriptedEngine(
        [Scripted(r.tokenizer.encode("a") + [endoftext]), Scripted([QWEN_IM_END])], template=template_of("qwen2.5")
    )
    stops = SamplingParams(stop_token_ids=(endoftext,))
    sampler = TurnSampler(engine, r, mode="template", template_source="server", sampling=stops)

    async def go():
        first = await sampler.step([user("hi")])
        return first, await sampler.step([user("hi"), first.completion_message, user("more")])

    first, second = asyncio.run(go())
    assert second.extras["prompt"]["reason"] == "template_mismatch"
    expected = [user("hi"), first.completion_message, user("more")]
    assert second.prompt_ids == template_of("qwen2.5").render_ids(expected, add_generation_prompt=True)
    assert sampler.stats.fallbacks == {"template_mismatch": 1}


def test_probe_is_the_renderer_bridge_probe():
    assert [m.role for m in PROBE] == ["user", "assistant"] and all(m.content == "." for m in PROBE)
