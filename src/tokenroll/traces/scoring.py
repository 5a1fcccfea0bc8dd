"""Trace-prediction metrics: CWM's Table 9 (notes 3.2/3.2b) and our extras (3.3).

Per sample, the predicted frames are compared with the reference frames (the ground truth
without the seeded `main` CALL frame), and each metric is a rate in [0, 1] for that trace;
reports average the rates over traces (macro average) and print them as percentages.

Table 9 metrics, with the definitions that reproduce the paper (section 3.2b):

* `valid_trace_format`: the generation follows the grammar and ends (`ParsedTrace.well_formed`).
* `action_exact_match`: share of reference frames whose same-position predicted frame has the
  same text after `<|action_sep|>` (trailing whitespace ignored). For RETURN/EXCEPTION frames
  that text includes `<|arg_sep|>` and the value, so a wrong return value is a wrong action.
* `state_exact_match`: share of reference CALL/LINE frames whose same-position prediction has
  exactly the same locals, `..` included.
* `valid_json_format`: share of predicted CALL/LINE frames whose locals are a JSON object.
* `key_match` / `key_value_match`: mean Jaccard overlap of key sets / (key, value) sets over
  reference CALL/LINE frames (a missing or unreadable prediction scores 0; two empty sets 1).
* `pass_at_1`: `assert <expected> == <predicted>` run with the code in the sandbox, where
  <predicted> is the value of the generation's last RETURN frame (CRUXEval's own check).

Extras: `action_exact_match_source` (source line only), `valid_json_format_at_reference`
(the 3.2 wording: over reference CALL/LINE positions), `action_lcs_match` and
`state_lcs_match` (frames aligned by a longest common subsequence of (event, source) instead
of by position), `resolved_state_match` (states with `..` expanded on both sides), and
`value_match` (resolved values compared by `ast.literal_eval` equality, so set order and
`1` vs `1.0` do not matter; values that are not literals are compared as text).
A rate over an empty set of reference frames is 1.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tokenroll.sandbox import Job
from tokenroll.traces.cruxeval import CHECK_TIMEOUT_SECONDS, check_program
from tokenroll.traces.format import Encode, dumps_json
from tokenroll.traces.frames import Event, Frame, ParsedTrace, Special, Trace
from tokenroll.traces.ground_truth import Tracer
from tokenroll.traces.parser import parse_trace
from tokenroll.traces.prompts import cruxeval_call, resolve_states
from tokenroll.traces.tasks import TaskFileError, read_jsonl, require_str

TABLE9_METRICS = (
    "pass_at_1", "valid_trace_format", "state_exact_match", "action_exact_match",
    "valid_json_format", "key_match", "key_value_match",
)
EXTRA_METRICS = (
    "action_exact_match_source", "valid_json_format_at_reference", "action_lcs_match",
    "state_lcs_match", "resolved_state_match", "value_match",
)


@dataclass(slots=True)
class TraceScore:
    """Every metric of one predicted trace, each a rate in [0, 1] (pass_at_1: None = unchecked)."""

    valid_trace_format: float
    state_exact_match: float
    action_exact_match: float
    valid_json_format: float
    key_match: float
    key_value_match: float
    action_exact_match_source: float
    valid_json_format_at_reference: float
    action_lcs_match: float
    state_lcs_match: float
    resolved_state_match: float
    value_match: float
    reference_frames: int
    predicted_frames: int
    predicted_output: str | None
    pass_at_1: float | None = None


@dataclass(slots=True)
class GenerationSample:
    """A model's full-trace generation for `call` on `code` (text after the seeded frame)."""

    id: str
    code: str
    call: str
    generation: str
    expected_output: str | None = None


@dataclass(slots=True)
class SampleResult:
    """The score of one sample, or why it could not be scored."""

    id: str
    score: TraceScore | None
    error: str | None = None
    problems: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        row: dict = {"id": self.id}
        if self.score is not None:
            row.update(asdict(self.score))
        row["error"] = self.error
        row["problems"] = self.problems
        return row


