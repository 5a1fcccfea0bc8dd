"""Fixtures: the sample run (written once per session) and a browser per test module."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.viewer.browser import launch
from tests.viewer.runs import write_sample_run
from tokenroll.core.trajectory import Trajectory
from tokenroll.viewer import RunDir, load_run, write_page


@pytest.fixture(scope="session")
def sample_dir(tmp_path_factory) -> Path:
    """A run directory with the five sample trajectories, metadata.json and vocab.json."""
    path = tmp_path_factory.mktemp("run")
    write_sample_run(path)
    return path


@pytest.fixture(scope="session")
def sample_run(sample_dir) -> RunDir:
    return load_run(sample_dir)


@pytest.fixture(scope="session")
def sample_page(sample_dir, sample_run) -> Path:
    """The sample run's view.html."""
    return write_page(sample_run, sample_dir / "view.html")


@pytest.fixture()
def by_id(sample_run):
    def find(trajectory_id: str) -> Trajectory:
        return next(t for t in sample_run.trajectories if t.id == trajectory_id)

    return find


@pytest.fixture(scope="module")
def browser(sample_page):
    # Depends on the sample page: its data is built (with asyncio.run) before Playwright's loop starts.
    with launch() as chromium:
        yield chromium
