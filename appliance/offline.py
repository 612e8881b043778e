"""Offline mode listeners: let a phone say which names it wants, without an internet.

With no uplink, dnsmasq answers every name with the box's address and
nftables redirects the common TLS and HTTP ports (and QUIC's UDP 443) to one
port here. The listeners accept a connection just long enough to receive
the client's first flight - the TLS ClientHello with its server name, or an
HTTP request with its Host - so that the capture sees it, then close. They
never complete a TLS handshake they cannot complete honestly (the box has no
certificate for anyone else's name) and never answer QUIC at all.

One exception: plain HTTP gets a "204 No Content". Android decides whether a
Wi-Fi network "has internet" from an HTTP request to generate_204 (and
Apple from captive.apple.com's "Success" page); without an answer the phone
may move its traffic to mobile data, where the box cannot see it.

Run in-process (``OfflineListeners(...).start()``, the Pi) or as a process
(``python -m appliance.offline --host 10.23.0.1 --port 10443``, the
simulation, inside the box's network namespace). It is part of the hotspot
(:class:`appliance.hotspot.PiHotspot` starts it; the port and the redirected
ports are in :mod:`appliance.hotspot.settings`) but needs nothing of it, and
stays a module of its own because the simulation starts it by that name.
"""
from __future__ import annotations

import argparse
import logging
import select
import signal
import socket
import sys
import threading
import time

log = logging.getLogger(__name__)

# How long one client may take to send its first flight, and how much of it
# is read: a ClientHello with post-quantum key shares is about 1.8 KB.
READ_TIMEOUT_S = 5.0
MAX_HELLO_BYTES = 16 * 1024 + 5
MAX_CONNECTIONS = 32

_HTTP_METHODS = (b"GET ", b"POST", b"HEAD", b"PUT ", b"DELE", b"OPTI", b"PATC", b"CONN")
_APPLE_SUCCESS = (b"<HTML><HEAD><TITLE>Success</TITLE></HEAD><BODY>Success</BODY></HTML>")


def hello_complete(data: bytes) -> bool:
    """Tells whether ``data`` holds a whole TLS ClientHello or HTTP request head.

    Args:
        data: the bytes received so far on a connection.
    Returns:
        True when nothing more needs to be read: a complete handshake message
        (over one or more TLS records), the end of HTTP headers, or bytes that
        are neither TLS nor HTTP.
    """
    if not data:
        return False
    if data[0] == 0x16:  # TLS handshake record(s)
        body, pos = bytearray(), 0
        while pos + 5 <= len(data) and data[pos] == 0x16:
            rec_len = int.from_bytes(data[pos + 3:pos + 5], "big")
            body += data[pos + 5:pos + 5 + rec_len]
            if pos + 5 + rec_len > len(data):
                break
            pos += 5 + rec_len
        if len(body) >= 4:
            need = 4 + int.from_bytes(body[1:4], "big")
            return len(body) >= need
        return False
    if data[:4] in _HTTP_METHODS:
        return b"\r\n\r\n" in data
    return True  # not something we read names from: close at once


def _http_reply(head: bytes) -> bytes:
    line = head.split(b"\r\n", 1)[0]
    parts = line.split(b" ")
    path = parts[1] if len(parts) > 1 else b"/"
    if b"hotspot-detect" in path or b"library/test/success" in path:
        return (b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n"
                b"Content-Length: %d\r\n\r\n" % len(_APPLE_SUCCESS) + _APPLE_SUCCESS)
    return b"HTTP/1.1 204 No Content\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"


