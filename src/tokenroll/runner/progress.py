"""A one-line progress bar with the running mean reward, redrawn at most ten times a second.

On a terminal the line is redrawn in place; elsewhere (logs, CI) a line is printed at every
tenth of the run, so logs stay short.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

_REDRAW_SECONDS = 0.1
_WIDTH = 24


class Progress:
    """Counts finished rollouts and their rewards; draws to `stream` (stderr by default)."""

    def __init__(self, total: int, *, done: int = 0, stream: TextIO | None = None, enabled: bool = True) -> None:
        self.total = total
        self.done = done
        self.errored = 0
        self._reward_sum = 0.0
        self._rewarded = 0
        self._started = time.perf_counter()
        self._initial = done
        self._stream = stream or sys.stderr
        self._enabled = enabled
        self._live = enabled and self._stream.isatty()
        self._last_draw = 0.0
        self._next_decile = 1

    def update(self, finished: int, rewards: list[float], errored: int = 0) -> None:
        self.done += finished
        self.errored += errored
        self._reward_sum += sum(rewards)
        self._rewarded += len(rewards)
        if not self._enabled:
            return
        now = time.perf_counter()
        if self._live:
            if now - self._last_draw >= _REDRAW_SECONDS or self.done >= self.total:
                self._last_draw = now
                self._stream.write("\r" + self.line(now))
                self._stream.flush()
        elif self.total and self.done * 10 >= self._next_decile * self.total:
            while self.done * 10 >= self._next_decile * self.total:
                self._next_decile += 1
            self._stream.write(self.line(now) + "\n")
            self._stream.flush()

    def close(self) -> None:
        if self._live:
            self._stream.write("\r" + self.line(time.perf_counter()) + "\n")
            self._stream.flush()

    def line(self, now: float) -> str:
        """`[#########.........] 120/400  reward 0.4210  31.2/s  eta 9s  (2 errored)`."""
        fraction = self.done / self.total if self.total else 1.0
        filled = int(fraction * _WIDTH)
        elapsed = now - self._started
        rate = (self.done - self._initial) / elapsed if elapsed > 0 else 0.0
        remaining = (self.total - self.done) / rate if rate > 0 else None
        reward = f"{self._reward_sum / self._rewarded:.4f}" if self._rewarded else "-"
        parts = [
            f"[{'#' * filled}{'.' * (_WIDTH - filled)}] {self.done}/{self.total}",
            f"reward {reward}",
            f"{rate:.1f}/s" if rate >= 1 else f"{rate:.2g}/s",  # slow local runs still show a rate
        ]
        if remaining is not None and self.done < self.total:
            parts.append(f"eta {remaining:.0f}s")
        if self.errored:
            parts.append(f"({self.errored} errored)")
        return "  ".join(parts)
