"""The hotspot simulated with network namespaces, for machines without a Pi.

Topology (every name carries a per-run prefix ``pcsim-<pid>-<hex>``, so
parallel and aborted runs never collide, and stale ones can be found)::

    <prefix>-phone1  wlan0 ──veth── ph1 ┐
    <prefix>-phone2  wlan0 ──veth── ph2 ┴ bridge "wlan0" 10.23.0.1/24   <prefix>-box
                                          uplink0 198.18.0.2/24 ──veth── eth0 198.18.0.1   <prefix>-net

* ``box`` is the appliance: the real dnsmasq (DHCP + DNS) on the bridge that
  plays the radio (ports isolated, as hostapd's ap_isolate), the real
  nftables ruleset from ``hotspot.render_nftables`` (NAT to ``uplink0``),
  and in offline mode the offline listeners.
* ``phoneN`` are simulated phones: a busybox ``udhcpc`` takes a lease from
  the real dnsmasq, then a phone process (this module, ``phone``
  sub-command) makes real DNS queries, TLS connections (python ssl, with the
  server name), HTTP requests and QUIC Initials (built here with
  ``cryptography``, RFC 9001) through the real NAT.
* ``net`` is the fake internet (``internet`` sub-command): a DNS server that
  answers every name with an address in 198.19.0.0/16 (a ``local`` route
  makes that whole range this namespace's own), TLS servers with a
  self-made certificate, an HTTP server and a QUIC sink that only listens.

Only 10.23.0.0/24 and the benchmarking range 198.18.0.0/15 are used; no
namespace has a route to any real network.
"""
from __future__ import annotations

import argparse
import atexit
import datetime as _dt
import hashlib
import hmac
import http.client
import ipaddress
import logging
import os
import random
import re
import secrets
import shutil
import signal
import socket
import ssl
import struct
import sys
import tempfile
import threading
import time
import weakref
from pathlib import Path

from . import hotspot, system
from .errors import CommandError, HotspotError

log = logging.getLogger(__name__)

NS_PREFIX = "pcsim"
RUN_DIR_PREFIX = "pocketcheck-sim-"  # + creating pid + "-" + random, in the temp directory
NET_IP = "198.18.0.1"       # the fake internet's resolver and router
BOX_UPLINK_IP = "198.18.0.2"
FAKE_SERVERS = ipaddress.ip_network("198.19.0.0/16")  # every name resolves in here
PYTHON = sys.executable

# Names an ordinary phone reaches in a few minutes (none is an indicator).
CLEAN_NAMES = (
    "www.google.com", "www.youtube.com", "i.instagram.com", "www.wikipedia.org", "www.bbc.co.uk",
    "play.googleapis.com", "www.gstatic.com", "api.spotify.com", "www.apple.com", "weather.com",
)
CLEAN_QUIC_NAMES = ("www.youtube.com", "www.google.com")
CLEAN_HTTP_NAMES = ("connectivitycheck.gstatic.com",)
# Until the shipped indicator set provides names: the upstream list beside the tree.
_ROOT = Path(__file__).resolve().parent.parent


# ------------------------------------------------------------------ DNS wire
def dns_query(name: str, qtype: int = 1, qid: int | None = None) -> bytes:
    """Builds a DNS query message (RD set) for one name.

    Returns:
        The message bytes.
    """
    qid = secrets.randbelow(65536) if qid is None else qid
    q = b"".join(bytes([len(lab)]) + lab for lab in name.encode("ascii").split(b".") if lab) + b"\0"
    return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + q + struct.pack("!HH", qtype, 1)


def _read_name(msg: bytes, off: int) -> tuple[str, int]:
    labels, jumps, end = [], 0, None
    while True:
        if off >= len(msg):
            raise ValueError("name runs past the message")
        n = msg[off]
        if n & 0xC0 == 0xC0:
            if jumps > 20 or off + 1 >= len(msg):
                raise ValueError("bad compression pointer")
            if end is None:
                end = off + 2
            off = ((n & 0x3F) << 8) | msg[off + 1]
            jumps += 1
            continue
        if n == 0:
            return ".".join(labels), (end if end is not None else off + 1)
        labels.append(msg[off + 1:off + 1 + n].decode("ascii", "replace"))
        off += 1 + n


def dns_parse(msg: bytes) -> tuple[int, str, int, list[str]]:
    """Reads a DNS message: id, question name, question type and the A answers.

    Raises:
        ValueError: the message is malformed.
    """
    if len(msg) < 12:
        raise ValueError("short DNS message")
    qid, _flags, qd, an, _ns, _ar = struct.unpack("!HHHHHH", msg[:12])
    if qd != 1:
        raise ValueError("expected one question")
    name, off = _read_name(msg, 12)
    qtype = struct.unpack("!H", msg[off:off + 2])[0]
    off += 4
    answers = []
    for _ in range(an):
        _, off = _read_name(msg, off)
        rtype, _cls, _ttl, rdlen = struct.unpack("!HHIH", msg[off:off + 10])
        off += 10
        if rtype == 1 and rdlen == 4:
            answers.append(socket.inet_ntoa(msg[off:off + 4]))
        off += rdlen
    return qid, name, qtype, answers


