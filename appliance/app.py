"""The demo: two checks end to end on simulated hardware (``pocketcheck demo``).

What is left of the old ``app.py`` once the box moved to :mod:`appliance.box`,
:mod:`appliance.check` and :mod:`appliance.commands.run`; this section moves
to ``appliance/sim/demo.py``.
"""
from __future__ import annotations

import logging
import os
import pathlib
import shutil
import time

from . import config as config_mod
from . import screens
from .box import App, Ev, FakeClock, LiveStats, State, SyncRunner
from .check import analyse_with_report, ioc_set_date
from .errors import PocketcheckError

log = logging.getLogger(__name__)


# ======================================================================= demo
# The demo drives the real App, on gpiozero MockFactory pins and luma's dummy
# display, through two sessions. The network is G2's simulation (network
# namespaces, real dnsmasq/nftables, simulated phones) when this machine allows
# it; otherwise a replay: a capture of the same kind of phone traffic is built
# here and fed through the same live counters, analysis and report.

DEMO_PHONE_MAC = "02:70:63:00:00:0a"
DEMO_PHONE_IP = "10.23.0.10"
DEMO_BOX_MAC = "02:70:63:00:00:01"
DEMO_BOX_IP = "10.23.0.1"
CLEAN_NAMES = ("www.wikipedia.org", "www.bbc.co.uk", "www.google.com", "www.apple.com", "api.weather.com",
               "www.openstreetmap.org", "news.ycombinator.com", "www.gov.uk")


def _csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _ipv4(src: str, dst: str, proto: int, payload: bytes, ident: int) -> bytes:
    import socket
    import struct

    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident & 0xFFFF, 0x4000, 64, proto, 0,
                      socket.inet_aton(src), socket.inet_aton(dst))
    hdr = hdr[:10] + _csum(hdr).to_bytes(2, "big") + hdr[12:]
    return hdr + payload


def _l4(src: str, dst: str, proto: int, seg: bytes) -> bytes:
    import socket

    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + bytes([0, proto]) + len(seg).to_bytes(2, "big")
    c = _csum(pseudo + seg)
    at = 6 if proto == 17 else 16
    return seg[:at] + c.to_bytes(2, "big") + seg[at + 2:]


def _udp(src, sport, dst, dport, payload, ident) -> bytes:
    import struct

    seg = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    return _ipv4(src, dst, 17, _l4(src, dst, 17, seg), ident)


def _tcp(src, sport, dst, dport, seq, ack, flags, payload, ident) -> bytes:
    import struct

    seg = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0) + payload
    return _ipv4(src, dst, 6, _l4(src, dst, 6, seg), ident)


def build_replay_capture(kind: str, path: str | os.PathLike, t0: float, minutes: float = 6.0,
                         names: list[str] | None = None) -> list[str]:
    """Writes a pcap of one phone's traffic on the hotspot (the demo's replay mode).

    The phone resolves names through the box (DNS) and opens TLS connections
    with the name in the ClientHello (SNI), spread over `minutes`. A
    "stalkerware" phone also checks in with C2 names from the shipped
    indicator set every minute; a "clean" phone visits ordinary sites at
    irregular times.

    Args:
        kind: "clean" or "stalkerware".
        path: the pcap to write.
        t0: the first packet's time (epoch seconds).
        minutes: how long the traffic spans.
        names: the C2 names (default: picked from the indicator set).

    Returns:
        The names the phone contacted.
    """
    import random
    import struct

    from . import netsim

    rng = random.Random(7 if kind == "clean" else 11)
    visits: list[tuple[float, str]] = []
    span = minutes * 60
    for i, name in enumerate(CLEAN_NAMES):
        visits.append((5 + i * span / len(CLEAN_NAMES) + rng.uniform(0, 20), name))
    if kind == "stalkerware":
        c2 = names or netsim.stalkerware_names(2, seed=3)
        for k in range(int(minutes)):
            for j, name in enumerate(c2):
                visits.append((30 + k * 60 + j * 2.0, name))
    visits.sort()
    phone_mac = bytes.fromhex(DEMO_PHONE_MAC.replace(":", ""))
    box_mac = bytes.fromhex(DEMO_BOX_MAC.replace(":", ""))
    frames: list[tuple[float, bytes]] = []
    ident = 1

    def eth(src_mac, dst_mac, ip_packet):
        return dst_mac + src_mac + b"\x08\x00" + ip_packet

    def up(t, pkt):
        frames.append((t, eth(phone_mac, box_mac, pkt)))

    def down(t, pkt):
        frames.append((t, eth(box_mac, phone_mac, pkt)))

    for n, (dt, name) in enumerate(visits):
        t = t0 + dt
        ident += 4
        query = netsim.dns_query(name, qid=(n * 7919) & 0xFFFF)
        sport = 40000 + n
        up(t, _udp(DEMO_PHONE_IP, sport, DEMO_BOX_IP, 53, query, ident))
        down(t + 0.02, _udp(DEMO_BOX_IP, 53, DEMO_PHONE_IP, sport, netsim.dns_answer(query), ident + 1))
        server = netsim.fake_address(name)
        cport = 50000 + n
        hello = netsim.client_hello(name, alpn=b"http/1.1", quic=False)
        record = b"\x16\x03\x01" + struct.pack("!H", len(hello)) + hello
        isn, ssn = 1000 + n * 100, 5000 + n * 100
        up(t + 0.05, _tcp(DEMO_PHONE_IP, cport, server, 443, isn, 0, 0x02, b"", ident + 2))
        down(t + 0.08, _tcp(server, 443, DEMO_PHONE_IP, cport, ssn, isn + 1, 0x12, b"", ident + 3))
        up(t + 0.09, _tcp(DEMO_PHONE_IP, cport, server, 443, isn + 1, ssn + 1, 0x10, b"", ident + 4))
        up(t + 0.10, _tcp(DEMO_PHONE_IP, cport, server, 443, isn + 1, ssn + 1, 0x18, record, ident + 5))
        ident += 2
    frames.sort(key=lambda f: f[0])
    with open(path, "wb") as fh:
        fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for t, frame in frames:
            sec = int(t)
            fh.write(struct.pack("<IIII", sec, int((t - sec) * 1e6), len(frame), len(frame)))
            fh.write(frame)
    return [n for _, n in visits]


