"""Run-level figures from a run's trajectories, and the summary table printed at the end.

Errored rollouts are counted but left out of rewards, metrics and pass@k: they have no
reward, and `--resume` runs them again.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from tokenroll.core.trajectory import Trajectory
from tokenroll.sampling.stats import BridgeStats
from tokenroll.traces.cruxeval import pass_at_k

PASS_K_VALUES = (1, 5, 10, 20, 50, 100)


def passed(trajectory: Trajectory, pass_metric: str | None) -> bool:
    """Whether a rollout counts as a pass: its `pass_metric` is positive, or its reward is at least 1."""
    if pass_metric is not None:
        return trajectory.metrics.get(pass_metric, 0.0) > 0
    return (trajectory.reward or 0.0) >= 1.0


def pass_at_k_table(trajectories: Sequence[Trajectory], pass_metric: str | None) -> dict[str, float]:
    """Unbiased pass@k in percent, averaged over examples, for each k up to the fewest rollouts of one."""
    groups: dict[Any, list[bool]] = {}
    for trajectory in trajectories:
        if trajectory.error is None:
            groups.setdefault(trajectory.example_id, []).append(passed(trajectory, pass_metric))
    if not groups:
        return {}
    fewest = min(len(results) for results in groups.values())
    table = {}
    for k in PASS_K_VALUES:
        if k > fewest:
            break
        values = [pass_at_k(len(results), sum(results), k) for results in groups.values()]
        table[str(k)] = 100 * sum(values) / len(values)
    return table


def run_figures(
    trajectories: Sequence[Trajectory],
    *,
    expected: int,
    pass_metric: str | None,
    environment_figures: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Counts, reward and metric averages, pass@k, tokens, turns, prompt-building counters and stop reasons."""
    ok = [t for t in trajectories if t.error is None]
    rewards = [t.reward for t in ok if t.reward is not None]
    metric_names = dict.fromkeys(name for t in ok for name in t.metrics)
    stats = BridgeStats()
    for trajectory in trajectories:
        if "prompt_stats" in trajectory.extras:
            stats = stats.merge(BridgeStats.from_dict(trajectory.extras["prompt_stats"]))
    prompt_tokens = sum(len(step.prompt_ids) for t in trajectories for step in t.steps)
    completion_tokens = sum(len(step.completion_ids) for t in trajectories for step in t.steps)
    turns = [len(t.steps) for t in trajectories]
    model_seconds = sum(t.timing.get("model", 0.0) for t in trajectories)
    figures: dict[str, Any] = {
        "counts": {
            "rollouts": len(trajectories),
            "expected": expected,
            "errored": len(trajectories) - len(ok),
            "examples": len({t.example_id for t in trajectories}),
        },
        "reward": _distribution(rewards),
        "metrics": {name: statistics.fmean(t.metrics.get(name, 0.0) for t in ok) for name in metric_names},
        "pass_at_k": pass_at_k_table(trajectories, pass_metric),
        "tokens": {
            "prompt": prompt_tokens,
            "completion": completion_tokens,
            "completion_per_rollout": completion_tokens / len(trajectories) if trajectories else 0.0,
        },
        "turns": {"total": sum(turns), "mean": statistics.fmean(turns) if turns else 0.0, "max": max(turns, default=0)},
        "seconds_per_turn": model_seconds / sum(turns) if sum(turns) else None,
        "prompt_stats": stats.to_dict(),
        "stop_reasons": dict(Counter(t.stop_reason.value if t.stop_reason else "none" for t in trajectories).most_common()),
        "errors": dict(Counter(_error_kind(t.error) for t in trajectories if t.error).most_common(10)),
    }
    if environment_figures:
        figures.update(environment_figures)
    return figures


def summary_table(metadata: Mapping[str, Any]) -> str:
    """The human-readable end-of-run summary."""
    counts = metadata.get("counts", {})
    reward = metadata.get("reward", {})
    rows: list[tuple[str, str]] = [
        ("environment", str(metadata.get("environment", {}).get("name", "?"))),
        ("model", str(metadata.get("model", "?"))),
        ("rollouts", f"{counts.get('rollouts', 0)} of {counts.get('expected', 0)} ({counts.get('errored', 0)} errored)"),
    ]
    if reward.get("count"):
        rows.append(("reward", f"mean {reward['mean']:.4f}  std {reward['std']:.4f}  min {reward['min']:.4g}  max {reward['max']:.4g}"))
    for name, value in metadata.get("metrics", {}).items():
        rows.append((f"  {name}", f"{value:.4f}"))
    if metadata.get("pass_at_k"):
        rows.append(("pass@k (%)", "  ".join(f"@{k} {v:.2f}" for k, v in metadata["pass_at_k"].items())))
    tokens = metadata.get("tokens", {})
    if tokens:
        rows.append(("tokens", f"prompt {tokens.get('prompt', 0)}  completion {tokens.get('completion', 0)}"))
    stats = metadata.get("prompt_stats", {})
    if stats.get("bridge_attempts"):
        fallbacks = ", ".join(f"{reason} {count}" for reason, count in stats.get("fallbacks", {}).items()) or "none"
        rows.append(("stitched turns", f"{stats['bridge_successes']} of {stats['bridge_attempts']} (fallbacks: {fallbacks})"))
    rows.append(("stop reasons", ", ".join(f"{k} {v}" for k, v in metadata.get("stop_reasons", {}).items())))
    for kind, count in metadata.get("errors", {}).items():
        rows.append(("  error", f"{count} x {kind}"))
    timing = metadata.get("timing", {})
    if timing.get("wall_seconds") is not None:
        rows.append(("time", f"{timing['wall_seconds']:.1f} s, {timing.get('rollouts_per_second', 0):.1f} rollouts/s"))
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"{label.ljust(width)}  {value}" for label, value in rows)


def _distribution(values: Sequence[float]) -> dict[str, float | int]:
    if not values:
        return {"count": 0}
    return {
        "count": len(values),
        "mean": statistics.fmean(values),
        "std": statistics.pstdev(values),
        "min": min(values),
        "max": max(values),
    }


def _error_kind(error: str) -> str:
    """An error's first line, cut short, so identical failures group together."""
    first = error.splitlines()[0] if error else ""
    return first if len(first) <= 120 else first[:117] + "..."
