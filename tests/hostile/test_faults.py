"""Faults: power cuts (SIGKILL), dying hotspot programs, a full SD card - the box loses nothing.

Power cuts are real: the box runs in a child process (``tests/support/hostile/faultbox.py``)
that is killed with SIGKILL at a chosen moment; a fresh box then starts on the
same data folder, as after the power comes back.
"""
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest
from appfakes import FakeHotspot, make_app
from paths import SUPPORT

from appliance import box, check, config, hw, report, system, usb
from appliance.box import Ev, State
from appliance.errors import CommandError
from appliance.native import Reader
from appliance.sim.demo import build_replay_capture

FAULTBOX = SUPPORT / "hostile" / "faultbox.py"



def _run_until(tmp_path, mode, line, timeout=120):
    """Starts the box in a child, waits for a progress line, then pulls the plug (SIGKILL)."""
    data = tmp_path / "data"
    state = tmp_path / "faultbox.state"
    (tmp_path / "stick").mkdir(exist_ok=True)
    errlog = open(tmp_path / "faultbox.err", "w")  # noqa: SIM115 - closed below; a pipe nobody reads could block
    proc = subprocess.Popen([sys.executable, str(FAULTBOX), str(data), mode], stdout=subprocess.DEVNULL,
                            stderr=errlog)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if state.exists() and any(ln.startswith(line) for ln in state.read_text().splitlines()):
                break
            if proc.poll() is not None:
                pytest.fail(f"the box exited early: {(tmp_path / 'faultbox.err').read_text()[-2000:]}")
            time.sleep(0.05)
        else:
            pytest.fail(f"no '{line}' within {timeout} s")
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        errlog.close()
    return data


def _restart(tmp_path):
    """A new box on the same data folder, with the real analysis (the power is back)."""
    cfg = config.combine([(config.parse_text(f"data_dir: {tmp_path / 'data'}\ncapture:\n  minimum_minutes: 1\n"),
                           "t")])
    holder = {}
    hardware = hw.build(cfg, fake=True, on_event=lambda n: holder["app"].on_hw_event(n))
    a = box.App(cfg, hardware, lambda c: FakeHotspot(c), lambda c, r, s: check.analyse_with_report(c, r, s, cfg=cfg),
                   clock=box.FakeClock(time.time()))
    holder["app"] = a
    a.start()
    return a, hardware


def test_power_cut_mid_capture_is_recovered_analysed_and_reported(tmp_path):
    """SIGKILL while the pcap is half-way through a record: the next start reads what was whole, red, 'interrupted'."""
    _run_until(tmp_path, "capture", "half-record")
    sid = next((tmp_path / "data" / "sessions").iterdir()).name
    pcap = tmp_path / "data" / "sessions" / sid / "capture.pcap"
    with Reader.open_file(str(pcap)) as r:  # the file really ends mid-record
        names = {e.name for e in r if e.kind == "tls.sni"}
        assert r.status == "truncated"
    assert names
    a, hardware = _restart(tmp_path)
    try:
        assert a.state is State.VERDICT and a.session.id == sid
        assert a.session.interrupted and a.session.verdict == "red"
        doc = json.loads((a.session.report_dir / "report.json").read_text())
        assert {"interrupted", "truncated"} <= set(doc["session"]["warnings"])
        assert report.verify(a.session.report_dir).intact
        assert a.screen() == "verdict" and a.model().interrupted
    finally:
        hardware.close()


def test_power_cut_while_writing_the_report(tmp_path):
    """SIGKILL with the report folder half written: the next start rewrites it whole and it verifies."""
    _run_until(tmp_path, "report", "report-half")
    sdir = next((tmp_path / "data" / "sessions").iterdir())
    assert not (sdir / "report" / "MANIFEST.sha256").exists()  # the cut left a broken folder
    assert json.loads((sdir / "session.json").read_text())["stage"] == "analysing"
    a, hardware = _restart(tmp_path)
    try:
        assert a.state is State.VERDICT and a.session.verdict == "red"
        assert report.verify(a.session.report_dir).intact
        assert [s.id for s in a.store.pending()] == [sdir.name]
    finally:
        hardware.close()


def test_power_cut_while_writing_to_the_stick(tmp_path):
    """SIGKILL mid-copy to a stick: never 'exported'; the next start copies it again and only then says safe."""
    _run_until(tmp_path, "export", "export-half")
    sdir = next((tmp_path / "data" / "sessions").iterdir())
    assert json.loads((sdir / "session.json").read_text())["stage"] == "reported"
    stick_copy = tmp_path / "stick" / "pocketcheck" / sdir.name
    assert len(list(stick_copy.rglob("*"))) >= 1  # a partial copy is on the stick
    a, hardware = _restart(tmp_path)
    try:
        assert a.state is State.IDLE and [s.id for s in a.store.pending()] == [sdir.name]
        a.post(Ev.USB_INSERTED, stick=usb.MountedStick(tmp_path / "stick"))
        a.pump()
        assert a.state is State.SAFE_TO_REMOVE
        assert report.verify(stick_copy).intact
        assert a.store.pending() == []
    finally:
        hardware.close()