class _ReplayCapture:
    """What capture.LiveCapture offers the app: a path, running, stop()."""

    def __init__(self, path: str):
        self.path = path
        self.running = True

    def stop(self) -> None:
        self.running = False


class ReplayHotspot:
    """A hotspot stand-in that replays a built capture (demo without namespaces).

    Args:
        kind: "clean" or "stalkerware".
        t0: the capture's start time.
        minutes: how long the built traffic spans.
    """

    def __init__(self, kind: str, t0: float, minutes: float = 6.0):
        self.kind = kind
        self.t0 = t0
        self.minutes = minutes
        self.ssid = self.passphrase = None
        self.capture = None
        self.joined = False
        self.offline = False
        self.daemons: list = []  # no programs run: nothing for the box's supervisor to restart

    def start(self, ssid: str, passphrase: str) -> None:
        """Records the credentials (no radio)."""
        self.ssid, self.passphrase = ssid, passphrase

    def start_capture(self, path, sink=None):
        """Writes the phone's capture and feeds its events to the live counters."""
        build_replay_capture(self.kind, path, self.t0, self.minutes)
        if sink is not None:
            from .native import Reader

            with Reader.open_file(str(path)) as reader:
                for batch in reader.batches():
                    sink(batch)
        self.capture = _ReplayCapture(str(path))
        return self.capture

    def joined_phones(self) -> list:
        """The one phone, once the demo script has made it join."""
        return [DEMO_PHONE_MAC] if self.joined else []

    def problem(self) -> str | None:
        """Nothing can die in a replay."""
        return None

    def stop(self) -> None:
        """Nothing to stop."""
        if self.capture is not None:
            self.capture.stop()


def _netns_possible() -> str | None:
    """Returns None when the namespace simulation can run here, else why not."""
    if os.geteuid() != 0:
        return "not root"
    from . import system

    for prog in ("ip", "dnsmasq", "nft", "busybox", "bridge"):
        if system.which(prog) is None:
            return f"{prog} is not installed"
    try:
        system.run(["ip", "netns", "add", f"pcprobe-{os.getpid()}"], timeout=10)
        system.run(["ip", "netns", "del", f"pcprobe-{os.getpid()}"], timeout=10)
    except PocketcheckError as exc:
        return f"network namespaces unavailable ({exc})"
    return None


