"""Shared fixtures: one warm tracer for the whole session, CRUXEval traced once."""

from __future__ import annotations

import pytest

from tokenroll.traces.ground_truth import Tracer
from tokenroll.traces.tasks import load_cruxeval


@pytest.fixture(scope="session")
def tracer():
    with Tracer(workers=2) as session_tracer:
        yield session_tracer


@pytest.fixture(scope="session")
def cruxeval_tasks():
    return load_cruxeval()


@pytest.fixture(scope="session")
def cruxeval_traces(tracer, cruxeval_tasks):
    return tracer.trace_calls((task.code, task.call) for task in cruxeval_tasks)
