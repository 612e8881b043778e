"""What the box shows: the screen and the LED pattern of each state, and the words on them.

The words move to the text catalogue in a later step; until then they are
here, in one place.
"""
from __future__ import annotations

from .. import screens
from ..errors import ConfigError
from .session import Session, Stage
from .states import ERROR_STATES, State

S = State

# What the user reads for each error (title, message): calm, and how to go on.
ERROR_TEXT = {
    S.HOTSPOT_FAILED: ("Wi-Fi problem", "The Wi-Fi could not start. Press the button to try again."),
    S.CAPTURE_FAILED: ("Capture stopped", "The recording stopped. What was recorded is kept on the box."),
    S.ANALYSIS_FAILED: ("Check failed", "The traffic could not be checked. It is kept on the box."),
    S.CONFIG_FAILED: ("Settings ignored", "The settings file on the stick has a mistake. Old settings kept."),
    S.UPDATE_FAILED: screens.UPDATE_TEXT["signature"],  # the reason's own text is shown (screens.UPDATE_TEXT)
}
# An action that failed unexpectedly (a bug; see Ev.FAULT).
FAULT_TEXT = ("Problem", "Something went wrong. Press the button to start again.")
SETTINGS_UNUSABLE = "The settings file on the stick cannot be used. Old settings kept."
USB_TEXT = {
    "full": ("Stick is full", "No room on the stick. The report stays on the box: try another stick."),
    "readonly": ("Stick is locked", "It cannot be written. The report stays on the box: try another."),
    "pulled": ("Stick removed", "Removed too early. The report stays on the box: insert it again."),
    "mismatch": ("Copy failed", "The copy was not right. The report stays on the box: try again."),
    "unreadable": ("Stick not usable", "It cannot be used. The report stays on the box: try another."),
}

SCREEN_OF = {
    S.IDLE: "ready",
    S.HOTSPOT_STARTING: "starting",
    S.WAITING_FOR_PHONE: "hotspot",
    S.CAPTURING: "capturing",
    S.ANALYSING: "analysing",
    S.VERDICT: "verdict",
    S.WRITING_REPORT: "writing",
    S.SAFE_TO_REMOVE: "safe_to_remove",
    S.SHUTTING_DOWN: "shutdown",
}
LEDS_OF = {
    S.IDLE: "ready",
    S.HOTSPOT_STARTING: "starting",
    S.WAITING_FOR_PHONE: "waiting",
    S.CAPTURING: "capturing",
    S.ANALYSING: "analysing",
    S.WRITING_REPORT: "writing",
    S.SHUTTING_DOWN: "shutdown",
}

# While a verdict is known, the verdict and "insert USB" screens alternate.
VERDICT_ALTERNATE_S = 4.0


def screen(state: State, session: Session | None, verdict_shown_s: float) -> str:
    """Returns the name of the screen for a state.

    Args:
        state: the machine's state.
        session: the session in hand, if any.
        verdict_shown_s: seconds since the verdict was first shown.

    Returns:
        A screen name of :mod:`appliance.screens`.
    """
    if state in ERROR_STATES:
        return "error"
    if state is State.VERDICT and session and session.stage == Stage.REPORTED:
        phase = int(verdict_shown_s // VERDICT_ALTERNATE_S)
        return "verdict" if phase % 2 == 0 else "insert_usb"
    return SCREEN_OF[state]


def leds(state: State, session: Session | None) -> str:
    """Returns the LED pattern name for a state (the verdict's colour while it is in hand).

    Args:
        state: the machine's state.
        session: the session in hand, if any.

    Returns:
        A pattern name of :mod:`appliance.leds`.
    """
    if state in ERROR_STATES:
        if state is State.USB_FAILED and session and session.verdict:
            return session.verdict
        return "error"
    if state in (State.VERDICT, State.SAFE_TO_REMOVE):
        return session.verdict if session and session.verdict else "ready"
    return LEDS_OF[state]


def reason_for(verdict: str, alerts) -> str:
    """Returns the one short line shown under the verdict.

    Args:
        verdict: green, amber or red.
        alerts: the analysis alerts (most serious first).

    Returns:
        A few plain words.
    """
    if verdict == "red":
        fams = [a.family for a in alerts if a.family and a.level == "high"]
        return f"Known stalkerware: {fams[0]}" if fams else "Contacts known stalkerware servers"
    if verdict == "amber":
        return "Unusual traffic: see the report"
    return "No known stalkerware seen"


def short_config_message(exc: ConfigError) -> str:
    """The screen's message for a bad stick config: the key named, no path.

    Args:
        exc: the configuration error.

    Returns:
        One short line.
    """
    text = str(exc)
    key = text.split("'")[1] if text.count("'") >= 2 else ""
    if key:
        return f"Mistake at '{key}'. Old settings kept."
    return ERROR_TEXT[State.CONFIG_FAILED][1]
