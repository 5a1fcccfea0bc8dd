"""The tracer's rules and its choices where the notes are silent (see tracer.py's docstring)."""

from __future__ import annotations

import sys

import pytest

from tokenroll.traces import tracer as tracer_module
from tokenroll.traces.format import frames_to_text
from tokenroll.traces.frames import Event, Outcome
from tokenroll.traces.ground_truth import Tracer
from tokenroll.traces.prompts import build_context, full_trace_completion
from tokenroll.traces.tracer import action_lines, render_value, trace_context


def _frames_text(trace, start, stop):
    return frames_to_text(trace.frames[start:stop], end=False)


# -- cross-checks against real CWM generations quoted in the notes (section 5) ---------------

SAMPLE_6_HEAD = (
    "<|line_sep|>{}<|action_sep|>    return f({'11': 52, '65': 34, 'a': 12, '4': 52, '74': 31})\n"
    "<|frame_sep|><|call_sep|>{\"dic\": \"{'11': 52, '65': 34, 'a': 12, '4': 52, '74': 31}\"}"
    "<|action_sep|>def f(dic):\n"
    '<|frame_sep|><|line_sep|>{"dic": ".."}<|action_sep|>    for k,v in sorted(dic.items(), '
    "key=lambda x: len(str(x)))[:-1]:\n"
    '<|frame_sep|><|call_sep|>{"x": "(\'11\', 52)"}<|action_sep|>    for k,v in sorted(dic.items(),'
    " key=lambda x: len(str(x)))[:-1]:\n"
    '<|frame_sep|><|line_sep|>{"x": ".."}<|action_sep|>    for k,v in sorted(dic.items(), '
    "key=lambda x: len(str(x)))[:-1]:\n"
    "<|frame_sep|><|return_sep|><|action_sep|>    for k,v in sorted(dic.items(), "
    "key=lambda x: len(str(x)))[:-1]:\n<|arg_sep|>"
)
# After the lambdas return, the caller's next LINE frame writes every local in full.
SAMPLE_6_AFTER_CALLEES = (
    "<|line_sep|>{\"dic\": \"{'11': 52, '65': 34, 'a': 12, '4': 52, '74': 31}\", \"k\": \"'a'\", "
    '"v": "12"}<|action_sep|>        dic.pop(k)\n<|frame_sep|>'
    '<|line_sep|>{"dic": "{\'11\': 52, \'65\': 34, \'4\': 52, \'74\': 31}", "k": "..", "v": ".."}'
    "<|action_sep|>    for k,v in sorted(dic.items(), key=lambda x: len(str(x)))[:-1]:\n"
)
SAMPLE_6_TAIL = (
    "<|return_sep|><|action_sep|>    return list(dic.items())\n<|arg_sep|>\"[('74', 31)]\""
    "<|frame_sep|><|return_sep|><|action_sep|>    return f({'11': 52, '65': 34, 'a': 12, '4': 52, "
    "'74': 31})\n<|arg_sep|>\"[('74', 31)]\"<|frame_sep|><|end_of_text|>"
)


def test_sample_6_matches_cwm_generation(cruxeval_traces):
    completion = full_trace_completion(cruxeval_traces[6])
    assert completion.startswith(SAMPLE_6_HEAD)
    assert SAMPLE_6_AFTER_CALLEES in completion
    assert completion.endswith(SAMPLE_6_TAIL)


def test_sample_19_comprehension_frame_matches_cwm_generation(cruxeval_traces):
    expected = (
        '<|call_sep|>{".0": "<str_ascii_iterator object>"}<|action_sep|>    tmp = \'\'.join('
        "['0' if c == '9' else '9' for c in y[::-1]])\n<|frame_sep|>"
    )
    assert expected in full_trace_completion(cruxeval_traces[19])


def test_sample_95_generator_resume_is_a_full_call(cruxeval_traces):
    frames = cruxeval_traces[95].frames
    genexp_calls = [f for f in frames if f.event is Event.CALL and ".0" in f.state]
    assert [f.state for f in genexp_calls] == [
        {".0": "<dict_itemiterator object>"},
        {".0": "<dict_itemiterator object>", "k": "'AAA'", "v": "'fr'"},
    ]


def test_every_cruxeval_sample_returns_its_published_output(cruxeval_tasks, cruxeval_traces):
    wrong = [
        task.id
        for task, trace in zip(cruxeval_tasks, cruxeval_traces)
        if trace.return_value != task.expected_output
    ]
    assert wrong == []
    assert sum(len(trace.frames) for trace in cruxeval_traces) == 13348
    assert max(len(trace.frames) for trace in cruxeval_traces) == 630


