"""Sandbox worker: a warm interpreter that runs untrusted Python jobs one at a time.

Started by `tokenroll.sandbox.pool` as `python -s -P _worker.py ROOT PLUGINS_JSON LIMITS_JSON`.
It is standalone on purpose (stdlib only, never imports tokenroll) so that it can run under a
different interpreter than the parent. Requests and replies are length-prefixed JSON on the
pipes the parent gave as stdin/stdout; the untrusted code sees /dev/null there instead.

Guards (layered, not a security boundary against a determined adversary):
resource limits (address space, file size, core dumps, processes), an audit hook that refuses
process creation, signals to other processes, sockets, ctypes, rlimit changes and any write
outside ROOT, a SIGALRM wall-clock timeout, a recursion limit, and capped stdout/stderr.
"""

from __future__ import annotations

import builtins
import importlib.util
import io
import json
import os
import resource
import shutil
import signal
import struct
import sys
import time
import traceback

_HEADER = struct.Struct(">I")


class SandboxTimeout(BaseException):
    """Raised inside the job when its wall-clock budget is spent."""


class OutputLimitExceeded(BaseException):
    """Raised inside the job when it prints more than the output cap."""


class SandboxViolation(PermissionError):
    """Raised inside the job when it tries something the sandbox forbids."""


# -- state shared by the guards ------------------------------------------------------------

_ROOT = ""
_violations: list[str] = []
_output_overflow = False
_AUDIT_PREFIX_DENY = ("socket.", "ctypes.", "subprocess.", "os.exec", "os.spawn", "os.posix_spawn")
_AUDIT_DENY = {
    "os.system", "os.fork", "os.forkpty", "os.kill", "os.killpg", "os.setuid", "os.chroot",
    "resource.setrlimit", "resource.prlimit", "pty.spawn", "winreg.OpenKey",
}
_AUDIT_PATH_WRITES = {
    "os.remove", "os.rename", "os.rmdir", "os.mkdir", "os.chmod", "os.chown", "os.link",
    "os.symlink", "os.truncate", "os.utime", "shutil.rmtree", "shutil.move", "os.chflags",
    "os.lchflags", "os.setxattr", "os.removexattr",
}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC


def _inside_root(path: object) -> bool:
    if isinstance(path, int):
        return path > 4  # fds 0-4 are stdio and the parent's protocol pipes
    try:
        real = os.path.realpath(os.fsdecode(path))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return real == _ROOT or real.startswith(_ROOT + os.sep)


def _refuse(what: str) -> None:
    _violations.append(what)
    raise SandboxViolation(f"{what} is not allowed in the sandbox")


def _audit(event: str, args: tuple) -> None:
    if event in _AUDIT_DENY or event.startswith(_AUDIT_PREFIX_DENY):
        _refuse(event)
    elif event == "open":
        path, mode, flags = args
        writes = (mode is not None and any(c in mode for c in "wax+")) or (
            mode is None and isinstance(flags, int) and flags & _WRITE_FLAGS
        )
        if writes and not _inside_root(path):
            _refuse(f"writing to {path!r}")
    elif event in _AUDIT_PATH_WRITES:
        for path in args[:2]:
            if isinstance(path, (str, bytes, os.PathLike)) and not _inside_root(path):
                _refuse(f"{event} on {path!r}")


def _forbidden(name: str):
    def refuse(*_args: object, **_kwargs: object) -> None:
        _refuse(name)

    return refuse


class _CappedWriter(io.TextIOBase):
    """A text stream that keeps at most `limit` characters and then raises.

    With `limit=None` it keeps nothing and never raises (output is swallowed, as CRUXEval's
    evaluator does); a flood then runs into the time limit instead.
    """

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.parts: list[str] = []
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        global _output_overflow
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        if self.limit is None:
            return len(text)
        room = self.limit - self.size
        if len(text) > room:
            self.parts.append(text[:room])
            self.size = self.limit
            _output_overflow = True
            raise OutputLimitExceeded(f"output exceeded {self.limit} characters")
        self.parts.append(text)
        self.size += len(text)
        return len(text)

    def getvalue(self) -> str:
        return "".join(self.parts)


# -- protocol --------------------------------------------------------------------------------


def _read_exact(fd: int, n: int) -> bytes:
    chunks = []
    while n:
        chunk = os.read(fd, n)
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def _send(fd: int, message: dict) -> None:
    try:
        data = _dumps(message).encode("utf-8", "surrogatepass")
    except (TypeError, ValueError) as exc:
        data = _dumps(
            {"status": "error", "error_type": "TypeError",
             "error": f"result is not JSON-serialisable: {exc}", "stdout": "", "stderr": ""}
        ).encode()
    view = memoryview(_HEADER.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view):]


_dumps = json.dumps
_loads = json.loads


# -- jobs ------------------------------------------------------------------------------------


def _on_alarm(_signum: int, _frame: object) -> None:
    raise SandboxTimeout("wall-clock time limit reached")


