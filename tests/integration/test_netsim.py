"""The simulated hotspot: real dnsmasq, nftables and DHCP in network namespaces, and its traffic builders."""
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from appliance import hotspot, system
from appliance.errors import CommandError, HotspotError
from appliance.sim import internet, packets
from appliance.sim import netns as namespaces
from appliance.sim.demo import build_replay_capture
from appliance.sim.hotspot import SimulatedHotspot
from appliance.sim.phone import CLEAN_NAMES, CLEAN_QUIC_NAMES, stalkerware_names
from appliance.sim.scan import parse_ports

IS_ROOT = os.geteuid() == 0
netns = pytest.mark.netns
needs_root = pytest.mark.skipif(not IS_ROOT, reason="network namespaces need root")
needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed (make deps)")


def our_namespaces():
    """The namespaces this test process made (another run on the same machine has its own pid in theirs)."""
    mine = f"{namespaces.NS_PREFIX}-{os.getpid()}-"
    return [n for n in namespaces.list_namespaces() if n.startswith(mine)]


# ---------------------------------------------------------------- builders
def test_quic_initial_keys_match_rfc9001_appendix_a():
    """The Initial keys for the RFC 9001 Appendix A connection id are the RFC's values."""
    key, iv, hp = packets.quic_client_initial_keys(bytes.fromhex("8394c8f03e515708"))
    assert key.hex() == "1f369613dd76d5467730efcbe3b1a22d"
    assert iv.hex() == "fa044b2f42a3fd3b46fb255c"
    assert hp.hex() == "9f50449e04a0e810283a1e9933adedd2"


@needs_tshark
def test_tshark_decrypts_our_quic_initial_and_reads_the_sni(tmp_path):
    """tshark, as an independent QUIC implementation, decrypts the Initial and finds SNI and ALPN."""
    from scapy.all import IP, UDP, Ether, wrpcap

    pkt = packets.quic_initial("c2.example-stalker.com")
    assert len(pkt) == 1200
    wrpcap(str(tmp_path / "q.pcap"), [Ether() / IP(src="10.23.0.50", dst="198.19.1.2") / UDP(sport=50000, dport=443)
                                      / pkt])
    out = subprocess.run(["tshark", "-r", str(tmp_path / "q.pcap"), "-T", "fields", "-e", "quic.long.packet_type",
                          "-e", "tls.handshake.extensions_server_name", "-e", "tls.handshake.extensions_alpn_str"],
                         capture_output=True, text=True, timeout=60, check=True).stdout.split()
    assert out == ["0", "c2.example-stalker.com", "h3"]


@needs_tshark
def test_dns_codec_agrees_with_tshark(tmp_path):
    """The fake internet's DNS answer parses back, and tshark reads the same name and address."""
    from scapy.all import IP, UDP, Ether, wrpcap

    q = packets.dns_query("Api.Example.COM", qid=0x1234)
    a = internet.dns_answer(q)
    qid, name, qtype, answers = packets.dns_parse(a)
    assert (qid, name, qtype) == (0x1234, "Api.Example.COM", 1)
    assert answers == [internet.fake_address("api.example.com")]
    assert answers[0].startswith("198.19.")
    wrpcap(str(tmp_path / "d.pcap"), [Ether() / IP(src="198.18.0.1", dst="10.23.0.9") / UDP(sport=53, dport=5353)
                                      / a])
    out = subprocess.run(["tshark", "-r", str(tmp_path / "d.pcap"), "-d", "udp.port==5353,dns", "-T", "fields",
                          "-e", "dns.qry.name", "-e", "dns.a"], capture_output=True, text=True, timeout=60,
                         check=True).stdout.split()
    assert out == ["Api.Example.COM", answers[0]]


def test_replay_capture_frames_carry_checksums_that_verify(tmp_path):
    """Every IPv4 header, UDP and TCP segment of the demo's replay capture has a checksum a receiver accepts."""
    from scapy.all import IP, TCP, UDP, rdpcap

    build_replay_capture("stalkerware", tmp_path / "r.pcap", 1_800_000_000.0, minutes=2.0,
                         names=["a.c2.example", "b.c2.example"])
    frames = rdpcap(str(tmp_path / "r.pcap"))
    assert len(frames) > 20
    for frame in frames:
        ip = frame[IP]
        assert packets.checksum(bytes(ip)[:20]) == 0
        seg = bytes(ip.payload)
        pseudo = bytes(ip)[12:20] + bytes([0, ip.proto]) + len(seg).to_bytes(2, "big")
        assert packets.checksum(pseudo + seg) == 0
        assert frame.haslayer(UDP) or frame.haslayer(TCP)