@dataclass(slots=True)
class ScoreReport:
    """Scores of many samples; `summary()` gives the macro averages as percentages."""

    samples: list[SampleResult]

    def summary(self) -> dict[str, float | int | None]:
        scored = [sample.score for sample in self.samples if sample.score is not None]
        summary: dict[str, float | int | None] = {}
        for name in (*TABLE9_METRICS, *EXTRA_METRICS):
            values = [getattr(score, name) for score in scored]
            values = [value for value in values if value is not None]
            summary[name] = 100.0 * sum(values) / len(values) if values else None
        summary["samples"] = len(self.samples)
        summary["scored"] = len(scored)
        summary["unscored"] = len(self.samples) - len(scored)
        return summary


# -- one trace ---------------------------------------------------------------------------------


def score_trace(reference: Sequence[Frame], predicted: ParsedTrace) -> TraceScore:
    """Compare predicted frames with reference frames (both without the seeded frame)."""
    ref, pred = list(reference), predicted.frames
    n_ref = len(ref)
    state_positions = [i for i, frame in enumerate(ref) if frame.event.has_state]
    at = [pred[i] if i < len(pred) else None for i in range(n_ref)]

    action_full = [_same_action(ref[i], at[i], whole=True) for i in range(n_ref)]
    action_source = [_same_action(ref[i], at[i], whole=False) for i in range(n_ref)]
    state_exact = [_state_of(at[i]) == ref[i].state for i in state_positions]
    key_match = [_jaccard(ref[i].state, _state_of(at[i]), items=False) for i in state_positions]
    key_value = [_jaccard(ref[i].state, _state_of(at[i]), items=True) for i in state_positions]
    json_at_ref = [_state_of(at[i]) is not None for i in state_positions]
    pred_state_frames = [f for f in pred if f.event is not None and f.event.has_state]
    json_pred = [f.state is not None for f in pred_state_frames]

    ref_resolved, pred_resolved = resolve_states(ref), resolve_states(pred)
    pred_resolved_at = [pred_resolved[i] if i < len(pred) else None for i in range(n_ref)]
    resolved_match = [pred_resolved_at[i] == ref_resolved[i] for i in state_positions]
    value_match = [
        _same_values(ref_resolved[i], pred_resolved_at[i]) if ref[i].event.has_state
        else at[i] is not None and at[i].event is ref[i].event
        and _literal_equal(ref[i].value, at[i].value)
        for i in range(n_ref)
    ]

    pairs = _lcs_pairs([_lcs_key(f) for f in ref], [_lcs_key(f) for f in pred])
    aligned = dict(pairs)
    state_lcs = [i in aligned and _state_of(pred[aligned[i]]) == ref[i].state
                 for i in state_positions]

    return TraceScore(
        valid_trace_format=1.0 if predicted.well_formed else 0.0,
        state_exact_match=_rate(state_exact),
        action_exact_match=_rate(action_full),
        valid_json_format=_rate(json_pred) if pred_state_frames else 0.0,
        key_match=_mean(key_match),
        key_value_match=_mean(key_value),
        action_exact_match_source=_rate(action_source),
        valid_json_format_at_reference=_rate(json_at_ref),
        action_lcs_match=len(pairs) / n_ref if n_ref else 1.0,
        state_lcs_match=_rate(state_lcs),
        resolved_state_match=_rate(resolved_match),
        value_match=_rate(value_match),
        reference_frames=n_ref,
        predicted_frames=len(pred),
        predicted_output=predicted_output(predicted),
    )


def predicted_output(predicted: ParsedTrace) -> str | None:
    """The value of the generation's last RETURN frame (the entry function's, when complete)."""
    for frame in reversed(predicted.frames):
        if frame.event is Event.RETURN:
            return frame.value
    return None


def _rate(hits: Sequence[bool]) -> float:
    return sum(hits) / len(hits) if hits else 1.0


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 1.0


def _state_of(frame: Frame | None) -> dict | None:
    if frame is None or frame.event is None or not frame.event.has_state:
        return None
    return frame.state


