"""What the App needs of its collaborators: the hotspot, its capture and the USB stick.

Typing Protocols, so the App calls these members directly instead of probing
for them. The real classes (:class:`appliance.hotspot.PiHotspot`,
``sim.hotspot.SimulatedHotspot``, :class:`appliance.capture.LiveCapture`,
:class:`appliance.usb.MtoolsStick` and :class:`~appliance.usb.MountedStick`),
the demo's replay hotspot and the tests' fakes all have them.
"""
from __future__ import annotations

import os
import pathlib
from collections.abc import Callable
from typing import Protocol

from ..system import Daemon
from .session import Outcome, Session


class Capture(Protocol):
    """A capture writing the session's pcap (capture.LiveCapture)."""

    path: str

    @property
    def running(self) -> bool:
        """False once the capture has stopped, asked to or not."""

    def stop(self) -> None:
        """Stops the capture; the last batches reach the sink before it returns."""


class Hotspot(Protocol):
    """The Wi-Fi the phone joins, with its capture (hotspot.PiHotspot, sim.hotspot.SimulatedHotspot)."""

    ssid: str | None
    passphrase: str | None
    capture: Capture | None  # None until start_capture

    @property
    def daemons(self) -> list[Daemon]:
        """The hotspot's programs; the box's supervisor replaces a dead one in this very list."""

    @property
    def offline(self) -> bool:
        """True when the phone has no internet and the offline listeners answer."""

    def start(self, ssid: str, passphrase: str) -> None:
        """Brings the hotspot up with these credentials."""

    def start_capture(self, path: str | os.PathLike, sink: Callable[[list], None] | None = None) -> Capture:
        """Starts capturing the hotspot's traffic into path; sink gets each batch of events."""

    def joined_phones(self) -> list:
        """The phones that took a DHCP lease in this session."""

    def problem(self) -> str | None:
        """A plain message when a program of the hotspot has died, else None."""

    def stop(self) -> None:
        """Stops everything the hotspot started (idempotent)."""


class Stick(Protocol):
    """A USB stick (usb.MtoolsStick, usb.MountedStick)."""

    label: str

    def read_text(self, name: str) -> str | None:
        """A small text file at the stick's top (None when absent)."""

    def export(self, folder: str | os.PathLike, name: str) -> None:
        """Copies a report folder onto the stick as name/ and checks the copy."""

    def eject(self) -> None:
        """Flushes and releases the stick."""


class Analyse(Protocol):
    """The analysis the App runs on a finished capture (check.analyse_with_report, or a fake)."""

    def __call__(self, capture: pathlib.Path, report_dir: pathlib.Path, session: Session) -> Outcome:
        """Analyses capture, writes the report folder report_dir, returns what the screen shows."""
