"""tokenroll: token-exact rollouts for multi-turn, tool-using LLM environments."""

from importlib.metadata import version as _distribution_version

__version__ = _distribution_version("tokenroll")
