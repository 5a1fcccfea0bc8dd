"""A run directory: `results.jsonl`, `metadata.json` and `vocab.json`, written so a kill loses nothing.

Results are appended whole groups at a time. A rerun rollout (by `--resume`) is appended
again, and the last line of an (example, rollout) pair is the one that counts; `compact`
then rewrites the file with one line per pair, atomically. Metadata and vocabulary files
are replaced atomically too, so every file is always either the old or the new version.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import orjson

from tokenroll.core.serialization import append_jsonl, dumps_lines, iter_jsonl, repair_jsonl
from tokenroll.core.trajectory import Trajectory

RESULTS = "results.jsonl"
METADATA = "metadata.json"
VOCAB = "vocab.json"

RolloutKey = tuple[Any, int]
"""(example_id, rollout_index): a rollout's place in a run."""


class RunDirError(ValueError):
    """A run directory that cannot be used; the message says which file and why."""


class RunDir:
    """The files of one run."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.results = self.path / RESULTS
        self.metadata = self.path / METADATA
        self.vocab = self.path / VOCAB

    def create(self) -> None:
        """Make the folder; refuse one that already holds results (resume it instead)."""
        if self.results.exists() and self.results.stat().st_size:
            raise RunDirError(f"{self.results} already holds results; use --resume {self.path} to continue that run")
        self.path.mkdir(parents=True, exist_ok=True)

    def read_metadata(self) -> dict[str, Any]:
        try:
            data = orjson.loads(self.metadata.read_bytes())
        except FileNotFoundError:
            raise RunDirError(f"{self.metadata} does not exist: is {self.path} a tokenroll run directory?") from None
        except orjson.JSONDecodeError as exc:
            raise RunDirError(f"{self.metadata}: not valid JSON ({exc})") from None
        if not isinstance(data, dict):
            raise RunDirError(f"{self.metadata}: expected a JSON object, got {type(data).__name__}")
        return data

    def write_metadata(self, metadata: Mapping[str, Any]) -> None:
        _write_atomically(self.metadata, orjson.dumps(metadata, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS))

    def append(self, trajectories: Iterable[Trajectory], *, sync: bool = False) -> None:
        """Append whole lines in one write (fsync with `sync`; a kill cannot tear a write that returned)."""
        append_jsonl(self.results, trajectories, sync=sync)

    def writer(self) -> ResultsWriter:
        """An open appender for a run's many writes (a torn last line is repaired first)."""
        return ResultsWriter(self.results)

    def load(self) -> list[Trajectory]:
        """The run's rollouts, the last line of each (example, rollout) pair, in file order."""
        if not self.results.exists():
            return []
        # Read-only: a torn last line is skipped here and repaired by the next writer.
        latest: dict[RolloutKey, Trajectory] = {}
        for trajectory in iter_jsonl(self.results):
            # Lines without a place in a run (written by other tools) are all kept, by id.
            key = (trajectory.example_id, trajectory.rollout_index) if trajectory.example_id is not None else (trajectory.id, -1)
            latest.pop(key, None)  # re-insert so order follows the last occurrence
            latest[key] = trajectory
        return list(latest.values())

    def compact(self, trajectories: Iterable[Trajectory]) -> None:
        """Replace the results file with exactly these trajectories, atomically."""
        _write_atomically(self.results, dumps_lines(trajectories))

    def read_vocab(self) -> dict[str, str]:
        try:
            data = orjson.loads(self.vocab.read_bytes())
        except (FileNotFoundError, orjson.JSONDecodeError):
            return {}
        return data if isinstance(data, dict) else {}

    def write_vocab(self, vocab: Mapping[str, str]) -> None:
        _write_atomically(self.vocab, orjson.dumps(dict(sorted(vocab.items(), key=lambda kv: int(kv[0])))))


class ResultsWriter:
    """Keeps `results.jsonl` open for appending whole groups, each in one flushed write."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        repair_jsonl(path)
        self._file = open(path, "ab")

    def write(self, trajectories: Iterable[Trajectory], *, sync: bool = False) -> None:
        self._file.write(dumps_lines(trajectories))  # encoded whole before anything is written
        self._file.flush()
        if sync:
            os.fsync(self._file.fileno())

    def close(self) -> None:
        if not self._file.closed:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()


def _write_atomically(path: Path, data: bytes) -> None:
    """Write `data` to a temporary file beside `path`, fsync it, and rename it over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
