from tests.viewer.runs import PREDICTED_FRAMES, REFERENCE_FRAMES, TRACE_METRICS
from tokenroll.viewer.traces import FrameRow, align_frames, normalise_frame, trace_view


def frame(event, source, state=None, value=None):
    return {"event": event, "source": source, "state": state, "value": value, "problem": None}


def as_tuples(rows):
    return [(r.reference, r.predicted, r.action_match, r.missing_keys, r.extra_keys, r.wrong_values, r.value_match)
            for r in rows]


def test_sample_trace_rows_pair_frames_and_name_every_difference():
    view = trace_view({"trace": {"reference": REFERENCE_FRAMES, "predicted": PREDICTED_FRAMES,
                                 "metrics": TRACE_METRICS}})
    assert as_tuples(view.rows) == [
        (0, 0, True, [], [], [], None),
        (1, 1, True, [], ["y"], [], None),
        (2, 2, False, [], [], [], None),  # `for x in xs:` predicted as `while xs:`
        (3, 3, True, ["x"], [], ["total"], None),
        (4, 4, True, [], [], [], False),  # return 3, predicted 4
        (None, 5, False, [], [], [], None),  # a malformed extra frame
    ]
    assert [r.match for r in view.rows] == [True, False, False, False, False, False]
    assert view.metrics == TRACE_METRICS
    assert view.predicted[5]["problem"] == "no <|action_sep|> in the frame"


def test_lcs_alignment_keeps_matching_frames_together_across_an_inserted_frame():
    reference = [frame("call", "def f():\n"), frame("line", "a = 1\n"), frame("line", "b = 2\n"),
                 frame("return", "return b\n", value="2")]
    predicted = [frame("call", "def f():\n"), frame("line", "print(a)\n"), frame("line", "a = 1\n"),
                 frame("line", "b = 2\n"), frame("return", "return b\n", value="2")]
    rows = align_frames(reference, predicted)
    assert [(r.reference, r.predicted, r.action_match) for r in rows] == [
        (0, 0, True), (None, 1, False), (1, 2, True), (2, 3, True), (3, 4, True),
    ]
    # By position, every frame after the insertion would be a mismatch.
    assert rows[-1].value_match is True


def test_unmatched_runs_are_paired_by_position_and_leftovers_stand_alone():
    reference = [frame("line", "x = 1\n"), frame("line", "y = 2\n"), frame("line", "z = 3\n")]
    predicted = [frame("line", "x = 9\n")]
    assert as_tuples(align_frames(reference, predicted)) == [
        (0, 0, False, [], [], [], None),
        (1, None, False, [], [], [], None),
        (2, None, False, [], [], [], None),
    ]
    assert align_frames([], []) == []


def test_a_missing_state_counts_every_key_as_missing():
    rows = align_frames([frame("line", "a\n", state={"a": "1", "b": "2"})], [frame("line", "a\n")])
    assert rows == [FrameRow(0, 0, True, missing_keys=["a", "b"])]


def test_frames_are_normalised_whatever_the_file_holds():
    assert normalise_frame("junk") == {"event": None, "source": None, "state": None, "value": None,
                                       "problem": "not a frame: 'junk'"}
    assert normalise_frame({"event": "jump", "source": 3, "state": {"a": 1}, "extra": 1}) == {
        "event": None, "source": "3", "state": {"a": "1"}, "value": None, "problem": None,
    }
    assert trace_view({}) is None
    assert trace_view({"trace": {"reference": "nope", "metrics": {"a": True, "b": 0.5}}}).metrics == {"b": 0.5}
