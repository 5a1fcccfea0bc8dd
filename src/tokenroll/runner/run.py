"""The rollout runner: every example's group of rollouts, scored together, saved as each group ends.

Rollouts run concurrently up to `concurrency`. When all rollouts of an example are done,
the group is scored (`Environment.score_group`), advantages are assigned from the final
rewards, and the group is appended to `results.jsonl` in one write. Errored rollouts are
saved too (with `error` set and no reward) and left out of scoring; `resume=True` runs
exactly the rollouts that are missing or errored, then rescores their groups.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import platform
import sys
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from tokenroll.core.trajectory import StopReason, Trajectory
from tokenroll.engines.base import SamplingParams
from tokenroll.envs.advantages import Baseline, assign_advantages
from tokenroll.envs.base import Environment, Limits, Policy
from tokenroll.runner.progress import Progress
from tokenroll.runner.rundir import ResultsWriter, RolloutKey, RunDir
from tokenroll.runner.summary import run_figures

METADATA_VERSION = 1


@dataclass(slots=True, kw_only=True)
class EvalConfig:
    """What to run: how many examples and rollouts, how concurrently, and overrides of the defaults.

    `sampling` and `limits` override fields of the environment's defaults (and those of the
    policy's sampling); None values are ignored. A `sampling` seed gives each rollout its
    own seed, `seed + example * rollouts_per_example + rollout`, so a run is reproducible.
    """

    num_examples: int | None = 5
    rollouts_per_example: int = 3
    concurrency: int = 32
    sampling: dict[str, Any] = field(default_factory=dict)
    limits: dict[str, Any] = field(default_factory=dict)
    baseline: Baseline = Baseline.MEAN
    normalize_std: bool = False
    discount: float | None = None

    def __post_init__(self) -> None:
        if self.num_examples is not None and self.num_examples < 1:
            raise ValueError(f"num_examples must be at least 1 (or None for all), got {self.num_examples}")
        if self.rollouts_per_example < 1:
            raise ValueError(f"rollouts_per_example must be at least 1, got {self.rollouts_per_example}")
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {self.concurrency}")
        self.baseline = Baseline(self.baseline)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "baseline": self.baseline.value}


@dataclass(slots=True)
class EvalResult:
    """A finished run: its metadata and its trajectories (one per rollout, by example and index)."""

    metadata: dict[str, Any]
    trajectories: list[Trajectory]
    run_dir: Path | None = None


async def evaluate(
    env: Environment,
    policy: Policy,
    config: EvalConfig | None = None,
    *,
    run_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = False,
    describe: Mapping[str, Any] | None = None,
) -> EvalResult:
    """Run `env` against `policy`; with `run_dir`, save results and metadata there as the run goes.

    `describe` adds JSON-safe facts to the metadata (the model name, the engine, the
    environment's arguments), which `tokenroll eval --resume` reads back.
    """
    config = config or EvalConfig()
    started = time.perf_counter()
    directory = RunDir(run_dir) if run_dir is not None else None
    rows = env.rows if config.num_examples is None else env.rows[: config.num_examples]
    if not rows:
        raise ValueError(f"environment {env.name!r} has no rows to run")
    r = config.rollouts_per_example
    existing: dict[RolloutKey, Trajectory] = {}
    if directory is not None:
        if resume:
            existing = {(t.example_id, t.rollout_index): t for t in directory.load()}
        else:
            directory.create()
    kept = {key: t for key, t in existing.items() if t.error is None}
    plan = {e: [i for i in range(r) if (e, i) not in kept] for e in range(len(rows))}
    plan = {e: indices for e, indices in plan.items() if indices}
    limits = env.limits.merged(config.limits)
    sampling = _sampling(policy.sampling, env.sampling, config.sampling)
    metadata = _metadata(env, policy, config, limits, sampling, describe, len(rows))
    if directory is not None:
        if resume:
            previous = directory.read_metadata() if directory.metadata.exists() else {}
            metadata["resumed"] = previous.get("resumed", 0) + 1
            metadata["created_at"] = previous.get("created_at", metadata["created_at"])
        directory.write_metadata({**metadata, "status": "running"})

    total = len(rows) * r
    bar = Progress(total, done=total - sum(map(len, plan.values())), enabled=progress)
    runner = _GroupRunner(env, replace(policy, sampling=sampling), config, rows, kept, directory, bar)
    # The environment reads its own limits; the run's overrides apply for this run only.
    original_limits = env.limits
    env.limits = limits
    try:
        await runner.run(plan)
    finally:
        env.limits = original_limits
        runner.progress.close()
        env.close()

    final = dict(existing)
    for trajectory in runner.finished:
        final[(trajectory.example_id, trajectory.rollout_index)] = trajectory
    trajectories = sorted(final.values(), key=lambda t: (t.example_id, t.rollout_index))
    if directory is not None and len(final) < len(existing) + len(runner.finished):
        directory.compact(trajectories)  # one line per rollout: rescored and rerun rollouts replace their old lines
    wall = time.perf_counter() - started
    metadata.update(run_figures(trajectories, expected=total, pass_metric=env.pass_metric))
    metadata.update(env.summarize([t for t in trajectories if t.error is None]))
    metadata["timing"] = {
        "wall_seconds": wall,
        "rollouts_run": runner.rollouts_run,
        "rollouts_per_second": runner.rollouts_run / wall if wall > 0 else 0.0,
    }
    metadata["status"] = "complete" if metadata["counts"]["rollouts"] == total and not metadata["counts"]["errored"] else "incomplete"
    metadata["updated_at"] = _now()
    if directory is not None:
        directory.write_metadata(metadata)
        _write_vocab(directory, policy, trajectories)
    return EvalResult(metadata, trajectories, directory.path if directory else None)


class _GroupRunner:
    """Runs the planned rollouts group by group, with at most `concurrency` in flight."""

    def __init__(
        self,
        env: Environment,
        policy: Policy,
        config: EvalConfig,
        rows: Sequence[Mapping[str, Any]],
        kept: dict[RolloutKey, Trajectory],
        directory: RunDir | None,
        progress: Progress,
    ) -> None:
        self.env = env
        self.policy = policy
        self.config = config
        self.rows = rows
        self.kept = kept
        self.directory = directory
        self.finished: list[Trajectory] = []
        self._writer: ResultsWriter | None = None
        self.rollouts_run = 0
        self.progress = progress
        self._last_sync = time.monotonic()

    async def run(self, plan: Mapping[int, list[int]]) -> None:
        # `concurrency` workers take rollouts in example order; the one that finishes a
        # group's last rollout scores and saves the group. No task per rollout, no semaphore.
        jobs = deque((example, index) for example, indices in plan.items() for index in indices)
        waiting = {example: len(indices) for example, indices in plan.items()}
        fresh: dict[int, list[Trajectory]] = {example: [] for example in plan}

        async def work() -> None:
            while jobs:
                example, index = jobs.popleft()
                fresh[example].append(await self._rollout(example, index))
                waiting[example] -= 1
                if waiting[example] == 0:
                    await self._group(example, fresh.pop(example))

        self._writer = None if self.directory is None else self.directory.writer()
        try:
            await asyncio.gather(*(work() for _ in range(min(self.config.concurrency, len(jobs)))))
        finally:
            if self._writer is not None:
                self._writer.close()

    async def _group(self, example: int, fresh: list[Trajectory]) -> None:
        self.rollouts_run += len(fresh)
        old = [self.kept[(example, i)] for i in range(self.config.rollouts_per_example) if (example, i) in self.kept]
        group = sorted([*old, *fresh], key=lambda t: t.rollout_index)
        ok = [t for t in group if t.error is None]
        if ok:
            try:
                await self.env.score_group(ok)
                assign_advantages(
                    ok, baseline=self.config.baseline, normalize_std=self.config.normalize_std, discount=self.config.discount
                )
            except Exception as exc:
                for trajectory in ok:
                    trajectory.error = f"scoring failed: {type(exc).__name__}: {exc}"
        if self._writer is not None:
            self._writer.write(group, sync=self._sync_due())
        self.finished.extend(group)
        errored = [t for t in fresh if t.error is not None]
        self.progress.update(len(fresh), [t.reward for t in fresh if t.error is None and t.reward is not None], len(errored))

    async def _rollout(self, example: int, index: int) -> Trajectory:
        policy = self.policy
        if policy.sampling.seed is not None:
            seed = policy.sampling.seed + example * self.config.rollouts_per_example + index
            policy = replace(policy, sampling=replace(policy.sampling, seed=seed))
        try:
            trajectory = await self.env.rollout(policy, self.rows[example])
        except Exception as exc:  # environments should not raise; if one does, the rollout errs
            trajectory = Trajectory(input=dict(self.rows[example]), stop_reason=StopReason.ENV_ERROR,
                                    error=f"{type(exc).__name__}: {exc}")
        trajectory.example_id = example
        trajectory.rollout_index = index
        return trajectory

    def _sync_due(self) -> bool:
        """fsync at most once a second: a kill cannot tear what was written, only a power cut could."""
        now = time.monotonic()
        if now - self._last_sync >= 1.0:
            self._last_sync = now
            return True
        return False


def _sampling(base: SamplingParams, env_defaults: Mapping[str, Any], overrides: Mapping[str, Any]) -> SamplingParams:
    fields = {**env_defaults, **{k: v for k, v in overrides.items() if v is not None}}
    unknown = sorted(set(fields) - set(SamplingParams.__dataclass_fields__))
    if unknown:
        raise ValueError(f"unknown sampling field(s) {', '.join(unknown)}")
    return replace(base, **fields)


def _metadata(
    env: Environment,
    policy: Policy,
    config: EvalConfig,
    limits: Limits,
    sampling: SamplingParams,
    describe: Mapping[str, Any] | None,
    examples: int,
) -> dict[str, Any]:
    from tokenroll import __version__

    sampling_fields = asdict(sampling)
    sampling_fields["stop_token_ids"] = list(sampling.stop_token_ids)
    metadata: dict[str, Any] = {
        "format_version": METADATA_VERSION,
        "tokenroll_version": __version__,
        "created_at": _now(),
        "environment": {**env.config(), "args": {}},
        "model": getattr(policy.engine, "model", None),
        "engine": {"kind": type(policy.engine).__name__},
        "config": {
            **config.to_dict(),
            "num_examples": examples,
            "sampling": sampling_fields,
            "limits": limits.to_dict(),
            "mode": policy.mode.value,
            "renderer": None if policy.renderer is None else policy.renderer.family,
        },
        "versions": _versions(),
    }
    for key, value in (describe or {}).items():
        if isinstance(value, Mapping) and isinstance(metadata.get(key), dict):
            metadata[key] = {**metadata[key], **value}
        else:
            metadata[key] = value
    return metadata


def _versions() -> dict[str, str]:
    """Python, platform and the versions of the libraries a run's numbers depend on, when loaded."""
    from importlib.metadata import PackageNotFoundError, version

    versions = {"python": platform.python_version(), "platform": platform.platform()}
    for name in ("tokenroll", "tokenizers", "aiohttp", "torch", "transformers", "vllm"):
        if name == "tokenroll" or name in sys.modules:
            try:
                versions[name] = version(name)
            except PackageNotFoundError:
                pass
    return versions


def _write_vocab(directory: RunDir, policy: Policy, trajectories: Sequence[Trajectory]) -> None:
    """`vocab.json`: the text of every token id in the run, so the viewer needs no tokenizer."""
    if policy.renderer is None:
        return
    tokenizer = policy.renderer.tokenizer
    vocab = directory.read_vocab()
    ids = {i for t in trajectories for step in t.steps for i in (*step.prompt_ids, *step.completion_ids)}
    for token_id in ids:
        key = str(token_id)
        if key not in vocab:
            try:
                vocab[key] = tokenizer.decode([token_id])
            except Exception:  # an id outside this vocabulary (e.g. a raw-mode special id)
                continue
    directory.write_vocab(vocab)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
