"""Prompt layouts of notes section 1.2 and the `..` resolver of section 1.7."""

from __future__ import annotations

from tokenroll.traces.frames import UNCHANGED, Event, Frame
from tokenroll.traces.parser import parse_trace
from tokenroll.traces.prompts import (
    build_context,
    full_trace_completion,
    full_trace_prompt,
    parse_single_step,
    prompt_ids,
    prompt_text,
    resolve_states,
    single_step_completion,
    single_step_prompt,
)

CODE = "def f(a, b):\n    return a + b"


def test_context_wrapper():
    assert build_context(CODE, "f(1, 2)") == (
        "\ndef f(a, b):\n    return a + b\ndef main():  # << START_OF_TRACE\n"
        "    return f(1, 2)\n")


def test_full_trace_prompt_text_and_ids():
    pieces = full_trace_prompt(CODE, "f(1, 2)")
    assert prompt_text(pieces) == (
        "<|begin_of_text|><|trace_context_start|>\ndef f(a, b):\n    return a + b\n"
        "def main():  # << START_OF_TRACE\n    return f(1, 2)\n<|frame_sep|>"
        "<|call_sep|>{}<|action_sep|>def main():\n<|frame_sep|>")
    ids = prompt_ids(pieces, lambda text: [len(text)])
    assert ids == [128000, 128107, 83, 128100, 128103, 2, 128101, 12, 128100]


def test_single_step_prompt_forces_return():
    pieces = single_step_prompt(CODE, "f(1, 2)")
    assert prompt_text(pieces).endswith("def main():\n<|frame_sep|><|return_sep|>")


def test_completions_continue_their_prompts(tracer):
    trace = tracer.trace_call(CODE, "f(1, 2)")
    whole = prompt_text(full_trace_prompt(CODE, "f(1, 2)")) + full_trace_completion(trace)
    after_context = whole.split("<|frame_sep|>", 1)[1]
    parsed = parse_trace(after_context)
    assert parsed.well_formed
    assert [(f.event, f.source, f.state, f.value) for f in parsed.frames] == [
        (f.event, f.source, f.state, f.value) for f in trace.frames]
    step = single_step_completion(trace)
    assert step == '<|action_sep|>    return f(1, 2)\n<|arg_sep|>"3"<|frame_sep|><|end_of_text|>'
    assert parse_single_step(step) == "3"
    assert parse_single_step("nonsense") is None


def _line(state):
    return Frame(Event.LINE, "x\n", state=state)


def test_resolver_walks_back_to_the_last_written_value():
    frames = [Frame(Event.CALL, "def f(a):\n", state={"a": "1"}),
              _line({"a": UNCHANGED}),
              _line({"a": UNCHANGED, "b": "2"}),
              Frame(Event.EXCEPTION, "x\n", value="E()"),
              _line({"a": UNCHANGED, "b": UNCHANGED})]
    assert resolve_states(frames) == [
        {"a": "1"}, {"a": "1"}, {"a": "1", "b": "2"}, None, {"a": "1", "b": "2"}]


def test_resolver_stops_at_call_and_return():
    frames = [_line({"a": "1"}),
              Frame(Event.CALL, "def g():\n", state={}),
              _line({"a": UNCHANGED}),
              Frame(Event.RETURN, "x\n", value="None"),
              _line({"a": UNCHANGED})]
    assert resolve_states(frames) == [
        {"a": "1"}, {}, {"a": UNCHANGED}, None, {"a": UNCHANGED}]


def test_resolved_ground_truth_has_no_unchanged_values(cruxeval_traces):
    for trace in cruxeval_traces:
        for state in resolve_states(trace.frames):
            assert state is None or UNCHANGED not in state.values()
