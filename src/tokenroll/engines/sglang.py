"""An SGLang server: token ids in through its native `/generate`, token ids and logprobs out.

The answer's `meta_info.output_token_logprobs` holds `[logprob, token_id, text]` per sampled
token; its ids must equal `output_ids` when the server sends both.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tokenroll.engines import _parse
from tokenroll.engines.base import Generation, MalformedResponseError, SamplingParams
from tokenroll.engines.http import HTTPEngine

GENERATE_PATH = "/generate"
MODELS_PATH = "/v1/models"


class SGLangEngine(HTTPEngine):
    """A model served by SGLang (`--skip-tokenizer-init` servers work too: no text is needed)."""

    async def generate(self, prompt_ids: Sequence[int], sampling: SamplingParams) -> Generation:
        params: dict[str, Any] = {
            "max_new_tokens": sampling.max_tokens,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "skip_special_tokens": False,
        }
        if sampling.top_k > 0:
            params["top_k"] = sampling.top_k
        if sampling.seed is not None:
            params["sampling_seed"] = sampling.seed
        if sampling.stop_token_ids:
            params["stop_token_ids"] = list(sampling.stop_token_ids)
        params.update(sampling.extra)
        payload = {
            "input_ids": list(prompt_ids),
            "sampling_params": params,
            "return_logprob": True,
            "stream": False,
        }
        answer = await self._post(GENERATE_PATH, payload)
        return _generation(answer, prompt_ids, f"{self.model} {GENERATE_PATH}")

    async def max_model_len(self) -> int | None:
        return _parse.served_max_model_len(await self._get(MODELS_PATH), self.model, MODELS_PATH)


def _generation(answer: Any, prompt_ids: Sequence[int], where: str) -> Generation:
    """An SGLang `/generate` answer as a Generation, with ids, logprobs and counts cross-checked."""
    if isinstance(answer, list) and len(answer) == 1:
        answer = answer[0]  # a batch of one
    meta = answer.get("meta_info") if isinstance(answer, Mapping) else None
    if not isinstance(meta, Mapping):
        raise MalformedResponseError(f"{where}: response has no 'meta_info' object")
    entries = meta.get("output_token_logprobs")
    if not isinstance(entries, list):
        raise MalformedResponseError(f"{where}: meta_info has no 'output_token_logprobs' list")
    ids: list[int] = []
    logprobs: list[float] = []
    for i, entry in enumerate(entries):
        if (
            not isinstance(entry, list)
            or len(entry) < 2
            or type(entry[1]) is not int
            or not isinstance(entry[0], (int, float))
        ):
            raise MalformedResponseError(
                f"{where}: output_token_logprobs[{i}] is {entry!r:.80}, expected [logprob, token_id, ...]"
            )
        logprobs.append(float(entry[0]))
        ids.append(entry[1])
    if "output_ids" in answer:
        output_ids = _parse.int_list(answer["output_ids"], f"{where} output_ids")
        if output_ids != ids:
            raise MalformedResponseError(
                f"{where}: output_ids has {len(output_ids)} ids but output_token_logprobs has "
                f"{len(ids)}" + (" with different ids" if len(ids) == len(output_ids) else "")
            )
    counted = meta.get("prompt_tokens")
    if type(counted) is int and counted != len(prompt_ids):
        raise MalformedResponseError(
            f"{where}: the server counted {counted} prompt tokens, {len(prompt_ids)} were sent"
        )
    finish = meta.get("finish_reason")
    usage = {
        key: meta[key]
        for key in ("prompt_tokens", "completion_tokens", "cached_tokens")
        if type(meta.get(key)) is int
    }
    return Generation(
        prompt_ids=list(prompt_ids),
        completion_ids=ids,
        completion_logprobs=_parse.checked_logprobs(logprobs, where),
        finish_reason=_parse.finish_reason(
            finish.get("type") if isinstance(finish, Mapping) else finish, where
        ),
        usage=usage,
    )