def fake_address(name: str) -> str:
    """The address the fake internet gives a name: stable, inside 198.19.0.0/16."""
    h = hashlib.sha256(name.lower().rstrip(".").encode()).digest()
    return f"198.19.{h[0]}.{max(1, h[1]) if h[1] != 255 else 254}"


def dns_answer(query: bytes) -> bytes:
    """The fake internet's answer: every A question gets :func:`fake_address`, others no data."""
    qid, name, qtype, _ = dns_parse(query)
    _, qend = _read_name(query, 12)
    question = query[12:qend + 4]
    if qtype == 1:
        rr = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + socket.inet_aton(fake_address(name))
        return struct.pack("!HHHHHH", qid, 0x8180, 1, 1, 0, 0) + question + rr
    return struct.pack("!HHHHHH", qid, 0x8180, 1, 0, 0, 0) + question


def resolve(name: str, server: str, timeout: float = 3.0, tries: int = 2) -> str | None:
    """Asks ``server`` for the A record of ``name`` over UDP; None when there is none."""
    for _ in range(tries):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(timeout)
            q = dns_query(name)
            s.sendto(q, (server, 53))
            try:
                data, _ = s.recvfrom(4096)
            except TimeoutError:
                continue
            try:
                qid, _, _, answers = dns_parse(data)
            except ValueError:
                continue
            if qid == struct.unpack("!H", q[:2])[0]:
                return answers[0] if answers else None
    return None


# -------------------------------------------------------------- QUIC Initial
_QUIC_V1_SALT = bytes.fromhex("38762cf7f55934b34d179ae6a4c80cadccbb7f0a")


def _hkdf_expand_label(secret: bytes, label: str, length: int) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

    full = b"tls13 " + label.encode()
    info = struct.pack("!HB", length, len(full)) + full + b"\x00"
    return HKDFExpand(hashes.SHA256(), length, info).derive(secret)


def _varint(v: int) -> bytes:
    if v < 0x40:
        return bytes([v])
    if v < 0x4000:
        return struct.pack("!H", 0x4000 | v)
    return struct.pack("!I", 0x80000000 | v)


def client_hello(sni: str, alpn: bytes = b"h3", quic: bool = True) -> bytes:
    """Builds a TLS 1.3 ClientHello handshake message (no record header) naming ``sni``."""
    def ext(t: int, body: bytes) -> bytes:
        return struct.pack("!HH", t, len(body)) + body

    host = sni.encode("ascii")
    exts = [
        ext(0, struct.pack("!HBH", len(host) + 3, 0, len(host)) + host),
        ext(10, struct.pack("!HHH", 4, 0x001D, 0x0017)),                       # groups: x25519, p256
        ext(13, struct.pack("!HHHH", 6, 0x0403, 0x0804, 0x0401)),              # signature algorithms
        ext(16, struct.pack("!HB", len(alpn) + 1, len(alpn)) + alpn),          # ALPN
        ext(43, b"\x02\x03\x04"),                                               # TLS 1.3 only
        ext(51, struct.pack("!HHH", 36, 0x001D, 32) + secrets.token_bytes(32)),  # key share
    ]
    if quic:
        scid = secrets.token_bytes(8)
        params = b"\x0f" + _varint(len(scid)) + scid + b"\x04\x04\x80\x10\x00\x00"
        exts.append(ext(0x39, params))                                          # quic_transport_parameters
    body = (b"\x03\x03" + secrets.token_bytes(32) + b"\x00"
            + struct.pack("!H", 6) + b"\x13\x01\x13\x02\x13\x03" + b"\x01\x00")
    allx = b"".join(exts)
    body += struct.pack("!H", len(allx)) + allx
    return b"\x01" + len(body).to_bytes(3, "big") + body


def quic_client_initial_keys(dcid: bytes) -> tuple[bytes, bytes, bytes]:
    """Derives a QUIC v1 client's Initial packet key, IV and header-protection key (RFC 9001 5.2)."""
    # HKDF-Extract(salt, ikm) is HMAC-SHA256 keyed with the salt (RFC 5869).
    initial = hmac.new(_QUIC_V1_SALT, dcid, hashlib.sha256).digest()
    client = _hkdf_expand_label(initial, "client in", 32)
    return (_hkdf_expand_label(client, "quic key", 16), _hkdf_expand_label(client, "quic iv", 12),
            _hkdf_expand_label(client, "quic hp", 16))


def quic_initial(sni: str, dcid: bytes | None = None, scid: bytes | None = None) -> bytes:
    """Builds a client's first QUIC v1 Initial datagram (RFC 9000/9001) carrying a ClientHello.

    The packet is protected exactly as a real client does it (Initial keys
    from the destination connection id, AES-128-GCM, header protection),
    and padded to 1200 bytes, so any QUIC-aware reader can decrypt it.

    Args:
        sni: the server name in the ClientHello.
        dcid, scid: connection ids (random 8 bytes when omitted).
    Returns:
        The UDP payload.
    """
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    dcid = dcid or secrets.token_bytes(8)
    scid = scid or secrets.token_bytes(8)
    key, iv, hp = quic_client_initial_keys(dcid)

    ch = client_hello(sni)
    frames = b"\x06" + _varint(0) + _varint(len(ch)) + ch
    pn, pn_len = 0, 4
    header_wo_len = (bytes([0xC0 | (pn_len - 1)]) + struct.pack("!I", 1)
                     + bytes([len(dcid)]) + dcid + bytes([len(scid)]) + scid + _varint(0))
    # Pad the payload so the datagram is at least 1200 bytes (RFC 9000 14.1).
    overhead = len(header_wo_len) + 2 + pn_len + 16
    if overhead + len(frames) < 1200:
        frames += b"\x00" * (1200 - overhead - len(frames))
    length = pn_len + len(frames) + 16
    header = header_wo_len + struct.pack("!H", 0x4000 | length) + pn.to_bytes(pn_len, "big")
    nonce = bytes(a ^ b for a, b in zip(iv, pn.to_bytes(12, "big")))
    sealed = AESGCM(key).encrypt(nonce, frames, header)
    pn_off = len(header) - pn_len
    sample = sealed[4 - pn_len:4 - pn_len + 16]
    enc = Cipher(algorithms.AES(hp), modes.ECB()).encryptor()
    mask = enc.update(sample) + enc.finalize()
    hdr = bytearray(header)
    hdr[0] ^= mask[0] & 0x0F
    for i in range(pn_len):
        hdr[pn_off + i] ^= mask[1 + i]
    return bytes(hdr) + sealed


