"""Run untrusted Python in warm, limited worker processes.

Standalone: imports nothing from the rest of tokenroll, so any part of it may reuse it.

>>> from tokenroll.sandbox import SandboxPool
>>> with SandboxPool(workers=2) as pool:
...     result = pool.run("x = 1 + 1", timeout=3)
"""

from tokenroll.sandbox.pool import (
    Job,
    Limits,
    RunResult,
    SandboxError,
    SandboxPool,
    Status,
    find_python,
    run_code,
)

__all__ = [
    "Job", "Limits", "RunResult", "SandboxError", "SandboxPool", "Status", "find_python",
    "run_code",
]
