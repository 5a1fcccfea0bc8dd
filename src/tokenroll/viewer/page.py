"""The viewer page: a run's data prepared for the page's script, embedded in one HTML file.

The file needs no network: the template, style and script (package data under `static/`)
are inlined. Each trajectory is a separate JSON script element that the page parses only
when that trajectory is opened; the list reads a compact column table, so a run of 10,000
trajectories opens without parsing any of them.
"""

from __future__ import annotations

import math
import os
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import orjson

import tokenroll
from tokenroll.core.messages import Message
from tokenroll.core.trajectory import Trajectory
from tokenroll.viewer.colours import palette
from tokenroll.viewer.figures import Figure, fmt, run_figures
from tokenroll.viewer.rundir import RunDir, load_run, paused_gc
from tokenroll.viewer.tapes import advantage_scale, build_tapes, tape_payload
from tokenroll.viewer.tokens import vocab_payload
from tokenroll.viewer.traces import trace_view

DEFAULT_NAME = "view.html"
ERROR_PREVIEW = 160
"""Characters of an error's first line shown in the list."""


@dataclass(slots=True)
class Row:
    """One trajectory in the run page's list."""

    id: str
    example: str
    rollout: int
    reward: float | None
    stop: str | None
    error: str | None
    turns: int
    tokens: int
    sampled: int
    seconds: float | None
    rerendered: int
    trace: bool


@dataclass(slots=True)
class Prepared:
    """One trajectory ready for the page: its list row and its payload."""

    row: Row
    payload: dict[str, Any]


def prepare_trajectory(index: int, trajectory: Trajectory) -> Prepared:
    """The list row and the page payload of one trajectory (tapes, messages, steps, trace)."""
    tapes = build_tapes(trajectory)
    trace = trace_view(trajectory.extras)
    steps = [_step_row(k, step) for k, step in enumerate(trajectory.steps)]
    payload = {
        "i": index,
        "id": trajectory.id,
        "example": trajectory.example_id,
        "rollout": trajectory.rollout_index,
        "reward": trajectory.reward,
        "stop": None if trajectory.stop_reason is None else trajectory.stop_reason.value,
        "error": trajectory.error,
        "timing": trajectory.timing,
        "metrics": trajectory.metrics,
        "input": trajectory.input,
        "messages": [_message(m) for m in trajectory.messages],
        "steps": steps,
        "tapes": [tape_payload(t) for t in tapes],
        "adv_scale": advantage_scale(tapes),
        "trace": None if trace is None else trace.to_payload(),
        "extras": {k: v for k, v in trajectory.extras.items() if k != "trace"},
    }
    row = Row(
        id=trajectory.id,
        example="" if trajectory.example_id is None else str(trajectory.example_id),
        rollout=trajectory.rollout_index,
        reward=trajectory.reward,
        stop=payload["stop"],
        error=None if trajectory.error is None else _first_line(trajectory.error),
        turns=len(trajectory.steps),
        tokens=sum(len(t) for t in tapes),
        sampled=sum(len(s.completion_ids) for s in trajectory.steps),
        seconds=_number(trajectory.timing.get("total")),
        rerendered=sum(1 for s in steps if s["built"] == "render" and s["reason"] not in (None, "first_turn")),
        trace=trace is not None,
    )
    return Prepared(row, payload)


def run_payload(run: RunDir, rows: Sequence[Row], figures: Sequence[Figure]) -> dict[str, Any]:
    """The run page's data: metadata, headline numbers, figures, metric means and the list columns."""
    trajectories = run.trajectories
    return {
        "title": run.path.resolve().name,
        "tokenroll_version": tokenroll.__version__,
        "metadata": run.metadata,
        "headline": headline(run, figures),
        "figures": [f.to_payload() for f in figures],
        "metrics": _means(t.metrics for t in trajectories),
        "trace_metrics": _means(
            t.extras["trace"].get("metrics", {})
            for t in trajectories
            if isinstance(t.extras.get("trace"), Mapping)
        ),
        "has_vocab": run.vocab is not None,
        "rows": _columns(rows),
        "palette": palette(),
    }


def headline(run: RunDir, figures: Sequence[Figure]) -> list[list[str]]:
    """The summary cards of the run page: [label, value, detail]."""
    trajectories, meta = run.trajectories, run.metadata
    counts = _mapping(meta.get("counts"))
    cards = [["model", str(meta.get("model") or "—"), str(_mapping(meta.get("environment")).get("name") or "")]]
    expected = counts.get("expected")
    cards.append(["rollouts", str(len(trajectories)), f"of {expected} expected" if expected else ""])
    examples = {t.example_id for t in trajectories if t.example_id is not None}
    cards.append(["examples", str(len(examples)), ""])
    errored = sum(t.error is not None for t in trajectories)
    cards.append(["errored", str(errored), f"{100 * errored / len(trajectories):.1f}%" if trajectories else ""])
    rewards = [t.reward for t in trajectories if t.reward is not None]
    if rewards:
        spread = statistics.pstdev(rewards) if len(rewards) > 1 else 0.0
        cards.append(["reward", f"{statistics.fmean(rewards):.4f}",
                      f"± {spread:.4f} (min {fmt(min(rewards))}, max {fmt(max(rewards))})"])
    else:
        cards.append(["reward", "—", "no rewards"])
    pass_bars = next((f.bars for f in figures if f.id == "pass-at-k"), [])
    if pass_bars:
        cards.append([pass_bars[0].label, f"{pass_bars[0].value:.4f}",
                      " · ".join(f"{b.label} {b.value:.4f}" for b in pass_bars[1:])])
    prompt = sum(len(s.prompt_ids) for t in trajectories for s in t.steps)
    completion = sum(len(s.completion_ids) for t in trajectories for s in t.steps)
    cards.append(["tokens", f"{completion:,} sampled", f"{prompt:,} prompt tokens sent"])
    timing = _mapping(meta.get("timing"))
    wall, rate = _number(timing.get("wall_seconds")), _number(timing.get("rollouts_per_second"))
    if wall is not None:
        cards.append(["wall time", f"{wall:.1f} s", f"{rate:.2f} rollouts/s" if rate is not None else ""])
    return cards


