"""The Tracer front: interpreter checks, sandbox failures as outcomes, batches in order."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from tokenroll.traces.frames import Outcome
from tokenroll.traces.ground_truth import TraceError, Tracer


def test_batches_keep_their_order(tracer):
    traces = tracer.trace_calls([("def f(x):\n    return x", f"f({i})") for i in range(20)])
    assert [t.return_value for t in traces] == [str(i) for i in range(20)]


def test_timeout_and_memory_become_outcomes():
    with Tracer(workers=1, timeout=0.5, memory_bytes=256 << 20) as small:
        slow = small.trace_call("def f():\n    import time\n    time.sleep(5)", "f()")
        big = small.trace_call("def f():\n    return len('x' * (1 << 30))", "f()")
        after = small.trace_call("def f():\n    return 1", "f()")
    assert slow.outcome is Outcome.TIMEOUT and slow.frames == []
    assert slow.error == "timeout: wall-clock time limit reached"
    assert big.outcome is Outcome.SANDBOX_ERROR
    assert big.error == "memory_limit: out of memory"
    assert after.return_value == "1"


def test_forbidden_operation_is_a_sandbox_error(tracer):
    trace = tracer.trace_call("import os\ndef f():\n    return os.system('true')", "f()")
    assert trace.outcome is Outcome.SANDBOX_ERROR
    assert trace.error == "forbidden: os.system is not allowed in the sandbox"


def _runs(python: str) -> bool:
    found = shutil.which(python)
    return (
        found is not None and subprocess.run([found, "-c", ""], capture_output=True).returncode == 0
    )


def test_an_interpreter_that_is_not_3_11_is_refused():
    other = next((p for p in ("python3.12", "python3.10", "python3.13") if _runs(p)), None)
    if other is None:
        pytest.skip("no other Python version installed")
    with pytest.raises(TraceError, match=r"need CPython 3.11"):
        Tracer(workers=1, python=other)


def test_a_missing_interpreter_is_a_clear_error():
    with pytest.raises(TraceError, match=r"cannot start sandbox worker with '/nonexistent/python'"):
        Tracer(workers=1, python="/nonexistent/python")


def test_running_interpreter_is_used_when_it_is_3_11():
    if sys.version_info[:2] != (3, 11):
        pytest.skip("this interpreter is not 3.11")
    with Tracer(workers=1) as one:
        assert one.pool.python == sys.executable


def test_another_running_version_is_said_clearly(monkeypatch):
    from tokenroll.traces import ground_truth

    if shutil.which("python3.11") is None:
        pytest.skip("python3.11 is not on PATH")
    monkeypatch.setattr(sys, "version_info", (3, 12, 0, "final", 0))
    with pytest.warns(UserWarning, match=r"runs on Python 3.12, but the CWM trace format"):
        found = ground_truth._interpreter(None)
    assert found.endswith("3.11") or "3.11" in found
