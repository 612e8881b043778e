"""Isolation and privacy: what the phone can reach, and who can read what the box keeps.

Network tests run the real simulation (network namespaces, dnsmasq, nftables)
and scan every TCP and UDP port of the box from the phone's namespace
(``appliance.sim.scan``).
"""
import json
import os
import pathlib
import stat
import subprocess
import sys
import time

import pytest
from appfakes import FakeHotspot, capture_for, replay_app

from appliance import hotspot, report, system
from appliance.box import Ev, State
from appliance.sim import internet
from appliance.sim.demo import build_replay_capture
from appliance.sim.hotspot import SimulatedHotspot

needs_netns = pytest.mark.skipif(
    os.geteuid() != 0 or not (system.which("dnsmasq") and system.which("nft") and system.which("busybox")),
    reason="needs root, dnsmasq, nft and busybox")



def _sim(offline):
    sim = SimulatedHotspot(offline=offline)
    sim.start(hotspot.new_ssid(), hotspot.new_passphrase())
    return sim


def _scan(phone, kind, host):
    # Every port, 8192 sockets at a time: a host that drops everything costs 8 waits.
    return phone.scan(host, "1-65535", kind=kind, batch=8192, timeout=1.5)


@pytest.mark.netns
@needs_netns
def test_full_scan_online_finds_only_dhcp_and_dns():
    """Every TCP and UDP port of the box, from the phone: only DNS answers (and DHCP gave the lease)."""
    sim = _sim(offline=False)
    try:
        phone = sim.add_phone("clean")
        assert phone.ip.startswith("10.23.0.")  # DHCP (udp 67) answered: the lease
        assert _scan(phone, "tcp", hotspot.BOX_IP) == [53]
        assert _scan(phone, "udp", hotspot.BOX_IP) == [53]
        assert _scan(phone, "tcp", internet.BOX_UPLINK_IP) == []  # the box's uplink side is closed too
    finally:
        sim.cleanup()


@pytest.mark.netns
@needs_netns
def test_full_scan_offline_adds_only_the_hello_listeners():
    """Offline, the scan also finds the ClientHello listeners (the redirected TLS/HTTP ports) and nothing else."""
    sim = _sim(offline=True)
    try:
        phone = sim.add_phone("clean")
        tcp = _scan(phone, "tcp", hotspot.BOX_IP)
        assert tcp == sorted({53, hotspot.OFFLINE_PORT, *hotspot.OFFLINE_TCP_PORTS})
        udp = _scan(phone, "udp", hotspot.BOX_IP)
        assert 53 in udp and set(udp) <= {53, hotspot.OFFLINE_PORT, *hotspot.OFFLINE_UDP_PORTS}
    finally:
        sim.cleanup()


@pytest.mark.netns
@needs_netns
def test_offline_listeners_never_serve_the_box_files():
    """HTTP requests for the box's own files (config, passphrase, passwd) on every open port get none of them."""
    sim = _sim(offline=True)
    try:
        phone = sim.add_phone("clean")
        secret = sim.passphrase
        conf = os.path.join(sim.run_dir, "hostapd.conf")
        paths = ["/", "/../../../../etc/passwd", conf, "/.." + conf, "/etc/pocketcheck/pocketcheck.yaml",
                 "/var/lib/pocketcheck/keys/", "/var/lib/pocketcheck/sessions/"]
        fetch = ("import socket,sys\n"
                 "out=b''\n"
                 "for port in map(int, sys.argv[2].split(',')):\n"
                 "  for path in sys.argv[3:]:\n"
                 "    try:\n"
                 "      s=socket.create_connection((sys.argv[1],port),3); s.settimeout(3)\n"
                 "      s.sendall(b'GET '+path.encode()+b' HTTP/1.0\\r\\nHost: box\\r\\n\\r\\n')\n"
                 "      while len(out) < 1<<20:\n"
                 "        b=s.recv(65536)\n"
                 "        if not b: break\n"
                 "        out+=b\n"
                 "    except OSError: pass\n"
                 "sys.stdout.write(out.decode('latin-1'))\n")
        ports = ",".join(map(str, sorted({53, hotspot.OFFLINE_PORT, *hotspot.OFFLINE_TCP_PORTS})))
        r = system.run(["ip", "netns", "exec", phone.ns, sys.executable, "-c", fetch, hotspot.BOX_IP, ports, *paths],
                       timeout=300, check=False)
        assert secret and secret not in r.stdout
        assert "root:x:" not in r.stdout and "wpa_passphrase" not in r.stdout
    finally:
        sim.cleanup()


HOME_LAN = ("192.168.1.50", "10.0.0.20", "172.16.5.5")
LISTENER = ("import socket,sys\n"
            "srv=socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
            "srv.bind((sys.argv[1], int(sys.argv[2]))); srv.listen(16)\n"
            "while True:\n"
            "    c, _ = srv.accept(); c.sendall(b'HOME'); c.close()\n")


