"""`tokenroll trace run|score` and `tokenroll cruxeval score-output`."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tokenroll.cli.main import main
from tokenroll.traces.prompts import full_trace_completion

CODE = "def f(a, b):\n    return a + b\n"
EXPECTED_TEXT = (
    "<|call_sep|>{}<|action_sep|>def main():\n"
    "<|frame_sep|><|line_sep|>{}<|action_sep|>    return f(1, 2)\n"
    '<|frame_sep|><|call_sep|>{"a": "1", "b": "2"}<|action_sep|>def f(a, b):\n'
    '<|frame_sep|><|line_sep|>{"a": "..", "b": ".."}<|action_sep|>    return a + b\n'
    '<|frame_sep|><|return_sep|><|action_sep|>    return a + b\n<|arg_sep|>"3"'
    '<|frame_sep|><|return_sep|><|action_sep|>    return f(1, 2)\n<|arg_sep|>"3"'
    "<|frame_sep|><|end_of_text|>\n"
)


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "add.py"
    path.write_text(CODE)
    return path


def test_trace_run_prints_text(source, capsys):
    assert main(["trace", "run", str(source), "--call", "f(1, 2)"]) == 0
    assert capsys.readouterr().out == EXPECTED_TEXT


def test_trace_run_json(source, capsys):
    assert main(["trace", "run", str(source), "--call", "f(1, 2)", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["outcome"] == "returned"
    assert printed["frames"][2] == {
        "event": "call",
        "source": "def f(a, b):\n",
        "state": {"a": "1", "b": "2"},
        "value": None,
    }
    assert printed["frames"][-1]["value"] == "3"


def test_trace_run_reports_an_incomplete_trace(source, capsys):
    source.write_text("def f():\n    while True:\n        pass\n")
    assert main(["trace", "run", str(source), "--call", "f()", "--timeout", "0.5"]) == 1
    assert capsys.readouterr().err.startswith("error: incomplete trace (frame_limit)")


def test_trace_run_missing_file(tmp_path, capsys):
    assert main(["trace", "run", str(tmp_path / "none.py"), "--call", "f()"]) == 2
    assert capsys.readouterr().err.startswith(f"error: cannot read {tmp_path / 'none.py'}")


def _generations_file(tmp_path, tracer, rows):
    path = tmp_path / "generations.jsonl"
    lines = []
    for row_id, code, input_text, generation in rows:
        if generation is None:
            generation = full_trace_completion(tracer.trace_call(code, f"f({input_text})"))
        lines.append(
            json.dumps({"id": row_id, "code": code, "input": input_text, "generation": generation})
        )
    path.write_text("\n".join(lines) + "\n")
    return path


def test_trace_score(tmp_path, tracer, capsys):
    path = _generations_file(
        tmp_path,
        tracer,
        [
            ("good", CODE, "1, 2", None),
            ("empty", CODE, "1, 2", ""),
        ],
    )
    per_sample = tmp_path / "per_sample.jsonl"
    assert main(["trace", "score", str(path), "--per-sample", str(per_sample)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert list(summary)[:7] == [
        "pass_at_1",
        "valid_trace_format",
        "state_exact_match",
        "action_exact_match",
        "valid_json_format",
        "key_match",
        "key_value_match",
    ]
    assert summary["pass_at_1"] == summary["state_exact_match"] == summary["value_match"] == 50.0
    assert summary["samples"] == 2
    rows = [json.loads(line) for line in per_sample.read_text().splitlines()]
    assert [(r["id"], r["pass_at_1"], r["action_exact_match"]) for r in rows] == [
        ("good", 1.0, 1.0),
        ("empty", 0.0, 0.0),
    ]
    assert rows[1]["problems"] == ["no frames", "no <|end_of_text|>"]


def test_trace_score_bad_line(tmp_path, capsys):
    path = tmp_path / "g.jsonl"
    path.write_text(
        '{"id": 1, "code": "x", "input": "1", "generation": ""}\n{"id": 2, "code": "x"}\n'
    )
    assert main(["trace", "score", str(path)]) == 2
    assert capsys.readouterr().err == f"error: {path}:2: missing field 'input'\n"


def test_cruxeval_score_output(tmp_path, cruxeval_tasks, capsys):
    generations = {
        f"sample_{i}": [task.expected_output, "None"] for i, task in enumerate(cruxeval_tasks)
    }
    path = tmp_path / "generations.json"
    path.write_text(json.dumps(generations))
    scored = tmp_path / "scored.json"
    assert main(["cruxeval", "score-output", str(path), "--scored-results", str(scored)]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "pass_at_1": 50.0,
        "pass_at_5": 100.0,
        "samples": 800,
        "skipped_predictions": 0,
    }
    assert json.loads(scored.read_text())["raw_scored_generations"]["sample_0"] == [True, False]


def test_cruxeval_score_output_bad_file(tmp_path, capsys):
    path = tmp_path / "g.json"
    path.write_text("{")
    assert main(["cruxeval", "score-output", str(path)]) == 2
    assert capsys.readouterr().err.startswith(f"error: {path}: not valid JSON")


def test_real_subprocess(source):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tokenroll.cli.main",
            "trace",
            "run",
            str(source),
            "--call",
            "f(1, 2)",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, EXPECTED_TEXT, "")