def run_demo(out: pathlib.Path, mode: str = "auto", quiet: bool = False, stream=None) -> list[dict]:
    """Runs two sessions end to end on simulated hardware; leaves reports and screens in `out`.

    Output: ``out/oled/NNN-<screen>.png`` (every frame shown, in order, with
    4x previews in ``out/oled/4x/``), ``out/usb/<session>/`` (the report
    folders as read back from each stick image), ``out/sticks/*.img`` and
    ``out/box/`` (the box's data folder).

    Args:
        out: output folder (created; an existing demo output is replaced).
        mode: "netns", "replay" or "auto" (netns when possible).
        quiet: do not print the screen previews.
        stream: where to print (default stdout).

    Returns:
        One dict per session: kind, verdict, reason, session id, report folder.

    Raises:
        PocketcheckError: netns mode was asked for but cannot run, or a step failed.
    """
    import sys

    from . import hw, usb

    stream = stream or sys.stdout

    def say(text: str = "") -> None:
        print(text, file=stream, flush=True)

    why_not = _netns_possible() if mode in ("auto", "netns") else "replay asked for"
    if mode == "netns" and why_not:
        raise PocketcheckError(f"the network simulation cannot run here: {why_not}")
    use_netns = why_not is None
    for sub in ("oled", "usb", "sticks", "box"):
        if (out / sub).exists():
            shutil.rmtree(out / sub)
    (out / "oled" / "4x").mkdir(parents=True)
    (out / "usb").mkdir()
    (out / "sticks").mkdir()
    layer = config_mod.parse_text(f"data_dir: {(out / 'box').resolve()}\n", "demo settings")
    cfg = config_mod.combine([(layer, "demo settings")])
    clock = FakeClock(time.time())
    say("pocketcheck demo")
    if use_netns:
        say("mode: NETWORK SIMULATION - namespaces with real dnsmasq and nftables, simulated phones, live capture")
    else:
        say(f"mode: REPLAY - built phone captures fed through the same analysis (no namespaces: {why_not})")
    say("hardware: gpiozero MockFactory pins and luma dummy display; the clock is simulated")
    say("")

    counter = [0]

    def on_frame(screen_name: str, img) -> None:
        counter[0] += 1
        name = f"{counter[0]:03d}-{screen_name}"
        img.save(out / "oled" / f"{name}.png")
        img.convert("L").resize((img.width * 4, img.height * 4), resample=0).save(out / "oled" / "4x" / f"{name}.png")
        if not quiet:
            say(f"[screen {name}]")
            say(screens.text_preview(img))

    holder: dict = {}
    hardware = hw.build(cfg, fake=True, on_event=lambda n: holder["app"].on_hw_event(n))
    hardware.frame_listeners.append(on_frame)
    from gpiozero import Device

    button = Device.pin_factory.pin(cfg.pins.button)
    kinds = ["clean", "stalkerware"]
    current: dict = {}

    def hotspot_factory(c):
        if use_netns:
            from . import netsim

            hs = netsim.SimulatedHotspot(offline=False)
        else:
            hs = ReplayHotspot(current["kind"], clock.wall())
        current["hs"] = hs
        return hs

    def live():
        from .analysis import Analyzer

        return LiveStats(Analyzer())

    app = App(cfg, hardware, hotspot_factory, lambda c, r, s: analyse_with_report(c, r, s, cfg=cfg),
              clock=clock, runner=SyncRunner(), power_off=lambda: None, live_stats=live, ioc_date=ioc_set_date)
    holder["app"] = app

    def press() -> None:
        button.drive_low()
        button.drive_high()
        deadline = time.monotonic() + 5
        while app.events.empty() and time.monotonic() < deadline:
            time.sleep(0.01)
        app.pump()

    results = []
    app.start()
    try:
        for n, kind in enumerate(kinds, 1):
            current["kind"] = kind
            say(f"--- session {n}: a {'clean phone' if kind == 'clean' else 'phone with stalkerware'} ---")
            press()
            if app.state is not State.WAITING_FOR_PHONE:
                raise PocketcheckError(f"the hotspot did not start ({app.error[1] or app.state.value})")
            hs = current["hs"]
            say(f"hotspot up: {hs.ssid} / {hs.passphrase}")
            phone = None
            if use_netns:
                phone = hs.run_phone(kind, rounds=3, interval=1.0, seed=n)
            else:
                hs.joined = True
            app.tick()
            if app.state is not State.CAPTURING:
                raise PocketcheckError("the phone did not join")
            # six simulated minutes of capture: one tick is 30 s of the fake clock
            for _ in range(12):
                app.tick(30)
                if use_netns:
                    time.sleep(0.5)
            if phone is not None:
                phone.wait(timeout=120)
            press()  # stop the capture -> analysis -> verdict
            if app.state is not State.VERDICT:
                raise PocketcheckError(f"no verdict ({app.error[1] or app.state.value})")
            s = app.session
            say(f"verdict: {s.verdict.upper()} - {s.reason}")
            for _ in range(18):  # the verdict and "insert USB" screens alternate
                app.tick(0.5)
            stick_img = usb.make_image(out / "sticks" / f"stick-{n}.img", 16384, label=f"STICK{n}")
            stick = usb.MtoolsStick(stick_img, label=f"stick {n}")
            app.post(Ev.USB_INSERTED, stick=stick)
            app.pump()
            if app.state is not State.SAFE_TO_REMOVE:
                raise PocketcheckError(f"the report was not written to the stick ({app.error[1]})")
            for sid in stick.list_reports():
                dest = stick.read_back(sid, out / "usb" / sid)
                results.append({"kind": kind, "verdict": s.verdict, "reason": s.reason, "session": sid,
                                "report": str(dest)})
            app.post(Ev.USB_REMOVED)
            app.pump()
            clock.advance(60)
            say("")
    finally:
        hs = current.get("hs")
        if hs is not None:
            try:
                hs.stop()
            except (PocketcheckError, OSError) as exc:
                log.warning("stopping the simulation: %s", exc)
        hardware.close()
    say("=== verdicts ===")
    for r in results:
        say(f"{r['kind']:12s} {r['verdict'].upper():6s} {r['reason']}  ->  {r['report']}")
    say(f"screens: {out / 'oled'} ({counter[0]} frames)")
    return results


__all__ = ["ReplayHotspot", "build_replay_capture", "run_demo"]
