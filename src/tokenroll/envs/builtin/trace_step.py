"""`trace-step`: predict a real execution one frame per turn, shown the true frame after each.

Chat mode (the policy's template, so every later turn is bridged onto the last). The system
prompt explains the frame format; the first user message gives the code with its `main`
wrapper and main's seeded CALL frame. Each model turn predicts the next frame; the
environment replies with the true frame as a `tool` message, so the model is always
predicting from the real history (teacher forcing), and the episode ends (COMPLETED) once
the model has predicted the last frame. Its export has two masks: the RL loss mask on
sampled tokens, and `attribution.content_mask_for_roles({"tool"})` on the true frames, for
supervised training of the world model on the environment's replies.

Frames are written in CWM's textual format, the `<|...|>` markers as plain text, e.g.
`<|line_sep|>{"x": ".."}<|action_sep|>    y = x + 1` (see `SYSTEM_PROMPT`). Replies are read
leniently (`read_frame`): text before the first event marker, code fences, a trailing
`<|frame_sep|>`, surrounding whitespace and a missing trailing newline are forgiven.

An episode covers the first `max_frames` frames after the seed (32 by default: 92% of
CRUXEval traces fit whole, their median is 9 frames, and a few traces run to hundreds), and
`max_turns` defaults to the same, so no trace runs a conversation of hundreds of turns.

Reward: `frame_exact_match`, the share of the episode's frames predicted exactly (event,
source line, locals in diff form, return value). Metrics: that, the per-frame action and
state exact matches, key and key+value match and valid JSON from the trace scorer (frames
align by position, which teacher forcing makes exact), and `valid_frame_format`. Resolved-
state metrics are left out: a predicted `..` refers to the true previous frame here, which
the scorer's resolver (walking the predicted frames) would not see.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from tokenroll.core.messages import Message
from tokenroll.core.trajectory import Trajectory
from tokenroll.envs.base import Environment, Limits, Policy
from tokenroll.envs.builtin._traces import GroundTruth, move_trace, state_metric, task_rows
from tokenroll.envs.datasets import DatasetSource
from tokenroll.envs.multiturn import MultiTurnEnv
from tokenroll.envs.rubrics import Rubric
from tokenroll.traces.format import frames_to_text
from tokenroll.traces.frames import EVENT_TOKENS, Frame, ParsedTrace, Special
from tokenroll.traces.ground_truth import Tracer
from tokenroll.traces.parser import parse_trace
from tokenroll.traces.prompts import SEED_FRAME, build_context
from tokenroll.traces.scoring import score_trace

DEFAULT_MAX_FRAMES = 32
METRICS = (
    "frame_exact_match", "action_exact_match", "state_exact_match", "key_match",
    "key_value_match", "valid_json_format", "valid_frame_format",
)
_SCORER_METRICS = METRICS[1:6]

SYSTEM_PROMPT = """\
You predict how a Python program runs, one execution step at a time.

Each step is a frame, written in one of these forms (the <|...|> markers are written as they are):
<|call_sep|>LOCALS<|action_sep|>LINE                 a function is entered; LINE is its def line
<|line_sep|>LOCALS<|action_sep|>LINE                 LINE is about to run
<|return_sep|><|action_sep|>LINE<|arg_sep|>VALUE     the function returns VALUE at LINE
<|exception_sep|><|action_sep|>LINE<|arg_sep|>VALUE  LINE raises the exception VALUE

LINE is one line of the code exactly as written, indentation included. LOCALS is a JSON \
object of the function's local variables before LINE runs, each value the Python repr of \
the variable as a JSON string, e.g. {"xs": "[1, 2]", "s": "'a'"}. A value equal to the one \
in the previous frame is written "..", except right after a call or a return, where every \
value is written out. VALUE is the repr of the returned value (or the exception) as a JSON \
string, e.g. "3".

