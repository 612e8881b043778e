"""The box: the state machine that runs a check, and its rooms.

:mod:`.states` (State, Ev, Event), :mod:`.machine` (the transition table and
the App), :mod:`.session` (Stage, Session, Store), :mod:`.runtime` (clocks,
job runners, live counters), :mod:`.view` (screen, LEDs and words of each
state) and :mod:`.seams` (what the hotspot, its capture and the stick must
offer). The names below are the package's public face.
"""
from .machine import TRANSITIONS, App
from .runtime import Clock, FakeClock, LiveStats, SyncRunner, ThreadRunner
from .session import Outcome, Session, Stage, Store
from .states import ERROR_STATES, Ev, Event, State

__all__ = [
    "ERROR_STATES",
    "TRANSITIONS",
    "App",
    "Clock",
    "Ev",
    "Event",
    "FakeClock",
    "LiveStats",
    "Outcome",
    "Session",
    "Stage",
    "State",
    "Store",
    "SyncRunner",
    "ThreadRunner",
]
