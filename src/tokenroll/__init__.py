"""tokenroll: token-exact rollouts for multi-turn, tool-using LLM environments."""

from importlib.metadata import version as _distribution_version

from tokenroll.core import (
    Message,
    RenderedTokens,
    Step,
    StopReason,
    ToolCall,
    TrainingSample,
    Trajectory,
    append_jsonl,
    extract_provider_tokens,
    fit_to_max_seq_len,
    message_from_choice,
    read_jsonl,
)

__version__ = _distribution_version("tokenroll")

__all__ = [
    "Message",
    "RenderedTokens",
    "Step",
    "StopReason",
    "ToolCall",
    "TrainingSample",
    "Trajectory",
    "__version__",
    "append_jsonl",
    "extract_provider_tokens",
    "fit_to_max_seq_len",
    "message_from_choice",
    "read_jsonl",
]
