"""The rollout runner: groups of rollouts scored together, saved as they finish, resumable."""

from tokenroll.runner.run import EvalConfig, EvalResult, evaluate
from tokenroll.runner.rundir import RunDir, RunDirError

__all__ = ["EvalConfig", "EvalResult", "RunDir", "RunDirError", "evaluate"]
