"""Whether a turn may be stitched onto the previous one: the gates that do not depend on the template."""

from __future__ import annotations

from collections.abc import Sequence

from tokenroll.core.messages import Message
from tokenroll.core.steps import Step
from tokenroll.engines.base import FinishReason
from tokenroll.sampling.stats import FallbackReason


def continuation_gate(previous: Step, capped_by_max_seq_len: bool) -> FallbackReason | None:
    """The reason the previous step cannot be continued token for token, or None when it can.

    A completion without its stop token (cut by the token limit or `max_seq_len`, or
    aborted) would make a stitched prompt the model never saw the like of in a full render.
    """
    if previous.overlong_prompt or capped_by_max_seq_len:
        return FallbackReason.MAX_SEQ_LEN
    if previous.finish_reason == FinishReason.LENGTH:
        return FallbackReason.LENGTH
    if previous.finish_reason == FinishReason.ABORT:
        return FallbackReason.ABORT
    if previous.is_truncated:
        return FallbackReason.MAX_SEQ_LEN
    return None


def new_messages_after(
    history: Sequence[Message], messages: Sequence[Message]
) -> tuple[list[Message] | None, FallbackReason | None]:
    """The messages that follow `history` in `messages`, or the reason they cannot be bridged.

    `history` (the previous prompt messages plus its completion message) must be a prefix of
    `messages`; what follows must be tool messages with at most one final user message.
    """
    if len(messages) < len(history) or any(
        not same_message(a, b) for a, b in zip(history, messages, strict=False)
    ):
        return None, FallbackReason.PREFIX_MISMATCH
    new = list(messages[len(history) :])
    if not new:
        return None, FallbackReason.NO_NEW_MESSAGES
    body = new[:-1] if new[-1].role == "user" else new
    if any(m.role != "tool" for m in body):
        return None, FallbackReason.NEW_MESSAGE_ROLES
    return new, None


def same_message(a: Message, b: Message) -> bool:
    """Whether two messages say the same thing, engine tokens and tool-call ids aside.

    Environments often give the parsed assistant message's tool calls their own ids, and
    store content None as "" ; neither changes the tokens the model sampled.
    """
    if a is b:
        return True
    return (
        a.role == b.role
        and (a.content or "") == (b.content or "")
        and a.reasoning_content == b.reasoning_content
        and a.tool_call_id == b.tool_call_id
        and a.name == b.name
        and _calls(a) == _calls(b)
    )


def _calls(message: Message) -> list[tuple[str, str]]:
    return [(call.name, call.arguments) for call in message.tool_calls or []]