def build_page(run: RunDir) -> str:
    """The whole HTML file of a loaded run."""
    with paused_gc():
        prepared = [prepare_trajectory(i, t) for i, t in enumerate(run.trajectories)]
        rows = [p.row for p in prepared]
        figures = run_figures(run.trajectories, run.metadata, [r.tokens for r in rows])
        ids = {token for t in run.trajectories for s in t.steps for token in (*s.prompt_ids, *s.completion_ids)}
        data = [
            _script("run-data", run_payload(run, rows, figures)),
            _script("vocab-data", vocab_payload(run.vocab, ids)),
            *(_script(f"t{p.payload['i']}", p.payload) for p in prepared),
        ]
    template = _static("view.html")
    title = f"tokenroll · {_escape(run.path.resolve().name)}"
    # One pass of replacements: the inlined script and data never go through another.
    parts = {
        "<!--TITLE-->": title,
        "/*STYLE*/": _static("view.css"),
        "<!--DATA-->": "\n".join(data),
        "/*SCRIPT*/": _static("view.js"),
    }
    out, rest = [], template
    for marker, text in parts.items():
        head, found, rest = rest.partition(marker)
        if not found:
            raise RuntimeError(f"viewer template has no {marker} marker")
        out += (head, text)
    out.append(rest)
    return "".join(out)


def write_page(
    run: RunDir | str | os.PathLike[str], output: str | os.PathLike[str] | None = None
) -> Path:
    """Write the page of a run (loaded, or a directory to load) to `output`, default `RUN_DIR/view.html`."""
    run = run if isinstance(run, RunDir) else load_run(run)
    path = Path(output) if output is not None else run.path / DEFAULT_NAME
    html = build_page(run)
    # Write beside the target, then rename: a reader never sees half a page.
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(html, encoding="utf-8")
    temporary.replace(path)
    return path


# --- helpers -------------------------------------------------------------------------------


def _static(name: str) -> str:
    return resources.files("tokenroll.viewer").joinpath("static", name).read_text(encoding="utf-8")


def _script(element_id: str, payload: Any) -> str:
    """A JSON script element; every `<` is escaped so no text can close the element early."""
    text = orjson.dumps(payload, option=orjson.OPT_NON_STR_KEYS).replace(b"<", b"\\u003c").decode()
    return f'<script type="application/json" id="{element_id}">{text}</script>'


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _message(message: Message) -> dict[str, Any]:
    out: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.reasoning_content:
        out["reasoning"] = message.reasoning_content
    if message.tool_calls:
        out["tool_calls"] = [[c.name, c.arguments] for c in message.tool_calls]
    if message.name:
        out["name"] = message.name
    if message.tool_call_id:
        out["tool_call_id"] = message.tool_call_id
    return out


def _step_row(index: int, step: Any) -> dict[str, Any]:
    record = step.extras.get("prompt")
    record = record if isinstance(record, Mapping) else {}
    drift = record.get("drift")
    notes = {k: v for k, v in step.extras.items() if k != "prompt"}
    return {
        "step": index,
        "built": record.get("built"),
        "reason": record.get("reason"),
        "mode": record.get("mode"),
        "finish": step.finish_reason,
        "truncated": step.is_truncated,
        "overlong": step.overlong_prompt,
        "prompt": len(step.prompt_ids),
        "completion": len(step.completion_ids),
        "drift": drift.get("tokens") if isinstance(drift, Mapping) else None,
        "skipped": record.get("skipped"),
        "advantage": step.advantage,
        "reward": step.reward,
        "notes": notes,
    }


def _columns(rows: Sequence[Row]) -> dict[str, list[Any]]:
    names = Row.__slots__
    return {name: [getattr(r, name) for r in rows] for name in names}


def _means(mappings: Any) -> dict[str, float]:
    sums: dict[str, list[float]] = {}
    for values in mappings:
        for name, value in _mapping(values).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                sums.setdefault(str(name), []).append(float(value))
    return {name: statistics.fmean(v) for name, v in sorted(sums.items())}


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _number(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= ERROR_PREVIEW else line[: ERROR_PREVIEW - 1] + "…"
