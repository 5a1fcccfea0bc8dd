"""A pool of warm sandbox workers that run untrusted Python with limits."""

from __future__ import annotations

import json
import os
import queue
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

_WORKER_SCRIPT = Path(__file__).with_name("_worker.py")
_HEADER_SIZE = 4
# Extra wall-clock time the parent allows past the worker's own alarm before killing it.
_KILL_GRACE_SECONDS = 1.0
_START_TIMEOUT_SECONDS = 30.0


class SandboxError(RuntimeError):
    """The sandbox itself could not do its job (bad interpreter, worker failed to start)."""


class Status(StrEnum):
    """How a sandboxed job ended."""

    OK = "ok"
    ERROR = "error"  # the code raised; see error_type / error
    TIMEOUT = "timeout"
    MEMORY_LIMIT = "memory_limit"
    OUTPUT_LIMIT = "output_limit"
    FORBIDDEN = "forbidden"  # process creation, network, writes outside the temp dir, ...
    CRASHED = "crashed"  # the worker died (segfault, killed by a resource limit, ...)


@dataclass(slots=True, frozen=True)
class Limits:
    """Resource limits applied to every job of a pool (timeout may be overridden per call)."""

    timeout: float = 10.0
    memory_bytes: int | None = 1 << 30
    max_output_chars: int | None = 1 << 20  # None: swallow all output, keep none
    max_file_bytes: int = 16 << 20
    recursion_limit: int = 1000


@dataclass(slots=True)
class RunResult:
    """What a sandboxed job produced."""

    status: Status
    value: Any = None
    error_type: str | None = None
    error: str | None = None
    stdout: str = ""
    stderr: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status is Status.OK


@dataclass(slots=True)
class Job:
    """One request for `SandboxPool.map`: either `code` to exec, or a plugin function call."""

    code: str | None = None
    plugin: str | None = None
    function: str | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)
    timeout: float | None = None
    module_name: str | None = "__main__"


def find_python(version: tuple[int, int]) -> str:
    """The running interpreter if it is `version`, else `pythonX.Y` on PATH, else an error.

    A `pythonX.Y` found on PATH is asked for its real executable, so that launcher shims
    (pyenv and the like) are not needed in the workers' bare environment.
    """
    if sys.version_info[:2] == version:
        return sys.executable
    name = f"python{version[0]}.{version[1]}"
    found = shutil.which(name)
    probe = None
    if found is not None:
        probe = subprocess.run([found, "-c", "import sys; print(sys.executable)"],
                               capture_output=True, text=True, timeout=60)
    if probe is None or probe.returncode != 0 or not probe.stdout.strip():
        raise SandboxError(
            f"Python {version[0]}.{version[1]} is required but this is "
            f"{sys.version_info[0]}.{sys.version_info[1]} and `{name}` is not on PATH "
            f"(or does not run); install it or pass python=... explicitly"
        )
    return probe.stdout.strip()


_REUSABLE = (Status.OK, Status.ERROR, Status.OUTPUT_LIMIT)


