"""Fakes for what cannot exist on a development machine: the radio (hotspot).

The button, LEDs and OLED are NOT faked here: tests use the real gpiozero and
luma classes on MockFactory pins and the dummy display (appliance.hw with
fake=True). The USB stick is a real FAT image written with mtools.
"""
from __future__ import annotations

import hashlib
import pathlib
import shutil
from typing import ClassVar

from appliance import box, check, config, hw
from appliance.errors import HotspotError
from appliance.sim.demo import ReplayHotspot

# A minimal valid pcap: global header only (Ethernet link type).
PCAP_HEADER = bytes.fromhex("d4c3b2a1020004000000000000000000ffff000001000000")
# One 60-byte Ethernet frame record, so that a capture has content.
PCAP_RECORD = (
    (1_800_000_000).to_bytes(4, "little") + bytes(4) + (60).to_bytes(4, "little") * 2 + bytes(60)
)


class FakeCapture:
    """Stands in for capture.LiveCapture: writes a pcap, can die on demand."""

    def __init__(self, path, source=None):
        self.path = str(path)
        self.running = True
        self.source = source
        pathlib.Path(path).write_bytes(PCAP_HEADER + PCAP_RECORD)

    def stop(self):
        """Ends the capture; the file gets the source capture's packets if one was given."""
        if self.source is not None:
            shutil.copyfile(self.source, self.path)
        self.running = False


class FakeHotspot:
    """The box's Hotspot seam (appliance.box.seams) without a radio: phones join when the test says so."""

    instances: ClassVar[list] = []

    def __init__(self, cfg, *, fail=False, source=None):
        self.cfg = cfg
        self.fail = fail
        self.source = source
        self.ssid = self.passphrase = None
        self.phones = []
        self.capture = None
        self._daemons = []  # as on the real Hotspot; a test may put real programs here
        self.started = self.stopped = False
        FakeHotspot.instances.append(self)

    def start(self, ssid, passphrase):
        """Records the credentials (or fails like a missing radio would)."""
        if self.fail:
            raise HotspotError("hostapd: could not configure driver mode")
        self.ssid, self.passphrase = ssid, passphrase
        self.started = True

    def start_capture(self, path, sink=None):
        """Starts the fake capture writing `path`."""
        self.capture = FakeCapture(path, self.source)
        return self.capture

    def joined_phones(self):
        """The phones the test made join."""
        return list(self.phones)

    @property
    def offline(self):
        """Offline when the test's configuration names no uplink interface (as HotspotSettings decides)."""
        return not self.cfg.uplink.interface

    @property
    def daemons(self):
        """The programs the test started for this hotspot (none unless it says so)."""
        return self._daemons

    def problem(self):
        """A fake radio never loses a program: always None."""

    def stop(self):
        """Idempotent stop."""
        self.stopped = True


def fake_analyse(verdict="green", reason="No known stalkerware seen", fail=None):
    """Returns an analyse callable writing a small report folder with a manifest."""

    def analyse(capture, report_dir, session):
        if fail is not None:
            raise fail
        report_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(capture, report_dir / "capture.pcap")
        (report_dir / "report.json").write_text(f'{{"verdict": "{verdict}", "session": "{session.id}"}}\n')
        (report_dir / "report.html").write_text(f"<html><body>{verdict}</body></html>\n")
        lines = []
        for p in sorted(report_dir.iterdir()):
            lines.append(f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.name}")
        (report_dir / "MANIFEST.sha256").write_text("\n".join(lines) + "\n")
        return box.Outcome(verdict, reason, 0 if verdict == "green" else 3)

    return analyse


def make_app(tmp_path, *, cfg_text="", hotspot_kw=None, analyse=None, hold_time=0.05, start=True):
    """Builds an App on MockFactory pins + dummy OLED with a fake clock and radio.

    Returns:
        (app, hardware, clock, frames) where frames lists (screen, image) shown.
    """
    layer = config.parse_text(cfg_text + f"\ndata_dir: {tmp_path / 'data'}\n")
    cfg = config.combine([(layer, "test")])
    clock = box.FakeClock()
    holder = {}
    hardware = hw.build(cfg, fake=True, on_event=lambda n: holder["app"].on_hw_event(n), hold_time=hold_time)
    frames = []
    hardware.frame_listeners.append(lambda screen, img: frames.append((screen, img.copy())))
    power = []
    a = box.App(
        cfg,
        hardware,
        lambda c: FakeHotspot(c, **(hotspot_kw or {})),
        analyse or fake_analyse(),
        clock=clock,
        runner=box.SyncRunner(),
        power_off=lambda: power.append(clock.now),
        new_credentials=lambda: ("Livebox-8C1E", "abcdefghjkmn"),
        ioc_date=lambda: "2026-11-20",
    )
    a.power_log = power
    holder["app"] = a
    if start:
        a.start()
    return a, hardware, clock, frames


def replay_app(tmp_path, kind, *, clock=None, cfg_text="", minutes=None):
    """An App (not started) with the real analysis and report over a replayed phone capture.

    Args:
        kind: the ReplayHotspot traffic, "stalkerware" or "clean".
        clock: the FakeClock to share (a new one by default).
        cfg_text: extra configuration YAML.
        minutes: how long the replayed traffic lasts (ReplayHotspot's default if None).

    Returns:
        (app, hardware).
    """
    cfg = config.combine([(config.parse_text(cfg_text + f"\ndata_dir: {tmp_path / 'data'}\n"), "test")])
    clock = clock or box.FakeClock()
    holder = {}
    hardware = hw.build(cfg, fake=True, on_event=lambda n: holder["app"].on_hw_event(n))
    replay = {} if minutes is None else {"minutes": minutes}
    a = box.App(cfg, hardware, lambda c: ReplayHotspot(kind, clock.wall(), **replay),
                   lambda cap, rep, s: check.analyse_with_report(cap, rep, s, cfg=cfg),
                   clock=clock, new_credentials=lambda: ("Livebox-8C1E", "abcdefghjkmn"))
    holder["app"] = a
    return a, hardware


def capture_for(a, seconds, *, stop=True):
    """Drives a started App through a check: press, the phone joins, `seconds` of capture, press (verdict)."""
    a.post(box.Ev.PRESS)
    a.pump()
    a.hotspot.joined = True
    a.tick()
    a.tick(seconds)
    if stop:
        a.post(box.Ev.PRESS)
        a.pump()
