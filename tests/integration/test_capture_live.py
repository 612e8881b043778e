"""Live capture in the simulated box: the native core sees the phones' traffic and the analysis judges it."""
import os
import shutil
import stat
import subprocess
import threading
import time

import pytest

from appliance import hotspot
from appliance.analysis import Analyzer
from appliance.capture import LiveCapture
from appliance.errors import CaptureOpenError, FilterError
from appliance.sim.hotspot import SimulatedHotspot
from appliance.sim.phone import CLEAN_HTTP_NAMES, CLEAN_NAMES, CLEAN_QUIC_NAMES, stalkerware_names

pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root"),
]
needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed (make deps)")



@pytest.fixture(scope="module")
def c2_names():
    """Three stalkerware C2 names from the shipped indicators (TLS, HTTP and QUIC in turn)."""
    return stalkerware_names(3, seed=7)


class Sink:
    """Collects events and feeds the analysis, recording when each batch arrived."""

    def __init__(self):
        self.analyzer = Analyzer()
        self.events = []
        self.arrivals = []
        self.lock = threading.Lock()

    def __call__(self, batch):
        with self.lock:
            self.events.extend(batch)
            self.arrivals.append((time.monotonic(), len(batch)))
        self.analyzer.feed(batch)

    def names(self, kind, src=None):
        return {e.name.lower() for e in self.events if e.kind == kind and (src is None or e.src == src)}


def tshark_fields(path, *fields, filt=None):
    """Rows of fields as tshark (the oracle) reads them from a capture file."""
    argv = ["tshark", "-r", str(path), "-T", "fields", "-E", "separator=|"]
    if filt:
        argv += ["-Y", filt]
    for f in fields:
        argv += ["-e", f]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=True).stdout
    return [line.split("|") for line in out.splitlines() if line.strip()]


def run_session(sim, tmp_path, phones, settle=1.0):
    sink = Sink()
    cap = sim.start_capture(tmp_path / "live.pcap", sink)
    started = [sim.run_phone(kind, **kw) for kind, kw in phones]
    for p in started:
        assert p.wait(120) == 0
    time.sleep(settle)
    t_stop = time.monotonic()
    stats = cap.stop()
    return sink, cap, started, stats, time.monotonic() - t_stop


@needs_tshark
def test_two_phones_online_are_seen_live_and_judged(tmp_path, c2_names):
    """A clean and a stalkerware phone at once: DHCP, DNS, SNI, Host and QUIC SNI seen live; red and green."""
    sim = SimulatedHotspot()
    try:
        sim.start(hotspot.new_ssid(), hotspot.new_passphrase())
        sink, cap, (clean, stalker), stats, stop_s = run_session(
            sim, tmp_path, [("clean", {"rounds": 1, "interval": 0.2}),
                            ("stalkerware", {"rounds": 3, "interval": 1.0, "names": c2_names})])
    finally:
        sim.cleanup()
    assert stop_s < 5, "the last events must reach the analysis within seconds of stopping"
    assert stats["status"] == "eof" and stats["packets"] > 50 and stats["pcap_dropped"] == 0
    assert not cap.sink_error

    # What the core saw, per phone, against what each phone did.
    dhcp = {(e.mac, e.name) for e in sink.events if e.kind == "dhcp"}
    assert {(clean.mac, clean.hostname), (stalker.mac, stalker.hostname)} == dhcp
    assert set(CLEAN_NAMES) <= sink.names("dns.query", clean.ip)
    assert set(CLEAN_NAMES) <= sink.names("tls.sni", clean.ip)
    assert set(CLEAN_QUIC_NAMES) <= sink.names("quic.sni", clean.ip)
    assert set(CLEAN_HTTP_NAMES) <= sink.names("http.host", clean.ip)
    tls_c2, http_c2, quic_c2 = c2_names
    assert set(c2_names) <= sink.names("dns.query", stalker.ip)
    assert tls_c2 in sink.names("tls.sni", stalker.ip)
    assert http_c2 in sink.names("http.host", stalker.ip)
    assert quic_c2 in sink.names("quic.sni", stalker.ip)
    assert not set(c2_names) & (sink.names("dns.query", clean.ip) | sink.names("tls.sni", clean.ip))

    # The pcap was written as it went, is private, and tshark finds the same names in it.
    pcap = tmp_path / "live.pcap"
    assert stat.S_IMODE(pcap.stat().st_mode) == 0o600
    sni_tshark = {r[0].lower() for r in tshark_fields(pcap, "tls.handshake.extensions_server_name",
                                                       filt="tls.handshake.type == 1") if r[0]}
    assert sni_tshark == sink.names("tls.sni") | sink.names("quic.sni")
    hosts_tshark = {r[0].lower() for r in tshark_fields(pcap, "http.host", filt="http.request") if r[0]}
    assert hosts_tshark == sink.names("http.host")
    queries_tshark = {r[0].lower() for r in tshark_fields(pcap, "dns.qry.name", filt="dns.flags.response == 0")}
    assert queries_tshark == sink.names("dns.query")

    # The verdicts: red for the stalkerware phone; nothing found for the clean one, whose seconds of
    # traffic are "not enough to tell" (amber with conclusive false, issue 15), never green.
    result = sink.analyzer.result()
    verdicts = {d.mac: d.verdict for d in result.devices}
    devices = {d.mac: (d.hostname, d.ip) for d in result.devices}
    assert devices[stalker.mac] == (stalker.hostname, stalker.ip)
    assert devices[clean.mac] == (clean.hostname, clean.ip)
    assert verdicts[stalker.mac] == "red"
    assert verdicts[clean.mac] == "amber", [a.rule for a in result.alerts if a.device == clean.mac]
    assert not [a for a in result.alerts if a.device == clean.mac and a.level != "low"]
    assert not next(d for d in result.devices if d.mac == clean.mac).conclusive
    assert result.verdict == "red"