# ----------------------------------------------------------- dying programs
def _sleeper(tmp_path, name="sleep"):
    return system.spawn(["sleep", "600"], log_path=tmp_path / f"{name}.log", startup=0.1)


def test_supervisor_restarts_a_killed_program_and_records_the_gap(tmp_path):
    """A daemon killed with SIGKILL is restarted with the same command; the gap names it and its signal."""
    daemons = [_sleeper(tmp_path)]
    sup = system.Supervisor(max_restarts=2)
    try:
        assert sup.check(daemons) == []
        old = daemons[0].pid
        os.kill(old, signal.SIGKILL)
        daemons[0].popen.wait(5)
        gaps = sup.check(daemons)
        assert [(g["program"], g["exit"]) for g in gaps] == [("sleep", -signal.SIGKILL)]
        assert daemons[0].pid != old and daemons[0].running()
        for _ in range(2):
            daemons[0].popen.kill()
            daemons[0].popen.wait(5)
            try:
                sup.check(daemons)
            except CommandError as exc:
                assert "keeps stopping" in str(exc)
                break
        else:
            pytest.fail("a program that keeps dying was restarted forever")
    finally:
        for d in daemons:
            d.stop()


def test_session_goes_on_when_a_hotspot_program_dies(tmp_path):
    """Mid-capture, a hotspot program dies: it is restarted, the capture goes on, the gap is saved in the session."""
    a, hardware, _clock, _ = make_app(tmp_path)
    try:
        a.post(Ev.PRESS)
        a.pump()
        hs = FakeHotspot.instances[-1]
        hs._daemons = [_sleeper(tmp_path)]
        hs.phones = ["02:00:00:00:00:05"]
        a.tick()
        assert a.state is State.CAPTURING
        os.kill(hs._daemons[0].pid, signal.SIGKILL)
        hs._daemons[0].popen.wait(5)
        a.tick(1)
        assert a.state is State.CAPTURING and hs._daemons[0].running()
        saved = json.loads((pathlib.Path(a.session.dir) / "session.json").read_text())
        assert [g["program"] for g in saved["gaps"]] == ["sleep"]
        a.tick(30)
        assert a.state is State.CAPTURING
    finally:
        for d in getattr(FakeHotspot.instances[-1], "_daemons", []):
            d.stop()
        hardware.close()


def _netns_ok():
    return os.geteuid() == 0 and system.which("hostapd") and system.which("dnsmasq") and system.which("nft") and system.which("busybox")


@pytest.mark.netns
@pytest.mark.skipif(not _netns_ok(), reason="needs root, hostapd, dnsmasq, nft and busybox")
@pytest.mark.parametrize("program", ["dnsmasq", "hostapd"])
def test_real_hotspot_program_killed_mid_session(tmp_path, program):
    """The simulation's real dnsmasq or hostapd killed with SIGKILL: restarted, a second phone still gets a lease,
    the report says so."""
    from appliance.sim.hotspot import SimulatedHotspot

    cfg = config.combine([(config.parse_text(f"data_dir: {tmp_path / 'data'}\ncapture:\n  minimum_minutes: 0\n"),
                           "t")])
    holder, sims = {}, []
    hardware = hw.build(cfg, fake=True, on_event=lambda n: holder["app"].on_hw_event(n))

    def factory(c):
        hs = SimulatedHotspot(offline=False)
        sims.append(hs)
        return hs
    a = box.App(cfg, hardware, factory, lambda c, r, s: check.analyse_with_report(c, r, s, cfg=cfg),
                   clock=box.FakeClock(time.time()), new_credentials=lambda: ("Livebox-8C1E", "abcdefghjkmn"))
    holder["app"] = a
    a.start()
    try:
        a.post(Ev.PRESS)
        a.pump()
        assert a.state is State.WAITING_FOR_PHONE, a.error
        hs = sims[0]
        phone = hs.run_phone("stalkerware", rounds=2, interval=0.5)
        a.tick()
        assert a.state is State.CAPTURING
        victim = next(d for d in hs._daemons if system.Supervisor.name_of(d) == program)
        old = victim.pid
        os.kill(old, signal.SIGKILL)
        victim.popen.wait(5)
        a.tick(1)
        assert a.state is State.CAPTURING
        new = next(d for d in hs._daemons if system.Supervisor.name_of(d) == program)
        assert new.pid != old and new.running()
        second = hs.add_phone("clean")  # DHCP through the restarted dnsmasq
        assert second.ip
        a.tick(1)
        assert a.session.phones == 2 and [g["program"] for g in a.session.gaps] == [program]
        phone.wait(timeout=120)
        a.post(Ev.PRESS)
        a.pump()
        assert a.state is State.VERDICT, a.error
        doc = json.loads((a.session.report_dir / "report.json").read_text())
        assert "restarted" in doc["session"]["warnings"]
        assert a.session.verdict == "red"
    finally:
        for hs in sims:
            hs.stop()
        hardware.close()


