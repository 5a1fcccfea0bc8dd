"""The run page's figures, computed from the results: each one a titled list of bars.

The page draws every figure the same way (an SVG bar chart), so all the numbers are
decided here: histogram bins, counts, pass@k, bridge outcomes by reason.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tokenroll.core.trajectory import Trajectory

MAX_DISTINCT_BARS = 12
"""Up to this many distinct values get one bar each; more are binned."""
BINS = 20


@dataclass(slots=True)
class Bar:
    label: str
    value: float
    detail: str = ""
    """Shown on hover: the exact bin, or what was counted."""


@dataclass(slots=True)
class Figure:
    """One chart of the run page; `id` also names its PNG file (`rewards.png`)."""

    id: str
    title: str
    x_label: str
    y_label: str
    bars: list[Bar] = field(default_factory=list)
    note: str = ""

    def to_payload(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "x": self.x_label,
            "y": self.y_label,
            "bars": [[b.label, b.value, b.detail] for b in self.bars],
            "note": self.note,
        }


def fmt(value: float) -> str:
    """A short number: integers without a decimal point, others with four significant digits."""
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.4g}"


def histogram(values: Sequence[float], bins: int = BINS) -> list[Bar]:
    """Bars of a histogram: one per value when few are distinct, else `bins` equal-width bins."""
    if not values:
        return []
    counts = Counter(values)
    if len(counts) <= MAX_DISTINCT_BARS:
        return [Bar(fmt(v), float(counts[v]), f"{fmt(v)}: {counts[v]}") for v in sorted(counts)]
    low, high = min(values), max(values)
    width = (high - low) / bins
    tallies = [0] * bins
    for value in values:
        tallies[min(bins - 1, int((value - low) / width))] += 1
    bars = []
    for k, count in enumerate(tallies):
        left, right = low + k * width, low + (k + 1) * width
        closing = "]" if k == bins - 1 else ")"
        bars.append(Bar(fmt(left), float(count), f"[{fmt(left)}, {fmt(right)}{closing}: {count}"))
    return bars


def pass_at_k(n: int, c: int, k: int) -> float:
    """The unbiased pass@k estimate for `c` passing rollouts out of `n` (Chen et al., 2021)."""
    if n - c < k:
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def run_figures(
    trajectories: Sequence[Trajectory], metadata: Mapping[str, Any], tokens: Sequence[int]
) -> list[Figure]:
    """Every run-page figure, in page order; `tokens[i]` is rollout i's training-sample tokens."""
    return [
        rewards_figure(trajectories),
        pass_at_k_figure(trajectories, metadata),
        stop_reasons_figure(trajectories),
        turns_figure(trajectories),
        tokens_figure(tokens),
        time_per_turn_figure(trajectories),
        bridge_figure(trajectories, metadata),
    ]


def rewards_figure(trajectories: Sequence[Trajectory]) -> Figure:
    rewards = [t.reward for t in trajectories if t.reward is not None]
    missing = len(trajectories) - len(rewards)
    note = f"{_rollouts(missing)} without a reward" if missing else ""
    return Figure("rewards", "Reward distribution", "reward", "rollouts", histogram(rewards), note)


def pass_at_k_figure(trajectories: Sequence[Trajectory], metadata: Mapping[str, Any]) -> Figure:
    """pass@k from the run's metadata; computed from rewards (> 0 passes) when the runner wrote none."""
    recorded = metadata.get("pass_at_k")
    if isinstance(recorded, Mapping) and recorded:
        bars = [
            Bar(f"pass@{k}", float(v), f"pass@{k} = {v:.4f}")
            for k, v in sorted(recorded.items(), key=lambda kv: _int_or(kv[0], 0))
            if isinstance(v, (int, float)) and not isinstance(v, bool)
        ]
        return Figure("pass-at-k", "pass@k", "k", "pass rate", bars, "from the run's metadata")
    groups: dict[Any, list[bool]] = {}
    for t in trajectories:
        if t.reward is not None:
            groups.setdefault(_example_key(t), []).append(t.reward > 0)
    if not groups:
        return Figure("pass-at-k", "pass@k", "k", "pass rate", [], "no rewards")
    smallest = min(len(g) for g in groups.values())
    bars = []
    for k in sorted({1, smallest}):
        value = sum(pass_at_k(len(g), sum(g), k) for g in groups.values()) / len(groups)
        bars.append(Bar(f"pass@{k}", value, f"pass@{k} = {value:.4f}"))
    note = f"computed from {len(groups)} examples' rewards: a rollout passes when its reward is > 0"
    return Figure("pass-at-k", "pass@k", "k", "pass rate", bars, note)


