"""The state machine's vocabulary: its states, its events, and an event with its data.

They live below :mod:`.machine` (the table and the App) and :mod:`.view` (the
screen and LEDs of each state) so that both can name states without importing
each other.
"""
from __future__ import annotations

import dataclasses
import enum


class State(enum.Enum):
    """Where the box is in a session."""

    IDLE = "idle"
    HOTSPOT_STARTING = "hotspot_starting"
    WAITING_FOR_PHONE = "waiting_for_phone"
    CAPTURING = "capturing"
    ANALYSING = "analysing"
    VERDICT = "verdict"
    WRITING_REPORT = "writing_report"
    SAFE_TO_REMOVE = "safe_to_remove"
    SHUTTING_DOWN = "shutting_down"
    # error states: each shows its message; a press goes back to idle
    HOTSPOT_FAILED = "hotspot_failed"
    CAPTURE_FAILED = "capture_failed"
    ANALYSIS_FAILED = "analysis_failed"
    USB_FAILED = "usb_failed"
    CONFIG_FAILED = "config_failed"
    UPDATE_FAILED = "update_failed"


ERROR_STATES = frozenset({State.HOTSPOT_FAILED, State.CAPTURE_FAILED, State.ANALYSIS_FAILED, State.USB_FAILED,
                          State.CONFIG_FAILED, State.UPDATE_FAILED})


class Ev(enum.Enum):
    """Everything that can happen."""

    PRESS = "press"  # short button press
    HOLD = "hold"  # button held for 3 s
    TICK = "tick"  # timer, every TICK_SECONDS
    HOTSPOT_UP = "hotspot_up"
    HOTSPOT_FAILED = "hotspot_failed"
    PHONE_JOINED = "phone_joined"  # a DHCP lease appeared
    PROCESS_EXITED = "process_exited"  # hostapd/dnsmasq/the capture died
    TIME_UP = "time_up"  # the capture reached its maximum duration
    STORAGE_FULL = "storage_full"  # the box's storage is nearly full: the capture must stop
    CAPTURE_DONE = "capture_done"  # capture stopped, pcap complete
    CAPTURE_FAILED = "capture_failed"
    ANALYSIS_DONE = "analysis_done"
    ANALYSIS_FAILED = "analysis_failed"
    USB_INSERTED = "usb_inserted"
    USB_REMOVED = "usb_removed"
    WRITE_DONE = "write_done"
    WRITE_FAILED = "write_failed"
    # An action raised unexpectedly (a bug): App.dispatch applies this event's
    # transition at once, from the state the failed action started in.
    FAULT = "fault"


@dataclasses.dataclass
class Event:
    """An event and its data (e.g. the stick, an error message)."""

    kind: Ev
    data: dict = dataclasses.field(default_factory=dict)