class OfflineListeners:
    """A TCP listener (TLS and HTTP) and a UDP listener (QUIC) on one port.

    Attributes:
        seen: (kind, peer address, bytes read) for each client, kind being
            "tls", "http", "other" or "quic"; bounded to the last 1000.
    """

    def __init__(self, host: str, port: int, on_client=None):
        """Prepares the listeners (nothing is bound until :meth:`start`).

        Args:
            host: the address to bind (the box's hotspot address).
            port: the TCP and UDP port nftables redirects to.
            on_client: optional callable(kind, peer, nbytes), called from the
                listener threads after each client.
        """
        self.host, self.port = host, port
        self._on_client = on_client
        self.seen: list[tuple[str, str, int]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._tcp: socket.socket | None = None
        self._udp: socket.socket | None = None
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)

    def start(self) -> None:
        """Binds both sockets and starts the listener threads.

        Raises:
            OSError: a socket cannot be bound (address missing, port taken).
        """
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            tcp.bind((self.host, self.port))
            tcp.listen(64)
            udp.bind((self.host, self.port))
        except OSError:
            tcp.close()
            udp.close()
            raise
        self._tcp, self._udp = tcp, udp
        for target in (self._accept_loop, self._udp_loop):
            t = threading.Thread(target=target, name=f"offline-{target.__name__}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        """Closes the sockets and waits (bounded) for the threads to end."""
        self._stop.set()
        for t in self._threads:
            t.join(timeout=READ_TIMEOUT_S + 1)
        self._threads.clear()
        for s in (self._tcp, self._udp):
            if s is not None:
                s.close()
        self._tcp = self._udp = None

    def _note(self, kind: str, peer: str, n: int) -> None:
        with self._lock:
            self.seen.append((kind, peer, n))
            del self.seen[:-1000]
            if self._on_client is not None:
                self._on_client(kind, peer, n)

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self._tcp], [], [], 0.2)
            if not ready:
                continue
            try:
                conn, addr = self._tcp.accept()
            except OSError:
                continue
            if not self._slots.acquire(blocking=False):
                conn.close()  # too many at once: a flood, not a phone
                continue
            threading.Thread(target=self._serve, args=(conn, addr[0]), daemon=True).start()

    def _serve(self, conn: socket.socket, peer: str) -> None:
        data = b""
        try:
            conn.settimeout(0.5)
            deadline = time.monotonic() + READ_TIMEOUT_S
            while len(data) < MAX_HELLO_BYTES and not hello_complete(data) and time.monotonic() < deadline:
                try:
                    chunk = conn.recv(MAX_HELLO_BYTES - len(data))
                except TimeoutError:
                    continue
                if not chunk:
                    break
                data += chunk
            if data[:1] == b"\x16":
                kind = "tls"
            elif data[:4] in _HTTP_METHODS:
                kind = "http"
                if b"\r\n\r\n" in data:
                    conn.sendall(_http_reply(data))
            else:
                kind = "other"
            self._note(kind, peer, len(data))
        except OSError as exc:
            log.debug("offline listener: %s: %s", peer, exc)
        finally:
            conn.close()
            self._slots.release()

    def _udp_loop(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self._udp], [], [], 0.2)
            if not ready:
                continue
            try:
                data, addr = self._udp.recvfrom(2048)
            except OSError:
                continue
            # A QUIC Initial: read, never answered (no handshake we could finish).
            self._note("quic", addr[0], len(data))


def main(argv: list[str] | None = None) -> int:
    """Runs the listeners as a process until SIGTERM or SIGINT (the simulation's box)."""
    ap = argparse.ArgumentParser(prog="python -m appliance.offline")
    ap.add_argument("--host", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--log", help="append one line per client to this file")
    args = ap.parse_args(argv)
    def write(kind: str, peer: str, n: int) -> None:
        if args.log:  # called under the listeners' lock: one line at a time
            with open(args.log, "a", encoding="utf-8") as fh:
                fh.write(f"{kind} {peer} {n}\n")

    listeners = OfflineListeners(args.host, args.port, on_client=write)
    try:
        listeners.start()
    except OSError as exc:
        print(f"offline listeners: cannot bind {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 2
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    print(f"offline listeners on {args.host}:{args.port}", flush=True)
    while not done.wait(0.5):
        pass
    listeners.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
