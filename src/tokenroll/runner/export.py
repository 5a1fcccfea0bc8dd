"""Training data from a run directory, in the shapes trainers read.

- `samples-parquet`: one row per training sample (`Trajectory.to_samples()`): token ids,
  loss mask (RL on sampled tokens), logprobs, per-token advantages, reward, the attribution
  columns, and `tool_mask` (content tokens of tool messages: the world-model mask for
  supervised training on the environment's replies). Needs `pyarrow`.
- `prime-rl-jsonl`: one line per rollout, its steps in verifiers' `TrajectoryStep` shape.
- `trl`: one JSON line per sample, pre-tokenized as TRL's SFT trainer reads it
  (`input_ids`, `completion_mask`, `assistant_masks`), plus advantages and logprobs.

Errored rollouts have no reward and are left out unless `include_errored` is set.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from tokenroll.core.trajectory import Trajectory
from tokenroll.runner.rundir import RunDir

FORMATS = {"samples-parquet": ".parquet", "prime-rl-jsonl": ".jsonl", "trl": ".jsonl"}
OBSERVATION_ROLES = frozenset({"tool"})
_ATTRIBUTION_COLUMNS = ("message_indices", "sampled_mask", "is_content", "message_roles", "message_tool_names")


def sample_rows(trajectories: list[Trajectory]) -> Iterator[dict[str, Any]]:
    """One flat row per training sample of every trajectory."""
    for trajectory in trajectories:
        for index, sample in enumerate(trajectory.to_samples()):
            row: dict[str, Any] = {
                "trajectory_id": trajectory.id,
                "example_id": trajectory.example_id,
                "rollout_index": trajectory.rollout_index,
                "sample_index": index,
                "reward": trajectory.reward,
                "stop_reason": None if trajectory.stop_reason is None else trajectory.stop_reason.value,
                **sample.to_dict(),
            }
            for column in _ATTRIBUTION_COLUMNS:  # every row has every column, for columnar formats
                row.setdefault(column, None)
            attribution = sample.attribution
            row["tool_mask"] = None if attribution is None else attribution.content_mask_for_roles(OBSERVATION_ROLES)
            yield row


def export_run(run_dir: str | Path, fmt: str, out: str | Path | None = None, *, include_errored: bool = False) -> tuple[Path, int]:
    """Write the run's training data in `fmt`; returns the file written and the number of records."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    directory = RunDir(run_dir)
    if not directory.results.exists():
        raise FileNotFoundError(f"{directory.results} does not exist: is {directory.path} a run directory?")
    trajectories = [t for t in directory.load() if include_errored or t.error is None]
    trajectories.sort(key=lambda t: (t.example_id, t.rollout_index))  # the same order on every export
    target = Path(out) if out is not None else directory.path / f"export-{fmt}{FORMATS[fmt]}"
    if fmt == "samples-parquet":
        count = _write_parquet(target, list(sample_rows(trajectories)))
    elif fmt == "prime-rl-jsonl":
        count = _write_lines(target, (_prime_rl_record(t) for t in trajectories))
    else:
        count = _write_lines(target, (_trl_record(row) for row in sample_rows(trajectories)))
    return target, count


def _prime_rl_record(trajectory: Trajectory) -> dict[str, Any]:
    return {
        "trajectory_id": trajectory.id,
        "example_id": trajectory.example_id,
        "rollout_index": trajectory.rollout_index,
        "reward": trajectory.reward,
        "metrics": trajectory.metrics,
        "stop_reason": None if trajectory.stop_reason is None else trajectory.stop_reason.value,
        "trajectory": trajectory.to_prime_rl(),
    }


def _trl_record(row: dict[str, Any]) -> dict[str, Any]:
    mask = [int(flag) for flag in row["loss_mask"]]
    return {
        "input_ids": row["token_ids"],
        "completion_mask": mask,
        "assistant_masks": mask,
        "advantages": row["advantages"],
        "logprobs": row["logprobs"],
        "reward": row["reward"],
        "trajectory_id": row["trajectory_id"],
    }


def _write_lines(target: Path, records: Iterator[dict[str, Any]]) -> int:
    count = 0
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.partial")
    with open(temporary, "wb") as file:
        for record in records:
            file.write(orjson.dumps(record) + b"\n")
            count += 1
    temporary.replace(target)
    return count


def _write_parquet(target: Path, rows: list[dict[str, Any]]) -> int:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ImportError("samples-parquet export needs pyarrow: pip install 'tokenroll[export]'") from None
    columns = list(rows[0]) if rows else ["trajectory_id", "token_ids", "loss_mask"]
    table = pa.Table.from_pylist(rows) if rows else pa.table({name: pa.array([], pa.null()) for name in columns})
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.partial")
    pq.write_table(table, temporary)
    temporary.replace(target)
    return len(rows)
