"""Offline mode listeners: let a phone say which names it wants, without an internet.

With no uplink, dnsmasq answers every name with the box's address and
nftables redirects the common TLS and HTTP ports (and QUIC's UDP 443) to one
port here. The listeners accept a connection just long enough to receive
the client's first flight - the TLS ClientHello with its server name, or an
HTTP request with its Host - so that the capture sees it, then close. They
never complete a TLS handshake they cannot complete honestly (the box has no
certificate for anyone else's name) and never answer QUIC at all.

The exceptions are the operating systems' connectivity checks, listed in
``appliance/data/connectivity.yaml`` (Android's generate_204, Apple's
"Success" page, Windows' connecttest.txt, Firefox's success.txt...): each
gets exactly the answer its real server gives, because a phone whose check
fails moves its traffic to mobile data, where the box cannot see it. Every
other HTTP request is read and closed without an answer; no suspected
server is ever contacted (there is no uplink).

Run in-process (``OfflineListeners(...).start()``, the Pi) or as a process
(``python -m appliance.offline --host 10.23.0.1 --port 10443``, the
simulation, inside the box's network namespace). It is part of the hotspot
(:class:`appliance.hotspot.PiHotspot` starts it; the port and the redirected
ports are in :mod:`appliance.hotspot.settings`) but needs nothing of it, and
stays a module of its own because the simulation starts it by that name.
"""
from __future__ import annotations

import argparse
import functools
import ipaddress
import logging
import select
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError

log = logging.getLogger(__name__)

# How long one client may take to send its first flight, and how much of it
# is read: a ClientHello with post-quantum key shares is about 1.8 KB.
READ_TIMEOUT_S = 5.0
MAX_HELLO_BYTES = 16 * 1024 + 5
MAX_CONNECTIONS = 32

_HTTP_METHODS = (b"GET ", b"POST", b"HEAD", b"PUT ", b"DELE", b"OPTI", b"PATC", b"CONN")
CONNECTIVITY_PATH = Path(__file__).resolve().parent / "data" / "connectivity.yaml"
_STATUS_TEXT = {200: "OK", 204: "No Content"}


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


@dataclass(frozen=True)
class Check:
    """One connectivity check the box answers: who asks, where, and the exact answer."""

    client: str            # "android", "apple", "windows", "firefox"...
    hosts: frozenset
    paths: frozenset
    status: int
    content_type: str
    body: bytes

    def response(self) -> bytes:
        """Returns the whole HTTP/1.1 response, as the real server sends it."""
        head = f"HTTP/1.1 {self.status} {_STATUS_TEXT[self.status]}\r\n"
        if self.content_type:
            head += f"Content-Type: {self.content_type}\r\n"
        head += f"Content-Length: {len(self.body)}\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n"
        return head.encode("ascii") + self.body


@dataclass(frozen=True)
class Connectivity:
    """The connectivity checks and fixed DNS answers of offline mode (connectivity.yaml)."""

    checks: tuple
    dns_answers: dict      # name -> IPv4 address dnsmasq gives instead of the box's

    def find(self, host: str, path: str) -> Check | None:
        """Returns the check a request is, or None.

        Args:
            host: the Host header (any case, with or without ":port").
            path: the request target (a query string is ignored).
        """
        host = host.strip().lower().rstrip(".")
        if host.startswith("["):
            return None
        host = host.rsplit(":", 1)[0] if ":" in host else host
        path = path.split("?", 1)[0].split("#", 1)[0]
        for check in self.checks:
            if host in check.hosts and path in check.paths:
                return check
        return None


def _text_list(where: str, value) -> frozenset:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{where}: expected a non-empty list of names")
    return frozenset(v.lower() for v in value)