# ------------------------------------------------------------ indicator names
def stalkerware_names(count: int = 3, seed: int | None = None) -> list[str]:
    """Picks stalkerware C2 names from the shipped indicator set.

    Falls back to the upstream stalkerware hosts list beside the work tree
    when the shipped set cannot be loaded (it is the same source).

    Args:
        count: how many names.
        seed: makes the choice repeatable.
    Returns:
        Domain names that the indicator set lists as stalkerware C2 (high severity).
    Raises:
        HotspotError: no indicator list can be found.
    """
    names: list[str] = []
    try:
        from . import indicators

        names = [i.value for i in indicators.load_default().indicators()
                 if i.kind == "domain" and i.category == "stalkerware-c2" and i.severity == "high"]
    except Exception as exc:  # noqa: BLE001 - any failure of the shipped set: use the upstream list
        log.warning("shipped indicators unavailable (%s); using the upstream hosts list", exc)
    if not names:
        shared = Path(os.environ.get("POCKETCHECK_SHARED", _ROOT.parent / "shared"))
        hosts = shared / "iocs-upstream" / "stalkerware-indicators" / "generated" / "hosts"
        try:
            names = hosts.read_text(encoding="utf-8").split()
        except OSError as exc:
            raise HotspotError(f"no stalkerware indicator names found ({hosts}): {exc.strerror}") from None
    # Names a phone could really look up (not wildcards or bare addresses).
    names = sorted({n for n in names if re.fullmatch(r"[a-z0-9-]+(\.[a-z0-9-]+)+", n) and not n[-1].isdigit()})
    rng = random.Random(seed)
    return rng.sample(names, min(count, len(names)))


# --------------------------------------------------------------- the phones
def _tls_get(ip: str, name: str, port: int = 443, timeout: float = 5.0) -> bool:
    ctx = ssl.create_default_context()
    # The fake internet's certificate is our own; the phone's trust is not the point.
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((ip, port), timeout=timeout) as raw, \
                ctx.wrap_socket(raw, server_hostname=name) as tls:
            tls.sendall(f"GET / HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n".encode())
            tls.recv(1024)
        return True
    except (OSError, ssl.SSLError):
        return False


def _http_get(ip: str, name: str, path: str = "/", port: int = 80, body: bytes | None = None,
              timeout: float = 5.0) -> bool:
    conn = http.client.HTTPConnection(ip, port, timeout=timeout)
    try:
        headers = {"Host": name, "User-Agent": "Dalvik/2.1.0 (Linux; U; Android 13)"}
        conn.request("POST" if body else "GET", path, body=body, headers=headers)
        conn.getresponse().read(1024)
        return True
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def _quic(ip: str, name: str, port: int = 443) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.sendto(quic_initial(name), (ip, port))
            return True
        except OSError:
            return False


def phone_main(args) -> int:
    """The phone process: real DNS, TLS, HTTP and QUIC from inside a phone namespace."""
    out = open(args.log, "a", encoding="utf-8") if args.log else sys.stdout  # noqa: SIM115
    rng = random.Random(args.seed)

    def note(what: str, name: str, ok: bool) -> None:
        out.write(f"{what} {name} {'ok' if ok else 'fail'}\n")
        out.flush()

    def visit(name: str, how: str) -> None:
        ip = resolve(name, args.dns)
        note("dns", name, ip is not None)
        if ip is None:
            return
        if how == "tls":
            note("tls", name, _tls_get(ip, name))
        elif how == "http":
            path = "/generate_204" if name in CLEAN_HTTP_NAMES else "/api/checkin"
            body = None if name in CLEAN_HTTP_NAMES else b'{"id":"%d","battery":81}' % rng.randrange(10**6)
            note("http", name, _http_get(ip, name, path, body=body))
        elif how == "quic":
            note("quic", name, _quic(ip, name))

    if args.kind == "clean":
        plan = [(n, "http") for n in CLEAN_HTTP_NAMES] + [(n, "tls") for n in CLEAN_NAMES] + \
            [(n, "quic") for n in CLEAN_QUIC_NAMES]
        for r in range(args.rounds):
            rng.shuffle(plan)
            for name, how in plan:
                visit(name, how)
                time.sleep(rng.uniform(0.0, 0.2))
            if r + 1 < args.rounds:
                time.sleep(args.interval * rng.uniform(0.5, 1.5))
    else:
        c2 = args.names.split(",") if args.names else stalkerware_names(3, args.seed)
        # A stalkerware app checks in with its servers at a steady pace.
        for r in range(args.rounds):
            for i, name in enumerate(c2):
                visit(name, ("tls", "http", "quic")[i % 3])
            visit(CLEAN_NAMES[r % len(CLEAN_NAMES)], "tls")
            if r + 1 < args.rounds:
                time.sleep(args.interval)
    if out is not sys.stdout:
        out.close()
    return 0


