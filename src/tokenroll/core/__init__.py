"""The data model every other part of tokenroll speaks: messages, attribution, steps, trajectories."""

from tokenroll.core.attribution import SCAFFOLD, RenderedTokens
from tokenroll.core.messages import Message, ToolCall, as_message, as_messages
from tokenroll.core.provider import ProviderTokens, extract_provider_tokens, message_from_choice
from tokenroll.core.samples import TrainingSample, build_samples
from tokenroll.core.serialization import (
    append_jsonl,
    dumps_trajectory,
    iter_jsonl,
    loads_trajectory,
    read_jsonl,
    repair_jsonl,
)
from tokenroll.core.steps import Step, fit_to_max_seq_len
from tokenroll.core.trajectory import StopReason, Trajectory

__all__ = [
    "SCAFFOLD",
    "Message",
    "ProviderTokens",
    "RenderedTokens",
    "Step",
    "StopReason",
    "ToolCall",
    "TrainingSample",
    "Trajectory",
    "append_jsonl",
    "as_message",
    "as_messages",
    "build_samples",
    "dumps_trajectory",
    "extract_provider_tokens",
    "fit_to_max_seq_len",
    "iter_jsonl",
    "loads_trajectory",
    "message_from_choice",
    "read_jsonl",
    "repair_jsonl",
]
