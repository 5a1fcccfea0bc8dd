"""Reading a run directory: `results.jsonl`, and the optional `metadata.json` and `vocab.json`."""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tokenroll.core.trajectory import Trajectory
from tokenroll.runner.rundir import METADATA, RESULTS, VOCAB, RunDirError
from tokenroll.runner.rundir import RunDir as _RunFiles


@dataclass(slots=True)
class RunDir:
    """A loaded run: its metadata (possibly empty), trajectories in file order, and token texts."""

    path: Path
    metadata: dict[str, Any] = field(default_factory=dict)
    trajectories: list[Trajectory] = field(default_factory=list)
    vocab: dict[int, str] | None = None
    """Decoded text of each token id, or None when the run has no `vocab.json`."""


def load_run(path: str | Path) -> RunDir:
    """Load a run directory; a missing or malformed file raises RunDirError naming it."""
    path = Path(path)
    if not path.exists():
        raise RunDirError(f"run directory {path} does not exist")
    if not path.is_dir():
        raise RunDirError(f"{path} is not a directory")
    results = path / RESULTS
    if not results.is_file():
        raise RunDirError(f"{path} has no {RESULTS}")
    with paused_gc():
        trajectories = _read_results(path)
    return RunDir(
        path=path,
        metadata=_read_metadata(path / METADATA),
        trajectories=trajectories,
        vocab=_read_vocab(path / VOCAB),
    )


@contextmanager
def paused_gc() -> Iterator[None]:
    """No cyclic garbage collection inside: it would rescan every object of a large run many times.

    Loading and preparing a run make only acyclic objects, which reference counting frees;
    pausing the collector halves the time for 10,000 trajectories.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _read_results(path: Path) -> list[Trajectory]:
    """The run's rollouts as the runner counts them: the last line of each (example, rollout)."""
    try:
        return _RunFiles(path).load()
    except ValueError as exc:  # the reader names the file and line already
        raise RunDirError(str(exc)) from None
    except OSError as exc:
        raise RunDirError(f"cannot read {path / RESULTS}: {exc.strerror}") from None


def _read_json_object(path: Path) -> dict[str, Any] | None:
    """The JSON object in `path`, or None when the file does not exist."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise RunDirError(f"cannot read {path}: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RunDirError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg} (column {exc.colno})") from None
    if not isinstance(data, dict):
        raise RunDirError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def _read_metadata(path: Path) -> dict[str, Any]:
    # Every key may be missing (a run still in progress, an older runner): only the shape is checked.
    return _read_json_object(path) or {}


def _read_vocab(path: Path) -> dict[int, str] | None:
    data = _read_json_object(path)
    if data is None:
        return None
    vocab: dict[int, str] = {}
    for key, text in data.items():
        try:
            token_id = int(key)
        except ValueError:
            raise RunDirError(f"{path}: key {key!r} is not a token id") from None
        if not isinstance(text, str):
            raise RunDirError(f"{path}: token {key} maps to a {type(text).__name__}, expected a string")
        vocab[token_id] = text
    return vocab
