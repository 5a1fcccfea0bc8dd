"""Every fault ends with a clear error, harms nothing, and the pool keeps working."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tokenroll.sandbox import Job, Limits, SandboxError, SandboxPool, Status, find_python, run_code


@pytest.fixture(scope="module")
def pool():
    with SandboxPool(
        2, limits=Limits(timeout=5, memory_bytes=256 << 20, max_output_chars=10_000)
    ) as shared:
        yield shared


def _still_works(pool):
    result = pool.run("print(sum(range(4)))")
    assert (result.status, result.stdout) == (Status.OK, "6\n")


def test_runs_code_and_captures_output(pool):
    result = pool.run("import sys\nprint('out')\nprint('err', file=sys.stderr)")
    assert (result.status, result.stdout, result.stderr, result.error) == (
        Status.OK,
        "out\n",
        "err\n",
        None,
    )


def test_exceptions_are_reported(pool):
    result = pool.run("def f():\n    return 1 / 0\nf()")
    assert (result.status, result.error_type, result.error) == (
        Status.ERROR,
        "ZeroDivisionError",
        "ZeroDivisionError: division by zero",
    )


def test_infinite_loop_times_out(pool):
    result = pool.run("while True:\n    pass", timeout=0.3)
    assert (result.status, result.error) == (Status.TIMEOUT, "wall-clock time limit reached")
    _still_works(pool)


def test_loop_that_swallows_the_timeout_is_killed(pool):
    code = (
        "while True:\n    try:\n        while True:\n            pass\n"
        "    except BaseException:\n        pass"
    )
    result = pool.run(code, timeout=0.3)
    assert (result.status, result.error) == (
        Status.TIMEOUT,
        "killed after 0.3 s wall-clock time limit",
    )
    _still_works(pool)


def test_memory_bomb(pool):
    result = pool.run("chunks = []\nwhile True:\n    chunks.append(bytearray(10 << 20))")
    assert (result.status, result.error_type) == (Status.MEMORY_LIMIT, "MemoryError")
    _still_works(pool)


@pytest.mark.parametrize(
    ("code", "error"),
    [
        ("import os\nwhile True:\n    os.fork()", "os.fork is not allowed in the sandbox"),
        ("import os\nos.system('echo hi')", "os.system is not allowed in the sandbox"),
        (
            "import subprocess\nsubprocess.run(['true'])",
            "subprocess.Popen is not allowed in the sandbox",
        ),
        ("import socket\nsocket.socket()", "socket.__new__ is not allowed in the sandbox"),
        ("import ctypes", "ctypes.dlopen is not allowed in the sandbox"),
        ("import os\nos.kill(1, 9)", "os.kill is not allowed in the sandbox"),
        (
            "import resource\nresource.setrlimit(resource.RLIMIT_AS, (-1, -1))",
            "resource.setrlimit is not allowed in the sandbox",
        ),
    ],
)
def test_forbidden_operations(pool, code, error):
    result = pool.run(code)
    assert (result.status, result.error) == (Status.FORBIDDEN, error)
    _still_works(pool)


def test_forbidden_even_when_the_code_catches_it(pool):
    result = pool.run("import os\ntry:\n    os.system('true')\nexcept Exception:\n    pass")
    assert (result.status, result.error) == (
        Status.FORBIDDEN,
        "os.system is not allowed in the sandbox",
    )


def test_writes_only_inside_a_throwaway_directory(pool, tmp_path):
    target = tmp_path / "outside.txt"
    result = pool.run(f"open({str(target)!r}, 'w').write('x')")
    assert result.status is Status.FORBIDDEN
    assert result.error == f"writing to {str(target)!r} is not allowed in the sandbox"
    assert not target.exists()
    first = pool.run("import os\nopen('mine.txt', 'w').write('x')\nprint(os.listdir('.'))")
    assert (first.status, first.stdout) == (Status.OK, "['mine.txt']\n")
    # the directory is emptied after every job
    assert [pool.run("import os\nprint(os.listdir('.'))").stdout for _ in range(2)] == ["[]\n"] * 2


def test_deep_recursion(pool):
    result = pool.run("def down(n):\n    return down(n + 1)\ndown(0)")
    assert (result.status, result.error) == (
        Status.ERROR,
        "RecursionError: maximum recursion depth exceeded",
    )
    _still_works(pool)


def test_print_flood(pool):
    result = pool.run("while True:\n    print('x' * 100)")
    assert (result.status, result.error) == (
        Status.OUTPUT_LIMIT,
        "output exceeded 10000 characters",
    )
    assert len(result.stdout) == 10_000
    _still_works(pool)


def test_os_level_writes_to_stdout_go_nowhere(pool):
    result = pool.run("import os\nos.write(1, b'noise')\nos.write(2, b'noise')\nprint('ok')")
    assert (result.status, result.stdout) == (Status.OK, "ok\n")


def test_a_job_cannot_break_builtins_for_the_next(pool):
    assert pool.run("import builtins\nbuiltins.len = None\nbuiltins.print = None").ok
    for _ in range(3):
        assert pool.run("print(len('abc'))").stdout == "3\n"


def test_crashed_worker_is_replaced(pool):
    result = pool.run("import signal\nsignal.raise_signal(signal.SIGSEGV)")
    assert (result.status, result.error_type) == (Status.CRASHED, "WorkerCrashed")
    _still_works(pool)


def test_hash_seed_is_fixed(pool):
    assert pool.run("import os\nprint(os.environ['PYTHONHASHSEED'])").stdout == "0\n"


def test_module_name(pool):
    assert pool.run("print(__name__)").stdout == "__main__\n"
    assert pool.run("print(__name__)", module_name=None).stdout == "builtins\n"


def test_plugins_and_map(tmp_path):
    plugin = tmp_path / "plugin.py"
    plugin.write_text("def double(x):\n    return {'value': x * 2}\n")
    with SandboxPool(2, plugins={"p": plugin}) as pool:
        jobs = [Job(plugin="p", function="double", kwargs={"x": i}) for i in range(10)]
        jobs.append(Job(code="raise SystemExit(3)"))
        results = pool.map(jobs)
        assert [r.value for r in results[:10]] == [{"value": 2 * i} for i in range(10)]
        assert (results[10].status, results[10].error_type) == (Status.ERROR, "SystemExit")
        with pytest.raises(SandboxError, match=r"unknown plugin 'q'"):
            pool.call("q", "double", x=1)


def test_run_code_and_closed_pool():
    assert run_code("print(1)").stdout == "1\n"
    pool = SandboxPool(1)
    roots = [worker.root for worker in pool._all]
    pool.close()
    assert not any(Path(root).exists() for root in roots)
    with pytest.raises(SandboxError, match="closed"):
        pool.run("1")


def test_find_python():
    if sys.version_info[:2] == (3, 11):
        assert find_python((3, 11)) == sys.executable
    with pytest.raises(SandboxError, match=r"Python 2.7 is required"):
        find_python((2, 7))


def test_no_worker_processes_are_left_behind():
    with SandboxPool(2) as pool:
        pids = [worker.process.pid for worker in pool._all]
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