@pytest.mark.netns
@needs_netns
def test_home_lan_behind_the_uplink_is_unreachable():
    """Hosts on the uplink's private networks cannot be reached from the phone; the internet still can."""
    sim = _sim(offline=False)
    listeners = []
    try:
        # the home hosts live in the uplink's namespace (as the router's LAN would)
        for ip in HOME_LAN:
            system.run(["ip", "-n", sim.net, "addr", "add", f"{ip}/32", "dev", "lo"], timeout=10)
        for ip in HOME_LAN:
            listeners.append(system.spawn(["ip", "netns", "exec", sim.net, sys.executable, "-c", LISTENER, ip, "2222"],
                                          startup=0.3, log_path=os.path.join(sim.run_dir, f"home-{ip}.log")))
        # the box itself reaches the home hosts (so the test would see a hole in the firewall)
        # port 2222: the fake internet already listens on every address of its namespace on 80/443
        probe = "import socket,sys; s=socket.create_connection((sys.argv[1],int(sys.argv[2])),2); print('open')"
        for ip in HOME_LAN:
            out = system.run(["ip", "netns", "exec", sim.box, sys.executable, "-c", probe, ip, "2222"], timeout=20)
            assert out.stdout.strip() == "open"
        phone = sim.add_phone("clean")
        for ip in HOME_LAN:
            r = system.run(["ip", "netns", "exec", phone.ns, sys.executable, "-c", probe, ip, "2222"], timeout=20,
                           check=False)
            assert r.returncode != 0 and "open" not in r.stdout, f"the phone reached the home LAN host {ip}"
        server = str(next(internet.FAKE_SERVERS.hosts()))
        ok = system.run(["ip", "netns", "exec", phone.ns, sys.executable, "-c", probe, server, "443"], timeout=20,
                        check=False)
        assert ok.stdout.strip() == "open"  # the internet is still reachable
    finally:
        for d in listeners:
            d.stop()
        sim.cleanup()


# ------------------------------------------------------------- at rest
def _real_session(tmp_path, umask):
    old = os.umask(umask)
    try:
        a, hardware = replay_app(tmp_path, "stalkerware", cfg_text="capture:\n  minimum_minutes: 0\n")
        a.start()
        capture_for(a, 60)
        assert a.state is State.VERDICT
        hardware.close()
        return a
    finally:
        os.umask(old)


def test_captures_reports_and_keys_are_private_even_with_a_loose_umask(tmp_path):
    """With umask 000, the sessions and keys folders are still 0700: no other user reaches a capture or report."""
    a = _real_session(tmp_path, 0)
    data = tmp_path / "data"
    sessions = data / "sessions"
    assert stat.S_IMODE(sessions.stat().st_mode) == 0o700
    for d in sessions.iterdir():
        assert stat.S_IMODE(d.stat().st_mode) == 0o700
    keys = data / "keys"
    assert stat.S_IMODE(keys.stat().st_mode) == 0o700
    for f in keys.iterdir():
        assert not stat.S_IMODE(f.stat().st_mode) & 0o077, f
    assert a.session.capture.is_file()


def test_with_the_service_umask_every_file_is_owner_only(tmp_path):
    """Under the service's umask (077) every file the session writes is 0600 and every folder 0700."""
    _real_session(tmp_path, 0o077)
    for p in (tmp_path / "data").rglob("*"):
        mode = stat.S_IMODE(p.lstat().st_mode)
        assert not mode & 0o077, (p, oct(mode))


