"""Token tapes: each training sample of a trajectory as per-token columns, step spans and markers.

A tape has one entry per token of `Trajectory.to_samples()`. Logprobs and advantages are
kept only on completion tokens (the sample's zeros on prompt tokens are placeholders, not
values). A sample without prompt attribution (raw-token environments, some chat steps)
has no message, role, sampled or content column; its completion tokens are still the
assistant's. `token_colour` and `tooltip` are the rules the page's script follows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import groupby
from typing import Any

from tokenroll.core.attribution import SCAFFOLD
from tokenroll.core.samples import TrainingSample
from tokenroll.core.steps import Step
from tokenroll.core.trajectory import Trajectory
from tokenroll.viewer import colours
from tokenroll.viewer.tokens import token_label

FIRST_TURN = "first_turn"
BRIDGED = "bridged"


@dataclass(slots=True)
class StepSpan:
    """Where one step's tokens lie in its sample, and how its prompt was built.

    The step adds tokens [start, completion_start) of prompt and [completion_start, end) of
    completion; `built`, `reason`, `drift` and `skipped` come from `extras["prompt"]`.
    """

    step: int
    start: int
    completion_start: int
    end: int
    built: str | None = None
    reason: str | None = None
    finish_reason: str | None = None
    is_truncated: bool = False
    overlong_prompt: bool = False
    drift: int | None = None
    skipped: str | None = None
    text_only: bool = False

    @property
    def label(self) -> str:
        """The marker shown where the step starts, e.g. `step 2 · re-rendered: length`."""
        head = f"step {self.step}"
        if self.built == "bridge":
            text = f"{head} · bridged"
            return f"{text} · drift {self.drift} tokens" if self.drift else text
        if self.built == "render":
            if self.reason in (None, FIRST_TURN):
                return f"{head} · first turn"
            return f"{head} · re-rendered: {self.reason}"
        if self.built == "chat":
            return f"{head} · chat" + (" · text only" if self.text_only else "")
        return head


@dataclass(slots=True)
class Marker:
    """A mark drawn on the tape before token `position` (`position == len(tape)`: after the last)."""

    position: int
    kind: str
    """"step", "bridge", "render" (a re-rendered turn), "truncated" or "skipped"."""
    label: str


@dataclass(slots=True)
class Tape:
    """One training sample as the viewer shows it: per-token columns, step spans and markers."""

    index: int
    token_ids: list[int]
    loss_mask: list[bool]
    completion: list[bool]
    """True on tokens the engine sampled (some step's completion)."""
    step_of: list[int]
    """The trajectory step that added each token."""
    logprobs: list[float | None]
    advantages: list[float | None]
    spans: list[StepSpan]
    is_truncated: bool
    message_indices: list[int] | None = None
    sampled: list[bool] | None = None
    is_content: list[bool] | None = None
    roles: list[str] = field(default_factory=list)
    tool_names: list[str | None] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.token_ids)

    @property
    def attributed(self) -> bool:
        return self.message_indices is not None

    @property
    def title(self) -> str:
        """The heading above the tape, e.g. `sample 0 · steps 0–1 · 57 tokens · truncated`."""
        steps = [span.step for span in self.spans]
        which = f"step {steps[0]}" if len(steps) == 1 else f"steps {steps[0]}–{steps[-1]}"
        parts = [f"sample {self.index}", which, f"{len(self)} tokens"]
        if not self.attributed:
            parts.append("no prompt attribution")
        if self.is_truncated:
            parts.append("truncated")
        return " · ".join(parts)

    def markers(self) -> list[Marker]:
        """Step starts (bridged, re-rendered with the reason), truncations and skipped calls, in order."""
        marks: list[Marker] = []
        for span in self.spans:
            kind = "step"
            if span.built == "bridge":
                kind = "bridge"
            elif span.built == "render" and span.reason not in (None, FIRST_TURN):
                kind = "render"
            marks.append(Marker(span.start, kind, span.label))
            if span.skipped:
                marks.append(Marker(span.end, "skipped", f"skipped: {span.skipped}"))
            if span.overlong_prompt:
                marks.append(Marker(span.end, "truncated", "✂ prompt cut at max_seq_len"))
            elif span.is_truncated:
                reason = f" ({span.finish_reason})" if span.finish_reason else ""
                marks.append(Marker(span.end, "truncated", f"✂ truncated{reason}"))
        return marks

    def role(self, position: int) -> str | None:
        """The role of the token's message; None for scaffolding or an unattributed prompt token."""
        if self.message_indices is None:
            return "assistant" if self.completion[position] else None
        index = self.message_indices[position]
        return None if index == SCAFFOLD else self.roles[index]