def _action_text(frame: Frame, whole: bool) -> str | None:
    if frame.raw is not None:  # a parsed frame: compare what the model wrote
        marker = Special.ACTION_SEP.text
        if marker not in frame.raw:
            return None
        text = frame.raw.split(marker, 1)[1]
        if not whole:
            text = text.split(Special.ARG_SEP.text, 1)[0]
        return text.rstrip()
    if frame.source is None:
        return None
    if whole and frame.event is not None and not frame.event.has_state:
        return (frame.source + Special.ARG_SEP.text + dumps_json(frame.value)).rstrip()
    return frame.source.rstrip()


def _same_action(reference: Frame, predicted: Frame | None, whole: bool) -> bool:
    if predicted is None:
        return False
    text = _action_text(predicted, whole)
    return text is not None and text == _action_text(reference, whole)


def _hashable(value: object) -> str:
    return value if isinstance(value, str) else dumps_json(value)


def _jaccard(reference: dict | None, predicted: dict | None, items: bool) -> float:
    if reference is None or predicted is None:
        return 0.0
    if items:
        ref_set = {(k, _hashable(v)) for k, v in reference.items()}
        pred_set = {(k, _hashable(v)) for k, v in predicted.items()}
    else:
        ref_set, pred_set = set(reference), set(predicted)
    union = ref_set | pred_set
    return len(ref_set & pred_set) / len(union) if union else 1.0


_NOT_A_LITERAL = object()


@functools.lru_cache(maxsize=1 << 16)
def _literal(text: str) -> object:
    try:
        return ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return _NOT_A_LITERAL


def _literal_equal(reference: object, predicted: object) -> bool:
    if not isinstance(reference, str) or not isinstance(predicted, str):
        return reference == predicted and reference is not None
    if reference == predicted:
        return True
    left, right = _literal(reference), _literal(predicted)
    if left is _NOT_A_LITERAL or right is _NOT_A_LITERAL:
        return False
    try:
        return bool(left == right)
    except Exception:  # comparing exotic literals must not break scoring
        return False


def _same_values(reference: dict | None, predicted: dict | None) -> bool:
    if reference is None or predicted is None or reference.keys() != predicted.keys():
        return False
    return all(_literal_equal(reference[key], predicted[key]) for key in reference)


def _lcs_key(frame: Frame) -> object:
    if frame.event is None or frame.source is None:
        return object()  # matches nothing
    return (frame.event, frame.source.rstrip())


def _lcs_pairs(left: Sequence[object], right: Sequence[object]) -> list[tuple[int, int]]:
    """Index pairs of one longest common subsequence (common ends matched directly)."""
    start = 0
    while start < len(left) and start < len(right) and left[start] == right[start]:
        start += 1
    end_l, end_r = len(left), len(right)
    while end_l > start and end_r > start and left[end_l - 1] == right[end_r - 1]:
        end_l -= 1
        end_r -= 1
    pairs = [(i, i) for i in range(start)]
    a, b = left[start:end_l], right[start:end_r]
    if a and b:
        # lengths[i][j]: LCS length of a[i:] and b[j:]
        lengths = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
        for i in range(len(a) - 1, -1, -1):
            row, below = lengths[i], lengths[i + 1]
            item = a[i]
            for j in range(len(b) - 1, -1, -1):
                row[j] = below[j + 1] + 1 if item == b[j] else max(below[j], row[j + 1])
        i = j = 0
        while i < len(a) and j < len(b):
            if a[i] == b[j]:
                pairs.append((start + i, start + j))
                i += 1
                j += 1
            elif lengths[i + 1][j] >= lengths[i][j + 1]:
                i += 1
            else:
                j += 1
    pairs.extend((end_l + k, end_r + k) for k in range(len(left) - end_l))
    return pairs


