"""Environments: datasets, single- and multi-turn rollouts, tools, rubrics and advantages."""

from tokenroll.envs.advantages import Baseline, assign_advantages, group_advantages
from tokenroll.envs.base import Environment, Limits, Policy
from tokenroll.envs.datasets import DatasetError, load_rows
from tokenroll.envs.multiturn import MultiTurnEnv, SingleTurnEnv, ToolEnv
from tokenroll.envs.registry import EnvironmentNotFoundError, load_environment
from tokenroll.envs.rubrics import Rubric, RubricGroup
from tokenroll.envs.tools import ERROR_PREFIX, Toolbox, ToolResult, python_tool, tool_schema

__all__ = [
    "ERROR_PREFIX",
    "Baseline",
    "DatasetError",
    "Environment",
    "EnvironmentNotFoundError",
    "Limits",
    "MultiTurnEnv",
    "Policy",
    "Rubric",
    "RubricGroup",
    "SingleTurnEnv",
    "ToolEnv",
    "ToolResult",
    "Toolbox",
    "assign_advantages",
    "group_advantages",
    "load_environment",
    "load_rows",
    "python_tool",
    "tool_schema",
]
