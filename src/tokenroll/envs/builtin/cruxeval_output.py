"""`cruxeval-output`: the model predicts `f(input)` of a CRUXEval program; execution checks it.

The answer is read from `[ANSWER] ... [/ANSWER]` (an `assert f(...) == X` inside keeps only
`X`). It is checked as the official evaluator checks it, by running
`<code>\\nassert <expected> == <prediction>` in the sandbox. A prediction that contains the
call itself is skipped by the evaluator: it scores 0 and leaves that example's n, and the
run's pass@k (in `summarize`) follows the evaluator's rules exactly.
"""

from __future__ import annotations

import ast
import asyncio
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tokenroll.core.messages import Message
from tokenroll.core.trajectory import Trajectory
from tokenroll.envs.multiturn import SingleTurnEnv
from tokenroll.envs.rubrics import Rubric
from tokenroll.sandbox import SandboxPool
from tokenroll.traces.cruxeval import CHECK_LIMITS, CHECK_TIMEOUT_SECONDS, check_program, official_counts, pass_at_k
from tokenroll.traces.tasks import TaskFileError, load_cruxeval

SYSTEM_PROMPT = (
    "You are given a Python function and an assertion containing an input to the function. "
    "Complete the assertion with a literal (no unsimplified expressions, no function calls) "
    "containing the output when executing the provided code on the given input, even if the "
    "function is incorrect or incomplete. Give the full assertion between [ANSWER] and [/ANSWER]."
)
_ANSWER = re.compile(r"\[ANSWER\](.*?)(?:\[/ANSWER\]|$)", re.DOTALL)
_K_VALUES = (1, 5)


def extract_prediction(response: str) -> str:
    """The predicted output: the last `[ANSWER]` block's text, right of `==` when it is an assertion."""
    blocks = _ANSWER.findall(response)
    text = (blocks[-1] if blocks else response).strip()
    if text.startswith("assert ") and "==" in text:
        return _asserted_value(text)
    return text


def _asserted_value(text: str) -> str:
    """The right side of `assert left == right`, found by parsing so an `==` inside a string stays put."""
    try:
        statement = ast.parse(text).body[0]
    except (SyntaxError, IndexError):
        statement = None
    if (
        isinstance(statement, ast.Assert)
        and isinstance(statement.test, ast.Compare)
        and len(statement.test.ops) == 1
        and isinstance(statement.test.ops[0], ast.Eq)
    ):
        return (ast.get_source_segment(text, statement.test.comparators[0]) or "").strip()
    return text.split("==", 1)[1].strip()  # not Python: the text after the first `==`


class CruxEvalOutputEnv(SingleTurnEnv):
    """CRUXEval-O as a chat environment; rows carry `code`, `call` and `answer` (the expected output)."""

    name = "cruxeval-output"
    pass_metric = "correct"

    def __init__(self, rows: Sequence[Mapping[str, Any]], *, workers: int = 2, **options: Any) -> None:
        options.setdefault("sampling", {"max_tokens": 256})
        super().__init__(rows, system_prompt=SYSTEM_PROMPT, rubric=Rubric([self.correct]), **options)
        self._workers = workers
        self._pool: SandboxPool | None = None

    def format_prompt(self, row: Mapping[str, Any]) -> list[Message]:
        user = f"```python\n{row['code']}\nassert {row['call']} == ??\n```"
        return [Message(role="system", content=SYSTEM_PROMPT), Message(role="user", content=user)]

    async def correct(self, response: str, input: dict[str, Any], state: dict[str, Any]) -> float:
        prediction = extract_prediction(response)
        state["prediction"] = prediction
        if input["call"] in prediction:  # the evaluator's skip: neither run nor counted
            state["skipped"] = True
            return 0.0
        if self._pool is None:
            self._pool = SandboxPool(self._workers, limits=CHECK_LIMITS)
        program = check_program(input["code"], input["answer"], prediction)
        result = await asyncio.to_thread(self._pool.run, program, timeout=CHECK_TIMEOUT_SECONDS, module_name=None)
        state["checked"] = result.ok
        return 1.0 if result.ok else 0.0

    def summarize(self, trajectories: Sequence[Trajectory]) -> dict[str, Any]:
        """pass@1 and pass@5 in percent by the official evaluator's rules, each k only up to the rollouts per example."""
        by_example: dict[Any, list[Trajectory]] = {}
        for trajectory in trajectories:
            by_example.setdefault(trajectory.example_id, []).append(trajectory)
        # pass@k needs k samples: with fewer, the evaluator's estimator reports 1.0 for any result.
        fewest = min((len(group) for group in by_example.values()), default=0)
        k_values = [k for k in _K_VALUES if k <= fewest]
        scores: dict[str, list[float]] = {str(k): [] for k in k_values}
        for group in by_example.values():
            # A skipped prediction drops out of n; one whose check never ran (the sandbox failed) is a failure.
            checked = [_checked(t) for t in group]
            n, c = official_counts([ok for ok in checked if ok is not None], len(group))
            for k in k_values:
                scores[str(k)].append(pass_at_k(n, c, k))
        # The evaluator's float order (mean, then percent), so the figures match it bit for bit.
        return {"pass_at_k": {k: sum(v) / len(v) * 100 for k, v in scores.items() if v}}

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None


def _checked(trajectory: Trajectory) -> bool | None:
    """Whether the rollout's prediction passed its check; None when the evaluator skipped it."""
    state = trajectory.extras.get("state", {})
    if state.get("skipped"):
        return None
    return bool(state.get("checked", False))


def cruxeval_output(path: str | None = None, workers: int = 2, **options: Any) -> CruxEvalOutputEnv:
    """CRUXEval-O over the shipped 800 samples, or a JSONL file of `{code, input, output}` rows."""
    tasks = load_cruxeval(Path(path) if path else None)
    unchecked = [t.id for t in tasks if t.expected_output is None]
    if unchecked:
        raise TaskFileError(f"{path}: {len(unchecked)} rows have no expected output (field 'output'), e.g. {unchecked[0]}")
    rows = [{"id": t.id, "code": t.code, "call": t.call, "answer": t.expected_output} for t in tasks]
    return CruxEvalOutputEnv(rows, workers=workers, **options)
