"""The service loop, restart recovery with the real analysis, live counters, selftest."""
import json
import socket
import threading
import time

import pytest
from appfakes import FakeHotspot, capture_for, replay_app
from gpiozero import Device

from appliance import box, config, hw, report
from appliance.analysis import Analyzer
from appliance.box import Ev, State, machine
from appliance.native import Reader
from appliance.sim.demo import build_replay_capture


def _cfg(tmp_path, extra=""):
    layer = config.parse_text(f"data_dir: {tmp_path / 'data'}\n{extra}")
    return config.combine([(layer, "test")])


def test_restart_mid_capture_reports_interrupted(tmp_path):
    """A box that dies mid-capture analyses the pcap at the next start and the report says 'interrupted'."""
    clock = box.FakeClock()
    a, hw1 = replay_app(tmp_path, "stalkerware", clock=clock)
    a.start()
    capture_for(a, 400, stop=False)
    assert a.state is State.CAPTURING
    sid = a.session.id
    hw1.close()  # power cut: no stop, no analysis; session.json says "capturing"
    Device.pin_factory.reset()
    saved = json.loads((tmp_path / "data/sessions" / sid / "session.json").read_text())
    assert saved["stage"] == "capturing"
    b, hw2 = replay_app(tmp_path, "clean", clock=clock)
    b.start()
    assert b.state is State.VERDICT and b.session.id == sid
    assert b.session.verdict == "red" and b.session.interrupted
    folder = b.session.report_dir
    doc = json.loads((folder / "report.json").read_text())
    assert "interrupted" in doc["session"]["warnings"]
    assert report.verify(folder).intact
    hw2.close()


def test_live_stats_count_alerts_only_for_stalkerware(tmp_path):
    """Live counters fed batch by batch count alerts for a stalkerware capture and none for a clean one."""
    for kind, expect_alerts in (("clean", False), ("stalkerware", True)):
        pcap = tmp_path / f"{kind}.pcap"
        contacted = build_replay_capture(kind, pcap, 1_800_000_000.0)
        live = box.LiveStats(Analyzer())
        with Reader.open_file(str(pcap)) as reader:
            for batch in reader.batches():
                live.feed(batch)
        live.refresh()
        assert (live.alerts > 0) is expect_alerts, kind
        assert live.names == len(set(contacted))


def test_live_stats_survive_a_broken_analyzer():
    """An analyzer that raises freezes the counters but never the capture."""

    class Broken:
        def feed(self, events):
            raise RuntimeError("bug")

    live = box.LiveStats(Broken())
    live.feed([1])
    live.feed([2])
    assert live.broken


def _real_time_app(tmp_path, power_off=lambda: None):
    """An App on the real clock and fake pins, started, ready for run_forever in a thread."""
    cfg = _cfg(tmp_path)
    holder = {}
    hardware = hw.build(cfg, fake=True, on_event=lambda n: holder["app"].on_hw_event(n), hold_time=0.2)
    a = box.App(cfg, hardware, lambda c: FakeHotspot(c), lambda *x: None, runner=box.ThreadRunner(),
                   power_off=power_off, new_credentials=lambda: ("x", "abcdefghjkmn"))
    holder["app"] = a
    a.start()
    return a, hardware


def test_run_forever_with_threads_and_real_time(tmp_path):
    """The service loop with the thread runner: button press starts, hold ends the loop."""
    powered_off = threading.Event()
    a, hardware = _real_time_app(tmp_path, power_off=powered_off.set)
    cfg = a.cfg
    loop = threading.Thread(target=a.run_forever, daemon=True)
    loop.start()
    pin = Device.pin_factory.pin(cfg.pins.button)
    pin.drive_low()
    pin.drive_high()
    deadline = time.monotonic() + 5
    while a.state is not State.WAITING_FOR_PHONE and time.monotonic() < deadline:
        time.sleep(0.02)
    assert a.state is State.WAITING_FOR_PHONE
    pin.drive_low()
    assert powered_off.wait(5)
    pin.drive_high()
    loop.join(5)
    assert not loop.is_alive() and a.state is State.SHUTTING_DOWN
    assert FakeHotspot.instances[-1].stopped
    hardware.close()


def _notify_socket(tmp_path, monkeypatch):
    """A real datagram socket standing in for systemd's NOTIFY_SOCKET."""
    sock_path = tmp_path / "notify"
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    srv.bind(str(sock_path))
    srv.settimeout(5)
    monkeypatch.setenv("NOTIFY_SOCKET", str(sock_path))
    return srv


def test_service_loop_tells_systemd_ready_and_pings_the_watchdog(tmp_path, monkeypatch):
    """run_forever: READY=1 once, WATCHDOG=1 while the loop turns, STOPPING=1 at the end (real socket)."""
    srv = _notify_socket(tmp_path, monkeypatch)
    monkeypatch.setattr(machine, "WATCHDOG_PING_SECONDS", 0.2)
    a, hardware = _real_time_app(tmp_path)
    loop = threading.Thread(target=a.run_forever, daemon=True)
    loop.start()
    try:
        assert srv.recv(64) == b"READY=1"
        assert srv.recv(64) == b"WATCHDOG=1"  # within a tick or two of 0.5 s
        assert srv.recv(64) == b"WATCHDOG=1"
    finally:
        a.running = False
        a.post(Ev.TICK)
        loop.join(5)
    assert not loop.is_alive()
    rest = []
    srv.settimeout(0.5)
    try:
        while True:
            rest.append(srv.recv(64))
    except TimeoutError:
        pass
    assert rest and rest[-1] == b"STOPPING=1" and b"READY=1" not in rest
    hardware.close()


