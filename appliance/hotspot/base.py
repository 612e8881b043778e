"""What every hotspot shares: the phones that joined, the capture, dead programs.

:class:`Hotspot` is the base of :class:`~appliance.hotspot.pi.PiHotspot` and
of the simulation's hotspot; the state machine sees only these methods (see
the package docstring).
"""
from __future__ import annotations

import dataclasses
import os

from .. import system
from ..capture import LiveCapture
from ..errors import HotspotError
from .settings import HotspotSettings


# -------------------------------------------------------------------- leases
@dataclasses.dataclass(frozen=True)
class Phone:
    """A device that took a DHCP lease on the hotspot."""

    mac: str
    ip: str
    hostname: str
    expires: int


def read_leases(path: str | os.PathLike) -> list[Phone]:
    """Reads dnsmasq's lease file ("expiry mac ip hostname client-id" lines).

    Args:
        path: the lease file.
    Returns:
        The phones, oldest lease first; an empty list when the file does not exist yet.
    """
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            lines = fh.read().splitlines()
    except FileNotFoundError:
        return []
    phones = []
    for line in lines:
        parts = line.split()
        if len(parts) < 4 or not parts[0].isdigit():
            continue
        phones.append(Phone(mac=parts[1].lower(), ip=parts[2], hostname="" if parts[3] == "*" else parts[3],
                            expires=int(parts[0])))
    return phones


# ------------------------------------------------------------------ hotspots
# Our own Python helpers (run as ``python -m MODULE``) as a user would name
# them in an error message.
_PROGRAM_NAMES = {"appliance.offline": "offline listener", "appliance.sim": "simulated internet"}


class Hotspot:
    """What :class:`PiHotspot` and the simulated hotspot share (see the package docstring)."""

    settings: HotspotSettings

    def __init__(self, settings: HotspotSettings):
        self.settings = settings
        self.ssid: str | None = None
        self.passphrase: str | None = None
        self.capture: LiveCapture | None = None
        self._lease_file: str | None = None
        # The programs this hotspot started (hostapd, dnsmasq...), newest last.
        self._daemons: list[system.Daemon] = []

    @property
    def daemons(self) -> list[system.Daemon]:
        """The hotspot's programs; the box's supervisor replaces a dead one in this very list."""
        return self._daemons

    @property
    def offline(self) -> bool:
        """True when the phone has no internet and the offline listeners answer."""
        return self.settings.offline

    @property
    def capture_path(self) -> str | None:
        """The pcap written by the running (or last) capture."""
        return self.capture.path if self.capture else None

    @property
    def capture_iface(self) -> str:
        """The interface the capture runs on (the hotspot side)."""
        return self.settings.ap_iface

    @property
    def netns(self) -> str | None:
        """The network namespace of the hotspot interface (None: this one)."""
        return None

    @classmethod
    def from_config(cls, cfg, **overrides):
        """Builds the hotspot from an :class:`appliance.config.Config` (a ``hotspot_factory``).

        Args:
            cfg: the configuration.
            overrides: HotspotSettings fields to set explicitly.
        Returns:
            The hotspot, not started.
        Raises:
            ConfigError: the settings are not usable.
        """
        return cls(HotspotSettings.from_config(cfg, **overrides))

    def problem(self) -> str | None:
        """Returns a plain message when a program of the hotspot has died, else None."""
        for daemon in self._daemons:
            if not daemon.running():
                name = system.Supervisor.name_of(daemon)
                return f"the hotspot's {_PROGRAM_NAMES.get(name, name)} program stopped"
        return None

    def joined_phones(self) -> list[Phone]:
        """Returns the phones that took a DHCP lease in this session."""
        return read_leases(self._lease_file) if self._lease_file else []

    def start_capture(self, path: str | os.PathLike, sink=None, **kwargs) -> LiveCapture:
        """Starts the live capture on the hotspot interface, writing ``path`` as it goes.

        Args:
            path: the pcap file to write.
            sink: called with each list of events, from the capture thread.
            kwargs: passed to :class:`appliance.capture.LiveCapture`.
        Returns:
            The running capture; call its ``stop()``.
        Raises:
            HotspotError: a capture is already running.
            CaptureOpenError: the interface cannot be captured.
        """
        if self.capture is not None and self.capture.running:
            raise HotspotError("a capture is already running")
        self.capture = LiveCapture(self.capture_iface, os.fspath(path), sink, netns=self.netns, **kwargs)
        self.capture.start()
        return self.capture

    def start(self, ssid: str, passphrase: str) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def stop(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
