"""Parsing keeps malformed frames, flagged, and judges the whole trace."""

from __future__ import annotations

from tokenroll.traces.frames import Event
from tokenroll.traces.parser import parse_trace

GOOD = (
    '<|line_sep|>{"a": "1"}<|action_sep|>    return a\n<|frame_sep|>'
    '<|return_sep|><|action_sep|>    return a\n<|arg_sep|>"1"<|frame_sep|><|end_of_text|>'
)


def test_well_formed_trace():
    parsed = parse_trace(GOOD)
    assert parsed.well_formed and parsed.ended and parsed.problems == []
    assert [(f.event, f.source, f.state, f.value) for f in parsed.frames] == [
        (Event.LINE, "    return a\n", {"a": "1"}, None),
        (Event.RETURN, "    return a\n", None, "1"),
    ]


def test_text_after_end_of_text_is_ignored():
    assert parse_trace(GOOD + "garbage<|frame_sep|>").well_formed


def test_missing_end_of_text_is_not_well_formed():
    parsed = parse_trace(GOOD.removesuffix("<|end_of_text|>"))
    assert not parsed.well_formed and not parsed.ended
    assert parsed.problems == ["no <|end_of_text|>"]
    assert len(parsed.frames) == 2


def test_unfinished_last_frame_is_kept_flagged():
    parsed = parse_trace(GOOD.removesuffix("<|end_of_text|>") + '<|line_sep|>{"a": "1"}<|action_')
    assert not parsed.well_formed
    assert parsed.frames[2].event is Event.LINE
    assert parsed.frames[2].raw == "<|line_sep|>{\"a\": \"1\"}<|action_"
    assert parsed.problems == ["frame 2: unfinished frame: no <|frame_sep|> after it",
                               "no <|end_of_text|>"]


def test_malformed_frames_keep_their_position():
    text = ('<|line_sep|>{"a": "1"}    return a\n<|frame_sep|>'
            '<|return_sep|><|action_sep|>    return a\n"1"<|frame_sep|>'
            'no event<|action_sep|>x<|frame_sep|>'
            '<|line_sep|>{}<|action_sep|>ok\n<|frame_sep|><|end_of_text|>')
    parsed = parse_trace(text)
    assert not parsed.well_formed
    assert [f.problem for f in parsed.frames] == [
        "no <|action_sep|>", "no <|arg_sep|>", "does not start with an event token", None]
    assert parsed.frames[3].source == "ok\n"


def test_bad_json_is_a_content_problem_not_a_format_problem():
    text = ('<|line_sep|>{"a": 1<|action_sep|>x\n<|frame_sep|>'
            '<|line_sep|>{"a": 1}<|action_sep|>x\n<|frame_sep|>'
            '<|return_sep|><|action_sep|>x\n<|arg_sep|>1<|frame_sep|><|end_of_text|>')
    parsed = parse_trace(text)
    assert parsed.well_formed
    assert parsed.frames[0].state is None and parsed.frames[1].state == {"a": 1}
    assert parsed.frames[2].value is None
    assert parsed.problems == ["frame 0: locals are not a JSON object",
                               "frame 1: locals values are not all strings",
                               "frame 2: value is not a JSON string"]


def test_stray_special_token_and_empty_segment():
    parsed = parse_trace('<|line_sep|>{}<|action_sep|>x<|call_sep|>\n<|frame_sep|>'
                         '<|frame_sep|><|end_of_text|>')
    assert not parsed.well_formed
    assert parsed.problems == ["frame 0: unexpected <|call_sep|>", "empty segment before frame 1"]


def test_empty_generation():
    parsed = parse_trace("<|end_of_text|>")
    assert not parsed.well_formed and parsed.frames == [] and parsed.problems == ["no frames"]