def test_a_stuck_loop_stops_pinging_the_watchdog(tmp_path, monkeypatch):
    """While one event handler hangs, no WATCHDOG=1 goes out (so systemd restarts the service)."""
    srv = _notify_socket(tmp_path, monkeypatch)
    monkeypatch.setattr(machine, "WATCHDOG_PING_SECONDS", 0.1)
    a, hardware = _real_time_app(tmp_path)
    release = threading.Event()
    real_dispatch = a.dispatch
    calls = []

    def dispatch(ev):
        calls.append(ev)
        if len(calls) == 3:
            release.wait(10)  # the handler hangs
        return real_dispatch(ev)

    a.dispatch = dispatch
    loop = threading.Thread(target=a.run_forever, daemon=True)
    loop.start()
    assert srv.recv(64) == b"READY=1"
    deadline = time.monotonic() + 5
    while len(calls) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(calls) == 3
    srv.settimeout(0.2)
    try:
        while True:  # pings sent before the hang
            srv.recv(64)
    except TimeoutError:
        pass
    srv.settimeout(1.5)
    with pytest.raises(TimeoutError):
        srv.recv(64)  # 1.5 s of a hung handler: silence
    release.set()
    srv.settimeout(5)
    assert srv.recv(64) == b"WATCHDOG=1"  # the loop turns again: pings again
    a.running = False
    a.post(Ev.TICK)
    loop.join(5)
    hardware.close()


def test_sd_notify_outside_systemd_and_with_a_dead_socket(tmp_path, monkeypatch):
    """No NOTIFY_SOCKET: nothing sent; a socket that is gone: False and a log line, never an exception."""
    from appliance.system import sd_notify

    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert sd_notify("WATCHDOG=1") is False
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "gone"))
    assert sd_notify("WATCHDOG=1") is False
    srv = _notify_socket(tmp_path, monkeypatch)
    assert sd_notify("READY=1") is True and srv.recv(64) == b"READY=1"


def test_selftest_fake_hardware(tmp_path, capsys):
    """selftest checks the configuration, data folder, programs and (fake) hardware, one line each."""
    cfgfile = tmp_path / "pocketcheck.yaml"
    cfgfile.write_text(f"data_dir: {tmp_path / 'data'}\n")
    from appliance.cli import main

    code = main(["selftest", "--config", str(cfgfile), "--fake-hardware"])
    out = capsys.readouterr().out
    assert "ok   configuration" in out and "button, LEDs and display" in out
    assert code in (0, 1)
    assert code == (0 if "FAIL" not in out else 1)


def test_cli_bad_config_is_one_line(tmp_path, capsys):
    """An invalid system file gives one clear line and exit 2, no traceback."""
    cfgfile = tmp_path / "pocketcheck.yaml"
    cfgfile.write_text("capture:\n  duration_minutes: soon\n")
    from appliance.cli import main

    code = main(["run", "--config", str(cfgfile), "--fake-hardware"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "'capture.duration_minutes'" in err


def test_run_service_stops_on_sigterm(tmp_path):
    """`pocketcheck run --fake-hardware` keeps running until SIGTERM, then exits 0 within seconds."""
    import signal
    import subprocess
    import sys

    cfgfile = tmp_path / "pocketcheck.yaml"
    cfgfile.write_text(f"data_dir: {tmp_path / 'data'}\n")
    proc = subprocess.Popen([sys.executable, "-m", "appliance", "run", "--config", str(cfgfile), "--fake-hardware"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while not (tmp_path / "data" / "sessions").is_dir() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)
        assert proc.poll() is None, proc.stdout.read()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert "stopping on signal 15" in proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


def test_capture_short_by_its_own_timestamps_is_flagged(tmp_path):
    """If the traffic itself spans less than the minimum, the verdict warns even though the box clock ran long."""
    a, hardware = replay_app(tmp_path, "clean", minutes=1.0)
    a.start()
    capture_for(a, 600)
    # Nothing found in one minute of traffic: not enough to tell, so amber (issue 15), never green.
    assert a.state is State.VERDICT and a.session.verdict == "amber"
    assert a.session.too_short and a.model().too_short
    doc = json.loads((a.session.report_dir / "report.json").read_text())
    assert "short" in doc["session"]["warnings"]
    assert doc["coverage"]["conclusive"] is False and doc["alerts"] == []
    hardware.close()


def test_offline_hotspot_tells_the_report_there_was_no_uplink(tmp_path):
    """The box knows an offline hotspot had no uplink: the report says so even where the traffic looks answered."""
    results = {}
    for offline in (False, True):
        a, hardware = replay_app(tmp_path / str(offline), "clean")
        a.hotspot_factory = lambda c, offline=offline, clock=a.clock: _offline_replay(clock.wall(), offline)
        a.start()
        capture_for(a, 600)
        doc = json.loads((a.session.report_dir / "report.json").read_text())
        results[offline] = (a.session.offline, doc["coverage"]["uplink"])
        hardware.close()
    # The replayed servers answer, so from the traffic alone the uplink is seen (True) both times.
    assert results == {False: (False, True), True: (True, False)}


def _offline_replay(t0, offline):
    from appliance.sim.demo import ReplayHotspot

    hs = ReplayHotspot("clean", t0)
    hs.offline = offline
    return hs
