"""CRUXEval output prediction, scored exactly as the official evaluator scores it.

The official evaluator (facebookresearch/cruxeval, `evaluation/`) behaves as follows, and so
does this module:

* Generations come as `{"sample_0": [pred, ...], ...}`; sample `i` is line `i` of the data
  file. Every `sample_i` must be present; extra keys are ignored.
* A prediction that contains the call itself, `f(<input>)`, is skipped: it is neither run
  nor counted, so it lowers that sample's n.
* The others are checked by running `<code>\\nassert <expected output> == <prediction>` with
  an empty globals dict and a 3-second limit; it passes iff it runs without any exception.
* If no prediction of a sample passed, its results become `len(predictions)` failures: a
  sample without a pass gets its original n back, skipped predictions included.
* pass@k is the unbiased estimator `1 - prod(1 - k / j for j in n-c+1..n)`, which is 1.0
  whenever `n - c < k` (so pass@5 with fewer than 5 wrong predictions is 1.0, and a sample
  with no predictions at all scores 1.0). Scores are the mean over samples times 100.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tokenroll.sandbox import Job, Limits, SandboxPool
from tokenroll.traces.tasks import TaskFileError, TraceTask, load_cruxeval

CHECK_TIMEOUT_SECONDS = 3.0
CHECK_LIMITS = Limits(timeout=CHECK_TIMEOUT_SECONDS, memory_bytes=2 << 30, max_output_chars=None)
"""Sandbox limits for checks: output is swallowed without a cap, like the official
evaluator; unlike it, memory is capped (2 GiB), so a check that needs more fails."""


def check_program(code: str, expected: str, prediction: str) -> str:
    """The program CRUXEval runs to check a prediction (it passes iff it raises nothing)."""
    return f"{code}\nassert {expected} == {prediction}"


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of n samples with c correct, computed in the evaluator's float order."""
    if n - c < k:
        return 1.0
    product = 1.0
    for j in range(n - c + 1, n + 1):
        product *= 1.0 - k / j
    return 1.0 - product


def official_counts(checked: Sequence[bool], predictions: int) -> tuple[int, int]:
    """(n, c) of one sample: its checked predictions, or all `predictions` as failures if none passed."""
    correct = sum(checked)
    return (len(checked), correct) if correct else (predictions, 0)


@dataclass(slots=True)
class OutputScore:
    """pass@1 and pass@5 in percent, with each sample's per-prediction results."""

    pass_at_1: float
    pass_at_5: float
    results: dict[str, list[bool]]
    skipped: int

    def summary(self) -> dict[str, float | int]:
        return {"pass_at_1": self.pass_at_1, "pass_at_5": self.pass_at_5,
                "samples": len(self.results), "skipped_predictions": self.skipped}


def load_generations(path: str | Path) -> dict[str, list[str]]:
    """Read `{"sample_0": ["pred", ...], ...}`, saying what is wrong and where if it is not."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise TaskFileError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise TaskFileError(f"{path}: expected a JSON object of sample ids to lists of "
                            f"predictions, got {type(data).__name__}")
    for key, predictions in data.items():
        if not isinstance(predictions, list) or not all(isinstance(p, str) for p in predictions):
            raise TaskFileError(f"{path}: {key!r} must be a list of strings")
    return data


def score_output_predictions(
    generations: Mapping[str, Sequence[str]],
    tasks: Sequence[TraceTask] | None = None,
    *,
    pool: SandboxPool | None = None,
    timeout: float = CHECK_TIMEOUT_SECONDS,
) -> OutputScore:
    """Score CRUXEval-O generations against `tasks` (the shipped CRUXEval by default)."""
    tasks = list(tasks) if tasks is not None else load_cruxeval()
    keys = [f"sample_{index}" for index in range(len(tasks))]
    missing = [key for key in keys if key not in generations]
    if missing:
        raise TaskFileError(f"generations lack {len(missing)} of {len(keys)} samples, e.g. "
                            f"{missing[0]!r}; keys must be sample_0 ... sample_{len(keys) - 1}")
    unchecked = [key for key, task in zip(keys, tasks) if task.expected_output is None]
    if unchecked:
        raise TaskFileError(f"{unchecked[0]} has no expected output (field 'output')")
    jobs: list[Job] = []
    owners: list[int] = []
    skipped = 0
    for index, (key, task) in enumerate(zip(keys, tasks)):
        for prediction in generations[key]:
            if task.call in prediction:  # the official `f"f({input})" in g` skip
                skipped += 1
                continue
            jobs.append(Job(code=check_program(task.code, task.expected_output, prediction),
                            timeout=timeout, module_name=None))
            owners.append(index)
    own_pool = pool is None
    pool = pool or SandboxPool(2, limits=CHECK_LIMITS)
    try:
        outcomes = pool.map(jobs)
    finally:
        if own_pool:
            pool.close()
    per_sample: list[list[bool]] = [[] for _ in tasks]
    for owner, outcome in zip(owners, outcomes):
        per_sample[owner].append(outcome.ok)
    pass_1, pass_5 = [], []
    for key, results in zip(keys, per_sample):
        if True not in results:
            results[:] = [False] * len(generations[key])
        n, c = official_counts(results, len(generations[key]))
        pass_1.append(pass_at_k(n, c, 1))
        pass_5.append(pass_at_k(n, c, 5))
    return OutputScore(
        pass_at_1=sum(pass_1) / len(pass_1) * 100 if pass_1 else 0.0,
        pass_at_5=sum(pass_5) / len(pass_5) * 100 if pass_5 else 0.0,
        results=dict(zip(keys, per_sample)),
        skipped=skipped,
    )
