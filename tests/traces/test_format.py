"""Frames <-> text <-> token ids, as round-trip properties and exact examples."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokenroll.traces.format import (
    frames_to_ids,
    frames_to_text,
    ids_to_text,
    text_to_ids,
    text_to_pieces,
)
from tokenroll.traces.frames import Event, Frame, Special
from tokenroll.traces.parser import parse_trace, parse_trace_ids
from tokenroll.traces.scoring import token_statistics


def byte_encode(text: str) -> list[int]:
    return list(text.encode("utf-8", "surrogatepass"))


def byte_decode(ids: list[int]) -> str:
    return bytes(ids).decode("utf-8", "surrogatepass")


_plain = st.text().filter(lambda s: not text_to_pieces(s) or text_to_pieces(s) == [s])
_states = st.dictionaries(_plain, _plain, max_size=4)


@st.composite
def frames(draw) -> Frame:
    event = draw(st.sampled_from(list(Event)))
    source = draw(_plain)
    if event.has_state:
        return Frame(event=event, source=source, state=draw(_states))
    return Frame(event=event, source=source, value=draw(_plain))


def _without_raw(parsed: list[Frame]) -> list[Frame]:
    return [Frame(f.event, f.source, f.state, f.value, f.problem) for f in parsed]


@settings(max_examples=200, deadline=None)
@given(st.lists(frames(), max_size=8))
def test_frames_text_frames(trace_frames):
    parsed = parse_trace(frames_to_text(trace_frames))
    assert _without_raw(parsed.frames) == trace_frames
    assert parsed.well_formed is bool(trace_frames)


@settings(max_examples=200, deadline=None)
@given(st.lists(frames(), max_size=8))
def test_frames_ids_frames(trace_frames):
    ids = frames_to_ids(trace_frames, byte_encode)
    assert _without_raw(parse_trace_ids(ids, byte_decode).frames) == trace_frames
    assert ids_to_text(ids, byte_decode) == frames_to_text(trace_frames)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.text(), st.sampled_from([t.text for t in Special]))).map("".join))
def test_text_ids_text(text):
    assert ids_to_text(text_to_ids(text, byte_encode), byte_decode) == text


def test_exact_text_of_each_event():
    trace_frames = [
        Frame(Event.CALL, "def f(s):\n", state={"s": "'é'"}),
        Frame(Event.LINE, "    return s  # é\n", state={"s": ".."}),
        Frame(Event.EXCEPTION, "    return s  # é\n", value="KeyError('k')"),
        Frame(Event.RETURN, "    return s  # é\n", value="'\\t'"),
    ]
    assert frames_to_text(trace_frames) == (
        '<|call_sep|>{"s": "\'\\u00e9\'"}<|action_sep|>def f(s):\n<|frame_sep|>'
        '<|line_sep|>{"s": ".."}<|action_sep|>    return s  # é\n<|frame_sep|>'
        "<|exception_sep|><|action_sep|>    return s  # é\n"
        "<|arg_sep|>\"KeyError('k')\"<|frame_sep|>"
        "<|return_sep|><|action_sep|>    return s  # é\n<|arg_sep|>\"'\\\\t'\"<|frame_sep|>"
        "<|end_of_text|>"
    )


def test_special_tokens_are_inserted_by_id():
    ids = frames_to_ids([Frame(Event.RETURN, "x\n", value="1")], byte_encode)
    assert ids == [128102, 128101, *b"x\n", 128106, *b'"1"', 128100, 128001]


def _llama_tokenizer():
    assets = os.environ.get("TOKENROLL_TEST_ASSETS")
    root = (
        Path(assets)
        if assets
        else Path(__file__).resolve().parents[2] / ".." / "shared" / "tokenizers"
    )
    path = root / "llama-3.2" / "tokenizer.json"
    if not path.exists():
        pytest.skip("Llama 3 tokenizer file not available")
    tokenizers = pytest.importorskip("tokenizers")
    return tokenizers.Tokenizer.from_file(str(path))


@pytest.mark.slow
def test_table9_token_statistics(cruxeval_traces):
    tokenizer = _llama_tokenizer()
    stats = token_statistics(
        cruxeval_traces, lambda text: tokenizer.encode(text, add_special_tokens=False).ids
    )
    assert {name: round(value, 4) for name, value in stats.items()} == {
        "avg_state_tokens": 11.392,
        "avg_action_tokens": 11.4116,
    }


def test_round_trip_through_the_llama3_tokenizer(cruxeval_traces):
    tokenizer = _llama_tokenizer()

    def encode(text: str) -> list[int]:
        return tokenizer.encode(text, add_special_tokens=False).ids

    def decode(ids: list[int]) -> str:
        return tokenizer.decode(ids, skip_special_tokens=False)

    trace_frames = cruxeval_traces[6].frames
    ids = frames_to_ids(trace_frames, encode)
    assert ids[:1] == [128103] and ids[-2:] == [128100, 128001]
    assert encode("{}") == [6390]
    assert _without_raw(parse_trace_ids(ids, decode).frames) == trace_frames


def test_frames_as_json_records():
    frames = [Frame(Event.CALL, "def f(x):\n", state={"x": "1"}),
              Frame(Event.RETURN, "    return x\n", value="1"),
              Frame(None, None, problem="does not start with an event token")]
    records = [frame.to_dict() for frame in frames]
    assert records[1] == {"event": "return", "source": "    return x\n", "state": None,
                          "value": "1", "problem": None}
    assert [Frame.from_dict(record) for record in records] == frames