def _clean_root() -> None:
    for name in os.listdir(_ROOT):
        path = os.path.join(_ROOT, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            try:
                os.remove(path)
            except OSError:
                pass


def _run_job(request: dict, plugins: dict, limits: dict, saved_builtins: dict) -> dict:
    global _output_overflow
    _violations.clear()
    _output_overflow = False
    stdout = _CappedWriter(limits["max_output_chars"])
    stderr = _CappedWriter(limits["max_output_chars"])
    status, value, error_type, error = "ok", None, None, None
    old_streams = sys.stdout, sys.stderr, sys.stdin
    sys.stdout, sys.stderr, sys.stdin = stdout, stderr, io.StringIO("")
    sys.setrecursionlimit(limits["recursion_limit"])
    signal.setitimer(signal.ITIMER_REAL, float(request["timeout"]))
    try:
        if request["op"] == "exec":
            module_name = request.get("module_name")
            namespace = {} if module_name is None else {"__name__": module_name}
            exec(compile(request["code"], request.get("filename", "<sandbox>"), "exec"), namespace)
        else:
            function = getattr(plugins[request["plugin"]], request["function"])
            value = function(**request.get("kwargs", {}))
    except SandboxTimeout as exc:
        status, error_type, error = "timeout", "SandboxTimeout", str(exc)
    except OutputLimitExceeded as exc:
        status, error_type, error = "output_limit", "OutputLimitExceeded", str(exc)
    except MemoryError as exc:
        status, error_type, error = "memory_limit", "MemoryError", str(exc) or "out of memory"
    except BaseException as exc:  # the job's own failure: report it, keep the worker
        status, error_type = "error", type(exc).__name__
        error = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        sys.settrace(None)
        sys.setrecursionlimit(limits["recursion_limit"])
        sys.stdout, sys.stderr, sys.stdin = old_streams
    # A violation or an output flood caught by the job's own `except` still fails the job.
    if _violations and status in ("ok", "error"):
        status, error_type = "forbidden", "SandboxViolation"
        error = f"{_violations[0]} is not allowed in the sandbox"
    elif _output_overflow and status in ("ok", "error"):
        status, error_type = "output_limit", "OutputLimitExceeded"
        error = f"output exceeded {limits['max_output_chars']} characters"
    # Undo what a job may have changed in the interpreter the next job shares.
    builtins.__dict__.clear()
    builtins.__dict__.update(saved_builtins)
    os.chdir(_ROOT)
    _clean_root()
    return {
        "status": status, "value": value if status == "ok" else None,
        "error_type": error_type, "error": error,
        "stdout": stdout.getvalue(), "stderr": stderr.getvalue(),
        "recycle": status in ("memory_limit", "forbidden"),
    }


def _apply_limits(limits: dict) -> None:
    def cap(which: int, value: int | None) -> None:
        if value is not None:
            resource.setrlimit(which, (value, value))

    cap(resource.RLIMIT_AS, limits["memory_bytes"])
    cap(resource.RLIMIT_FSIZE, limits["max_file_bytes"])
    cap(resource.RLIMIT_CORE, 0)
    cap(resource.RLIMIT_NPROC, 0)  # ignored for root; the audit hook covers that case


def _stub_process_creation() -> None:
    # Process creation that bypasses the audit events in 3.11.
    import _posixsubprocess

    _posixsubprocess.fork_exec = _forbidden("fork_exec")  # type: ignore[attr-defined]
    for name in ("fork", "forkpty", "system", "kill", "killpg"):
        if hasattr(os, name):
            setattr(os, name, _forbidden(f"os.{name}"))


def main() -> None:
    global _ROOT
    root, plugin_paths, limits = sys.argv[1], _loads(sys.argv[2]), _loads(sys.argv[3])
    _ROOT = os.path.realpath(root)
    proto_in, proto_out = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.chdir(_ROOT)
    plugins = {}
    for name, path in plugin_paths.items():
        spec = importlib.util.spec_from_file_location(f"_sandbox_plugin_{name}", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        plugins[name] = module
    signal.signal(signal.SIGALRM, _on_alarm)
    _apply_limits(limits)
    _stub_process_creation()
    saved_builtins = dict(builtins.__dict__)
    sys.addaudithook(_audit)
    _send(proto_out, {"ready": True, "version": list(sys.version_info[:3]), "pid": os.getpid()})
    while True:
        try:
            (size,) = _HEADER.unpack(_read_exact(proto_in, _HEADER.size))
            request = _loads(_read_exact(proto_in, size).decode("utf-8", "surrogatepass"))
        except EOFError:
            return
        started = time.perf_counter()
        reply = _run_job(request, plugins, limits, saved_builtins)
        reply["seconds"] = time.perf_counter() - started
        _send(proto_out, reply)
        if reply["recycle"]:
            return


if __name__ == "__main__":
    main()
