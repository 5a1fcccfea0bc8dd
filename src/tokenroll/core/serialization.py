"""JSON Lines storage of trajectories: one line per trajectory, exact round trip.

The size of a line grows linearly with the number of turns. A multi-turn prompt usually
extends the previous step's prompt and completion, so a column that starts with what the
previous step already stored is written as `{"tail": [...]}`, only the new part:

- `prompt_ids` against the previous prompt and completion ids;
- `prompt_messages` against the previous prompt messages and completion message;
- each attribution column against the previous step's attribution.

Attribution is stored once: its token ids are the step's `prompt_ids` and are not written
again. Columns made of long runs (attribution, completion mask and advantages) are written
as flat `[value, count, value, count, ...]` run lists.

Files are appended a whole batch of lines at a time; a line cut short by a crash has no
newline and is skipped on reading and removed before the next append.
"""

from __future__ import annotations

import logging
import math
import os
from itertools import groupby
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson

from tokenroll.core.attribution import RenderedTokens
from tokenroll.core.messages import Message
from tokenroll.core.steps import Step
from tokenroll.core.trajectory import Trajectory

FORMAT_VERSION = 1
"""Version of the line format written by this module."""

_logger = logging.getLogger(__name__)


def dumps_trajectory(trajectory: Trajectory) -> bytes:
    """One JSON line (without the trailing newline)."""
    where = f"trajectory {trajectory.id!r}"
    data: dict[str, Any] = {"format": FORMAT_VERSION, "id": trajectory.id}
    if trajectory.example_id is not None:
        data["example_id"] = trajectory.example_id
    data["rollout_index"] = trajectory.rollout_index
    data["input"] = trajectory.input
    data["steps"] = _encode_steps(trajectory.steps, where)
    if trajectory.reward is not None:
        data["reward"] = _finite(trajectory.reward, f"{where} reward")
    for name in ("metrics", "timing"):
        values: dict[str, float] = getattr(trajectory, name)
        for key, value in values.items():
            if isinstance(value, float):
                _finite(value, f"{where} {name}[{key!r}]")
        data[name] = values
    if trajectory.stop_reason is not None:
        data["stop_reason"] = trajectory.stop_reason.value
    if trajectory.error is not None:
        data["error"] = trajectory.error
    if trajectory.extras:
        data["extras"] = trajectory.extras
    try:
        return orjson.dumps(data)
    except (TypeError, orjson.JSONEncodeError) as exc:
        raise ValueError(f"{where} cannot be written as JSON: {exc}") from None


def loads_trajectory(line: bytes | str) -> Trajectory:
    """Read one line written by `dumps_trajectory`."""
    try:
        data = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    version = data.get("format")
    if version != FORMAT_VERSION:
        raise ValueError(f"unsupported trajectory format {version!r} (this tokenroll reads {FORMAT_VERSION})")
    try:
        steps = _decode_steps(data["steps"])
        return Trajectory(
            id=data["id"],
            example_id=data.get("example_id"),
            rollout_index=data["rollout_index"],
            input=data["input"],
            steps=steps,
            reward=data.get("reward"),
            metrics=data["metrics"],
            stop_reason=data.get("stop_reason"),
            error=data.get("error"),
            timing=data["timing"],
            extras=data.get("extras", {}),
        )
    except KeyError as exc:
        raise ValueError(f"missing field {exc.args[0]!r}") from None


def dumps_lines(trajectories: Iterable[Trajectory]) -> bytes:
    """Whole JSON lines, newline-terminated, encoded before anything is written."""
    return b"".join(dumps_trajectory(t) + b"\n" for t in trajectories)


def append_jsonl(path: str | os.PathLike[str], trajectories: Iterable[Trajectory], *, sync: bool = True) -> None:
    """Append trajectories to a JSON Lines file in one write, flushed (and with `sync`, fsynced).

    Every line is encoded before anything is written, so an encoding error writes nothing.
    """
    payload = dumps_lines(trajectories)
    if not payload:
        return
    path = Path(path)
    repair_jsonl(path)
    with open(path, "ab") as file:
        file.write(payload)
        file.flush()
        if sync:
            os.fsync(file.fileno())


