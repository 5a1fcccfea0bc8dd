"""Environments: rubrics, advantages and tools."""

from tokenroll.envs.advantages import Baseline, assign_advantages, group_advantages
from tokenroll.envs.rubrics import Rubric, RubricGroup

__all__ = ["Baseline", "Rubric", "RubricGroup", "assign_advantages", "group_advantages"]
