"""CRUXEval output prediction scored like the official evaluator, quirks included."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
from pathlib import Path

import pytest

from tokenroll.sandbox import SandboxPool
from tokenroll.traces.cruxeval import (
    CHECK_LIMITS,
    check_program,
    load_generations,
    pass_at_k,
    score_output_predictions,
)
from tokenroll.traces.tasks import TaskFileError, TraceTask

TASKS = [
    TraceTask(
        id=f"sample_{i}", code="def f(x):\n    return x + 1", call="f(1)", expected_output="2"
    )
    for i in range(4)
]


@pytest.fixture(scope="module")
def check_pool():
    with SandboxPool(2, limits=CHECK_LIMITS) as pool:
        yield pool


def test_pass_at_k_equals_the_numpy_formula_bit_for_bit():
    np = pytest.importorskip("numpy")

    def reference(n, c, k):
        if n - c < k:
            return 1.0
        return 1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1))

    for n, k in itertools.product(range(0, 21), (1, 5, 10)):
        for c in range(0, n + 1):
            assert pass_at_k(n, c, k) == float(reference(n, c, k)), (n, c, k)


def test_check_program_layout():
    assert check_program("def f(): pass", "[1]", "[1, ]") == "def f(): pass\nassert [1] == [1, ]"


def test_skips_and_empty_results_as_the_official_evaluator(check_pool):
    generations = {
        "sample_0": ["2", "f(1)", "3"],  # f(1) skipped: n = 2, c = 1
        "sample_1": ["f(1)", "5"],  # nothing passes: n goes back to 2, c = 0
        "sample_2": [],  # n = 0: pass@k is 1.0
        "sample_3": ["2.0", "print('x' * 5_000_000) or 2"],  # 2 == 2.0; output is swallowed
        "sample_99": ["ignored"],
    }
    score = score_output_predictions(generations, TASKS, pool=check_pool)
    assert score.results == {
        "sample_0": [True, False],
        "sample_1": [False, False],
        "sample_2": [],
        "sample_3": [True, True],
    }
    assert score.pass_at_1 == (0.5 + 0.0 + 1.0 + 1.0) / 4 * 100
    assert score.pass_at_5 == 100.0  # fewer than 5 wrong predictions: pass@5 is 1.0
    assert score.skipped == 2


def test_check_time_limit(check_pool):
    generations = {f"sample_{i}": ["2"] for i in range(4)}
    generations["sample_0"] = ["[x for x in iter(int, 1)]"]
    score = score_output_predictions(generations, TASKS, pool=check_pool, timeout=0.5)
    assert score.results["sample_0"] == [False]
    assert score.pass_at_1 == 75.0


def test_missing_sample_is_a_clear_error(check_pool):
    with pytest.raises(TaskFileError, match=r"generations lack 1 of 4 samples, e.g. 'sample_2'"):
        score_output_predictions(
            {"sample_0": [], "sample_1": [], "sample_3": []}, TASKS, pool=check_pool
        )


def test_bad_generations_file(tmp_path):
    path = tmp_path / "g.json"
    path.write_text('{"sample_0": ["1", 2]}')
    with pytest.raises(TaskFileError, match=r"g.json: 'sample_0' must be a list of strings"):
        load_generations(path)
    path.write_text("[1]")
    with pytest.raises(TaskFileError, match=r"expected a JSON object"):
        load_generations(path)


@pytest.mark.slow
def test_published_scores_of_the_official_sample_generations():
    """Set TOKENROLL_CRUXEVAL_REPO to a git clone of facebookresearch/cruxeval to run this."""
    repo = os.environ.get("TOKENROLL_CRUXEVAL_REPO")
    if not repo:
        pytest.skip("TOKENROLL_CRUXEVAL_REPO is not set")

    def show(path: str) -> dict:
        out = subprocess.run(
            ["git", "--git-dir", str(Path(repo)), "show", f"HEAD:{path}"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        return json.loads(out)

    name = "sample_codellama-7b_temp0.2_output"
    generations = show(f"samples/model_generations/{name}/generations.json")
    published = show(
        f"samples/evaluation_results/sample_scored_{name.removeprefix('sample_')}.json"
    )
    score = score_output_predictions(generations)
    assert score.results == published["raw_scored_generations"]
    assert (score.pass_at_1, score.pass_at_5) == (published["pass_at_1"], published["pass_at_5"])
