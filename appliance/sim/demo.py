"""The demo (``pocketcheck demo``): the real App through two sessions, on simulated hardware.

The App runs on gpiozero MockFactory pins and luma's dummy display. The
network is the namespace simulation (:mod:`appliance.sim.hotspot`: real
dnsmasq/nftables, simulated phones, live capture) when this machine allows
it; otherwise a replay: a capture of the same kind of phone traffic is built
here (:func:`build_replay_capture`) and fed through the same live counters,
analysis and report.
"""
from __future__ import annotations

import logging
import os
import pathlib
import random
import shutil
import sys
import time

from .. import config as config_mod
from .. import hw, screens, system, usb
from ..analysis import Analyzer
from ..box import App, Ev, FakeClock, LiveStats, State, SyncRunner
from ..check import analyse_with_report, ioc_set_date
from ..errors import PocketcheckError
from ..native import Reader
from . import internet, packets
from .hotspot import SimulatedHotspot
from .phone import stalkerware_names

log = logging.getLogger(__name__)

DEMO_PHONE_MAC = "02:70:63:00:00:0a"
DEMO_PHONE_IP = "10.23.0.10"
DEMO_BOX_MAC = "02:70:63:00:00:01"
DEMO_BOX_IP = "10.23.0.1"
CLEAN_NAMES = ("www.wikipedia.org", "www.bbc.co.uk", "www.google.com", "www.apple.com", "api.weather.com",
               "www.openstreetmap.org", "news.ycombinator.com", "www.gov.uk")


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
    rng = random.Random(7 if kind == "clean" else 11)
    visits: list[tuple[float, str]] = []
    span = minutes * 60
    # Each ordinary site twice: enough connections for the analysis to call a
    # clean phone green (analysis.Thresholds.min_coverage_flows).
    for i, name in enumerate(CLEAN_NAMES * 2):
        visits.append((5 + i * span / (2 * len(CLEAN_NAMES)) + rng.uniform(0, 10), name))
    if kind == "stalkerware":
        c2 = names or stalkerware_names(2, seed=3)
        for k in range(int(minutes)):
            for j, name in enumerate(c2):
                visits.append((30 + k * 60 + j * 2.0, name))
    visits.sort()
    frames: list[tuple[float, bytes]] = []
    ident = 1

    def add(t: float, src: str, dst: str, proto: int, segment: bytes, ident: int) -> None:
        # Checksums filled in, DF set: what the phone's and the box's stacks send.
        pkt = packets.ipv4(src, dst, proto, packets.with_l4_checksum(src, dst, proto, segment), ident, df=True)
        macs = (DEMO_PHONE_MAC, DEMO_BOX_MAC) if src == DEMO_PHONE_IP else (DEMO_BOX_MAC, DEMO_PHONE_MAC)
        frames.append((t, packets.eth(pkt, src=macs[0], dst=macs[1])))

    phone, box, udp, tcp = DEMO_PHONE_IP, DEMO_BOX_IP, packets.IPPROTO_UDP, packets.IPPROTO_TCP
    for n, (dt, name) in enumerate(visits):
        t = t0 + dt
        ident += 4
        query = packets.dns_query(name, qid=(n * 7919) & 0xFFFF)
        sport = 40000 + n
        add(t, phone, box, udp, packets.udp(sport, 53, query), ident)
        add(t + 0.02, box, phone, udp, packets.udp(53, sport, internet.dns_answer(query)), ident + 1)
        server = internet.fake_address(name)
        cport = 50000 + n
        record = packets.tls_record(packets.client_hello(name, alpn=("http/1.1",)))
        isn, ssn = 1000 + n * 100, 5000 + n * 100
        add(t + 0.05, phone, server, tcp, packets.tcp(cport, 443, isn, 0, "S"), ident + 2)
        add(t + 0.08, server, phone, tcp, packets.tcp(443, cport, ssn, isn + 1, "SA"), ident + 3)
        add(t + 0.09, phone, server, tcp, packets.tcp(cport, 443, isn + 1, ssn + 1, "A"), ident + 4)
        add(t + 0.10, phone, server, tcp, packets.tcp(cport, 443, isn + 1, ssn + 1, "PA", record), ident + 5)
        ident += 2
    frames.sort(key=lambda f: f[0])
    packets.write_pcap(path, frames)
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
    for prog in ("ip", "dnsmasq", "nft", "busybox", "bridge"):
        if system.which(prog) is None:
            return f"{prog} is not installed"
    try:
        system.run(["ip", "netns", "add", f"pcprobe-{os.getpid()}"], timeout=10)
        system.run(["ip", "netns", "del", f"pcprobe-{os.getpid()}"], timeout=10)
    except PocketcheckError as exc:
        return f"network namespaces unavailable ({exc})"
    return None


def press_button(app, pin, wait_s: float = 2) -> None:
    """A short press on a gpiozero mock pin (pulled up: low is pressed), then the App handles what it posted.

    Args:
        app: the App whose button is on that pin.
        pin: the MockFactory pin of the button.
        wait_s: how long to wait for gpiozero's thread to post the press.
    """
    pin.drive_low()
    pin.drive_high()
    deadline = time.monotonic() + wait_s
    while app.events.empty() and time.monotonic() < deadline:
        time.sleep(0.01)
    app.pump()


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
    settings = f"data_dir: {(out / 'box').resolve()}\n"
    if use_netns:
        # The simulated phones make real traffic for seconds, not the minutes
        # a real check needs: without this the clean phone would rightly be
        # "not enough traffic to tell" (amber). The replay's built capture
        # spans six minutes and keeps the box's default minimum.
        settings += "capture:\n  minimum_minutes: 0\n"
    layer = config_mod.parse_text(settings, "demo settings")
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
    button = hardware.button.pin  # a MockFactory pin: the demo presses it as a finger would
    kinds = ["clean", "stalkerware"]
    current: dict = {}

    def hotspot_factory(c):
        if use_netns:
            hs = SimulatedHotspot(offline=False)
        else:
            hs = ReplayHotspot(current["kind"], clock.wall())
        current["hs"] = hs
        return hs

    def live():
        return LiveStats(Analyzer())

    app = App(cfg, hardware, hotspot_factory, lambda c, r, s: analyse_with_report(c, r, s, cfg=cfg),
              clock=clock, runner=SyncRunner(), power_off=lambda: None, live_stats=live, ioc_date=ioc_set_date)
    holder["app"] = app

    def press() -> None:
        press_button(app, button, wait_s=5)

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