def scan_tcp(host: str, ports, timeout: float = 1.0, batch: int = 256) -> list[int]:
    """A TCP connect scan: the ports of ``host`` that complete a handshake.

    Connections are opened non-blocking in batches, so dropped ports cost
    one ``timeout`` per batch rather than one per port.

    Returns:
        The open ports, sorted.
    """
    import selectors

    ports = sorted(set(ports))
    open_ports = []
    for i in range(0, len(ports), batch):
        sel = selectors.DefaultSelector()
        socks = []
        for port in ports[i:i + batch]:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            s.connect_ex((host, port))
            sel.register(s, selectors.EVENT_WRITE, port)
            socks.append(s)
        deadline = time.monotonic() + timeout
        pending = len(socks)
        while pending and time.monotonic() < deadline:
            for key, _ in sel.select(max(0.0, deadline - time.monotonic())):
                sel.unregister(key.fileobj)
                pending -= 1
                if key.fileobj.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                    open_ports.append(key.data)
        for s in socks:
            s.close()
        sel.close()
    return sorted(open_ports)


def _parse_ports(text: str) -> list[int]:
    out = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out += range(int(lo), int(hi or lo) + 1)
    return out


# ---------------------------------------------------------- the fake internet
def _self_signed(dirpath: str) -> tuple[str, str]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pocketcheck simulated internet")])
    now = _dt.datetime.now(_dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - _dt.timedelta(days=1))
            .not_valid_after(now + _dt.timedelta(days=30)).sign(key, hashes.SHA256()))
    cpath, kpath = os.path.join(dirpath, "sim-cert.pem"), os.path.join(dirpath, "sim-key.pem")
    with open(cpath, "wb") as fh:
        fh.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(os.open(kpath, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as fh:
        fh.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption()))
    return cpath, kpath


