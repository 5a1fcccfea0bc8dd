"""A run of 10,000 trajectories opens and stays usable: the list is virtualized, tapes are drawn on demand.

The time to interactive is printed (run with -s to see it), not asserted: bench/viewer.py
measures it. What is asserted is what makes it fast: few list rows in the DOM and no tape
drawn before a trajectory is opened.
"""

from __future__ import annotations

import pytest

from tests.viewer.browser import launch, open_viewer
from tests.viewer.runs import write_large_run
from tokenroll.viewer import write_page

COUNT = 10_000


@pytest.fixture(scope="module")
def large_page(tmp_path_factory):
    path = tmp_path_factory.mktemp("large")
    write_large_run(path, COUNT)
    return write_page(path)


@pytest.mark.slow
def test_ten_thousand_trajectories_open_and_stay_responsive(large_page, tmp_path):
    with launch() as browser:
        page, errors = open_viewer(browser, large_page)
        ready = page.evaluate("window.tokenroll.ready")
        print(f"\n{COUNT} trajectories ({large_page.stat().st_size / 1e6:.1f} MB): interactive after {ready:.0f} ms")
        assert page.inner_text("#list-count") == f"{COUNT} of {COUNT} trajectories"
        assert page.locator(".list-row").count() < 60  # only the visible rows (and a margin) exist
        assert page.locator(".tok").count() == 0

        page.eval_on_selector("#list-body", "body => { body.scrollTop = body.scrollHeight; }")
        page.wait_for_selector('.list-row[data-index="9999"]')
        page.fill("#f-example", "1249")  # the last example's 8 rollouts
        assert page.locator(".list-row").count() == 8
        page.click('.list-row[data-index="9999"]')
        page.wait_for_function("document.getElementById('trajectory-page').dataset.ready === '9999'")
        opened = page.evaluate("window.tokenroll.lastOpen")
        print(f"trajectory page drawn in {opened:.0f} ms")
        assert page.locator(".tok").count() == 208
        page.click('#modes button[data-mode="advantage"]')
        page.screenshot(path=str(tmp_path / "large-trajectory.png"))
        page.close()
        assert errors == []
