"""The LED patterns, all in one table.

The box has a green and a red LED. Verdicts are steady lights; busy states
blink green; anything needing the user's attention blinks red. The verdict lights stay on through the USB steps (insert,
writing excepted, safe to remove) so the answer is never lost.

Amber is shown as BOTH LEDs steadily on. Reasons: a two-colour LED package
really looks amber with both dies lit; with two separate LEDs "both on" is
still clearly different from either alone; and a steady light stays calm,
whereas a blinking red would read as an alarm, which amber is not.

Each entry is ``(green, red)``; each of those is ``OFF``, ``ON`` or a
``Blink(on_s, off_s)``.
"""
from __future__ import annotations

from typing import NamedTuple


class Blink(NamedTuple):
    """A blink: seconds on, seconds off, repeated."""

    on_s: float
    off_s: float


OFF = "off"
ON = "on"

FAST = Blink(0.15, 0.15)  # working hard: starting, analysing
SLOW = Blink(0.5, 0.5)  # waiting for the user or a phone
PULSE = Blink(0.1, 1.9)  # alive, recording
HEARTBEAT = Blink(0.05, 2.95)  # idle, ready

PATTERNS: dict[str, tuple] = {
    "ready": (HEARTBEAT, OFF),
    "starting": (FAST, OFF),
    "waiting": (SLOW, OFF),
    "capturing": (PULSE, OFF),
    "analysing": (FAST, OFF),
    "green": (ON, OFF),
    "amber": (ON, ON),
    "red": (OFF, ON),
    "writing": (FAST, FAST),  # both busy: a stick is being written, do not pull it
    "error": (OFF, SLOW),
    "shutdown": (OFF, OFF),
}


def pattern(name: str) -> tuple:
    """Returns the (green, red) pattern for a name in PATTERNS.

    Args:
        name: a state's or verdict's pattern name.

    Returns:
        The (green, red) pair.

    Raises:
        KeyError: unknown pattern name.
    """
    return PATTERNS[name]
