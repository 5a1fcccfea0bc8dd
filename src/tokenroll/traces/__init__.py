"""Execution traces in Meta CWM's format: ground truth, text and token ids, parsing, scoring."""