def test_the_service_sets_its_own_umask(tmp_path):
    """`pocketcheck run` runs with umask 077 whatever umask it was started with (read from /proc)."""
    cfgfile = tmp_path / "pocketcheck.yaml"
    cfgfile.write_text(f"data_dir: {tmp_path / 'data'}\n")
    proc = subprocess.Popen(["sh", "-c", 'umask 022; exec "$0" -m appliance run --config "$1" --fake-hardware',
                             sys.executable, str(cfgfile)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        umask = None
        while time.monotonic() < deadline:
            status = pathlib.Path(f"/proc/{proc.pid}/status").read_text()
            umask = status.split("Umask:")[1].split()[0]
            if umask == "0077" or proc.poll() is not None:
                break
            time.sleep(0.1)
        assert umask == "0077"
    finally:
        proc.terminate()
        proc.wait(10)


def test_exported_reports_are_wiped_after_the_configured_time(tmp_path):
    """A report exported to a stick disappears from the box once keep_exported_hours have passed; others stay."""
    from appfakes import make_app

    from appliance import usb

    a, hardware, clock, _ = make_app(tmp_path, cfg_text="report:\n  keep_exported_hours: 2\n")
    try:
        for _ in range(2):
            a.post(Ev.PRESS)
            a.pump()
            FakeHotspot.instances[-1].phones = ["p"]
            a.tick()
            a.tick(400)
            a.post(Ev.PRESS)
            a.pump()
            assert a.state is State.VERDICT
            first = a.session
            if _ == 0:
                img = usb.make_image(tmp_path / "s.img", 4096)
                a.post(Ev.USB_INSERTED, stick=usb.MtoolsStick(img))
                a.pump()
                assert a.state is State.SAFE_TO_REMOVE
                exported = first
                a.post(Ev.USB_REMOVED)
                a.pump()
            else:
                a.post(Ev.PRESS)
                a.pump()
        assert pathlib.Path(exported.dir).is_dir()
        clock.advance(2 * 3600 + 60)
        a.last_wipe = None
        a.tick()
        assert not pathlib.Path(exported.dir).exists()
        assert len(a.store.pending()) == 1  # the unexported one stays
    finally:
        hardware.close()


def test_box_with_an_organisation_key_exports_only_what_the_organisation_can_open(tmp_path, new_age_key):
    """report.encrypt_to in the box's configuration: the stick gets report.tar.age (+ manifest, signature) and
    nothing in the clear; age with the organisation's identity opens a signed, intact report with the verdict."""
    import io
    import tarfile

    from appliance import usb

    org, org_public = new_age_key()
    a, hardware = replay_app(tmp_path, "stalkerware",
                             cfg_text=f"capture:\n  minimum_minutes: 0\nreport:\n  encrypt_to: [{org_public}]\n")
    try:
        a.start()
        capture_for(a, 60)
        assert a.state is State.VERDICT and a.session.verdict == "red"
        img = usb.make_image(tmp_path / "stick.img", 8192)
        a.post(Ev.USB_INSERTED, stick=usb.MtoolsStick(img))
        a.pump()
        assert a.state is State.SAFE_TO_REMOVE, a.error
        back = usb.MtoolsStick(img).read_back(a.session.id, tmp_path / "from-stick" / a.session.id)
    finally:
        hardware.close()
    assert sorted(p.name for p in back.rglob("*") if p.is_file()) == [
        "MANIFEST.sha256", "MANIFEST.sha256.sig", "report.tar.age"]
    assert report.verify(back).intact
    sealed = (back / "report.tar.age").read_bytes()
    assert b"report.json" not in sealed and b"protocol-a946" not in sealed
    idf = tmp_path / "org.key"
    idf.write_text(org + "\n")
    plain = subprocess.run(["age", "-d", "-i", str(idf), str(back / "report.tar.age")], capture_output=True,
                           timeout=60, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(plain)) as tar:
        tar.extractall(tmp_path / "opened", filter="data")
    folder = next(p.parent for p in (tmp_path / "opened").rglob("report.json"))
    assert report.verify(folder).intact
    assert json.loads((folder / "report.json").read_text())["verdict"] == "red"
    other, _ = new_age_key()
    idf.write_text(other + "\n")
    assert subprocess.run(["age", "-d", "-i", str(idf), str(back / "report.tar.age")], capture_output=True,
                          timeout=60, check=False).returncode != 0


def test_report_encrypted_to_an_organisation_key_decrypts_with_age_tooling(tmp_path):
    """`analyze --encrypt-to` (the age program) leaves only report.tar.age; pyrage, an independent age
    implementation, opens it intact with the organisation's identity, and so does age itself."""
    import io
    import tarfile

    import pyrage

    ident = pyrage.x25519.Identity.generate()
    pcap = tmp_path / "p.pcap"
    build_replay_capture("stalkerware", pcap, 1_800_000_000.0)
    out = tmp_path / "rep"
    r = subprocess.run([sys.executable, "-m", "appliance", "analyze", str(pcap), "--out", str(out),
                        "--encrypt-to", str(ident.to_public()), "--key-dir", str(tmp_path / "keys")],
                       capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode == 0, r.stderr
    files = sorted(p.name for p in out.rglob("*") if p.is_file())
    assert files == ["MANIFEST.sha256", "MANIFEST.sha256.sig", "report.tar.age"]
    manifest = (out / "MANIFEST.sha256").read_text()
    assert manifest.count("\n") == 1 and manifest.rstrip().endswith("report.tar.age")  # hashes only, no names
    assert report.verify(out).intact
    sealed = (out / "report.tar.age").read_bytes()
    assert b"protocol-a946" not in sealed and b"report.json" not in sealed  # nothing readable in the clear
    with pytest.raises(pyrage.DecryptError):
        pyrage.decrypt(sealed, [pyrage.x25519.Identity.generate()])
    plain = pyrage.decrypt(sealed, [ident])
    with tarfile.open(fileobj=io.BytesIO(plain)) as tar:
        names = tar.getnames()
        doc = json.loads(tar.extractfile(next(n for n in names if n.endswith("report.json"))).read())
        dest = tmp_path / "opened"
        tar.extractall(dest, filter="data")
    assert doc["verdict"] == "red"
    folder = next(p.parent for p in dest.rglob("report.json"))
    assert report.verify(folder).intact
    if system.which("age"):
        idf = tmp_path / "org.key"
        idf.write_text(str(ident) + "\n")
        r = subprocess.run(["age", "-d", "-i", str(idf), str(out / "report.tar.age")], capture_output=True,
                           timeout=60, check=False)
        assert r.returncode == 0 and r.stdout == plain
