"""Offline listeners: they read a client's first flight (TLS, HTTP, QUIC) and never finish a handshake."""
import json
import os
import socket
import ssl
import subprocess
import sys
import time

import pytest

from appliance import offline
from appliance.sim import packets


def record(payload: bytes, ctype: int = 0x16) -> bytes:
    return bytes([ctype, 3, 1]) + len(payload).to_bytes(2, "big") + payload


@pytest.fixture
def listeners():
    """Offline listeners on a free loopback port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    lst = offline.OfflineListeners("127.0.0.1", port)
    lst.start()
    yield lst
    lst.stop()


def wait_seen(lst, n=1, timeout=5.0):
    deadline = time.monotonic() + timeout
    while len(lst.seen) < n and time.monotonic() < deadline:
        time.sleep(0.02)
    return list(lst.seen)


def test_hello_complete_follows_tls_record_and_handshake_lengths():
    """A ClientHello is complete only when its handshake length is reached, across records."""
    hello = packets.client_hello("c2.example.net", quic=False)
    whole = record(hello)
    assert offline.hello_complete(whole)
    for cut in (1, 5, 9, len(whole) - 1):
        assert not offline.hello_complete(whole[:cut])
    split = record(hello[:100]) + record(hello[100:])
    assert not offline.hello_complete(split[:-1])
    assert offline.hello_complete(split)


def test_hello_complete_for_http_and_other_bytes():
    """An HTTP head ends at the blank line; bytes that are neither TLS nor HTTP end at once."""
    assert not offline.hello_complete(b"GET / HTTP/1.1\r\nHost: a\r\n")
    assert offline.hello_complete(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    assert offline.hello_complete(b"SSH-2.0-OpenSSH\r\n")
    assert not offline.hello_complete(b"")


def test_tls_client_never_completes_a_handshake(listeners):
    """A real TLS client gets no ServerHello: the listener reads the whole hello and closes."""
    ctx = ssl.create_default_context()
    with socket.create_connection((listeners.host, listeners.port), timeout=5) as raw, \
            pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        ctx.wrap_socket(raw, server_hostname="c2.example.net")
    kind, peer, n = wait_seen(listeners)[0]
    assert (kind, peer) == ("tls", "127.0.0.1")
    assert n > 100  # the whole ClientHello was read, not just a record header


def test_listener_reads_exactly_the_hello_and_sends_nothing(listeners):
    """A hand-built ClientHello split over two records is read in full; not one byte comes back."""
    hello = packets.client_hello("tracker.example.org", quic=False)
    data = record(hello[:60]) + record(hello[60:])
    with socket.create_connection((listeners.host, listeners.port), timeout=5) as s:
        s.sendall(data[:30])
        time.sleep(0.2)
        s.sendall(data[30:])
        assert s.recv(100) == b""  # closed without an answer
    assert wait_seen(listeners)[0] == ("tls", "127.0.0.1", len(data))


def _ask(lst, head: bytes) -> bytes:
    with socket.create_connection((lst.host, lst.port), timeout=5) as s:
        s.sendall(head)
        out = b""
        while chunk := s.recv(4096):
            out += chunk
        return out


def test_http_connectivity_checks_get_answers(listeners):
    """Android's generate_204 gets a 204 and Apple's hotspot-detect gets its Success page, nothing more."""
    android = _ask(listeners, b"GET /generate_204 HTTP/1.1\r\nHost: connectivitycheck.gstatic.com\r\n\r\n")
    assert android.startswith(b"HTTP/1.1 204 ") and android.endswith(b"\r\n\r\n")
    apple = _ask(listeners, b"GET /hotspot-detect.html HTTP/1.1\r\nHost: captive.apple.com\r\n\r\n")
    assert apple.startswith(b"HTTP/1.1 200 ") and apple.endswith(b"<BODY>Success</BODY></HTML>")
    assert [k for k, _, _ in wait_seen(listeners, 2)] == ["check", "check"]


@pytest.mark.parametrize("head", [
    b"GET /generate_204 HTTP/1.1\r\nHost: c2.example-stalker.com\r\n\r\n",     # right path, other host
    b"GET /api/checkin HTTP/1.1\r\nHost: connectivitycheck.gstatic.com\r\n\r\n",  # right host, other path
    b"POST /generate_204 HTTP/1.1\r\nHost: clients3.google.com\r\nContent-Length: 0\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: www.bbc.co.uk\r\n\r\n",
])
def test_every_other_http_request_is_read_and_never_answered(listeners, head):
    """A request that is not a listed connectivity check gets no byte back; the listener only read it."""
    assert _ask(listeners, head) == b""
    assert wait_seen(listeners)[0] == ("http", "127.0.0.1", len(head))


def test_checks_match_host_case_port_query_and_absolute_form():
    """Host case and port, a query string and the absolute request form do not hide a listed check."""
    c = offline.load_connectivity()
    for head in (b"GET /success.txt?ipv4 HTTP/1.1\r\nHost: DetectPortal.Firefox.com:80\r\n\r\n",
                 b"GET http://detectportal.firefox.com/success.txt HTTP/1.1\r\nHost: x\r\n\r\n"):
        assert offline.reply_for(head, c).endswith(b"\r\n\r\nsuccess\n")
    head_only = offline.reply_for(b"HEAD /connecttest.txt HTTP/1.1\r\nhost: www.msftconnecttest.com\r\n\r\n", c)
    assert head_only.startswith(b"HTTP/1.1 200 OK\r\n") and head_only.endswith(b"\r\n\r\n")
    assert b"Content-Length: 22\r\n" in head_only  # HEAD: the headers of the real answer, no body


# The real servers' answers, written from the vendors' documentation (not
# from connectivity.yaml): (status, exact body) per path.
REAL_ANSWERS = {
    "/generate_204": (204, b""), "/gen_204": (204, b""),
    "/hotspot-detect.html": (200, b"<HTML><HEAD><TITLE>Success</TITLE></HEAD><BODY>Success</BODY></HTML>"),
    "/library/test/success.html": (200, b"<HTML><HEAD><TITLE>Success</TITLE></HEAD><BODY>Success</BODY></HTML>"),
    "/": (200, b"<HTML><HEAD><TITLE>Success</TITLE></HEAD><BODY>Success</BODY></HTML>"),
    "/connecttest.txt": (200, b"Microsoft Connect Test"), "/ncsi.txt": (200, b"Microsoft NCSI"),
    "/success.txt": (200, b"success\n"),
    "/canonical.html": (200, b'<meta http-equiv="refresh" content="0;url=https://support.mozilla.org/kb/captive-portal"/>'),
}


def test_shipped_list_covers_the_issue_and_gives_the_real_answers():
    """The shipped file names the checks of Android, Apple, Windows and Firefox, each with its real answer."""
    c = offline.load_connectivity()
    for host, path in [("connectivitycheck.gstatic.com", "/generate_204"), ("clients3.google.com", "/generate_204"),
                       ("captive.apple.com", "/hotspot-detect.html"), ("www.apple.com", "/library/test/success.html"),
                       ("www.msftconnecttest.com", "/connecttest.txt"), ("detectportal.firefox.com", "/success.txt")]:
        assert c.find(host, path) is not None, (host, path)
    for check in c.checks:
        for path in check.paths:
            assert (check.status, check.body) == REAL_ANSWERS[path], (check.client, path)
    assert c.dns_answers == {"dns.msftncsi.com": "131.107.255.255"}


@pytest.mark.parametrize("doc,word", [
    ([], "expected a mapping"),
    ({"checks": []}, "non-empty list"),
    ({"checks": [{"for": "x", "hosts": ["a"], "paths": ["/"], "status": 302}]}, "status must be"),
    ({"checks": [{"for": "x", "hosts": ["a"], "paths": ["nope"], "status": 204}]}, "starts with '/'"),
    ({"checks": [{"for": "x", "hosts": [], "paths": ["/"], "status": 204}]}, "non-empty list of names"),
    ({"checks": [{"for": "x", "hosts": ["a"], "paths": ["/"], "status": 204, "body": "x"}]}, "204 has no body"),
    ({"checks": [{"for": "x", "hosts": ["a"], "paths": ["/"], "status": 204, "colour": 1}]}, "unknown key 'colour'"),
    ({"checks": [{"for": "x", "hosts": ["a"], "paths": ["/"], "status": 204}], "dns_answers": {"a": "box"}},
     "not an IPv4 address"),
])
def test_a_bad_connectivity_file_is_one_clear_error(doc, word):
    """Each kind of mistake in the data file is a ConfigError that says what is wrong."""
    from appliance.errors import ConfigError

    with pytest.raises(ConfigError, match=word):
        offline.parse_connectivity(doc)


def test_unreadable_or_broken_connectivity_file_is_one_clear_error(tmp_path):
    """A missing file or one that is not YAML is a ConfigError naming the file."""
    from appliance.errors import ConfigError

    with pytest.raises(ConfigError, match="cannot read"):
        offline.load_connectivity(str(tmp_path / "none.yaml"))
    (tmp_path / "bad.yaml").write_text("checks: [\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not a valid YAML"):
        offline.load_connectivity(str(tmp_path / "bad.yaml"))


def test_quic_initials_are_read_and_never_answered(listeners):
    """A QUIC Initial datagram is counted and gets no reply."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.5)
        s.sendto(packets.quic_initial("c2.example.net"), (listeners.host, listeners.port))
        with pytest.raises(TimeoutError):
            s.recvfrom(2048)
    assert wait_seen(listeners)[0] == ("quic", "127.0.0.1", 1200)