def test_port_lists_read_as_a_user_writes_them():
    """A scan's port list takes single ports and inclusive ranges."""
    assert parse_ports("53,5222-5224,8080") == [53, 5222, 5223, 5224, 8080]


def test_stalkerware_names_come_from_the_indicator_set(iocs_upstream):
    """The stalkerware phone's C2 names are upstream stalkerware hosts and high-severity hits of the shipped set."""
    names = stalkerware_names(5, seed=1)
    hosts = set((iocs_upstream / "stalkerware-indicators" / "generated" / "hosts").read_text().split())
    assert len(names) == 5 and set(names) <= hosts
    assert stalkerware_names(5, seed=1) == names
    from appliance import indicators

    per_name = indicators.load_default().match_names(names)
    assert len(per_name) == len(names)
    for name, hits in zip(names, per_name):
        assert any(h.indicator.severity == "high" for h in hits), name


def test_simulation_refuses_to_run_without_root(monkeypatch):
    """Without root the simulation says so plainly instead of failing half-way."""
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(HotspotError, match="needs root"):
        SimulatedHotspot()


# ------------------------------------------------------------ namespaces
@pytest.fixture
def online_sim():
    """A started simulated hotspot with a fake internet; torn down after the test."""
    sim = SimulatedHotspot()
    try:
        sim.start(hotspot.new_ssid(), hotspot.new_passphrase())
        yield sim
    finally:
        sim.cleanup()


@pytest.fixture
def offline_sim():
    """A started simulated hotspot without uplink (offline mode)."""
    sim = SimulatedHotspot(offline=True)
    try:
        sim.start(hotspot.new_ssid(), hotspot.new_passphrase())
        yield sim
    finally:
        sim.cleanup()


@netns
@needs_root
def test_phone_gets_a_lease_and_reaches_the_fake_internet_through_nat(online_sim):
    """A phone takes a lease from the real dnsmasq, shows in joined_phones, and its TLS/HTTP/QUIC get out."""
    phone = online_sim.run_phone("clean", rounds=1, interval=0.2, seed=3)
    assert phone.ip and phone.ip.startswith("10.23.0.") and phone.dns == hotspot.BOX_IP
    joined = online_sim.joined_phones()
    assert [(p.mac, p.ip, p.hostname) for p in joined] == [(phone.mac, phone.ip, phone.hostname)]
    assert phone.wait(90) == 0
    log = phone.log()
    assert log and all(line.endswith(" ok") for line in log), log
    seen = online_sim.internet_seen()
    for name in CLEAN_NAMES:
        assert f"tls {name}" in seen
        assert f"dns {name}" in seen  # dnsmasq forwarded the phone's query upstream
    assert "http connectivitycheck.gstatic.com" in seen
    assert sum(1 for line in seen if line == "quic 1200") == len(CLEAN_QUIC_NAMES)
    assert online_sim.problem() is None
    dnsmasq = next(d for d in online_sim._daemons if "dnsmasq" in d.argv)
    uid = Path(f"/proc/{dnsmasq.pid}/status").read_text().split("\nUid:")[1].split()[0]
    assert uid != "0"  # dnsmasq dropped root, as on the Pi, and still forwards and leases
    # IPv6 is blocked by design: no router advertisement, so no global address and no route.
    v6 = system.run(["ip", "-n", phone.ns, "-6", "addr", "show", "scope", "global"], timeout=10).stdout
    v6_route = system.run(["ip", "-n", phone.ns, "-6", "route", "show", "default"], timeout=10).stdout
    assert v6.strip() == "" and v6_route.strip() == ""


@netns
@needs_root
def test_two_phones_are_isolated_from_each_other(online_sim):
    """Two phones get different leases and cannot reach each other (AP isolation on the bridge)."""
    a, b = online_sim.add_phone("clean"), online_sim.add_phone("stalkerware")
    assert a.ip != b.ip and a.mac != b.mac
    assert sorted(p.ip for p in online_sim.joined_phones()) == sorted([a.ip, b.ip])
    ping = system.run(["ip", "netns", "exec", a.ns, "busybox", "ping", "-c", "1", "-W", "1", b.ip], timeout=10, check=False)
    assert ping.returncode != 0
    gw = system.run(["ip", "netns", "exec", a.ns, "busybox", "ping", "-c", "1", "-W", "1", "198.18.0.1"], timeout=10,
                    check=False)
    assert gw.returncode == 0  # the internet is reachable, just not the other phone