# -- rendering ---------------------------------------------------------------------------------


def test_render_value_strips_addresses_only_before_a_closing_bracket():
    class Thing:
        pass

    assert render_value(Thing()) == f"<{__name__}.{Thing.__qualname__} object>"
    assert render_value("at 0x1f") == "'at 0x1f'"
    assert render_value([iter([1]), "x"]) == "[<list_iterator object>, 'x']"


def test_render_value_survives_a_failing_repr():
    class Bad:
        def __repr__(self):
            raise RuntimeError("no")

    assert (
        render_value(Bad()) == "<unrepresentable test_render_value_survives_a_failing_repr."
        "<locals>.Bad>"
    )


def test_marker_is_removed_as_a_suffix_not_a_character_set():
    lines = action_lines("def CASE():  # << START_OF_TRACE\n    FOO = 1\n    return FOO")
    assert lines == ["def CASE():\n", "    FOO = 1\n", "    return FOO\n"]


# -- choices where the notes are silent --------------------------------------------------------


def test_exception_escaping_the_entry_function_ends_the_trace(tracer):
    trace = tracer.trace_call("def f():\n    raise ValueError('bad')", "f()")
    assert trace.outcome is Outcome.RAISED
    assert trace.error == "ValueError('bad')"
    assert [(f.event, f.value) for f in trace.frames[-2:]] == [
        (Event.EXCEPTION, "ValueError('bad')"),
        (Event.RETURN, "None"),
    ]


def test_frame_cap_stops_an_endless_loop_and_keeps_frames(tracer):
    with Tracer(workers=1, max_frames=50) as small:
        trace = small.trace_call("def f():\n    while True:\n        pass", "f()")
    assert trace.outcome is Outcome.FRAME_LIMIT
    assert len(trace.frames) == 50
    assert trace.error == "trace stopped: frame limit reached"


def test_depth_cap_stops_deep_recursion(tracer):
    trace = tracer.trace_call("def f(n):\n    return f(n + 1)", "f(0)")
    assert trace.outcome is Outcome.DEPTH_LIMIT
    calls = [f for f in trace.frames if f.event is Event.CALL]
    assert len(calls) == tracer_module.DEFAULT_MAX_DEPTH
    assert calls[-1].state == {"n": "198"}


def test_value_cap_stops_the_trace_instead_of_truncating():
    with Tracer(workers=1, max_value_chars=20) as small:
        trace = small.trace_call("def f():\n    s = 'x' * 100\n    return s", "f()")
    assert trace.outcome is Outcome.VALUE_LIMIT
    assert all(len(v) <= 20 for f in trace.frames for v in (f.state or {}).values())


def test_context_that_fails_before_the_call(tracer):
    trace = tracer.trace_context("raise KeyError('k')\ndef main():\n    return 1\n")
    assert trace.outcome is Outcome.CONTEXT_ERROR
    assert trace.error == "the context failed before tracing: KeyError('k')"
    assert trace.frames == []


def test_frames_outside_the_context_are_not_traced(tracer):
    code = "import json\ndef f(x):\n    return json.dumps(x)"
    trace = tracer.trace_call(code, "f([1])")
    assert [f.source for f in trace.frames] == [
        "def main():\n",
        "    return f([1])\n",
        "def f(x):\n",
        "    return json.dumps(x)\n",
        "    return json.dumps(x)\n",
        "    return f([1])\n",
    ]


def test_globals_are_not_locals(tracer):
    trace = tracer.trace_call("g = 1\ndef f():\n    global g\n    g = 2\n    return g", "f()")
    assert all(f.state in (None, {}) for f in trace.frames)


def test_set_order_is_fixed_by_the_hash_seed():
    code = "def f():\n    return {'pear', 'apple', 'fig', 'kiwi', 'plum'}"
    with Tracer(workers=1, hash_seed=0) as first, Tracer(workers=1, hash_seed=1) as other:
        assert (
            first.trace_call(code, "f()").return_value == "{'apple', 'fig', 'plum', 'pear', 'kiwi'}"
        )
        assert (
            other.trace_call(code, "f()").return_value == "{'pear', 'kiwi', 'plum', 'fig', 'apple'}"
        )


@pytest.mark.skipif(sys.version_info[:2] != (3, 11), reason="in-process tracing needs 3.11")
def test_trace_context_also_runs_in_process():
    result = trace_context(build_context("def f(a):\n    return a * 2", "f(4)"))
    assert result["outcome"] == "returned"
    assert result["frames"][-1] == ["return", None, "    return f(4)\n", "8"]