def token_statistics(traces: Iterable[Trace], encode: Encode) -> dict[str, float]:
    """Table 9's "Avg State/Action Length (Token)" of ground-truth traces (seed excluded).

    Per trace, the mean over all frames of the state's tokens (`json.dumps(locals)`; 0 for
    RETURN/EXCEPTION frames) and of the action's tokens (the source line, plus
    `<|arg_sep|>` and the value for RETURN/EXCEPTION frames); then the mean over traces.
    With the Llama 3 tokenizer this gives 11.4 and 11.4 on CRUXEval (paper: 11.7, 11.2).
    """
    state_means, action_means = [], []
    for trace in traces:
        frames = trace.frames[1:]
        if not frames:
            continue
        states = [len(encode(dumps_json(f.state))) if f.event.has_state else 0 for f in frames]
        actions = [len(encode(f.source)) + (0 if f.event.has_state
                                            else 1 + len(encode(dumps_json(f.value))))
                   for f in frames]
        state_means.append(sum(states) / len(states))
        action_means.append(sum(actions) / len(actions))
    return {"avg_state_tokens": _mean(state_means), "avg_action_tokens": _mean(action_means)}


# -- many samples ------------------------------------------------------------------------------


def load_generation_samples(path: str | Path) -> list[GenerationSample]:
    """Read JSONL lines `{"id", "code", "input", "generation"}` (optional: `output`,
    `function`); a bad line raises TaskFileError naming the line and the field."""
    samples = []
    for number, row in read_jsonl(path):
        where = f"{path}:{number}"
        function = require_str(row, "function", where, optional=True) or "f"
        if "id" not in row:
            raise TaskFileError(f"{where}: missing field 'id'")
        samples.append(GenerationSample(
            id=str(row["id"]),
            code=require_str(row, "code", where),
            call=cruxeval_call(require_str(row, "input", where), function),
            generation=require_str(row, "generation", where),
            expected_output=require_str(row, "output", where, optional=True),
        ))
    return samples


def score_generations(
    samples: Iterable[GenerationSample],
    *,
    tracer: Tracer | None = None,
    check_timeout: float = CHECK_TIMEOUT_SECONDS,
) -> ScoreReport:
    """Trace every sample's ground truth, score its generation, and run the pass@1 checks."""
    samples = list(samples)
    own_tracer = tracer is None
    tracer = tracer or Tracer()
    try:
        traces = tracer.trace_calls((sample.code, sample.call) for sample in samples)
        results = [_score_sample(sample, trace) for sample, trace in zip(samples, traces)]
        checks: list[tuple[SampleResult, Job]] = []
        for sample, trace, result in zip(samples, traces, results):
            expected = sample.expected_output or trace.return_value
            if result.score is None or expected is None:
                continue
            job = output_check(sample.code, expected, result.score.predicted_output, check_timeout)
            if job is None:
                result.score.pass_at_1 = 0.0
                continue
            checks.append((result, job))
        outcomes = tracer.pool.map(job for _result, job in checks)
        for (result, _job), outcome in zip(checks, outcomes):
            result.score.pass_at_1 = 1.0 if outcome.ok else 0.0
    finally:
        if own_tracer:
            tracer.close()
    return ScoreReport(results)


def output_check(code: str, expected: str, predicted: str | None,
                 timeout: float = CHECK_TIMEOUT_SECONDS) -> Job | None:
    """The sandbox job that checks a predicted output as CRUXEval does (it passes iff it runs
    cleanly); None when the generation predicts no output, which fails."""
    if predicted is None:
        return None
    return Job(code=check_program(code, expected, predicted), timeout=timeout, module_name=None)


def _score_sample(sample: GenerationSample, trace: Trace) -> SampleResult:
    if not trace.complete:
        return SampleResult(sample.id, None, error=f"no ground truth: {trace.error}")
    parsed = parse_trace(sample.generation)
    return SampleResult(sample.id, score_trace(trace.frames[1:], parsed), problems=parsed.problems)


__all__ = [
    "EXTRA_METRICS", "GenerationSample", "SampleResult", "ScoreReport", "TABLE9_METRICS",
    "TraceScore", "load_generation_samples", "output_check", "predicted_output", "token_statistics", "score_generations", "score_trace",
]
