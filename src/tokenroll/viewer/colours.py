"""Colours of the token tape, one scheme per column; the page's script applies the same rules.

Categorical columns use fixed palettes; advantages use a diverging scale around zero and
logprobs a sequential one. `mix` rounds exactly as the page's script does, so a colour
computed here is the colour the browser shows (the browser tests compare the two).
"""

from __future__ import annotations

import math
from typing import Any

MODES = ("role", "message", "sampled", "content", "loss", "advantage", "logprob")
"""The columns a tape can be coloured by, in the order the page offers them."""

MODE_LABELS = {
    "role": "role",
    "message": "message",
    "sampled": "sampled mask",
    "content": "is_content",
    "loss": "loss mask",
    "advantage": "advantage",
    "logprob": "logprob",
}

ROLE_COLOURS = {
    "system": "#e1d5f0",
    "developer": "#e1d5f0",
    "user": "#cfe3ff",
    "assistant": "#c9ecc9",
    "tool": "#ffe0b2",
    "ipython": "#ffe0b2",
}
OTHER_ROLE = "#f8d7e3"
SCAFFOLD = "#e6e6e6"
"""Template scaffolding: tokens that belong to no message."""
UNKNOWN = "#ffffff"
"""A token whose column is not recorded (a sample without prompt attribution)."""
NO_VALUE = "#f0f0f0"
"""Advantage and logprob of a token that was not sampled (prompt tokens have neither)."""

MESSAGE_PALETTE = (
    "#8dd3c7", "#ffffb3", "#bebada", "#fb8072", "#80b1d3", "#fdb462",
    "#b3de69", "#fccde5", "#bc80bd", "#ccebc5", "#ffed6f",
)
TRUE = "#8fd18a"
FALSE = "#e6e6e6"

NEGATIVE = "#ca0020"
NEUTRAL = "#f7f7f7"
POSITIVE = "#0571b0"
LOGPROB_HIGH = "#fcfbfd"
"""logprob 0: the model was sure."""
LOGPROB_LOW = "#54278f"
"""logprob at or below `LOGPROB_FLOOR`."""
LOGPROB_FLOOR = -10.0


def hex_rgb(colour: str) -> tuple[int, int, int]:
    """`#rrggbb` as three integers."""
    if len(colour) != 7 or colour[0] != "#":
        raise ValueError(f"expected a #rrggbb colour, got {colour!r}")
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def css_rgb(colour: str) -> str:
    """The colour as the browser reports a computed colour: `rgb(r, g, b)`."""
    if colour.startswith("rgb("):
        return colour
    r, g, b = hex_rgb(colour)
    return f"rgb({r}, {g}, {b})"


def mix(start: str, end: str, t: float) -> str:
    """The colour at `t` in [0, 1] from `start` to `end`, channels rounded half up (as `Math.round`)."""
    a, b = hex_rgb(start), hex_rgb(end)
    channels = [math.floor(x + (y - x) * t + 0.5) for x, y in zip(a, b)]
    return "rgb({}, {}, {})".format(*channels)


def role_colour(role: str | None) -> str:
    """Colour of a message role; None is scaffolding."""
    if role is None:
        return SCAFFOLD
    return ROLE_COLOURS.get(role, OTHER_ROLE)


def message_colour(index: int) -> str:
    """Colour of message `index` (cycling through the palette); -1 is scaffolding."""
    if index < 0:
        return SCAFFOLD
    return MESSAGE_PALETTE[index % len(MESSAGE_PALETTE)]


def bool_colour(value: bool | None) -> str:
    return UNKNOWN if value is None else TRUE if value else FALSE


def advantage_colour(value: float | None, scale: float) -> str:
    """Diverging: red below zero, blue above, saturated at `scale` (the trajectory's largest |advantage|)."""
    if value is None:
        return NO_VALUE
    t = min(1.0, abs(value) / scale) if scale > 0 else 0.0
    return mix(NEUTRAL, POSITIVE if value >= 0 else NEGATIVE, t)


def logprob_colour(value: float | None) -> str:
    """Sequential: pale at logprob 0, dark purple at `LOGPROB_FLOOR` and below."""
    if value is None:
        return NO_VALUE
    t = min(1.0, max(0.0, value / LOGPROB_FLOOR))
    return mix(LOGPROB_HIGH, LOGPROB_LOW, t)


def palette() -> dict[str, Any]:
    """Everything the page's script needs to colour tokens as the functions above do."""
    return {
        "modes": [[mode, MODE_LABELS[mode]] for mode in MODES],
        "roles": ROLE_COLOURS,
        "other_role": OTHER_ROLE,
        "scaffold": SCAFFOLD,
        "unknown": UNKNOWN,
        "no_value": NO_VALUE,
        "messages": list(MESSAGE_PALETTE),
        "true": TRUE,
        "false": FALSE,
        "negative": NEGATIVE,
        "neutral": NEUTRAL,
        "positive": POSITIVE,
        "logprob_high": LOGPROB_HIGH,
        "logprob_low": LOGPROB_LOW,
        "logprob_floor": LOGPROB_FLOOR,
    }
