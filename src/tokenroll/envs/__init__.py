"""Environments: rubrics, advantages and tools (single- and multi-turn rollouts over datasets to come)."""

from tokenroll.envs.advantages import Baseline, assign_advantages, group_advantages
from tokenroll.envs.rubrics import Rubric, RubricGroup
from tokenroll.envs.tools import ERROR_PREFIX, Toolbox, ToolResult, python_tool, tool_schema

__all__ = [
    "ERROR_PREFIX",
    "Baseline",
    "Rubric",
    "RubricGroup",
    "ToolResult",
    "Toolbox",
    "assign_advantages",
    "group_advantages",
    "python_tool",
    "tool_schema",
]
