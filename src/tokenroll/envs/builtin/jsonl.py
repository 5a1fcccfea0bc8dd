"""`jsonl`: question/answer rows from a user's JSONL file, rewarded by exact match or a regex.

Each line is `{"question": ..., "answer": ...}` (other keys stay on the row, so `prompt`
may replace `question`). With `extract`, the response's answer is the first group of that
regex (the whole match without a group); otherwise the whole response, stripped.
`match="exact"` compares it with `answer` (both stripped); `match="regex"` reads `answer`
as a regular expression the answer must fully match.
"""

from __future__ import annotations

import re
from typing import Any

from tokenroll.envs.datasets import DatasetError, load_rows
from tokenroll.envs.multiturn import SingleTurnEnv
from tokenroll.envs.rubrics import Rubric

_MATCHES = ("exact", "regex")


def extracted_answer(response: str, extract: re.Pattern[str] | None) -> str | None:
    """The answer a response gives: `extract`'s first group (or match), else the stripped response."""
    if extract is None:
        return response.strip()
    found = extract.search(response)
    if found is None:
        return None
    given = found.group(1) if extract.groups else found.group(0)
    return None if given is None else given.strip()  # None: the group took no part in the match


def jsonl(
    path: str,
    match: str = "exact",
    extract: str | None = None,
    system_prompt: str | None = None,
    **options: Any,
) -> SingleTurnEnv:
    """A single-turn environment over the question/answer rows of `path`."""
    if match not in _MATCHES:
        raise ValueError(f"match must be one of {', '.join(_MATCHES)}, got {match!r}")
    try:
        extractor = re.compile(extract, re.DOTALL) if extract else None
    except re.error as exc:
        raise ValueError(f"extract is not a valid regular expression ({exc}): {extract!r}") from None
    rows = load_rows(path)
    for number, row in enumerate(rows, start=1):
        if not isinstance(row.get("answer"), str):
            raise DatasetError(f"{path}: row {number} needs a string 'answer' field")
        if match == "regex":
            try:
                re.compile(row["answer"])
            except re.error as exc:
                raise DatasetError(f"{path}: row {number}: 'answer' is not a valid regular expression ({exc})") from None

    def correct(response: str, answer: str) -> float:
        given = extracted_answer(response, extractor)
        if given is None:
            return 0.0
        if match == "regex":
            return float(re.fullmatch(answer, given, re.DOTALL) is not None)
        return float(given == answer.strip())

    env = SingleTurnEnv(rows, system_prompt=system_prompt, rubric=Rubric([correct]), name="jsonl", **options)
    env.pass_metric = "correct"
    return env