def iter_jsonl(path: str | os.PathLike[str]) -> Iterator[Trajectory]:
    """Read trajectories lazily; a bad line raises ValueError naming the file and line number."""
    with open(path, "rb") as file:
        for number, line in enumerate(file, start=1):
            if not line.endswith(b"\n"):
                _logger.warning("%s:%d: skipping a line cut short by an interrupted write", path, number)
                return
            if not line.strip():
                continue
            try:
                yield loads_trajectory(line)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{path}:{number}: {exc}") from None


def read_jsonl(path: str | os.PathLike[str]) -> list[Trajectory]:
    """Read every trajectory of a JSON Lines file."""
    return list(iter_jsonl(path))


def repair_jsonl(path: str | os.PathLike[str]) -> int:
    """Remove a final line cut short by an interrupted write; returns the bytes removed."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return 0
    if size == 0:
        return 0
    with open(path, "rb+") as file:
        file.seek(size - 1)
        if file.read(1) == b"\n":
            return 0
        # Walk back to the last complete line; blocks keep this cheap on large files.
        end = size
        while end > 0:
            start = max(0, end - 65536)
            file.seek(start)
            block = file.read(end - start)
            newline = block.rfind(b"\n")
            if newline != -1:
                keep = start + newline + 1
                break
            end = start
        else:
            keep = 0
        file.truncate(keep)
    _logger.warning("%s: removed %d bytes of a line cut short by an interrupted write", path, size - keep)
    return size - keep


# --- steps -------------------------------------------------------------------------------


def _encode_steps(steps: Sequence[Step], where: str) -> list[dict[str, Any]]:
    encoded = []
    previous: Step | None = None
    for index, step in enumerate(steps):
        step_where = f"{where} step {index}"
        data: dict[str, Any] = {}
        base_ids = None if previous is None else previous.prompt_ids + previous.completion_ids
        data["prompt_ids"] = _delta(step.prompt_ids, base_ids)
        data["completion_ids"] = step.completion_ids
        base_messages = None if previous is None else _conversation(previous)
        data["prompt_messages"] = _delta(step.prompt_messages, base_messages, _message_dicts)
        if step.completion_message is not None:
            data["completion_message"] = step.completion_message.to_dict()
        if step.completion_logprobs is not None:
            data["completion_logprobs"] = _finite_list(
                step.completion_logprobs, f"{step_where} completion_logprobs"
            )
        if not all(step.completion_mask):
            data["completion_mask"] = _runs(step.completion_mask)
        if step.completion_advantages is not None:
            _finite_list(step.completion_advantages, f"{step_where} completion_advantages")
            data["completion_advantages"] = _runs(step.completion_advantages)
        if step.finish_reason is not None:
            data["finish_reason"] = step.finish_reason
        if step.is_truncated:
            data["is_truncated"] = True
        if step.overlong_prompt:
            data["overlong_prompt"] = True
        if step.prompt_attribution is not None:
            base = None if previous is None else previous.prompt_attribution
            data["prompt_attribution"] = _encode_attribution(step.prompt_attribution, base)
        if step.reward is not None:
            data["reward"] = _finite(step.reward, f"{step_where} reward")
        if step.advantage is not None:
            data["advantage"] = _finite(step.advantage, f"{step_where} advantage")
        if step.extras:
            data["extras"] = step.extras
        encoded.append(data)
        previous = step
    return encoded


def _decode_steps(encoded: list[dict[str, Any]]) -> list[Step]:
    steps: list[Step] = []
    previous: Step | None = None
    for index, data in enumerate(encoded):
        try:
            prompt_ids = _undelta(
                data["prompt_ids"],
                None if previous is None else previous.prompt_ids + previous.completion_ids,
            )
            prompt_messages = _undelta(
                data["prompt_messages"],
                None if previous is None else _conversation(previous),
                _messages_from_dicts,
            )
            attribution = None
            if "prompt_attribution" in data:
                attribution = _decode_attribution(
                    data["prompt_attribution"],
                    prompt_ids,
                    None if previous is None else previous.prompt_attribution,
                )
            completion_message = data.get("completion_message")
            step = Step(
                prompt_ids=prompt_ids,
                completion_ids=data["completion_ids"],
                prompt_messages=prompt_messages,
                completion_message=None
                if completion_message is None
                else Message.from_dict(completion_message),
                completion_logprobs=data.get("completion_logprobs"),
                completion_mask=_unruns(data["completion_mask"]) if "completion_mask" in data else None,
                finish_reason=data.get("finish_reason"),
                is_truncated=data.get("is_truncated", False),
                overlong_prompt=data.get("overlong_prompt", False),
                prompt_attribution=attribution,
                reward=data.get("reward"),
                advantage=data.get("advantage"),
                completion_advantages=_unruns(data["completion_advantages"])
                if "completion_advantages" in data
                else None,
                extras=data.get("extras", {}),
            )
        except KeyError as exc:
            raise ValueError(f"step {index}: missing field {exc.args[0]!r}") from None
        except (TypeError, ValueError) as exc:
            raise ValueError(f"step {index}: {exc}") from None
        steps.append(step)
        previous = step
    return steps


def _conversation(step: Step) -> list[Message]:
    """The messages a following prompt extends: this step's prompt and its completion."""
    if step.completion_message is None:
        return step.prompt_messages
    return [*step.prompt_messages, step.completion_message]


