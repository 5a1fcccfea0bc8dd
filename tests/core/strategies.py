"""Hypothesis strategies for the data model: steps that do or do not extend each other."""

from __future__ import annotations

from hypothesis import strategies as st

from tokenroll.core.attribution import SCAFFOLD, RenderedTokens
from tokenroll.core.messages import Message, ToolCall
from tokenroll.core.steps import Step
from tokenroll.core.trajectory import StopReason, Trajectory

token_ids = st.lists(st.integers(0, 200_000), max_size=12)
finite_floats = st.floats(allow_nan=False, allow_infinity=False, width=64)
text = st.text(max_size=20)
json_scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | finite_floats | text
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=6,
)


@st.composite
def messages(draw, role=None) -> Message:
    role = role or draw(st.sampled_from(["system", "user", "assistant", "tool"]))
    tool_calls = None
    if role == "assistant" and draw(st.booleans()):
        tool_calls = [
            ToolCall(name=draw(st.sampled_from(["add", "search"])), arguments=draw(st.sampled_from(['{"a": 1}', '{"q": "é"}', "{"])), id=draw(st.none() | text))
            for _ in range(draw(st.integers(1, 2)))
        ]
    return Message(
        role=role,
        content=draw(st.none() | text),
        reasoning_content=draw(st.none() | text) if role == "assistant" else None,
        tool_calls=tool_calls,
        tool_call_id=draw(st.none() | text) if role == "tool" else None,
        name=draw(st.none() | st.sampled_from(["add", "search"])) if role == "tool" else None,
    )


@st.composite
def attributions(draw, ids: list[int], n_messages: int) -> RenderedTokens:
    roles = [draw(st.sampled_from(["system", "user", "assistant", "tool"])) for _ in range(n_messages)]
    indices = [draw(st.integers(SCAFFOLD, n_messages - 1)) for _ in ids]
    return RenderedTokens(
        token_ids=list(ids),
        message_indices=indices,
        sampled_mask=[draw(st.booleans()) for _ in ids],
        is_content=[draw(st.booleans()) for _ in ids],
        message_roles=roles,
        message_tool_names=[draw(st.none() | st.just("search")) for _ in roles],
    )


@st.composite
def steps(draw, previous: Step | None = None) -> Step:
    """A step; after `previous` it usually extends it, as multi-turn prompts do."""
    extend = previous is not None and draw(st.integers(0, 3)) > 0
    if extend:
        prompt_ids = previous.prompt_ids + previous.completion_ids + draw(token_ids)
        prompt_messages = list(previous.prompt_messages)
        if previous.completion_message is not None:
            prompt_messages.append(previous.completion_message)
        prompt_messages += draw(st.lists(messages(role="tool"), max_size=2))
    else:
        prompt_ids = draw(token_ids)
        prompt_messages = draw(st.lists(messages(), max_size=3))
    completion_ids = draw(token_ids)
    n = len(completion_ids)
    attribution = None
    if draw(st.booleans()):
        n_messages = max(1, len(prompt_messages))
        if extend and previous.prompt_attribution is not None and draw(st.booleans()):
            grown = previous.prompt_attribution.with_message(
                previous.completion_ids, "assistant", sampled=True, is_content=True
            )
            tail = draw(attributions(prompt_ids[len(grown.token_ids):], len(grown.message_roles)))
            attribution = RenderedTokens(
                token_ids=prompt_ids,
                message_indices=grown.message_indices + tail.message_indices,
                sampled_mask=grown.sampled_mask + tail.sampled_mask,
                is_content=grown.is_content + tail.is_content,
                message_roles=grown.message_roles,
                message_tool_names=grown.message_tool_names,
            )
        else:
            attribution = draw(attributions(prompt_ids, n_messages))
    advantage = draw(st.none() | finite_floats)
    return Step(
        prompt_ids=prompt_ids,
        completion_ids=completion_ids,
        prompt_messages=prompt_messages,
        completion_message=draw(st.none() | messages(role="assistant")),
        completion_logprobs=draw(st.none() | st.lists(st.floats(-50, 0), min_size=n, max_size=n)),
        completion_mask=draw(st.lists(st.booleans(), min_size=n, max_size=n)),
        finish_reason=draw(st.none() | st.sampled_from(["stop", "length", "tool_calls"])),
        is_truncated=draw(st.booleans()),
        overlong_prompt=draw(st.booleans()),
        prompt_attribution=attribution,
        reward=draw(st.none() | finite_floats),
        advantage=advantage,
        completion_advantages=draw(
            st.none()
            | st.just([advantage] * n if advantage is not None else [0.0] * n)
            | st.lists(finite_floats, min_size=n, max_size=n)
        ),
        extras=draw(st.dictionaries(text, json_values, max_size=2)),
    )


@st.composite
def step_chains(draw, max_steps: int = 5) -> list[Step]:
    chain: list[Step] = []
    for _ in range(draw(st.integers(0, max_steps))):
        chain.append(draw(steps(chain[-1] if chain else None)))
    return chain


@st.composite
def trajectories(draw) -> Trajectory:
    return Trajectory(
        id=draw(text),
        input=draw(st.dictionaries(text, json_values, max_size=3)),
        steps=draw(step_chains()),
        reward=draw(st.none() | finite_floats),
        metrics=draw(st.dictionaries(text, finite_floats, max_size=3)),
        stop_reason=draw(st.none() | st.sampled_from(list(StopReason))),
        error=draw(st.none() | text),
        timing=draw(st.dictionaries(text, st.floats(0, 1e6), max_size=2)),
        example_id=draw(st.none() | st.integers(0, 10**6) | text),
        rollout_index=draw(st.integers(0, 64)),
        extras=draw(st.dictionaries(text, json_values, max_size=2)),
    )
