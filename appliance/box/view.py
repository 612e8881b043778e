"""What the box shows: the screen and the LED pattern of each state, and which words go on them.

The words themselves are in the text catalogue (:mod:`appliance.text`); the
box keeps a :data:`Problem` (which message, with its values) and turns it into
words only when it draws, in the configured language.
"""
from __future__ import annotations

from .. import text
from ..errors import ConfigError
from .session import Session, Stage
from .states import ERROR_STATES, State

S = State

# (catalogue group, key, values to format the message with): see appliance.text.problem.
Problem = tuple[str, str, dict]

# What the user reads when a step fails: calm, and how to go on.
STATE_PROBLEMS: dict[State, Problem] = {
    S.HOTSPOT_FAILED: ("state", "hotspot_failed", {}),
    S.CAPTURE_FAILED: ("state", "capture_failed", {}),
    S.ANALYSIS_FAILED: ("state", "analysis_failed", {}),
    S.CONFIG_FAILED: ("state", "config_failed", {}),
    S.UPDATE_FAILED: ("update", "signature", {}),  # the refusal's own reason is shown when known
}
# An action that failed unexpectedly (a bug; see Ev.FAULT).
FAULT: Problem = ("state", "fault", {})
SETTINGS_UNUSABLE: Problem = ("settings", "unusable", {})


def stick_problem(kind: str) -> Problem:
    """Returns the problem shown for a stick that failed (UsbError.kind; anything else is 'unreadable')."""
    return ("usb", kind if kind in text.problem_keys("usb") else "unreadable", {})


def update_problem(reason: str) -> Problem:
    """Returns the problem shown for a refused indicator update (UpdateError.reason)."""
    return ("update", reason, {}) if reason in text.problem_keys("update") else STATE_PROBLEMS[S.UPDATE_FAILED]


def config_problem(exc: ConfigError) -> Problem:
    """Returns the problem shown for a bad stick configuration: the key named, no path.

    Args:
        exc: the configuration error.

    Returns:
        The settings problem naming the key, or the general one.
    """
    message = str(exc)
    key = message.split("'")[1] if message.count("'") >= 2 else ""
    return ("settings", "mistake_at", {"key": key}) if key else STATE_PROBLEMS[S.CONFIG_FAILED]


def words(problem: Problem | None, lang: str) -> tuple[str, str]:
    """Returns the (title, message) of a problem in a language ('' and '' for none).

    Args:
        problem: what went wrong, or None.
        lang: the configured language (one the box lacks gives English).

    Returns:
        The title and the message, as the error screen shows them.
    """
    if problem is None:
        return "", ""
    group, key, values = problem
    title, message = text.problem(lang, group, key)
    return title, message.format(**values)


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


def reason_for(verdict: str, alerts, lang: str = "en", conclusive: bool = True) -> str:
    """Returns the one short line shown under the verdict.

    Args:
        verdict: green, amber or red.
        alerts: the analysis alerts (most serious first).
        lang: the configured language.
        conclusive: False when an amber verdict only means "not enough
            traffic to tell" (report coverage.conclusive).

    Returns:
        A few plain words.
    """
    reasons = text.oled(lang)["reasons"]
    if verdict == "amber" and not conclusive:
        return reasons["thin"]
    if verdict == "red":
        fams = [a.family for a in alerts if a.family and a.level == "high"]
        return reasons["red_family"].format(family=fams[0]) if fams else reasons["red"]
    return reasons["amber"] if verdict == "amber" else reasons["green"]