def _message_dicts(messages: list[Message]) -> list[dict[str, Any]]:
    return [m.to_dict() for m in messages]


def _messages_from_dicts(dicts: list[dict[str, Any]]) -> list[Message]:
    return [Message.from_dict(d, where=f"message {i}") for i, d in enumerate(dicts)]


# --- attribution -------------------------------------------------------------------------

_RUN_COLUMNS = ("message_indices", "sampled_mask", "is_content")
_MESSAGE_COLUMNS = ("message_roles", "message_tool_names")


def _encode_attribution(attribution: RenderedTokens, base: RenderedTokens | None) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for name in _RUN_COLUMNS:
        data[name] = _delta(getattr(attribution, name), _column(base, name), _runs)
    for name in _MESSAGE_COLUMNS:
        data[name] = _delta(getattr(attribution, name), _column(base, name))
    return data


def _decode_attribution(
    data: dict[str, Any], token_ids: list[int], base: RenderedTokens | None
) -> RenderedTokens:
    columns = {name: _undelta(data[name], _column(base, name), _unruns) for name in _RUN_COLUMNS}
    for name in _MESSAGE_COLUMNS:
        columns[name] = _undelta(data[name], _column(base, name))
    return RenderedTokens(token_ids=token_ids, **columns)


def _column(attribution: RenderedTokens | None, name: str) -> list[Any] | None:
    return None if attribution is None else getattr(attribution, name)


# --- column encodings --------------------------------------------------------------------


def _identity(values: list[Any]) -> list[Any]:
    return values


def _delta(values: list[Any], base: list[Any] | None, encode=_identity) -> Any:
    """`{"tail": encode(rest)}` when `values` starts with `base`, else `encode(values)`."""
    if base is not None and len(values) >= len(base) and values[: len(base)] == base:
        return {"tail": encode(values[len(base) :])}
    return encode(values)


def _undelta(stored: Any, base: list[Any] | None, decode=_identity) -> list[Any]:
    if isinstance(stored, dict):
        if base is None:
            raise ValueError("a column stored as a tail has no previous step to extend")
        return base + decode(stored["tail"])
    return decode(stored)


def _runs(values: Sequence[Any]) -> list[Any]:
    """Run-length encoding as a flat list `[value, count, value, count, ...]`."""
    # Equal values of different types (1 and 1.0, 1 and True) must not share a run: JSON keeps them apart.
    key = None if len(set(map(type, values))) <= 1 else _typed
    out: list[Any] = []
    for value, run in groupby(values, key):
        out += (value[1] if key else value, sum(1 for _ in run))
    return out


def _typed(value: Any) -> tuple[type, Any]:
    return type(value), value


def _unruns(flat: Sequence[Any]) -> list[Any]:
    if len(flat) % 2:
        raise ValueError("a run-length column must hold value, count pairs")
    out: list[Any] = []
    for i in range(0, len(flat), 2):
        out += [flat[i]] * flat[i + 1]
    return out


def _finite(value: float, where: str) -> float:
    if not math.isfinite(value):
        raise ValueError(f"{where} is {value}: JSON cannot store non-finite numbers")
    return value


def _finite_list(values: list[float], where: str) -> list[float]:
    # One C-level sum finds the common case; only a non-finite total needs a scan.
    if not math.isfinite(sum(values)):
        for position, value in enumerate(values):
            if not math.isfinite(value):
                raise ValueError(f"{where}[{position}] is {value}: JSON cannot store non-finite numbers")
    return values