class _Worker:
    """One worker process with its own throw-away directory."""

    def __init__(self, python: str, plugins: Mapping[str, str], limits: Limits, hash_seed: int):
        self.root = tempfile.mkdtemp(prefix="tokenroll-sandbox-")
        worker_limits = asdict(limits)
        del worker_limits["timeout"]
        env = {
            "PYTHONHASHSEED": str(hash_seed),
            "PYTHONIOENCODING": "utf-8",
            "PYTHONDONTWRITEBYTECODE": "1",
            "HOME": self.root,
            "TMPDIR": self.root,
            "LANG": "C.UTF-8",
        }
        try:
            self.process = subprocess.Popen(
                [python, "-s", "-P", str(_WORKER_SCRIPT), self.root,
                 json.dumps(dict(plugins)), json.dumps(worker_limits)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                cwd=self.root, env=env, start_new_session=True,
            )
        except OSError as exc:
            shutil.rmtree(self.root, ignore_errors=True)
            raise SandboxError(f"cannot start sandbox worker with {python!r}: {exc}") from exc
        hello = self._receive(_START_TIMEOUT_SECONDS)
        if not isinstance(hello, dict) or not hello.get("ready"):
            self.kill()
            raise SandboxError(f"sandbox worker with {python!r} failed to start: {hello!r}")
        self.version: tuple[int, ...] = tuple(hello["version"])

    def _receive(self, timeout: float) -> dict | str:
        """The next message, or "timeout" / "eof" when none comes."""
        header = self._read(_HEADER_SIZE, time.monotonic() + timeout)
        if isinstance(header, str):
            return header
        body = self._read(int.from_bytes(header, "big"), time.monotonic() + timeout)
        return body if isinstance(body, str) else json.loads(body)

    def _read(self, n: int, deadline: float) -> bytes | str:
        fd = self.process.stdout.fileno()
        chunks: list[bytes] = []
        while n:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                return "timeout"
            chunk = os.read(fd, n)
            if not chunk:
                return "eof"
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def request(self, message: dict, timeout: float) -> RunResult:
        data = json.dumps(message).encode()
        try:
            self.process.stdin.write(len(data).to_bytes(_HEADER_SIZE, "big") + data)
            self.process.stdin.flush()
        except OSError:
            return self._dead_result()
        reply = self._receive(timeout + _KILL_GRACE_SECONDS)
        if reply == "timeout":
            self.kill()
            return RunResult(Status.TIMEOUT, error_type="SandboxTimeout",
                             error=f"killed after {timeout:g} s wall-clock time limit",
                             seconds=timeout)
        if reply == "eof":
            return self._dead_result()
        return RunResult(
            status=Status(reply["status"]), value=reply["value"],
            error_type=reply["error_type"], error=reply["error"],
            stdout=reply["stdout"], stderr=reply["stderr"], seconds=reply["seconds"],
        )

    def _dead_result(self) -> RunResult:
        code = self.process.wait()
        self.kill()
        if code == -signal.SIGXFSZ:
            return RunResult(Status.FORBIDDEN, error_type="FileSizeLimit",
                             error="the job wrote a file larger than the file size limit")
        if code in (-signal.SIGKILL, -signal.SIGSEGV):
            reason = "out of memory or stack" if code == -signal.SIGSEGV else "killed"
            return RunResult(Status.CRASHED, error_type="WorkerCrashed",
                             error=f"sandbox worker died ({reason}, exit code {code})")
        return RunResult(Status.CRASHED, error_type="WorkerCrashed",
                         error=f"sandbox worker exited unexpectedly (exit code {code})")

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            try:
                stream.close()
            except OSError:
                pass
        shutil.rmtree(self.root, ignore_errors=True)


class SandboxPool:
    """Warm worker processes that run untrusted Python code, one job per worker at a time.

    >>> with SandboxPool(workers=2) as pool:
    ...     pool.run("print(1 + 1)").stdout
    '2\\n'

    `plugins` maps a name to a stdlib-only Python file loaded once in every worker; its
    functions are then called with `call(plugin, function, **kwargs)` under the same limits.
    A worker whose job crashed, timed out, ran out of memory or broke a rule is replaced.
    """

    def __init__(
        self,
        workers: int = 2,
        *,
        limits: Limits | None = None,
        python: str | None = None,
        plugins: Mapping[str, str | os.PathLike[str]] | None = None,
        hash_seed: int = 0,
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.limits = limits or Limits()
        self.python = shutil.which(python) or python if python else sys.executable
        self._plugins = {name: str(Path(path).resolve()) for name, path in (plugins or {}).items()}
        self._hash_seed = hash_seed
        self._size = workers
        self._idle: queue.Queue[_Worker | None] = queue.Queue()
        self._lock = threading.Lock()
        self._all: list[_Worker] = []
        self._closed = False
        for _ in range(workers):
            self._idle.put(self._spawn())
        self.python_version: tuple[int, ...] = self._all[0].version

    def _spawn(self) -> _Worker:
        worker = _Worker(self.python, self._plugins, self.limits, self._hash_seed)
        with self._lock:
            self._all.append(worker)
        return worker

    def _submit(self, message: dict, timeout: float | None) -> RunResult:
        if self._closed:
            raise SandboxError("the sandbox pool is closed")
        timeout = self.limits.timeout if timeout is None else timeout
        message["timeout"] = timeout
        worker = self._idle.get()
        if worker is None:  # a replacement worker failed to start earlier
            self._idle.put(None)
            raise SandboxError("a sandbox worker could not be restarted; close this pool")
        result: RunResult | None = None
        try:
            result = worker.request(message, timeout)
        finally:
            # Keep a worker only after a clean job: anything else may have left it damaged.
            if result is None or result.status not in _REUSABLE or not worker.alive:
                worker = self._replace(worker)
            self._idle.put(worker)
        return result

    def _replace(self, worker: _Worker) -> _Worker | None:
        worker.kill()
        with self._lock:
            if worker in self._all:
                self._all.remove(worker)
        if self._closed:
            return None
        try:
            return self._spawn()
        except SandboxError:
            return None

    def run(self, code: str, *, timeout: float | None = None,
            module_name: str | None = "__main__", filename: str = "<sandbox>") -> RunResult:
        """Exec `code` in a fresh namespace (`module_name=None`: an empty globals dict)."""
        message = {"op": "exec", "code": code, "module_name": module_name, "filename": filename}
        return self._submit(message, timeout)

    def call(self, plugin: str, function: str, *, timeout: float | None = None,
             **kwargs: Any) -> RunResult:
        """Call `function` of a plugin file with JSON-serialisable keyword arguments."""
        if plugin not in self._plugins:
            raise SandboxError(f"unknown plugin {plugin!r}; this pool has {sorted(self._plugins)}")
        message = {"op": "call", "plugin": plugin, "function": function, "kwargs": kwargs}
        return self._submit(message, timeout)

    def map(self, jobs: Iterable[Job]) -> list[RunResult]:
        """Run many jobs over all workers; results come back in the order of `jobs`."""
        jobs = list(jobs)
        if not jobs:
            return []

        def one(job: Job) -> RunResult:
            if job.code is not None:
                return self.run(job.code, timeout=job.timeout, module_name=job.module_name)
            return self.call(job.plugin, job.function, timeout=job.timeout, **job.kwargs)

        with ThreadPoolExecutor(max_workers=min(self._size, len(jobs))) as executor:
            return list(executor.map(one, jobs))

    def close(self) -> None:
        """Kill every worker and remove their directories."""
        self._closed = True
        with self._lock:
            workers, self._all = self._all, []
        for worker in workers:
            worker.kill()

    def __enter__(self) -> SandboxPool:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        if not getattr(self, "_closed", True):
            self.close()


def run_code(code: str, *, timeout: float = 10.0, limits: Limits | None = None,
             python: str | None = None) -> RunResult:
    """Run one piece of code in a one-off sandbox (starts and stops a worker)."""
    with SandboxPool(1, limits=limits, python=python) as pool:
        return pool.run(code, timeout=timeout)


__all__: Sequence[str] = [
    "Job", "Limits", "RunResult", "SandboxError", "SandboxPool", "Status", "find_python",
    "run_code",
]
