"""The progress line: counts, running mean reward, errors; one line per tenth of the run off a terminal."""

from __future__ import annotations

import io
import re

from tokenroll.runner.progress import Progress


def test_off_a_terminal_a_line_is_printed_at_each_tenth_with_the_running_mean_reward():
    stream = io.StringIO()
    progress = Progress(20, stream=stream)
    progress.update(1, [1.0])
    assert stream.getvalue() == ""  # 1 of 20 is not yet a tenth
    progress.update(3, [0.0, 0.0, 1.0], errored=1)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1  # 4 of 20 crosses two tenths: one line, not two
    assert re.fullmatch(r"\[#{4}\.{20}\] 4/20  reward 0\.5000  [0-9.e+-]+/s  eta \d+s  \(1 errored\)", lines[0]), lines[0]
    progress.update(16, [])
    assert stream.getvalue().splitlines()[-1].startswith("[########################] 20/20  reward 0.5000  ")


def test_a_disabled_progress_counts_but_prints_nothing():
    stream = io.StringIO()
    progress = Progress(2, stream=stream, enabled=False)
    progress.update(2, [1.0, 0.0])
    progress.close()
    assert (progress.done, stream.getvalue()) == (2, "")
    assert "reward 0.5000" in progress.line(0.0)
