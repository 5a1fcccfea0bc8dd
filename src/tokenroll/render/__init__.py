"""Renderers: messages to token ids exactly as a model's chat template, with per-token attribution."""

from tokenroll.render.base import Renderer, RenderError
from tokenroll.render.parsing import ParsedCompletion, ParsedToolCall, ToolCallStatus
from tokenroll.render.registry import detect_family, families, load_renderer
from tokenroll.render.tokenizer import Tokenizer

__all__ = [
    "ParsedCompletion",
    "ParsedToolCall",
    "RenderError",
    "Renderer",
    "Tokenizer",
    "ToolCallStatus",
    "detect_family",
    "families",
    "load_renderer",
]