Reply with the next frame only. You are then shown the true frame, and you predict the one after it."""


class TraceStepEnv(MultiTurnEnv):
    """Frame-by-frame trace prediction with the true frame as each turn's tool reply."""

    name = "trace-step"

    def __init__(
        self,
        dataset: DatasetSource | None = None,
        *,
        max_frames: int = DEFAULT_MAX_FRAMES,
        tracer: Tracer | None = None,
        workers: int = 2,
        system_prompt: str = SYSTEM_PROMPT,
        limits: Limits | None = None,
        **options: Any,
    ) -> None:
        if type(max_frames) is not int or max_frames < 1:
            raise ValueError(f"max_frames must be a positive integer, got {max_frames!r}")
        limits = limits or Limits()
        if limits.max_turns is None:
            limits = replace(limits, max_turns=max_frames)
        options.setdefault("rubric", Rubric([state_metric(name) for name in METRICS],
                                            weights=[1.0] + [0.0] * (len(METRICS) - 1)))
        options.setdefault("sampling", {"max_tokens": 512})
        super().__init__(task_rows() if dataset is None else dataset, system_prompt=system_prompt,
                         limits=limits, **options)
        self.max_frames = max_frames
        self.ground_truth = GroundTruth(tracer, workers=workers)

    # --- hooks ------------------------------------------------------------------------------

    def format_prompt(self, row: Mapping[str, Any]) -> list[Message]:
        context = build_context(row["code"], row["call"]).strip("\n")
        task = (f"Trace this program from the call of main():\n\n```python\n{context}\n```\n\n"
                f"The first frame is:\n{frame_text(SEED_FRAME)}\nPredict the next frame.")
        return [Message(role="system", content=self.system_prompt), Message(role="user", content=task)]

    async def setup_state(self, row: Mapping[str, Any], state: dict[str, Any]) -> None:
        trace = await self.ground_truth.trace(row["code"], row["call"])
        frames = trace.frames[1:]  # after main's seeded CALL frame, which the prompt shows
        reference = frames[: self.max_frames]
        state.update(frames=len(reference), trace_frames=len(frames), turns=[],
                     trace={"reference": [f.to_dict() for f in reference], "predicted": [], "metrics": {}})

    async def is_completed(self, messages: list[Message], state: dict[str, Any]) -> bool:
        """Judge the model's frame against the true one; done after the episode's last frame."""
        trace = state["trace"]
        predicted = read_frame(messages[-1].text)
        reference = Frame.from_dict(trace["reference"][len(state["turns"])])
        trace["predicted"].append(predicted.to_dict())
        state["turns"].append(_judge(reference, predicted))
        return len(state["turns"]) >= state["frames"]

    async def env_response(self, messages: list[Message], state: dict[str, Any]) -> list[Message]:
        """The true frame the model just predicted."""
        reference = Frame.from_dict(state["trace"]["reference"][len(state["turns"]) - 1])
        return [Message(role="tool", content=frame_text(reference))]

    # --- the episode ------------------------------------------------------------------------

    async def rollout(self, policy: Policy, row: Mapping[str, Any]) -> Trajectory:
        trajectory = await super().rollout(policy, row)
        state = trajectory.extras["state"]
        if "trace" in state:
            state["metrics"] = state["trace"]["metrics"] = _metrics(state)
        move_trace(trajectory)
        return trajectory

    def close(self) -> None:
        """Stop the sandbox workers the ground truth started."""
        self.ground_truth.close()


def frame_text(frame: Frame) -> str:
    """One frame as a message writes it: CWM's text without the closing `<|frame_sep|>`."""
    return frames_to_text([frame], end=False).removesuffix(Special.FRAME_SEP.text)


_EVENT_MARKERS = tuple(token.text for token in EVENT_TOKENS.values())
_ENDS = (*_EVENT_MARKERS, Special.FRAME_SEP.text, Special.END_OF_TEXT.text, "```")


def read_frame(text: str) -> Frame:
    """The frame a reply predicts, from its first event marker to the next marker or fence.

    The action is cut to its first line and given its newline back (chat templates may trim
    it); problems (no event marker, bad JSON, ...) are kept in `problem`.
    """
    starts = [i for i in (text.find(marker) for marker in _EVENT_MARKERS) if i >= 0]
    if not starts:
        return Frame(event=None, source=None, problem="no event marker")
    body = text[min(starts):]
    first = len(next(m for m in _EVENT_MARKERS if body.startswith(m)))
    cut = min((i for i in (body.find(end, first) for end in _ENDS) if i >= 0), default=len(body))
    parsed = parse_trace(body[:cut].strip() + Special.FRAME_SEP.text + Special.END_OF_TEXT.text)
    frame = parsed.frames[0]
    source = frame.source
    if source is not None and frame.event is not None and frame.event.has_state:
        source = source.split("\n", 1)[0]
    if source is not None:
        source = source.rstrip("\n") + "\n"
    problems = "; ".join(problem.removeprefix("frame 0: ") for problem in parsed.problems)
    return Frame(event=frame.event, source=source, state=frame.state, value=frame.value,
                 problem=problems or None)


def _judge(reference: Frame, predicted: Frame) -> dict[str, bool]:
    """Whether one predicted frame matches the true one, by the scorer's own definitions."""
    score = score_trace([reference], ParsedTrace([predicted], well_formed=True, ended=True))
    event = predicted.event is reference.event
    action = score.action_exact_match == 1.0
    state = score.state_exact_match == 1.0
    return {"exact": event and action and state, "event": event, "action": action, "state": state,
            "well_formed": predicted.problem is None}


def _metrics(state: dict[str, Any]) -> dict[str, float]:
    """The episode's metrics; frames the model never got to count as wrong."""
    reference = [Frame.from_dict(f) for f in state["trace"]["reference"]]
    predicted = [Frame.from_dict(f) for f in state["trace"]["predicted"]]
    score = score_trace(reference, ParsedTrace(predicted, well_formed=True, ended=True))
    turns, n = state["turns"], len(reference)
    metrics = {"frame_exact_match": sum(t["exact"] for t in turns) / n}
    metrics.update({name: getattr(score, name) for name in _SCORER_METRICS})
    metrics["valid_frame_format"] = sum(t["well_formed"] for t in turns) / n
    return metrics


def trace_step(*, path: str | Path | None = None, **args: Any) -> Environment:
    """The `trace-step` environment on CRUXEval (or on a JSONL file of tasks in its layout)."""
    return TraceStepEnv(task_rows(path), **args)
