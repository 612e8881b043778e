"""Offline listeners: they read a client's first flight (TLS, HTTP, QUIC) and never finish a handshake."""
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


def test_http_connectivity_checks_get_answers(listeners):
    """Android's generate_204 gets a 204 and Apple's hotspot-detect gets its Success page."""
    def ask(path):
        with socket.create_connection((listeners.host, listeners.port), timeout=5) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            out = b""
            while chunk := s.recv(4096):
                out += chunk
            return out

    assert ask("/generate_204").startswith(b"HTTP/1.1 204 ")
    apple = ask("/hotspot-detect.html")
    assert apple.startswith(b"HTTP/1.1 200 ") and apple.endswith(b"<BODY>Success</BODY></HTML>")
    assert [k for k, _, _ in wait_seen(listeners, 2)] == ["http", "http"]


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