def stop_reasons_figure(trajectories: Sequence[Trajectory]) -> Figure:
    counts = Counter(_stop_reason(t) for t in trajectories)
    bars = [Bar(reason, float(n), f"{reason}: {n}") for reason, n in counts.most_common()]
    errored = sum(t.error is not None for t in trajectories)
    note = f"{_rollouts(errored)} ended with an error" if errored else ""
    return Figure("stop-reasons", "Stop reasons", "stop reason", "rollouts", bars, note)


def turns_figure(trajectories: Sequence[Trajectory]) -> Figure:
    turns = [float(len(t.steps)) for t in trajectories]
    return Figure("turns", "Turns per rollout", "model calls", "rollouts", histogram(turns))


def tokens_figure(tokens: Sequence[int]) -> Figure:
    """Tokens of each rollout's training samples (a stitched prompt counts once)."""
    values = [float(n) for n in tokens]
    return Figure("tokens", "Tokens per rollout", "tokens in its training samples", "rollouts", histogram(values))


def time_per_turn_figure(trajectories: Sequence[Trajectory]) -> Figure:
    """Seconds per model call: the rollout's generation time (else its total) over its turns."""
    values = [seconds / len(t.steps) for t in trajectories
              if t.steps and (seconds := _seconds(t.timing)) is not None]
    note = "" if values else "no timings recorded"
    return Figure("time-per-turn", "Time per turn", "seconds (generation ÷ turns)", "rollouts",
                  histogram(values), note)


def bridge_figure(trajectories: Sequence[Trajectory], metadata: Mapping[str, Any]) -> Figure:
    """Later turns stitched onto the previous one, and re-rendered turns by fallback reason."""
    bridged = 0
    fallbacks: Counter[str] = Counter()
    for t in trajectories:
        for step in t.steps:
            record = step.extras.get("prompt")
            if not isinstance(record, Mapping):
                continue
            if record.get("built") == "bridge":
                bridged += 1
            elif record.get("built") == "render" and record.get("reason") not in (None, "first_turn"):
                fallbacks[str(record["reason"])] += 1
    attempts = bridged + sum(fallbacks.values())
    bars = [Bar("bridged", float(bridged), f"bridged: {bridged} of {attempts}")]
    bars += [Bar(reason, float(n), f"fallback {reason}: {n} of {attempts}") for reason, n in fallbacks.most_common()]
    note = _drift_note(metadata.get("prompt_stats"))
    if not attempts:
        bars, note = [], "no turn after a first one"
    return Figure("bridge", f"Bridge successes and fallbacks ({attempts} attempts)", "outcome", "turns", bars, note)


def _rollouts(n: int) -> str:
    return f"{n} rollout" if n == 1 else f"{n} rollouts"


def _drift_note(stats: Any) -> str:
    if not isinstance(stats, Mapping) or not stats.get("drift_checks"):
        return ""
    return (f"drift checks: {stats.get('drifted_steps', 0)} of {stats['drift_checks']} stitched prompts "
            f"differ from a full render ({stats.get('drift_tokens', 0)} tokens)")


def _seconds(timing: Mapping[str, Any]) -> float | None:
    for key in ("generation", "total"):
        value = timing.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    return None


def _stop_reason(trajectory: Trajectory) -> str:
    return trajectory.stop_reason.value if trajectory.stop_reason is not None else "none"


def _example_key(trajectory: Trajectory) -> Any:
    return trajectory.example_id if trajectory.example_id is not None else trajectory.id


def _int_or(text: Any, default: int) -> int:
    try:
        return int(text)
    except (TypeError, ValueError):
        return default