def build_tapes(trajectory: Trajectory) -> list[Tape]:
    """One tape per training sample of the trajectory."""
    return [_tape(index, sample, trajectory.steps) for index, sample in enumerate(trajectory.to_samples())]


def advantage_scale(tapes: list[Tape]) -> float:
    """The largest |advantage| of the trajectory's tokens: where the diverging scale saturates."""
    values = [abs(v) for tape in tapes for v in tape.advantages if v is not None]
    return max(values, default=0.0)


def _tape(index: int, sample: TrainingSample, steps: list[Step]) -> Tape:
    n = len(sample.token_ids)
    completion = [False] * n
    step_of = [0] * n
    logprobs: list[float | None] = [None] * n
    advantages: list[float | None] = [None] * n
    spans = []
    previous_end = 0
    for k, step_index in enumerate(sample.step_indices):
        step = steps[step_index]
        start = 0 if k == 0 else previous_end
        completion_start = len(step.prompt_ids)
        end = completion_start + len(step.completion_ids)
        step_of[start:end] = [step_index] * (end - start)
        completion[completion_start:end] = [True] * (end - completion_start)
        if step.completion_logprobs is not None:
            logprobs[completion_start:end] = [_round(v) for v in step.completion_logprobs]
        token_advantages = step.token_advantages()
        if token_advantages is not None:
            advantages[completion_start:end] = [_round(v) for v in token_advantages]
        spans.append(_span(step_index, step, start, completion_start, end))
        previous_end = end
    tape = Tape(
        index=index,
        token_ids=list(sample.token_ids),
        loss_mask=list(sample.loss_mask),
        completion=completion,
        step_of=step_of,
        logprobs=logprobs,
        advantages=advantages,
        spans=spans,
        is_truncated=sample.is_truncated,
    )
    attribution = sample.attribution
    if attribution is not None and len(attribution.token_ids) == n:
        tape.message_indices = list(attribution.message_indices)
        tape.sampled = list(attribution.sampled_mask)
        tape.is_content = list(attribution.is_content)
        tape.roles = list(attribution.message_roles)
        tape.tool_names = list(attribution.message_tool_names)
    return tape


def _span(step_index: int, step: Step, start: int, completion_start: int, end: int) -> StepSpan:
    record = step.extras.get("prompt")
    record = record if isinstance(record, Mapping) else {}
    drift = record.get("drift")
    drift_tokens = drift.get("tokens") if isinstance(drift, Mapping) else None
    return StepSpan(
        step=step_index,
        start=start,
        completion_start=completion_start,
        end=end,
        built=_str_or_none(record.get("built")),
        reason=_str_or_none(record.get("reason")),
        finish_reason=step.finish_reason,
        is_truncated=step.is_truncated,
        overlong_prompt=step.overlong_prompt,
        drift=drift_tokens if isinstance(drift_tokens, int) else None,
        skipped=_str_or_none(record.get("skipped")),
        text_only=bool(record.get("text_only")),
    )


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _round(value: float) -> float:
    # Four decimals is what the tooltip shows; adding 0.0 turns -0.0 into 0.0 so signs print alike.
    return round(value, 4) + 0.0


# --- what the page shows -------------------------------------------------------------------