def parse_connectivity(doc, where: str = "connectivity.yaml") -> Connectivity:
    """Checks a connectivity document (already read from YAML) and builds it.

    Args:
        doc: the mapping ``{checks: [...], dns_answers: {...}}``.
        where: the file name, for messages.
    Returns:
        A Connectivity.
    Raises:
        ConfigError: a missing or unknown key, a wrong type, an unsupported
            status, a path that does not start with "/", or a DNS answer that
            is not an IPv4 address.
    """
    if not isinstance(doc, dict) or set(doc) - {"checks", "dns_answers"} or "checks" not in doc:
        raise ConfigError(f"{where}: expected a mapping with 'checks' (and optional 'dns_answers')")
    if not isinstance(doc["checks"], list) or not doc["checks"]:
        raise ConfigError(f"{where}: 'checks' must be a non-empty list")
    checks = []
    for i, item in enumerate(doc["checks"], 1):
        at = f"{where}: check {i}"
        if not isinstance(item, dict):
            raise ConfigError(f"{at}: expected a mapping")
        unknown = set(item) - {"for", "hosts", "paths", "status", "content_type", "body"}
        if unknown:
            raise ConfigError(f"{at}: unknown key {min(unknown)!r}")
        client = item.get("for")
        status = item.get("status")
        body = item.get("body", "")
        ctype = item.get("content_type", "")
        if not isinstance(client, str) or not client:
            raise ConfigError(f"{at}: 'for' must name the client")
        if status not in _STATUS_TEXT or isinstance(status, bool):
            raise ConfigError(f"{at}: status must be one of {sorted(_STATUS_TEXT)}")
        if not isinstance(body, str) or not isinstance(ctype, str) or (status == 204 and body):
            raise ConfigError(f"{at}: body and content_type must be text (and a 204 has no body)")
        paths = _text_list(f"{at} paths", item.get("paths"))
        if any(not p.startswith("/") for p in paths):
            raise ConfigError(f"{at}: every path starts with '/'")
        checks.append(Check(client, _text_list(f"{at} hosts", item.get("hosts")), paths, status, ctype,
                            body.encode("utf-8")))
    answers = doc.get("dns_answers") or {}
    if not isinstance(answers, dict):
        raise ConfigError(f"{where}: 'dns_answers' must map names to IPv4 addresses")
    for name, addr in answers.items():
        try:
            ipaddress.IPv4Address(str(addr))
        except ValueError:
            raise ConfigError(f"{where}: dns_answers {name!r}: {addr!r} is not an IPv4 address") from None
    return Connectivity(tuple(checks), {str(k).lower(): str(v) for k, v in answers.items()})


@functools.cache
def load_connectivity(path: str | None = None) -> Connectivity:
    """Reads and checks the connectivity checks file (default: the shipped one).

    Args:
        path: another file (tests); None for ``appliance/data/connectivity.yaml``.
    Returns:
        A Connectivity.
    Raises:
        ConfigError: the file cannot be read, is not YAML, or is invalid.
    """
    import yaml  # late: the listener process needs it once

    p = Path(path) if path else CONNECTIVITY_PATH
    try:
        doc = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read: {exc.strerror or exc}") from None
    except (yaml.YAMLError, UnicodeDecodeError):
        raise ConfigError(f"{p}: not a valid YAML file") from None
    return parse_connectivity(doc, str(p))


def request_target(head: bytes) -> tuple[str, str]:
    """Returns (Host, path) of an HTTP request head ("" for what is missing)."""
    lines = head.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    parts = lines[0].split(b" ")
    path = parts[1].decode("latin-1") if len(parts) > 2 else ""
    host = ""
    for line in lines[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == b"host":
            host = value.strip().decode("latin-1")
            break
    if path.startswith("http://"):  # absolute form: the host is in the target
        rest = path[7:]
        host, _, tail = rest.partition("/")
        path = "/" + tail
    return host, path


def reply_for(head: bytes, connectivity: Connectivity) -> bytes | None:
    """Returns the answer to an HTTP request head, or None (read, never answered).

    Only a GET or HEAD of a listed connectivity check is answered.
    """
    if not head.startswith((b"GET ", b"HEAD ")):
        return None
    check = connectivity.find(*request_target(head))
    if check is None:
        return None
    out = check.response()
    return out.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n" if head.startswith(b"HEAD ") else out


class OfflineListeners:
    """A TCP listener (TLS and HTTP) and a UDP listener (QUIC) on one port.

    Attributes:
        seen: (kind, peer address, bytes read) for each client, kind being
            "tls", "http" (read, not answered), "check" (a connectivity check, answered),
            "other" or "quic"; bounded to the last 1000.
    """

    def __init__(self, host: str, port: int, on_client=None, connectivity: Connectivity | None = None):
        """Prepares the listeners (nothing is bound until :meth:`start`).

        Args:
            host: the address to bind (the box's hotspot address).
            port: the TCP and UDP port nftables redirects to.
            on_client: optional callable(kind, peer, nbytes), called from the
                listener threads after each client.
            connectivity: the checks answered (default: the shipped file).
        Raises:
            ConfigError: the shipped connectivity file is invalid.
        """
        self.connectivity = connectivity or load_connectivity()
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
                answer = reply_for(data, self.connectivity) if b"\r\n\r\n" in data else None
                if answer is not None:
                    conn.sendall(answer)
                    kind = "check"
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

    try:
        listeners = OfflineListeners(args.host, args.port, on_client=write)
        listeners.start()
    except ConfigError as exc:
        print(f"offline listeners: {exc}", file=sys.stderr)
        return 2
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