@netns
@needs_root
def test_port_scan_online_finds_only_dns_on_the_box(online_sim):
    """From a phone, a TCP scan of the box finds port 53 and nothing else; DNS over UDP answers."""
    phone = online_sim.add_phone("clean")
    assert phone.scan(ports=f"1-1100,5222-5223,8080,8443,{hotspot.OFFLINE_PORT}") == [53]
    # The box's uplink address is the box too: also closed to the phone.
    assert phone.scan(host=internet.BOX_UPLINK_IP, ports="1-1100") == []
    out = phone.run(namespaces.PYTHON, "-c", "from appliance.sim.phone import resolve; print(resolve('www.bbc.co.uk', "
                    f"'{hotspot.BOX_IP}'))")
    assert out.strip() == internet.fake_address("www.bbc.co.uk")


@netns
@needs_root
def test_port_scan_offline_finds_dns_and_the_redirected_listener_ports(offline_sim):
    """Offline, only DNS, the redirected TLS/HTTP ports and the listener port answer."""
    phone = offline_sim.add_phone("clean")
    found = phone.scan(ports=f"1-1100,5222-5223,8080,8443,{hotspot.OFFLINE_PORT}")
    assert found == sorted({53, hotspot.OFFLINE_PORT, *hotspot.OFFLINE_TCP_PORTS})


@netns
@needs_root
def test_offline_names_resolve_to_the_box_and_hellos_are_read(offline_sim):
    """Offline, every name resolves to the box; the listeners read TLS/HTTP/QUIC hellos without an internet."""
    phone = offline_sim.run_phone("stalkerware", rounds=1, names=["c2.example-stalker.com", "api.spy.example",
                                                                  "q.spy.example"])
    phone.wait(90)
    log = phone.log()
    assert "dns c2.example-stalker.com ok" in log
    assert "tls c2.example-stalker.com fail" in log  # the handshake is never completed
    assert "http api.spy.example fail" in log         # read, never answered: it is not a connectivity check
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and len(offline_sim.offline_seen()) < 3:
        time.sleep(0.1)
    kinds = sorted({line.split()[0] for line in offline_sim.offline_seen()})
    assert kinds == ["http", "quic", "tls"]
    assert all(line.split()[1] == phone.ip for line in offline_sim.offline_seen())
    out = phone.run(namespaces.PYTHON, "-c", f"from appliance.sim.phone import resolve; print(resolve('anything.test', "
                    f"'{hotspot.BOX_IP}'))")
    assert out.strip() == hotspot.BOX_IP


@netns
@needs_root
def test_offline_android_and_iphone_keep_the_hotspot_and_the_box_matches_their_names(offline_sim, tmp_path):
    """No uplink: both phones' own connectivity checks succeed, they stay, and the box sees and matches their names."""
    from appliance import indicators
    from appliance.analysis import Analyzer

    c2 = stalkerware_names(3, seed=7)
    analyzer = Analyzer(indicators.load_default(), thresholds=None)
    cap = offline_sim.start_capture(tmp_path / "offline.pcap", analyzer.feed)
    android = offline_sim.run_phone("stalkerware", os_name="android", rounds=2, interval=0.5, names=c2)
    iphone = offline_sim.run_phone("clean", os_name="iphone", rounds=1, interval=0.2)
    assert android.wait(120) == 0 and iphone.wait(120) == 0
    time.sleep(1.0)
    cap.stop()
    for phone, host in ((android, "connectivitycheck.gstatic.com"), (iphone, "captive.apple.com")):
        log = phone.log()
        assert log[:2] == [f"check {host} ok", "network kept"], log[:3]
        assert len(log) > 2  # it went on using the network
    result = analyzer.result()
    by_mac = {d.mac: d for d in result.devices}
    assert by_mac[android.mac].verdict == "red"
    hit_names = {a.name for a in result.alerts if a.indicator and a.device == android.mac}
    assert set(c2) <= hit_names          # DNS, TLS SNI, HTTP Host or QUIC SNI of every C2 name, matched
    assert set(CLEAN_NAMES) <= by_mac[iphone.mac].names
    assert not [a for a in result.alerts if a.indicator and a.device == iphone.mac]
    checks = [line for line in offline_sim.offline_seen() if line.startswith("check ")]
    assert {line.split()[1] for line in checks} == {android.ip, iphone.ip}


@netns
@needs_root
def test_a_phone_whose_check_fails_leaves_and_sends_nothing_more(offline_sim):
    """When the check is not answered (listener gone), the simulated phone leaves, as a real one moves to mobile data."""
    daemon = next(d for d in offline_sim._daemons if "appliance.offline" in d.argv)
    os.kill(daemon.pid, 9)
    daemon.popen.wait(5)
    phone = offline_sim.run_phone("clean", os_name="android", rounds=1)
    assert phone.wait(60) == 0
    assert phone.log() == ["check connectivitycheck.gstatic.com fail", "network left"]