# ------------------------------------------------------------- full SD card
@pytest.fixture
def small_disk(tmp_path):
    """A 6 MiB tmpfs as the box's data folder (a nearly full SD card)."""
    mnt = tmp_path / "sd"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m,mode=0700", "tmpfs", str(mnt)], capture_output=True,
                       text=True, check=False)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


class _GrowingCapture:
    """A capture that keeps appending a phone's packets (a long, busy session)."""

    def __init__(self, path, source: bytes):
        self.path = str(path)
        self.running = True
        self.body = source[24:]
        with open(self.path, "wb") as fh:
            fh.write(source)

    def grow(self, times=1):
        """Appends the same records again (what the next minutes of traffic add)."""
        with open(self.path, "ab") as fh:
            fh.writelines(self.body for _ in range(times))

    def stop(self):
        self.running = False


def test_full_sd_card_stops_the_capture_cleanly_and_the_analysis_runs(tmp_path, small_disk):
    """On a 6 MiB card the capture stops before the card is full; the analysis and report still fit and say why."""
    src = tmp_path / "phone.pcap"
    build_replay_capture("stalkerware", src, 1_800_000_000.0, minutes=8.0)
    source = src.read_bytes()
    cfg = config.combine([(config.parse_text(f"data_dir: {small_disk}\ncapture:\n  minimum_minutes: 0\n"), "t")])
    holder, caps = {}, []
    hardware = hw.build(cfg, fake=True, on_event=lambda n: holder["app"].on_hw_event(n))

    class Hs(FakeHotspot):
        def start_capture(self, path, sink=None):
            self.capture = _GrowingCapture(path, source)
            caps.append(self.capture)
            return self.capture

    a = box.App(cfg, hardware, lambda c: Hs(c), lambda c, r, s: check.analyse_with_report(c, r, s, cfg=cfg),
                   clock=box.FakeClock(time.time()), new_credentials=lambda: ("Livebox-8C1E", "abcdefghjkmn"))
    a.min_free_bytes = 1024 * 1024
    holder["app"] = a
    a.start()
    try:
        a.post(Ev.PRESS)
        a.pump()
        FakeHotspot.instances[-1].phones = ["02:00:00:00:00:05"]
        a.tick()
        assert a.state is State.CAPTURING
        for _ in range(200):
            caps[0].grow(4)
            a.tick(1)
            if a.state is not State.CAPTURING:
                break
        assert a.state is State.VERDICT, (a.state, a.error)
        assert a.session.storage_full and a.session.interrupted and a.session.verdict == "red"
        doc = json.loads((a.session.report_dir / "report.json").read_text())
        assert {"storage-full", "interrupted"} <= set(doc["session"]["warnings"])
        assert report.verify(a.session.report_dir).intact
        cat = report.catalogue("en")
        assert cat["warnings"]["storage-full"]
    finally:
        hardware.close()


@pytest.mark.netns
@pytest.mark.skipif(not _netns_ok(), reason="needs root, dnsmasq, nft and busybox")
def test_live_capture_onto_a_full_card_keeps_running_and_stays_readable(tmp_path):
    """The real live capture writing onto a 1 MiB card that fills up: no crash or hang, events still flow, the
    pcap reads to the damage (the box's watchdog normally stops it before; this is the case it came too late)."""
    from appliance import hotspot
    from appliance.analysis import Analyzer
    from appliance.sim.hotspot import SimulatedHotspot

    mnt = tmp_path / "sd"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True, text=True,
                       check=False)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    sim = SimulatedHotspot(offline=False)
    analyzer = Analyzer()
    try:
        sim.start(hotspot.new_ssid(), hotspot.new_passphrase())
        cap = sim.start_capture(mnt / "capture.pcap", analyzer.feed)
        phone = sim.run_phone("stalkerware", rounds=6, interval=0.2)
        # fill the card with padding from the box side while the phone talks
        fd = os.open(mnt / "other", os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while os.write(fd, b"\0" * 65536):  # unbuffered: ENOSPC comes out here, not at close
                pass
        except OSError:
            pass
        finally:
            os.close(fd)
        phone.wait(timeout=180)
        t = time.monotonic()
        stats = cap.stop()
        assert time.monotonic() - t < 20
        assert isinstance(stats, dict)
        with Reader.open_file(str(mnt / "capture.pcap")) as rd:
            list(rd)
            assert rd.status in ("eof", "truncated")
        assert analyzer.result().verdict == "red"  # the live events were analysed all the same
    finally:
        sim.cleanup()
        subprocess.run(["umount", "-l", str(mnt)], check=False)
