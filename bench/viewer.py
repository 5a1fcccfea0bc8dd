"""Benchmark: how fast a 10,000-trajectory run's viewer page opens in headless Chromium.

    .venv/bin/python bench/viewer.py [--count 10000] [--turns 1 3] [--loads 3]

For each workload (1 turn of 208 tokens, 3 turns of 515 tokens per trajectory, rendered
with the Qwen2.5 tokenizer of the shared test assets) it builds the run directory, times
`tokenroll view` (load and write), then opens the page `--loads` times in fresh tabs and
prints the page's own time to interactive (`performance.now()` when the run page and list
are drawn: parsing the whole file included), then the time to draw one trajectory's tapes
and to recolour them. The issue's target is under 2 s to interactive for 10,000.
Needs /usr/bin/chromium (scripts/install-browser) and Playwright (the [viewer] extra).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.viewer.runs import write_large_run  # noqa: E402
from tokenroll.viewer import load_run, write_page  # noqa: E402
from tokenroll.viewer.browser import chromium_page, open_page, open_trajectory  # noqa: E402


def measure(count: int, turns: int, loads: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        run_dir = Path(folder)
        write_large_run(run_dir, count, turns=turns)
        started = time.perf_counter()
        run = load_run(run_dir)
        loaded = time.perf_counter()
        page_path = write_page(run)
        written = time.perf_counter()
        size = page_path.stat().st_size / 1e6
        print(f"{count} trajectories x {turns} turns: results.jsonl "
              f"{(run_dir / 'results.jsonl').stat().st_size / 1e6:.1f} MB, view.html {size:.1f} MB")
        print(f"  tokenroll view: load {loaded - started:.2f} s, build and write {written - loaded:.2f} s")
        opens, draws, recolours = [], [], []
        for _ in range(loads):
            with chromium_page() as page:  # a fresh browser: nothing cached between loads
                opens.append(open_page(page, page_path))
                open_trajectory(page, count - 1, "role")
                draws.append(page.evaluate("window.tokenroll.lastOpen"))
                recolours.append(page.evaluate(
                    "() => { const t = performance.now(); window.tokenroll.setMode('logprob');"
                    " return performance.now() - t; }"))
        print(f"  open to interactive: median {statistics.median(opens):.0f} ms "
              f"(each: {', '.join(f'{v:.0f}' for v in opens)} ms)")
        print(f"  one trajectory's page drawn: median {statistics.median(draws):.0f} ms; "
              f"recoloured: median {statistics.median(recolours):.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--turns", type=int, nargs="+", default=[1, 3], choices=[1, 3])
    parser.add_argument("--loads", type=int, default=3)
    args = parser.parse_args()
    for turns in args.turns:
        measure(args.count, turns, args.loads)


if __name__ == "__main__":
    main()
