"""Table 9 metrics and our extras: exact values on hand-made traces and on all of CRUXEval."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tokenroll.traces.format import frames_to_text
from tokenroll.traces.frames import UNCHANGED, Event, Frame
from tokenroll.traces.parser import parse_trace
from tokenroll.traces.prompts import full_trace_completion, resolve_states
from tokenroll.traces.scoring import (
    EXTRA_METRICS,
    TABLE9_METRICS,
    GenerationSample,
    score_generations,
    score_trace,
)

REFERENCE = [
    Frame(Event.LINE, "    return f(2)\n", state={}),
    Frame(Event.CALL, "def f(n):\n", state={"n": "2"}),
    Frame(Event.LINE, "    s = {n, 1}\n", state={"n": UNCHANGED}),
    Frame(Event.LINE, "    return s\n", state={"n": UNCHANGED, "s": "{1, 2}"}),
    Frame(Event.RETURN, "    return s\n", value="{1, 2}"),
    Frame(Event.RETURN, "    return f(2)\n", value="{1, 2}"),
]


def _score(frames, end=True):
    return score_trace(REFERENCE, parse_trace(frames_to_text(frames, end=end)))


def test_perfect_prediction():
    score = _score(REFERENCE)
    assert all(getattr(score, name) == 1.0 for name in TABLE9_METRICS[1:] + EXTRA_METRICS)
    assert score.predicted_output == "{1, 2}"


def test_wrong_return_value_is_a_wrong_action_only_in_the_paper_definition():
    predicted = [*REFERENCE[:4], replace(REFERENCE[4], value="{2, 1}"), REFERENCE[5]]
    score = _score(predicted)
    assert score.action_exact_match == 5 / 6
    assert score.action_exact_match_source == 1.0
    assert score.value_match == 1.0  # {2, 1} == {1, 2} as literals
    assert score.state_exact_match == 1.0


def test_state_metrics():
    predicted = list(REFERENCE)
    predicted[3] = replace(REFERENCE[3], state={"n": "2", "s": "{1, 2.0}", "t": "0"})
    score = _score(predicted)
    assert score.state_exact_match == 3 / 4
    assert score.key_match == (3 + 2 / 3) / 4
    assert score.key_value_match == (3 + 0 / 4) / 4
    assert score.resolved_state_match == 3 / 4
    assert score.value_match == 5 / 6  # an extra key is a different state


def test_value_match_ignores_set_order_and_number_spelling():
    predicted = list(REFERENCE)
    predicted[3] = replace(REFERENCE[3], state={"n": "2.0", "s": "{2, 1}"})
    score = _score(predicted)
    assert score.state_exact_match == 3 / 4
    assert score.resolved_state_match == 3 / 4
    assert score.value_match == 1.0


def test_inserted_frame_costs_positional_but_not_lcs_alignment():
    extra = Frame(Event.LINE, "    pass\n", state={"n": "2"})
    score = _score([*REFERENCE[:2], extra, *REFERENCE[2:]])
    assert score.action_exact_match == 2 / 6
    assert score.action_lcs_match == 1.0
    assert score.state_exact_match == 2 / 4
    # after the inserted frame REFERENCE[2]'s `..` still resolves to the same value
    assert score.state_lcs_match == 1.0


def test_valid_json_counts_predicted_state_frames():
    text = frames_to_text(REFERENCE).replace('{"n": "2"}', '{"n": 2', 1)
    score = score_trace(REFERENCE, parse_trace(text))
    assert score.valid_json_format == 3 / 4
    assert score.valid_json_format_at_reference == 3 / 4
    assert score.valid_trace_format == 1.0
    assert score.state_exact_match == 3 / 4
    assert score.key_match == 3 / 4


def test_empty_generation_scores_zero():
    score = score_trace(REFERENCE, parse_trace(""))
    assert (
        score.valid_trace_format,
        score.action_exact_match,
        score.state_exact_match,
        score.valid_json_format,
        score.key_match,
        score.action_lcs_match,
    ) == (0, 0, 0, 0, 0, 0)
    assert score.predicted_output is None


def test_pass_at_1_runs_the_cruxeval_assertion(tracer):
    code = "def f(n):\n    return n / 2"
    right = GenerationSample(
        "a", code, "f(2)", '<|return_sep|><|action_sep|>x\n<|arg_sep|>"1"<|frame_sep|>'
    )
    wrong = GenerationSample(
        "b", code, "f(2)", '<|return_sep|><|action_sep|>x\n<|arg_sep|>"2"<|frame_sep|>'
    )
    broken = GenerationSample(
        "c", code, "f(2)", '<|return_sep|><|action_sep|>x\n<|arg_sep|>"("<|frame_sep|>'
    )
    none = GenerationSample("d", code, "f(2)", "")
    report = score_generations([right, wrong, broken, none], tracer=tracer)
    assert [s.score.pass_at_1 for s in report.samples] == [1.0, 0.0, 0.0, 0.0]  # 1 == 1.0 passes
    assert report.summary()["pass_at_1"] == 25.0


def test_sample_without_ground_truth_is_reported_not_scored(tracer):
    sample = GenerationSample("x", "def f():\n    while True:\n        pass", "f()", "")
    with_loop = score_generations([sample], tracer=tracer)
    assert with_loop.samples[0].score is None
    assert with_loop.samples[0].error == ("no ground truth: trace stopped: frame limit reached")
    assert with_loop.summary()["unscored"] == 1


# -- the checks on all 800 CRUXEval samples -----------------------------------------------------


def _samples(tasks, generations):
    return [
        GenerationSample(task.id, task.code, task.call, generation, task.expected_output)
        for task, generation in zip(tasks, generations)
    ]


@pytest.mark.slow
def test_ground_truth_as_generation_scores_100_everywhere(tracer, cruxeval_tasks, cruxeval_traces):
    generations = [full_trace_completion(trace) for trace in cruxeval_traces]
    report = score_generations(_samples(cruxeval_tasks, generations), tracer=tracer)
    summary = report.summary()
    assert {name: summary[name] for name in (*TABLE9_METRICS, *EXTRA_METRICS)} == {
        name: 100.0 for name in (*TABLE9_METRICS, *EXTRA_METRICS)
    }
    assert summary["scored"] == 800


@pytest.mark.slow
def test_generation_cut_at_half_its_frames(tracer, cruxeval_tasks, cruxeval_traces):
    generations = []
    for trace in cruxeval_traces:
        reference = trace.frames[1:]
        generations.append(frames_to_text(reference[: len(reference) // 2], end=False))
    report = score_generations(_samples(cruxeval_tasks, generations), tracer=tracer)
    for task, trace, sample in zip(cruxeval_tasks, cruxeval_traces, report.samples):
        reference = trace.frames[1:]
        n, half = len(reference), len(reference) // 2
        states = [i for i, f in enumerate(reference) if f.event.has_state]
        kept_states = len([i for i in states if i < half])
        returns = [f.value for f in reference[:half] if f.event is Event.RETURN]
        score = sample.score
        assert score.valid_trace_format == 0.0
        assert score.action_exact_match == score.action_exact_match_source == half / n
        assert score.action_lcs_match == score.value_match == half / n
        for name in (
            "state_exact_match",
            "key_match",
            "key_value_match",
            "state_lcs_match",
            "resolved_state_match",
            "valid_json_format_at_reference",
        ):
            assert getattr(score, name) == kept_states / len(states), (task.id, name)
        assert score.valid_json_format == (1.0 if kept_states else 0.0)
        # pass@1 reads the last RETURN written, whoever's it is (the paper's rule)
        expected_pass = bool(returns) and returns[-1] == task.expected_output
        assert score.pass_at_1 == (1.0 if expected_pass else 0.0), task.id
    passed = [s.id for s in report.samples if s.score.pass_at_1]
    assert passed == ["sample_754"]


@pytest.mark.slow
def test_full_state_where_ground_truth_writes_unchanged(tracer, cruxeval_tasks, cruxeval_traces):
    chosen, generations, tasks = [], [], []
    for task, trace in zip(cruxeval_tasks, cruxeval_traces):
        reference = trace.frames[1:]
        index = next(
            (
                i
                for i, f in enumerate(reference)
                if f.event is Event.LINE and UNCHANGED in f.state.values()
            ),
            None,
        )
        if index is None:
            continue
        predicted = list(reference)
        predicted[index] = replace(reference[index], state=resolve_states(reference)[index])
        chosen.append((reference, index))
        generations.append(frames_to_text(predicted))
        tasks.append(task)
    assert len(tasks) == 799  # sample_135's f() has no arguments and one statement
    assert "sample_135" not in {task.id for task in tasks}
    report = score_generations(_samples(tasks, generations), tracer=tracer)
    for (reference, index), sample in zip(chosen, report.samples):
        score = sample.score
        states = len([f for f in reference if f.event.has_state])
        written = reference[index].state
        unchanged = len([v for v in written.values() if v == UNCHANGED])
        assert score.state_exact_match == score.state_lcs_match == (states - 1) / states
        assert (
            score.key_value_match
            == (states - 1 + (len(written) - unchanged) / (len(written) + unchanged)) / states
        )
        assert (
            score.resolved_state_match,
            score.value_match,
            score.key_match,
            score.action_exact_match,
            score.valid_trace_format,
            score.pass_at_1,
        ) == (1.0, 1.0, 1.0, 1.0, 1.0, 1.0)
