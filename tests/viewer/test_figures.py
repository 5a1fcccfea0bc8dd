import pytest

from tokenroll.core.steps import Step
from tokenroll.core.trajectory import Trajectory
from tokenroll.viewer.figures import (
    Bar,
    bridge_figure,
    fmt,
    histogram,
    pass_at_k,
    pass_at_k_figure,
    run_figures,
    time_per_turn_figure,
)


def bars(figure):
    return [(b.label, b.value) for b in figure.bars]


def test_few_distinct_values_get_one_bar_each():
    assert histogram([1.0, 0.0, 1.0, 0.5]) == [
        Bar("0", 1.0, "0: 1"), Bar("0.5", 1.0, "0.5: 1"), Bar("1", 2.0, "1: 2"),
    ]
    assert histogram([]) == []


def test_many_values_are_binned_with_the_maximum_in_the_last_bin():
    values = [float(v) for v in range(21)]  # 0..20 over 4 bins of width 5
    result = histogram(values, bins=4)
    assert [(b.label, b.value) for b in result] == [("0", 5.0), ("5", 5.0), ("10", 5.0), ("15", 6.0)]
    assert result[-1].detail == "[15, 20]: 6"
    assert result[0].detail == "[0, 5): 5"


def test_fmt():
    assert (fmt(3.0), fmt(0.125), fmt(1 / 3), fmt(12345.678)) == ("3", "0.125", "0.3333", "1.235e+04")


def test_pass_at_k_is_the_unbiased_estimate():
    assert pass_at_k(4, 0, 1) == 0.0
    assert pass_at_k(4, 1, 1) == pytest.approx(0.25)
    assert pass_at_k(4, 1, 2) == pytest.approx(0.5)  # 1 - C(3,2)/C(4,2)
    assert pass_at_k(4, 3, 2) == 1.0


def test_sample_run_figures(sample_run):
    figures = {f.id: f for f in run_figures(sample_run.trajectories, sample_run.metadata, [515, 208, 208, 19, 0])}
    assert list(figures) == ["rewards", "pass-at-k", "stop-reasons", "turns", "tokens", "time-per-turn", "bridge"]
    assert bars(figures["rewards"]) == [("0", 2.0), ("0.5", 1.0), ("1", 1.0)]
    assert figures["rewards"].note == "1 rollout without a reward"
    assert bars(figures["pass-at-k"]) == [("pass@1", 0.375), ("pass@2", 0.5)]  # from metadata.json
    assert bars(figures["stop-reasons"]) == [("completed", 3.0), ("max_turns", 1.0), ("env_error", 1.0)]
    assert figures["stop-reasons"].note == "1 rollout ended with an error"
    assert bars(figures["turns"]) == [("1", 4.0), ("3", 1.0)]
    assert bars(figures["tokens"]) == [("0", 1.0), ("19", 1.0), ("208", 2.0), ("515", 1.0)]
    # multi: generation 1.5 s over 3 turns; the others' totals over 1 turn; chat has no timing
    assert bars(figures["time-per-turn"]) == [("0.5", 2.0), ("1", 1.0), ("2", 1.0)]
    assert bars(figures["bridge"]) == [("bridged", 1.0), ("length", 1.0)]
    assert figures["bridge"].title == "Bridge successes and fallbacks (2 attempts)"
    assert figures["bridge"].note == "drift checks: 0 of 1 stitched prompts differ from a full render (0 tokens)"


def test_pass_at_k_is_computed_from_rewards_without_metadata():
    rewards = {("a", 0): 1.0, ("a", 1): 0.0, ("b", 0): 0.0, ("b", 1): 0.0}
    trajectories = [Trajectory(example_id=e, rollout_index=k, reward=r) for (e, k), r in rewards.items()]
    figure = pass_at_k_figure(trajectories, {})
    assert bars(figure) == [("pass@1", 0.25), ("pass@2", 0.5)]
    assert figure.note.startswith("computed from 2 examples' rewards")


def test_bridge_and_time_figures_without_data():
    assert bridge_figure([Trajectory()], {}).bars == []
    assert time_per_turn_figure([Trajectory(steps=[Step(prompt_ids=[1], completion_ids=[])])]).note == (
        "no timings recorded"
    )