@needs_tshark
def test_offline_mode_names_are_seen_without_internet(tmp_path, c2_names):
    """Offline, the stalkerware phone's names still show as DNS, TLS SNI, HTTP Host and QUIC SNI: red."""
    sim = SimulatedHotspot(offline=True)
    try:
        sim.start(hotspot.new_ssid(), hotspot.new_passphrase())
        sink, _cap, (stalker,), _stats, _ = run_session(
            sim, tmp_path, [("stalkerware", {"rounds": 1, "names": c2_names})])
        offline_seen = sim.offline_seen()
    finally:
        sim.cleanup()
    tls_c2, http_c2, quic_c2 = c2_names
    assert set(c2_names) <= sink.names("dns.query", stalker.ip)
    assert tls_c2 in sink.names("tls.sni", stalker.ip)
    assert http_c2 in sink.names("http.host", stalker.ip)
    assert quic_c2 in sink.names("quic.sni", stalker.ip)
    # Every answer pointed at the box, and the TLS flows went to the box, never further.
    answers = {e.data for e in sink.events if e.kind == "dns.answer" and e.rrtype == 1}
    assert answers == {hotspot.BOX_IP}
    assert {e.dst for e in sink.events if e.kind == "tls.sni"} == {hotspot.BOX_IP}
    assert {line.split()[0] for line in offline_seen} == {"tls", "http", "quic"}
    by_mac = {d.mac: d.verdict for d in sink.analyzer.result().devices}
    assert by_mac[stalker.mac] == "red"


# libpcap's TPACKET_V3 poll() never times out on Linux, so the core's live
# read only returns when its event cap is reached; LiveCapture pulls a few
# events per call (LIVE_PULL) so that they reach the sink while capturing.
def test_events_reach_the_sink_while_the_capture_runs(tmp_path, c2_names):
    """Batches are handed to the analysis during the capture, not only when it stops."""
    sim = SimulatedHotspot()
    try:
        sim.start(hotspot.new_ssid(), hotspot.new_passphrase())
        sink = Sink()
        cap = sim.start_capture(tmp_path / "live.pcap", sink)
        phone = sim.run_phone("stalkerware", rounds=1, names=c2_names)
        phone.wait(60)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and tls_missing(sink, c2_names[0]):
            time.sleep(0.1)
        seen_before_stop = not tls_missing(sink, c2_names[0])
        cap.stop()
    finally:
        sim.cleanup()
    assert seen_before_stop
    assert sink.analyzer.result().verdict == "red"


def tls_missing(sink, name):
    with sink.lock:
        return name not in {e.name for e in sink.events if e.kind == "tls.sni"}


def test_stop_is_prompt_on_a_quiet_hotspot(tmp_path):
    """With no phone at all the capture still stops within a second or two, leaving a valid empty pcap."""
    sim = SimulatedHotspot(offline=True)
    try:
        sim.start(hotspot.new_ssid(), hotspot.new_passphrase())
        cap = sim.start_capture(tmp_path / "quiet.pcap")
        assert cap.running
        time.sleep(0.5)
        t0 = time.monotonic()
        stats = cap.stop()
        took = time.monotonic() - t0
    finally:
        sim.cleanup()
    assert took < 3
    assert stats["status"] == "eof"
    assert (tmp_path / "quiet.pcap").read_bytes()[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1")


def test_capture_errors_are_one_line(tmp_path):
    """A missing interface, a missing namespace or a bad filter give a plain one-line error."""
    with pytest.raises(CaptureOpenError) as info:
        LiveCapture("pcnosuch0", str(tmp_path / "a.pcap")).start()
    assert "pcnosuch0" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(CaptureOpenError, match="namespace pcsim-nosuch"):
        LiveCapture("wlan0", str(tmp_path / "b.pcap"), netns="pcsim-nosuch").start()
    with pytest.raises(FilterError):
        LiveCapture("lo", str(tmp_path / "c.pcap"), bpf="tcp port nonsense").start()


def test_an_analysis_failure_does_not_stop_the_capture(tmp_path):
    """If the sink raises, the error is kept and the pcap keeps being written."""
    def broken(batch):
        raise ValueError("analysis bug")

    sim = SimulatedHotspot()
    try:
        sim.start(hotspot.new_ssid(), hotspot.new_passphrase())
        cap = sim.start_capture(tmp_path / "x.pcap", broken)
        sim.run_phone("clean", rounds=1, interval=0.1).wait(60)
        time.sleep(0.5)
        stats = cap.stop()
    finally:
        sim.cleanup()
    assert cap.sink_error == "ValueError: analysis bug"
    assert stats["packets"] > 20
    assert (tmp_path / "x.pcap").stat().st_size > 5000


# Every phone's DHCP uses 0.0.0.0:68 -> 255.255.255.255:67, one flow: the
# MAC must come from chaddr, not from the flow.
def test_dhcp_events_carry_each_phones_own_mac(tmp_path):
    """Each phone's DHCP events carry that phone's MAC (chaddr), even when two phones join one after the other."""
    sim = SimulatedHotspot(offline=True)
    try:
        sim.start(hotspot.new_ssid(), hotspot.new_passphrase())
        sink = Sink()
        cap = sim.start_capture(tmp_path / "d.pcap", sink)
        a, b = sim.add_phone("clean"), sim.add_phone("clean")
        time.sleep(0.5)
        cap.stop()
    finally:
        sim.cleanup()
    by_host = {}
    for e in sink.events:
        if e.kind == "dhcp":
            by_host.setdefault(e.name, set()).add(e.mac)
    assert by_host[a.hostname] == {a.mac}
    assert by_host[b.hostname] == {b.mac}
