"""Dataset rows for environments: a JSONL file, a list of dicts, or a Hugging Face `datasets` object."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Union

from tokenroll.traces.tasks import TaskFileError, read_jsonl

DatasetSource = Union[str, os.PathLike[str], Iterable[Mapping[str, Any]]]
"""What an environment accepts as its dataset."""


class DatasetError(ValueError):
    """A dataset that cannot be read; the message names the file and line, or the row."""


def load_rows(source: DatasetSource) -> list[dict[str, Any]]:
    """Every row of `source` as a plain dict, in order."""
    if isinstance(source, (str, os.PathLike)):
        return _read_jsonl(Path(source))
    if isinstance(source, Mapping):
        raise DatasetError("a dataset is a sequence of rows, got a single mapping")
    to_list = getattr(source, "to_list", None)  # Hugging Face `datasets.Dataset`
    rows = to_list() if callable(to_list) else source
    out: list[dict[str, Any]] = []
    for index, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise DatasetError(f"dataset row {index} is a {type(row).__name__}, expected a dict")
        out.append(dict(row))
    return out


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    try:
        return [row for _, row in read_jsonl(path)]
    except TaskFileError as exc:  # already names the file and line
        raise DatasetError(str(exc)) from None
    except OSError as exc:
        raise DatasetError(f"cannot read dataset {path}: {exc.strerror or exc}") from None