def internet_main(args) -> int:
    """The fake internet process: DNS, TLS, HTTP and a QUIC sink, logging what reaches it."""
    lock = threading.Lock()
    done = threading.Event()

    def note(what: str, value: str) -> None:
        with lock, open(args.log, "a", encoding="utf-8") as fh:
            fh.write(f"{what} {value}\n")

    def dns_loop(sock):
        while not done.is_set():
            try:
                data, addr = sock.recvfrom(4096)
                reply = dns_answer(data)
                note("dns", dns_parse(data)[1])
                sock.sendto(reply, addr)
            except (OSError, ValueError, struct.error):
                continue

    def quic_loop(sock):
        while not done.is_set():
            try:
                data, _ = sock.recvfrom(4096)
                note("quic", str(len(data)))
            except OSError:
                continue

    cert, key = _self_signed(args.dir)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)

    def sni_cb(sslobj, server_name, _ctx):
        note("tls", server_name or "-")

    ctx.sni_callback = sni_cb

    def serve_conn(conn, tls: bool):
        try:
            conn.settimeout(5)
            if tls:
                conn = ctx.wrap_socket(conn, server_side=True)
            data = b""
            while b"\r\n\r\n" not in data and len(data) < 65536:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                data += chunk
            if not tls:
                m = re.search(rb"^host:\s*([^\r\n]+)", data, re.IGNORECASE | re.MULTILINE)
                note("http", m.group(1).decode("ascii", "replace") if m else "-")
            conn.sendall(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        except (OSError, ssl.SSLError):
            pass
        finally:
            conn.close()

    def accept_loop(sock, tls: bool):
        while not done.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            threading.Thread(target=serve_conn, args=(conn, tls), daemon=True).start()

    socks = []
    udp53 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp53.bind(("0.0.0.0", 53))
    udp443 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp443.bind(("0.0.0.0", 443))
    socks += [udp53, udp443]
    threading.Thread(target=dns_loop, args=(udp53,), daemon=True).start()
    threading.Thread(target=quic_loop, args=(udp443,), daemon=True).start()
    for port, tls in ((443, True), (8443, True), (5223, True), (80, False), (8080, False)):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", port))
        s.listen(64)
        s.settimeout(0.5)
        socks.append(s)
        threading.Thread(target=accept_loop, args=(s, tls), daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    with open(os.path.join(args.dir, "internet.ready"), "w"):
        pass
    while not done.wait(0.5):
        pass
    for s in socks:
        s.close()
    return 0


# ------------------------------------------------------------ namespaces
def _ns(name: str, *argv: str) -> list[str]:
    return ["ip", "netns", "exec", name, *argv]


def _ip(*argv: str, timeout: float = 10) -> None:
    system.run(["ip", *argv], timeout=timeout)


def list_namespaces() -> list[str]:
    """Returns the names of all network namespaces (``ip netns list``)."""
    out = system.run(["ip", "netns", "list"], timeout=10).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def _kill_ns_processes(ns: str) -> None:
    out = system.run(["ip", "netns", "pids", ns], timeout=10, check=False).stdout or ""
    for pid in (int(p) for p in out.split() if p.isdigit()):
        if pid == os.getpid():
            continue  # a capture thread of ours entered it: never kill ourselves
        try:
            os.kill(pid, signal.SIGKILL)  # only processes inside our own namespace
        except ProcessLookupError:
            pass


def _delete_ns(ns: str) -> None:
    _kill_ns_processes(ns)
    system.run(["ip", "netns", "delete", ns], timeout=10, check=False)


def cleanup_stale() -> list[str]:
    """Deletes simulation namespaces and run directories whose creating process is gone (an aborted run).

    Returns:
        The namespaces and directories removed.
    """
    removed = []
    for ns in list_namespaces():
        m = re.fullmatch(rf"{NS_PREFIX}-(\d+)-[0-9a-f]+-\w+", ns)
        if not m:
            continue
        if not _pid_alive(int(m.group(1))):
            _delete_ns(ns)
            removed.append(ns)
    tmp = Path(tempfile.gettempdir())
    for d in tmp.glob(f"{RUN_DIR_PREFIX}*-*"):
        m = re.fullmatch(rf"{RUN_DIR_PREFIX}(\d+)-\w+", d.name)
        if m and d.is_dir() and not _pid_alive(int(m.group(1))):
            shutil.rmtree(d, ignore_errors=True)
            removed.append(str(d))
    return removed


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_LIVE: weakref.WeakSet = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    for sim in list(_LIVE):
        try:
            sim.cleanup()
        except Exception:
            log.exception("netsim teardown")


_UDHCPC_SCRIPT = """#!/bin/sh
# udhcpc event script for a simulated phone (written by appliance/netsim.py).
case "$1" in
  deconfig)
    ip -4 addr flush dev "$interface"
    ip link set dev "$interface" up
    ;;
  bound|renew)
    ip -4 addr flush dev "$interface"
    ip addr add "$ip/${mask:-24}" dev "$interface"
    if [ -n "$router" ]; then ip route replace default via "${router%% *}" dev "$interface"; fi
    echo "ip=$ip router=${router%% *} dns=${dns%% *}" > "$PC_LEASE_OUT"
    ;;
esac
exit 0
"""


class SimPhone:
    """A simulated phone in its own namespace (see :meth:`SimulatedHotspot.add_phone`)."""

    def __init__(self, sim: SimulatedHotspot, index: int, kind: str):
        self.sim, self.index, self.kind = sim, index, kind
        self.ns = f"{sim.prefix}-phone{index}"
        self.mac = "02:" + ":".join(f"{b:02x}" for b in secrets.token_bytes(5))
        self.hostname = f"{'android' if index % 2 else 'iphone'}-{secrets.token_hex(3)}"
        self.ip: str | None = None
        self.dns: str | None = None
        self.log_path = os.path.join(sim.run_dir, f"phone{index}.log")
        self._daemon: system.Daemon | None = None

    def attach(self) -> None:
        """Creates the phone's namespace and links its ``wlan0`` to the radio bridge (no address yet)."""
        s = self.sim
        system.run(["ip", "netns", "add", self.ns], timeout=10)
        port = f"ph{self.index}"
        _ip("link", "add", port, "netns", s.box, "type", "veth", "peer", "name", "wlan0", "netns", self.ns)
        _ip("-n", s.box, "link", "set", port, "master", "wlan0", "up")
        system.run(["bridge", "-n", s.box, "link", "set", "dev", port, "isolated", "on"], timeout=10)
        _ip("-n", self.ns, "link", "set", "lo", "up")
        _ip("-n", self.ns, "link", "set", "wlan0", "address", self.mac, "up")

    def join(self, timeout: float = 20) -> str:
        """Links the phone to the radio bridge and takes a DHCP lease; returns its address.

        Raises:
            HotspotError: no lease within the timeout.
        """
        s = self.sim
        self.attach()
        script = os.path.join(s.run_dir, "udhcpc.sh")
        lease = os.path.join(s.run_dir, f"phone{self.index}.lease")
        try:
            system.run(_ns(self.ns, "busybox", "udhcpc", "-i", "wlan0", "-n", "-q", "-f", "-t", "8", "-T", "1",
                           "-s", script, "-x", f"hostname:{self.hostname}"),
                       timeout=timeout, env={"PC_LEASE_OUT": lease})
            fields = dict(kv.split("=", 1) for kv in Path(lease).read_text().split())
        except (CommandError, OSError, ValueError) as exc:
            raise HotspotError(f"simulated phone {self.index} got no address from the hotspot: {exc}") from None
        self.ip, self.dns = fields.get("ip"), fields.get("dns") or hotspot.BOX_IP
        return self.ip

    def start_traffic(self, rounds: int = 2, interval: float = 2.0, names: list[str] | None = None,
                      seed: int | None = None) -> None:
        """Starts the phone's traffic process (DNS, TLS, HTTP, QUIC) in its namespace."""
        argv = _ns(self.ns, PYTHON, "-m", "appliance.netsim", "phone", "--kind", self.kind, "--dns", self.dns,
                   "--rounds", str(rounds), "--interval", str(interval), "--log", self.log_path)
        if names:
            argv += ["--names", ",".join(names)]
        if seed is not None:
            argv += ["--seed", str(seed)]
        self._daemon = system.spawn(argv, startup=0, log_path=self.log_path + ".err",
                                    env={"PYTHONPATH": str(Path(__file__).resolve().parent.parent)})

    def wait(self, timeout: float = 120) -> int:
        """Waits (bounded) for the traffic process to finish; returns its exit code.

        Raises:
            HotspotError: it did not finish in time (it is stopped).
        """
        if self._daemon is None:
            return 0
        deadline = time.monotonic() + timeout
        while self._daemon.running():
            if time.monotonic() > deadline:
                self._daemon.stop()
                raise HotspotError(f"simulated phone {self.index} did not finish in {timeout:g} s")
            time.sleep(0.1)
        return self._daemon.poll()

    def run(self, *argv: str, timeout: float = 60) -> str:
        """Runs a program inside the phone's namespace; returns its stdout."""
        return system.run(_ns(self.ns, *argv), timeout=timeout,
                          env={"PYTHONPATH": str(Path(__file__).resolve().parent.parent)}).stdout

    def scan(self, host: str = hotspot.BOX_IP, ports: str = "1-1024") -> list[int]:
        """TCP connect scan from the phone: the open ports of ``host``."""
        out = self.run(PYTHON, "-m", "appliance.netsim", "scan", "--host", host, "--ports", ports)
        return [int(p) for p in out.split()]

    def log(self) -> list[str]:
        """The phone's own record of what it did ("tls NAME ok" lines)."""
        try:
            return Path(self.log_path).read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []

    def stop(self) -> None:
        """Stops the traffic process; the namespace goes with the simulation."""
        if self._daemon is not None:
            self._daemon.stop(timeout=3)


class SimulatedHotspot(hotspot.Hotspot):
    """The hotspot in network namespaces: same interface as :class:`hotspot.PiHotspot`.

    Usage::

        with SimulatedHotspot(offline=False) as hs:
            hs.start(hotspot.new_ssid(), hotspot.new_passphrase())
            cap = hs.start_capture("/tmp/x.pcap", analyzer.feed)
            phone = hs.run_phone("stalkerware", rounds=2)
            phone.wait()
            cap.stop()
    """

    def __init__(self, settings: hotspot.HotspotSettings | None = None, *, offline: bool = False,
                 run_dir: str | None = None):
        """Prepares a simulation (nothing is created until :meth:`start`).

        Args:
            settings: hotspot settings; by default country GB, channel 6, and
                a wired uplink (or none when ``offline``).
            offline: no fake internet; the offline listeners answer.
            run_dir: where configs, leases and logs go (a new temp dir by default).
        Raises:
            HotspotError: not root (namespaces need CAP_NET_ADMIN).
        """
        if os.geteuid() != 0:
            raise HotspotError("the simulated hotspot needs root (network namespaces)")
        self._own_dir = run_dir is None
        self.run_dir = run_dir or tempfile.mkdtemp(prefix=f"{RUN_DIR_PREFIX}{os.getpid()}-")
        if settings is None:
            settings = hotspot.HotspotSettings(
                country="GB", channel=6, uplink="none" if offline else "wired", ap_iface="wlan0",
                uplink_iface="" if offline else "uplink0",
                run_dir=self.run_dir)
        super().__init__(settings)
        self.prefix = f"{NS_PREFIX}-{os.getpid()}-{secrets.token_hex(2)}"
        self.box, self.net = f"{self.prefix}-box", f"{self.prefix}-net"
        self.phones: list[SimPhone] = []
        self._daemons: list[system.Daemon] = []
        self._namespaces: list[str] = []
        self._lease_file = os.path.join(self.run_dir, "dnsmasq.leases")
        self.internet_log = os.path.join(self.run_dir, "internet.log")
        self.offline_log = os.path.join(self.run_dir, "offline.log")
        _LIVE.add(self)

    @classmethod
    def from_config(cls, cfg, **kwargs) -> SimulatedHotspot:
        """Builds a simulation from a Config: its country and channel; no uplink interface = offline."""
        offline = not cfg.uplink.interface
        sim = cls(offline=offline, **kwargs)
        sim.settings = hotspot.HotspotSettings(
            country=cfg.country, channel=cfg.hotspot.channel, uplink=sim.settings.uplink,
            ap_iface="wlan0", uplink_iface=sim.settings.uplink_iface,
            run_dir=sim.run_dir)
        return sim

    @property
    def netns(self) -> str:
        """The box's namespace (where the capture runs)."""
        return self.box

    def _add_ns(self, name: str) -> None:
        system.run(["ip", "netns", "add", name], timeout=10)
        self._namespaces.append(name)
        _ip("-n", name, "link", "set", "lo", "up")

    def start(self, ssid: str, passphrase: str) -> None:
        """Builds the namespaces and starts dnsmasq, nftables, the internet or offline listeners.

        The SSID and passphrase are checked and rendered into hostapd.conf
        (kept in run_dir) exactly as on the Pi; there is no radio to use them.

        Raises:
            ConfigError: a rendered file is rejected.
            HotspotError, CommandError: the simulation could not be built (it is torn down).
        """
        s = self.settings
        # As on the Pi (PiHotspot.start): dnsmasq drops root and must still
        # read the uplink's resolv file here.
        os.makedirs(self.run_dir, mode=0o711, exist_ok=True)
        os.chmod(self.run_dir, 0o711)
        for required in ("hostapd", "dnsmasq", "nft", "busybox", "bridge"):
            if system.which(required) is None:
                raise HotspotError(f"the simulation needs '{required}' (run `make deps`)")
        # A run killed by a signal leaves its namespaces (atexit never ran): remove them now.
        for ns in cleanup_stale():
            log.info("removed the namespace %s of an aborted simulation", ns)
        hostapd_conf = hotspot.render_hostapd(s, ssid, passphrase)
        hotspot.validate_hostapd(hostapd_conf)
        dns_conf = hotspot.render_dnsmasq(s, lease_file=self._lease_file,
                                          pid_file=os.path.join(self.run_dir, "dnsmasq.pid"))
        nft_conf = hotspot.render_nftables(s)
        hotspot.check_dnsmasq(dns_conf)
        hotspot.check_nftables(nft_conf)
        for name, text in (("hostapd.conf", hostapd_conf), ("dnsmasq.conf", dns_conf),
                           ("nftables.conf", nft_conf), ("udhcpc.sh", _UDHCPC_SCRIPT)):
            with open(os.path.join(self.run_dir, name), "w", encoding="utf-8") as fh:
                fh.write(text)
        os.chmod(os.path.join(self.run_dir, "udhcpc.sh"), 0o755)
        open(self._lease_file, "w").close()
        if not s.offline and not s.upstream_servers:
            # What the Pi's uplink DHCP script writes: the uplink's resolver.
            with open(os.path.join(self.run_dir, "uplink-resolv.conf"), "w", encoding="utf-8") as fh:
                fh.write(f"nameserver {NET_IP}\n")
            os.chmod(os.path.join(self.run_dir, "uplink-resolv.conf"), 0o644)
        try:
            self._build(s, hostapd_conf)
        except BaseException:
            self.stop()
            raise
        self.ssid, self.passphrase = ssid, passphrase

    def _build(self, s: hotspot.HotspotSettings, hostapd_conf: str) -> None:
        box = self.box
        self._add_ns(box)
        _ip("-n", box, "link", "add", "wlan0", "type", "bridge")
        _ip("-n", box, "addr", "add", f"{hotspot.BOX_IP}/{hotspot.SUBNET.prefixlen}", "dev", "wlan0")
        _ip("-n", box, "link", "set", "wlan0", "up")
        system.run(_ns(box, "sysctl", "-q", "-w", "net.ipv6.conf.wlan0.disable_ipv6=1"), timeout=10)
        # A real AP interface is not a bridge: when br_netfilter is loaded on
        # the host, bridged frames must not take the firewall's hooks here, so
        # that AP isolation comes from the bridge ports, as on the Pi.
        for fam in ("iptables", "ip6tables", "arptables"):
            system.run(_ns(box, "sysctl", "-q", "-w", f"net.bridge.bridge-nf-call-{fam}=0"), timeout=10,
                       check=False)
        env = {"PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
        if not s.offline:
            net = self.net
            self._add_ns(net)
            _ip("link", "add", "uplink0", "netns", box, "type", "veth", "peer", "name", "eth0", "netns", net)
            _ip("-n", box, "addr", "add", f"{BOX_UPLINK_IP}/24", "dev", "uplink0")
            _ip("-n", box, "link", "set", "uplink0", "up")
            _ip("-n", box, "route", "add", "default", "via", NET_IP)
            _ip("-n", net, "addr", "add", f"{NET_IP}/24", "dev", "eth0")
            _ip("-n", net, "link", "set", "eth0", "up")
            _ip("-n", net, "route", "add", "local", str(FAKE_SERVERS), "dev", "lo")
            system.run(_ns(box, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"), timeout=10)
            ready = os.path.join(self.run_dir, "internet.ready")
            self._daemons.append(system.spawn(
                _ns(net, PYTHON, "-m", "appliance.netsim", "internet", "--dir", self.run_dir,
                    "--log", self.internet_log),
                log_path=os.path.join(self.run_dir, "internet.err"), env=env,
                startup=0.2, ready=lambda: os.path.exists(ready), ready_timeout=20))
        system.run(_ns(box, "nft", "-f", os.path.join(self.run_dir, "nftables.conf")), timeout=10)
        self._start_hostapd(hostapd_conf)
        self._daemons.append(system.spawn(
            _ns(box, "dnsmasq", "--keep-in-foreground", "-C", os.path.join(self.run_dir, "dnsmasq.conf")),
            log_path=os.path.join(self.run_dir, "dnsmasq.log"), startup=0.3))
        if s.offline:
            self._daemons.append(system.spawn(
                _ns(box, PYTHON, "-m", "appliance.offline", "--host", hotspot.BOX_IP,
                    "--port", str(hotspot.OFFLINE_PORT), "--log", self.offline_log),
                log_path=os.path.join(self.run_dir, "offline.err"), env=env, startup=0.2,
                ready=lambda: _log_has(os.path.join(self.run_dir, "offline.err"), "offline listeners on"),
                ready_timeout=20))

    def _start_hostapd(self, text: str) -> None:
        """Runs the real hostapd with the session's hostapd.conf (`text`) on a stand-in radio.

        There is no Wi-Fi here, so hostapd gets its wired driver on a veth
        (``radio0``, outside the phones' bridge) instead of nl80211 on wlan0,
        and the regulatory lines, which need a radio, are left out. Everything
        else (SSID, WPA2, isolation...) is the session's own file, and what
        runs is the program the Pi runs, watched by the same supervisor.
        """
        text = re.sub(r"^interface=.*$", "interface=radio0", text, count=1, flags=re.MULTILINE)
        text = re.sub(r"^driver=.*$", "driver=wired", text, count=1, flags=re.MULTILINE)
        text = re.sub(r"^(country_code|ieee80211d)=.*\n", "", text, flags=re.MULTILINE)
        conf = os.path.join(self.run_dir, "hostapd-sim.conf")
        with open(conf, "w", encoding="utf-8") as fh:
            fh.write(text)
        _ip("-n", self.box, "link", "add", "radio0", "type", "veth", "peer", "name", "radio1")
        for dev in ("radio0", "radio1"):
            _ip("-n", self.box, "link", "set", dev, "up")
        log_path = os.path.join(self.run_dir, "hostapd.log")
        self._daemons.append(system.spawn(
            _ns(self.box, "hostapd", conf), log_path=log_path, startup=0.2,
            ready=lambda: _log_has(log_path, "AP-ENABLED"), ready_timeout=20))

    def add_phone(self, kind: str = "clean") -> SimPhone:
        """Joins a new simulated phone to the hotspot (DHCP through the real dnsmasq).

        Args:
            kind: "clean" or "stalkerware" (what :meth:`SimPhone.start_traffic` will do).
        Returns:
            The phone, with its address.
        Raises:
            HotspotError: the hotspot is not started, or the phone got no lease.
        """
        if kind not in ("clean", "stalkerware"):
            raise HotspotError(f"unknown phone kind '{kind}' (clean or stalkerware)")
        if self.ssid is None:
            raise HotspotError("the simulated hotspot is not started")
        phone = SimPhone(self, len(self.phones) + 1, kind)
        self.phones.append(phone)
        self._namespaces.append(phone.ns)
        phone.join()
        return phone

    def attach_device(self) -> SimPhone:
        """Links a bare device (a namespace with ``wlan0`` on the radio, no address) for tests."""
        if self.ssid is None:
            raise HotspotError("the simulated hotspot is not started")
        dev = SimPhone(self, len(self.phones) + 1, "clean")
        self.phones.append(dev)
        self._namespaces.append(dev.ns)
        dev.attach()
        return dev

    def run_phone(self, kind: str = "clean", **traffic) -> SimPhone:
        """Joins a phone and starts its traffic; ``traffic`` goes to :meth:`SimPhone.start_traffic`."""
        phone = self.add_phone(kind)
        phone.start_traffic(**traffic)
        return phone

    def internet_seen(self) -> list[str]:
        """What reached the fake internet ("dns NAME", "tls SNI", "http HOST", "quic N" lines)."""
        try:
            return Path(self.internet_log).read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []

    def offline_seen(self) -> list[str]:
        """What the offline listeners read ("tls IP N", "http IP N", "quic IP N" lines)."""
        try:
            return Path(self.offline_log).read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []

    def stop(self) -> None:
        """Stops the capture, phones and daemons, deletes every namespace and its own run directory.

        Idempotent. Read :meth:`internet_seen` and the phones' logs before.
        """
        if self.capture is not None:
            try:
                self.capture.stop()
            except Exception:
                log.exception("stopping the simulated capture")
        for phone in self.phones:
            phone.stop()
        while self._daemons:
            self._daemons.pop().stop(timeout=3)
        while self._namespaces:
            _delete_ns(self._namespaces.pop())
        self.ssid = self.passphrase = None
        if self._own_dir:  # logs and leases of a simulation are not kept
            shutil.rmtree(self.run_dir, ignore_errors=True)

    def cleanup(self) -> None:
        """Same as :meth:`stop` (kept for readability in tests and at exit)."""
        self.stop()


def _log_has(path: str, needle: str) -> bool:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return needle in fh.read()
    except FileNotFoundError:
        return False


# ------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> int:
    """Entry point of the processes the simulation runs inside namespaces."""
    ap = argparse.ArgumentParser(prog="python -m appliance.netsim")
    sub = ap.add_subparsers(dest="role", required=True)
    p = sub.add_parser("phone", help="a simulated phone's traffic")
    p.add_argument("--kind", choices=("clean", "stalkerware"), required=True)
    p.add_argument("--dns", required=True)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--interval", type=float, default=2.0)
    p.add_argument("--names", default="")
    p.add_argument("--seed", type=int)
    p.add_argument("--log")
    i = sub.add_parser("internet", help="the fake internet's servers")
    i.add_argument("--dir", required=True)
    i.add_argument("--log", required=True)
    sub.add_parser("cleanup", help="delete namespaces of aborted simulations")
    sc = sub.add_parser("scan", help="TCP connect scan (run inside a phone namespace)")
    sc.add_argument("--host", required=True)
    sc.add_argument("--ports", default="1-1024")
    args = ap.parse_args(argv)
    if args.role == "scan":
        print(" ".join(str(p) for p in scan_tcp(args.host, _parse_ports(args.ports))))
        return 0
    if args.role == "phone":
        return phone_main(args)
    if args.role == "internet":
        return internet_main(args)
    for ns in cleanup_stale():
        print(f"removed {ns}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