def test_silent_client_is_dropped_after_the_read_timeout(listeners, monkeypatch):
    """A client that sends nothing is closed after READ_TIMEOUT_S, not held forever."""
    monkeypatch.setattr(offline, "READ_TIMEOUT_S", 0.5)
    with socket.create_connection((listeners.host, listeners.port), timeout=5) as s:
        t0 = time.monotonic()
        assert s.recv(10) == b""
        assert time.monotonic() - t0 < 3
    assert wait_seen(listeners)[0][0] == "other"


def test_process_reports_a_port_it_cannot_bind_in_one_line():
    """Run as a process on an address it cannot bind, the listener exits 2 with one plain line."""
    proc = subprocess.run([sys.executable, "-m", "appliance.offline", "--host", "192.0.2.1", "--port", "10443"],
                          capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert "cannot bind 192.0.2.1:10443" in proc.stderr
    assert "Traceback" not in proc.stderr


IS_ROOT = os.geteuid() == 0


@pytest.mark.netns
@pytest.mark.skipif(not IS_ROOT, reason="network namespaces need root")
def test_each_listed_check_gets_its_exact_answer_in_a_phone_namespace():
    """In the offline simulation a real HTTP client on a phone gets, for every listed check, the real answer."""
    from appliance import hotspot
    from appliance.sim import netns
    from appliance.sim.hotspot import SimulatedHotspot

    c = offline.load_connectivity()
    asks = sorted({(h, p) for check in c.checks for h in check.hosts for p in check.paths})
    script = ("import json,sys\nfrom appliance.sim.phone import resolve, http_fetch\nout=[]\n"
              f"for h, p in {asks!r}:\n"
              f"    ip = resolve(h, {hotspot.BOX_IP!r})\n"
              "    got = http_fetch(ip, h, p) if ip else None\n"
              "    out.append([h, p, ip, got[0] if got else None, got[1].decode('latin-1') if got else None])\n"
              f"out.append(['dns.msftncsi.com', '', resolve('dns.msftncsi.com', {hotspot.BOX_IP!r}), None, None])\n"
              "print(json.dumps(out))\n")
    sim = SimulatedHotspot(offline=True)
    try:
        sim.start(hotspot.new_ssid(), hotspot.new_passphrase())
        phone = sim.add_phone("clean")
        rows = json.loads(phone.run(netns.PYTHON, "-c", script, timeout=300))
    finally:
        sim.cleanup()
    *checks, ncsi = rows
    assert len(checks) == len(asks) > 40
    for host, path, ip, status, body in checks:
        assert ip == hotspot.BOX_IP, host
        assert (status, body.encode("latin-1")) == REAL_ANSWERS[path], (host, path)
    assert ncsi[2] == "131.107.255.255"  # Windows' DNS check gets its fixed answer, not the box
