"""Token ids and logprobs recovered from OpenAI-compatible provider payloads.

Providers expose sampled token ids in several places; every one found is read and they
must agree, because a step built from ids and logprobs that do not line up is silently
wrong for training:

- vLLM `return_token_ids`: `choices[i].token_ids`, and `prompt_token_ids` on the response
  (chat) or on the choice (completions);
- OpenAI-style `logprobs.content[].token_id` and `logprobs.token_ids[]`;
- vLLM `return_tokens_as_token_ids`: token strings of the form `"token_id:123"` in
  `logprobs.content[].token` (chat) or `logprobs.tokens[]` (completions).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tokenroll.core.messages import Message, ToolCall

_TOKEN_ID_PREFIX = "token_id:"


@dataclass(slots=True, frozen=True)
class ProviderTokens:
    """What a provider payload says about tokens; a field is None when the payload lacks it."""

    prompt_ids: list[int] | None = None
    completion_ids: list[int] | None = None
    completion_logprobs: list[float] | None = None


def extract_provider_tokens(payload: Mapping[str, Any], choice_index: int = 0) -> ProviderTokens:
    """Read token ids and logprobs from a response (with `choices`) or from one choice."""
    if not isinstance(payload, Mapping):
        raise TypeError(f"provider payload is a {type(payload).__name__}, expected a mapping")
    response: Mapping[str, Any] = {}
    choice: Mapping[str, Any] = payload
    where = "choice"
    if "choices" in payload:
        response = payload
        choices = payload["choices"]
        if not isinstance(choices, Sequence) or not 0 <= choice_index < len(choices):
            raise ValueError(f"provider payload has no choices[{choice_index}]")
        choice = choices[choice_index]
        where = f"choices[{choice_index}]"
        if not isinstance(choice, Mapping):
            raise TypeError(f"{where} is a {type(choice).__name__}, expected a mapping")

    candidates: list[tuple[str, list[int]]] = []
    if choice.get("token_ids") is not None:
        candidates.append((f"{where}.token_ids", _int_list(choice["token_ids"], f"{where}.token_ids")))
    logprobs = choice.get("logprobs")
    completion_logprobs: list[float] | None = None
    if isinstance(logprobs, Mapping):
        ids, completion_logprobs = _read_logprobs(logprobs, f"{where}.logprobs")
        candidates.extend(ids)

    completion_ids: list[int] | None = None
    if candidates:
        first_where, completion_ids = candidates[0]
        for other_where, other_ids in candidates[1:]:
            if other_ids != completion_ids:
                raise ValueError(
                    f"provider payload disagrees on token ids: {first_where} has "
                    f"{len(completion_ids)} ids, {other_where} has {len(other_ids)}"
                    + ("" if len(other_ids) != len(completion_ids) else " with different values")
                )
        if completion_logprobs is not None and len(completion_logprobs) != len(completion_ids):
            raise ValueError(
                f"provider payload: {first_where} has {len(completion_ids)} ids but "
                f"{where}.logprobs has {len(completion_logprobs)} values"
            )

    prompt_ids = None
    for source, field_where in ((choice, where), (response, "response")):
        if source.get("prompt_token_ids") is not None:
            prompt_ids = _int_list(source["prompt_token_ids"], f"{field_where}.prompt_token_ids")
            break
    return ProviderTokens(prompt_ids, completion_ids, completion_logprobs)


def message_from_choice(payload: Mapping[str, Any], choice_index: int = 0) -> Message:
    """The assistant message of a chat-completion choice, with token ids when the provider gave them.

    Logprobs become a flat list when ids were found; otherwise the provider's logprobs payload
    is kept unchanged.
    """
    choice = payload["choices"][choice_index] if "choices" in payload else payload
    raw = choice.get("message")
    if not isinstance(raw, Mapping):
        raise ValueError(f"choices[{choice_index}] has no 'message' mapping")
    tokens = extract_provider_tokens(payload, choice_index)
    logprobs: Any = choice.get("logprobs")
    if tokens.completion_ids is not None:
        logprobs = tokens.completion_logprobs
    tool_calls = raw.get("tool_calls") or None
    return Message(
        role=raw.get("role") or "assistant",
        content=raw.get("content"),
        reasoning_content=raw.get("reasoning_content", raw.get("reasoning")),
        tool_calls=[ToolCall.from_dict(c, f"tool_calls[{i}]") for i, c in enumerate(tool_calls)]
        if tool_calls
        else None,
        token_ids=tokens.completion_ids,
        logprobs=logprobs,
    )


def _read_logprobs(
    logprobs: Mapping[str, Any], where: str
) -> tuple[list[tuple[str, list[int]]], list[float] | None]:
    """Token-id candidates and flat logprobs found in a `logprobs` object."""
    candidates: list[tuple[str, list[int]]] = []
    values: list[float] | None = None
    content = logprobs.get("content")
    if isinstance(content, Sequence) and content:
        entries = [e for e in content if isinstance(e, Mapping)]
        if len(entries) != len(content):
            raise ValueError(f"{where}.content holds entries that are not mappings")
        if all("token_id" in e for e in entries):
            label = f"{where}.content[].token_id"
            candidates.append((label, _int_list([e["token_id"] for e in entries], label)))
        ids = _ids_from_token_strings([e.get("token") for e in entries])
        if ids is not None:
            candidates.append((f"{where}.content[].token", ids))
        if all(isinstance(e.get("logprob"), (int, float)) for e in entries):
            values = [float(e["logprob"]) for e in entries]
    if logprobs.get("token_ids") is not None:
        candidates.append(
            (f"{where}.token_ids", _int_list(logprobs["token_ids"], f"{where}.token_ids"))
        )
    tokens = logprobs.get("tokens")
    if isinstance(tokens, Sequence) and tokens:
        ids = _ids_from_token_strings(tokens)
        if ids is not None:
            candidates.append((f"{where}.tokens", ids))
    token_logprobs = logprobs.get("token_logprobs")
    if values is None and isinstance(token_logprobs, Sequence) and token_logprobs:
        if all(isinstance(v, (int, float)) for v in token_logprobs):
            values = [float(v) for v in token_logprobs]
    return candidates, values


def _ids_from_token_strings(tokens: Sequence[Any]) -> list[int] | None:
    """Ids from vLLM `"token_id:123"` strings, or None unless every token has that form."""
    ids = []
    for token in tokens:
        if not isinstance(token, str) or not token.startswith(_TOKEN_ID_PREFIX):
            return None
        digits = token[len(_TOKEN_ID_PREFIX) :]
        if not digits.isdigit():
            return None
        ids.append(int(digits))
    return ids


def _int_list(values: Any, where: str) -> list[int]:
    if not isinstance(values, Sequence) or isinstance(values, (str, bytes)):
        raise TypeError(f"{where} is a {type(values).__name__}, expected a list of ints")
    if not all(type(v) is int for v in values):
        raise TypeError(f"{where} must hold only ints")
    return list(values)
