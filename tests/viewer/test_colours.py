import pytest

from tokenroll.viewer import colours
from tokenroll.viewer.colours import (
    advantage_colour,
    bool_colour,
    css_rgb,
    logprob_colour,
    message_colour,
    mix,
    role_colour,
)


def test_css_rgb_is_how_the_browser_reports_a_colour():
    assert css_rgb("#8fd18a") == "rgb(143, 209, 138)"
    assert css_rgb("rgb(1, 2, 3)") == "rgb(1, 2, 3)"
    with pytest.raises(ValueError, match="#rrggbb"):
        css_rgb("red")


def test_mix_rounds_half_up_like_math_round():
    assert mix("#000000", "#ffffff", 0.5) == "rgb(128, 128, 128)"  # 127.5 rounds up
    assert mix("#000000", "#030303", 0.5) == "rgb(2, 2, 2)"  # 1.5 rounds up
    assert mix("#102030", "#ffffff", 0.0) == "rgb(16, 32, 48)"
    assert mix("#102030", "#ffffff", 1.0) == "rgb(255, 255, 255)"


def test_advantage_scale_diverges_around_zero_and_saturates_at_the_scale():
    assert advantage_colour(0.0, 0.5) == css_rgb(colours.NEUTRAL)
    assert advantage_colour(0.5, 0.5) == css_rgb(colours.POSITIVE)
    assert advantage_colour(-2.0, 0.5) == css_rgb(colours.NEGATIVE)
    # halfway from #f7f7f7 to #ca0020: (247+202)/2=224.5, (247+0)/2=123.5, (247+32)/2=139.5
    assert advantage_colour(-0.25, 0.5) == "rgb(225, 124, 140)"
    assert advantage_colour(1.0, 0.0) == css_rgb(colours.NEUTRAL)
    assert advantage_colour(None, 0.5) == colours.NO_VALUE


def test_logprob_scale_runs_from_pale_at_zero_to_dark_at_the_floor():
    assert logprob_colour(0.0) == css_rgb(colours.LOGPROB_HIGH)
    assert logprob_colour(-10.0) == css_rgb(colours.LOGPROB_LOW)
    assert logprob_colour(-50.0) == css_rgb(colours.LOGPROB_LOW)
    # a quarter of the way from #fcfbfd to #54278f: 252-42=210, 251-53=198, 253-27.5=225.5
    assert logprob_colour(-2.5) == "rgb(210, 198, 226)"
    assert logprob_colour(None) == colours.NO_VALUE


def test_categorical_colours():
    assert role_colour("user") == colours.ROLE_COLOURS["user"]
    assert role_colour("narrator") == colours.OTHER_ROLE
    assert role_colour(None) == colours.SCAFFOLD
    assert message_colour(-1) == colours.SCAFFOLD
    assert message_colour(1) == colours.MESSAGE_PALETTE[1]
    assert message_colour(len(colours.MESSAGE_PALETTE)) == colours.MESSAGE_PALETTE[0]
    assert (bool_colour(True), bool_colour(False), bool_colour(None)) == (colours.TRUE, colours.FALSE, colours.UNKNOWN)
    assert colours.TRUE != colours.FALSE


def test_palette_offers_every_mode_in_order():
    assert [mode for mode, _label in colours.palette()["modes"]] == [
        "role", "message", "sampled", "content", "loss", "advantage", "logprob",
    ]