@netns
@needs_root
def test_hard_coded_resolver_is_answered_by_the_box_offline(offline_sim):
    """Offline, a phone that asks 8.8.8.8 directly still gets the box's answer (redirect to dnsmasq)."""
    phone = offline_sim.add_phone("clean")
    out = phone.run(namespaces.PYTHON, "-c", "from appliance.sim.phone import resolve; print(resolve('x.example', '8.8.8.8'))")
    assert out.strip() == hotspot.BOX_IP


@netns
@needs_root
def test_everything_is_torn_down():
    """After stop, no namespace and no process of the simulation is left."""
    sim = SimulatedHotspot()
    sim.start(hotspot.new_ssid(), hotspot.new_passphrase())
    phone = sim.run_phone("clean", rounds=5, interval=1.0)
    names = [sim.box, sim.net, phone.ns]
    pids = [d.pid for d in sim._daemons] + [phone._daemon.pid]
    assert set(names) <= set(namespaces.list_namespaces())
    sim.cleanup()
    assert not set(names) & set(namespaces.list_namespaces())
    for pid in pids:
        assert not os.path.exists(f"/proc/{pid}") or Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    assert not os.path.exists(sim.run_dir)
    sim.stop()  # idempotent


@netns
@needs_root
def test_stale_namespaces_of_dead_runs_are_cleaned_up():
    """cleanup_stale removes namespaces and run dirs whose creating process is gone and keeps live ones."""
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = f"{namespaces.NS_PREFIX}-{dead.pid}-beef-box"
    live = f"{namespaces.NS_PREFIX}-{os.getpid()}-cafe-box"
    for ns in (stale, live):
        system.run(["ip", "netns", "add", ns], timeout=10)
    stale_dir = Path(tempfile.gettempdir()) / f"{namespaces.RUN_DIR_PREFIX}{dead.pid}-x1y2"
    live_dir = Path(tempfile.gettempdir()) / f"{namespaces.RUN_DIR_PREFIX}{os.getpid()}-x1y2"
    stale_dir.mkdir()
    live_dir.mkdir()
    try:
        removed = namespaces.cleanup_stale()
        assert not stale_dir.exists() and live_dir.exists()
        assert stale in removed and live not in removed
        assert live in namespaces.list_namespaces() and stale not in namespaces.list_namespaces()
    finally:
        for ns in (stale, live):
            system.run(["ip", "netns", "delete", ns], timeout=10, check=False)
        shutil.rmtree(stale_dir, ignore_errors=True)
        shutil.rmtree(live_dir, ignore_errors=True)


@netns
@needs_root
def test_a_failed_start_leaves_nothing_behind(monkeypatch):
    """When a step of start fails, the namespaces made so far are removed and the error is plain."""
    sim = SimulatedHotspot()
    before = set(our_namespaces())
    monkeypatch.setattr(internet, "NET_IP", "not-an-address")
    with pytest.raises(CommandError, match="ip failed") as info:
        sim.start(hotspot.new_ssid(), hotspot.new_passphrase())
    assert "\n" not in str(info.value)
    assert set(our_namespaces()) == before
    sim.cleanup()


@netns
@needs_root
def test_problem_reports_a_dead_hotspot_program(offline_sim):
    """When a program of the hotspot dies, problem() names it in plain words (the state machine shows an error)."""
    assert offline_sim.problem() is None

    def kill(word):
        daemon = next(d for d in offline_sim._daemons if word in d.argv)
        os.kill(daemon.pid, 9)
        daemon.popen.wait(5)

    kill("appliance.offline")
    assert offline_sim.problem() == "the hotspot's offline listener program stopped"
    kill("dnsmasq")
    assert offline_sim.problem() == "the hotspot's dnsmasq program stopped"


@needs_root
def test_simulation_from_config_follows_country_channel_and_uplink():
    """from_config takes the configured country and channel; no uplink interface means offline."""
    from appliance import config

    base = config.load(system_path=None).replace(country="FR")
    sim = SimulatedHotspot.from_config(base)
    try:
        assert (sim.settings.country, sim.settings.channel, sim.offline) == ("FR", base.hotspot.channel, True)
    finally:
        sim.cleanup()
    wired = base.replace(uplink=config.Uplink(interface="usb0", wifi_ssid="", wifi_passphrase=""))
    sim = SimulatedHotspot.from_config(wired)
    try:
        assert (sim.offline, sim.settings.uplink_iface) == (False, "uplink0")
    finally:
        sim.cleanup()