def token_colour(tape: Tape, position: int, mode: str, scale: float) -> str:
    """The background the page gives token `position` when coloured by `mode`."""
    if mode == "role":
        if not tape.attributed and not tape.completion[position]:
            return colours.UNKNOWN
        return colours.role_colour(tape.role(position))
    if mode == "message":
        if tape.message_indices is None:
            return colours.UNKNOWN
        return colours.message_colour(tape.message_indices[position])
    if mode == "sampled":
        return colours.bool_colour(None if tape.sampled is None else tape.sampled[position])
    if mode == "content":
        return colours.bool_colour(None if tape.is_content is None else tape.is_content[position])
    if mode == "loss":
        return colours.bool_colour(tape.loss_mask[position])
    if mode == "advantage":
        return colours.advantage_colour(tape.advantages[position], scale)
    if mode == "logprob":
        return colours.logprob_colour(tape.logprobs[position])
    raise ValueError(f"unknown colouring mode {mode!r}; choose one of {', '.join(colours.MODES)}")


def tooltip(tape: Tape, position: int, vocab: Mapping[int, str] | None) -> str:
    """The text shown when hovering token `position`: id, visible text, message, role, values."""
    token_id = tape.token_ids[position]
    text, special = token_label(vocab, token_id)
    if tape.message_indices is None:
        message = "—"
    else:
        index = tape.message_indices[position]
        message = "scaffolding" if index == SCAFFOLD else str(index)
    role = tape.role(position)
    if role is not None and tape.message_indices is not None and tape.message_indices[position] != SCAFFOLD:
        tool = tape.tool_names[tape.message_indices[position]]
        role = f"{role} ({tool})" if tool else role
    part = "completion" if tape.completion[position] else "prompt"
    logprob, advantage = tape.logprobs[position], tape.advantages[position]
    sampled = _yes_no(None if tape.sampled is None else tape.sampled[position])
    content = _yes_no(None if tape.is_content is None else tape.is_content[position])
    return "\n".join([
        f"token {position} · id {token_id}",
        f"text: {text}" + (" (special)" if special else ""),
        f"message: {message}",
        f"role: {role or '—'}",
        f"step: {tape.step_of[position]} ({part})",
        f"sampled: {sampled} · content: {content} · loss: {_yes_no(tape.loss_mask[position])}",
        "logprob: " + ("—" if logprob is None else f"{logprob:.4f}"),
        "advantage: " + ("—" if advantage is None else f"{advantage:+.4f}"),
    ])


def _yes_no(value: bool | None) -> str:
    return "—" if value is None else "yes" if value else "no"


# --- the page's data -----------------------------------------------------------------------


def runs(values: list[Any]) -> list[Any]:
    """Run-length encoding as a flat list `[value, count, value, count, ...]` (booleans as 0/1).

    Columns are homogeneous (all bools, ints, or floats and None), so `==` runs are exact.
    """
    out: list[Any] = []
    for value, group in groupby(values):
        out += (int(value) if isinstance(value, bool) else value, len(list(group)))
    return out


def tape_payload(tape: Tape) -> dict[str, Any]:
    """The tape as the page's script reads it: run-length columns, values on completion tokens only."""
    picked = [i for i, is_completion in enumerate(tape.completion) if is_completion]
    return {
        "title": tape.title,
        "ids": tape.token_ids,
        "loss": runs(tape.loss_mask),
        "msg": None if tape.message_indices is None else runs(tape.message_indices),
        "sampled": None if tape.sampled is None else runs(tape.sampled),
        "content": None if tape.is_content is None else runs(tape.is_content),
        "roles": tape.roles,
        "tools": tape.tool_names,
        "lp": [tape.logprobs[i] for i in picked],
        "adv": runs([tape.advantages[i] for i in picked]),
        "spans": [[s.step, s.start, s.completion_start, s.end] for s in tape.spans],
        "marks": [[m.position, m.kind, m.label] for m in tape.markers()],
        "truncated": tape.is_truncated,
    }
