"""Environments: tools, and (to come) single- and multi-turn rollouts over datasets."""

from tokenroll.envs.tools import ERROR_PREFIX, Toolbox, ToolResult, python_tool, tool_schema

__all__ = ["ERROR_PREFIX", "ToolResult", "Toolbox", "python_tool", "tool_schema"]
