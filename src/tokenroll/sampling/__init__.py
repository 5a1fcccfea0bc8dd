"""Token-in/token-out multi-turn sampling: prompts stitched from the previous turn's tokens, with counted fallbacks."""

from tokenroll.sampling.gates import continuation_gate, new_messages_after, same_message
from tokenroll.sampling.loop import answer_tool_calls, run_tool_loop
from tokenroll.sampling.sampler import BRIDGED, FIRST_TURN, TurnSampler
from tokenroll.sampling.stats import BridgeStats, FallbackReason, PromptMode
from tokenroll.sampling.template import PROBE, ServerTemplate, TemplateBridge

__all__ = [
    "BRIDGED",
    "FIRST_TURN",
    "PROBE",
    "BridgeStats",
    "FallbackReason",
    "PromptMode",
    "ServerTemplate",
    "TemplateBridge",
    "TurnSampler",
    "answer_tool_calls",
    "continuation_gate",
    "new_messages_after",
    "run_tool_loop",
    "same_message",
]
