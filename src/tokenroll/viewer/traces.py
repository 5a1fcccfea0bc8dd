"""Predicted and ground-truth trace frames side by side, aligned, with their differences.

Frames are aligned by a longest common subsequence of (event, source), as the scorer's
`action_lcs_match` does; the unmatched frames between two matched ones are paired by
position, so a wrong action shows next to the one it replaced.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tokenroll.traces.frames import Event, Frame
from tokenroll.traces.scoring import _lcs_key, _lcs_pairs

_FRAME_FIELDS = ("event", "source", "state", "value", "problem")


@dataclass(slots=True)
class FrameRow:
    """One line of the side-by-side view: a reference frame, a predicted frame, or both.

    `missing_keys` are reference locals the prediction lacks, `extra_keys` predicted locals
    the reference lacks, `wrong_values` locals on both sides whose values differ;
    `value_match` compares RETURN/EXCEPTION values (None when neither frame has one).
    """

    reference: int | None
    predicted: int | None
    action_match: bool
    missing_keys: list[str] = field(default_factory=list)
    extra_keys: list[str] = field(default_factory=list)
    wrong_values: list[str] = field(default_factory=list)
    value_match: bool | None = None

    @property
    def match(self) -> bool:
        """Whether the two frames agree on everything shown."""
        return (
            self.action_match
            and not (self.missing_keys or self.extra_keys or self.wrong_values)
            and self.value_match is not False
        )


@dataclass(slots=True)
class TraceView:
    """A trajectory's `extras["trace"]`: both frame lists (normalised), the aligned rows, the metrics."""

    reference: list[dict[str, Any]]
    predicted: list[dict[str, Any]]
    rows: list[FrameRow]
    metrics: dict[str, float]

    def to_payload(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "predicted": self.predicted,
            "rows": [
                [r.reference, r.predicted, r.action_match, r.missing_keys, r.extra_keys,
                 r.wrong_values, r.value_match]
                for r in self.rows
            ],
            "metrics": self.metrics,
        }


def trace_view(extras: Mapping[str, Any]) -> TraceView | None:
    """The trace view of a trajectory's extras, or None when it has no `trace` entry."""
    trace = extras.get("trace")
    if not isinstance(trace, Mapping):
        return None
    reference = [normalise_frame(f) for f in _frame_list(trace.get("reference"))]
    predicted = [normalise_frame(f) for f in _frame_list(trace.get("predicted"))]
    metrics = trace.get("metrics")
    metrics = {
        str(name): float(value)
        for name, value in (metrics.items() if isinstance(metrics, Mapping) else ())
        if isinstance(value, (int, float)) and not isinstance(value, bool)
    }
    return TraceView(reference, predicted, align_frames(reference, predicted), metrics)


def normalise_frame(frame: Any) -> dict[str, Any]:
    """A frame as a dict with exactly the five fields; anything unreadable becomes a `problem`."""
    if not isinstance(frame, Mapping):
        return {"event": None, "source": None, "state": None, "value": None,
                "problem": f"not a frame: {frame!r}"[:200]}
    out = {name: frame.get(name) for name in _FRAME_FIELDS}
    if out["event"] not in {e.value for e in Event}:
        out["event"] = None
    if not isinstance(out["state"], Mapping):
        out["state"] = None
    else:
        out["state"] = {str(k): v if isinstance(v, str) else repr(v) for k, v in out["state"].items()}
    for name in ("source", "value", "problem"):
        if out[name] is not None and not isinstance(out[name], str):
            out[name] = repr(out[name])
    return out


def align_frames(reference: list[dict[str, Any]], predicted: list[dict[str, Any]]) -> list[FrameRow]:
    """Rows pairing reference and predicted frames: LCS matches on (event, source), gaps by position."""
    ref_keys = [_lcs_key(_as_frame(f)) for f in reference]
    pred_keys = [_lcs_key(_as_frame(f)) for f in predicted]
    pairs = _lcs_pairs(ref_keys, pred_keys)
    rows: list[FrameRow] = []
    i = j = 0
    for ref_index, pred_index in [*pairs, (len(reference), len(predicted))]:
        gap_ref, gap_pred = range(i, ref_index), range(j, pred_index)
        for k in range(max(len(gap_ref), len(gap_pred))):
            r = gap_ref[k] if k < len(gap_ref) else None
            p = gap_pred[k] if k < len(gap_pred) else None
            rows.append(_row(reference, predicted, r, p))
        if ref_index < len(reference):
            rows.append(_row(reference, predicted, ref_index, pred_index))
        i, j = ref_index + 1, pred_index + 1
    return rows


def _frame_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else []


def _as_frame(frame: dict[str, Any]) -> Frame:
    event = Event(frame["event"]) if frame["event"] is not None else None
    return Frame(event=event, source=frame["source"], state=frame["state"], value=frame["value"])


def _row(reference: list[dict], predicted: list[dict], r: int | None, p: int | None) -> FrameRow:
    ref = reference[r] if r is not None else None
    pred = predicted[p] if p is not None else None
    ref_state = ref["state"] if ref is not None else None
    pred_state = pred["state"] if pred is not None else None
    ref_state, pred_state = ref_state or {}, pred_state or {}
    action_match = (
        ref is not None
        and pred is not None
        and ref["event"] is not None
        and ref["event"] == pred["event"]
        and ref["source"] is not None
        and pred["source"] is not None
        and ref["source"].rstrip() == pred["source"].rstrip()
    )
    has_value = (ref is not None and ref["value"] is not None) or (pred is not None and pred["value"] is not None)
    return FrameRow(
        reference=r,
        predicted=p,
        action_match=action_match,
        missing_keys=[k for k in ref_state if k not in pred_state],
        extra_keys=[k for k in pred_state if k not in ref_state],
        wrong_values=[k for k in ref_state if k in pred_state and ref_state[k] != pred_state[k]],
        value_match=(ref is not None and pred is not None and ref["value"] == pred["value"]) if has_value else None,
    )
