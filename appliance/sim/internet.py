"""The fake internet (``python -m appliance.sim internet``), in its own namespace.

A DNS server that answers every name with an address in 198.19.0.0/16 (a
``local`` route makes that whole range the namespace's own, so one process
is every server), TLS servers with a self-made certificate, an HTTP server
and a QUIC sink that only listens. Each logs what reached it ("dns NAME",
"tls SNI", "http HOST", "quic N" lines).
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import ipaddress
import os
import re
import signal
import socket
import ssl
import struct
import threading

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from .. import offline
from . import packets

NET_IP = "198.18.0.1"       # the fake internet's resolver and router
BOX_UPLINK_IP = "198.18.0.2"
FAKE_SERVERS = ipaddress.ip_network("198.19.0.0/16")  # every name resolves in here
READY_FILE = "internet.ready"  # made in the run directory once every server listens


def fake_address(name: str) -> str:
    """The address the fake internet gives a name: stable, inside 198.19.0.0/16."""
    h = hashlib.sha256(name.lower().rstrip(".").encode()).digest()
    return f"198.19.{h[0]}.{max(1, h[1]) if h[1] != 255 else 254}"


def dns_answer(query: bytes) -> bytes:
    """The fake internet's answer: every A question gets :func:`fake_address`, others no data.

    Raises:
        ValueError: the query is malformed.
    """
    return packets.dns_reply(query, fake_address(packets.dns_parse(query)[1]))


def _self_signed(dirpath: str) -> tuple[str, str]:
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


def serve(run_dir: str, log_path: str) -> int:
    """The fake internet process: DNS, TLS, HTTP and a QUIC sink, logging what reaches it, until SIGTERM.

    Args:
        run_dir: where the certificate and the ready file (:data:`READY_FILE`) go.
        log_path: the log of what reached the servers.
    Returns:
        0 (the exit code).
    Raises:
        OSError: a port cannot be bound.
    """
    lock = threading.Lock()
    done = threading.Event()

    def note(what: str, value: str) -> None:
        with lock, open(log_path, "a", encoding="utf-8") as fh:
            fh.write(f"{what} {value}\n")

    def dns_loop(sock):
        while not done.is_set():
            try:
                data, addr = sock.recvfrom(4096)
                reply = dns_answer(data)
                note("dns", packets.dns_parse(data)[1])
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

    checks = offline.load_connectivity()
    cert, key = _self_signed(run_dir)
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
            # The real servers of the connectivity checks give their own answers
            # (the same ones the box gives offline); anything else gets a 204.
            answer = None if tls else offline.reply_for(data, checks)
            conn.sendall(answer or b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
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
    with open(os.path.join(run_dir, READY_FILE), "w"):
        pass
    while not done.wait(0.5):
        pass
    for s in socks:
        s.close()
    return 0
