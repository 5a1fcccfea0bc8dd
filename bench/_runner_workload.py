"""The workload both sides of `bench/runner.py` run: the rows, the system prompt, the reward.

Imported by the tokenroll side (the project's python) and by the verifiers side (the bench's
verifiers virtualenv), so it depends on the standard library only.
"""

from __future__ import annotations

import re

MODEL = "bench-stub"
SYSTEM_PROMPT = (
    "You are a careful calculator. Reply with one short sentence that ends with the number."
)
MAX_TOKENS = 16
TEMPERATURE = 1.0

_LAST_INTEGER = re.compile(r"-?\d+(?=\D*$)")


def make_rows(n: int) -> list[dict[str, str]]:
    """`n` question/answer rows, the same on every call: sums of two digits."""
    rows = []
    for i in range(n):
        a, b = i % 10, (i // 10) % 10
        rows.append({"question": f"What is {a} + {b}?", "answer": str(a + b)})
    return rows


def messages(row: dict[str, str]) -> list[dict[str, str]]:
    """The prompt of one row, as verifiers' SingleTurnEnv builds it from `system_prompt`."""
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": row["question"]},
    ]


def exact_match(text: str, answer: str) -> float:
    """1.0 when the last integer in `text` is `answer`, else 0.0."""
    found = _LAST_INTEGER.search(text)
    return 1.0 if found is not None and found.group() == answer else 0.0


def expected_mean_reward(rows: list[dict[str, str]], completion_text: str) -> float:
    """The mean reward every rollout must reach when the server always answers `completion_text`."""
    return sum(exact_match(completion_text, row["answer"]) for row in rows) / len(rows)
