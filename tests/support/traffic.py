"""Synthetic phone traffic, built with scapy, for tests and simulations.

Every builder returns a list of scapy packets with their ``.time`` set (and
nothing else: no global state), so callers can mix phones on one hotspot,
sort by time and write a pcap with :func:`write_pcap`. The two scenario
builders, :func:`stalkerware_phone` and :func:`clean_phone`, also return a
*plan*: a list of :class:`Contact` records saying what the phone did, from
which tests derive the alerts they expect without running the analysis.

What is on the wire is real protocol, byte for byte: DHCP, DNS, TCP with
handshakes and teardown, TLS ClientHello with SNI and ALPN (and, on request,
ServerHello + Certificate), HTTP/1.1, and QUIC v1 Initial packets encrypted as
RFC 9001 says, so the capture core and tshark decode them as they would a
phone's. Link, IP, UDP, TCP, DHCP and DNS come from scapy (an independent
builder); the TLS and QUIC payloads from :mod:`appliance.sim.packets`, the
tree's one packet builder, which scapy has no equivalent of.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import random
import struct
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import NameOID
from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.utils import wrpcap

from appliance.sim.packets import certificate_msg, client_hello, quic_initial, server_hello, tls_record

BOX_MAC = "02:00:5e:00:00:01"
BOX_IP = "10.23.0.1"
BOX_IP6 = "fd23::1"
DNS_A, DNS_AAAA, DNS_CNAME = 1, 28, 5


@dataclass
class Phone:
    """A device on the hotspot: its MAC, IPv4 (from DHCP), IPv6 and DHCP host name."""

    mac: str
    ip: str
    ip6: str = ""
    hostname: str = ""
    _port: int = 40000

    def port(self) -> int:
        """A fresh client port for each connection (deterministic)."""
        self._port += 1
        return self._port


@dataclass
class Contact:
    """One thing a scenario phone did (the plan tests derive expectations from)."""

    kind: str          # dhcp, dns, tls, quic, http, tcp
    t: float
    name: str = ""
    ip: str = ""
    port: int = 0
    qtype: int = 0
    method: str = ""
    upload: int = 0
    answers: list = field(default_factory=list)


# ---- link and transport ----------------------------------------------------------
def _l3(phone: Phone, server: str, to_server: bool):
    v6 = ":" in server
    src = phone.ip6 if v6 else phone.ip
    if to_server:
        return Ether(src=phone.mac, dst=BOX_MAC) / (IPv6(src=src, dst=server) if v6 else IP(src=src, dst=server))
    return Ether(src=BOX_MAC, dst=phone.mac) / (IPv6(src=server, dst=src) if v6 else IP(src=server, dst=src))


def _at(pkt, t: float):
    pkt.time = t
    return pkt


def udp_exchange(phone: Phone, server: str, dport: int, t: float, request: bytes, reply: bytes | None = None,
                 sport: int | None = None, rtt: float = 0.02) -> list:
    """A UDP request (and optional reply) between a phone and a server."""
    sport = sport or phone.port()
    out = [_at(_l3(phone, server, True) / UDP(sport=sport, dport=dport) / Raw(request), t)]
    if reply is not None:
        out.append(_at(_l3(phone, server, False) / UDP(sport=dport, dport=sport) / Raw(reply), t + rtt))
    return out


def tcp_session(phone: Phone, server: str, dport: int, t: float, client_data: list[bytes],
                server_data: list[bytes], rtt: float = 0.03, mss: int = 1400, close: bool = True) -> list:
    """A whole TCP connection: handshake, alternating data, FIN/ACK teardown.

    Args:
        phone, server, dport: the endpoints.
        t: time of the SYN.
        client_data: what the phone sends, one write per item (segmented to ``mss``).
        server_data: what the server answers after each client write (same index; may be shorter).
        rtt: round-trip time; each step advances time by half of it.
        close: end with FIN/ACK (else the flow stays open until the capture ends).
    Returns:
        The packets, in time order.
    """
    sport = phone.port()
    seq_c, seq_s = 1000, 5000
    half = rtt / 2
    up = lambda: _l3(phone, server, True)
    down = lambda: _l3(phone, server, False)
    pk = [_at(up() / TCP(sport=sport, dport=dport, flags="S", seq=seq_c, window=65535), t),
          _at(down() / TCP(sport=dport, dport=sport, flags="SA", seq=seq_s, ack=seq_c + 1, window=65535), t + half)]
    seq_c += 1
    seq_s += 1
    t += rtt
    pk.append(_at(up() / TCP(sport=sport, dport=dport, flags="A", seq=seq_c, ack=seq_s), t))
    for i, data in enumerate(client_data):
        for off in range(0, len(data), mss):
            chunk = data[off:off + mss]
            t += 0.001
            pk.append(_at(up() / TCP(sport=sport, dport=dport, flags="PA", seq=seq_c, ack=seq_s) / Raw(chunk), t))
            seq_c += len(chunk)
        t += half
        reply = server_data[i] if i < len(server_data) else b""
        if reply:
            for off in range(0, len(reply), mss):
                chunk = reply[off:off + mss]
                t += 0.001
                pk.append(_at(down() / TCP(sport=dport, dport=sport, flags="PA", seq=seq_s, ack=seq_c) / Raw(chunk), t))
                seq_s += len(chunk)
        else:
            pk.append(_at(down() / TCP(sport=dport, dport=sport, flags="A", seq=seq_s, ack=seq_c), t))
        t += half
        pk.append(_at(up() / TCP(sport=sport, dport=dport, flags="A", seq=seq_c, ack=seq_s), t))
    if close:
        t += 0.05
        pk.append(_at(up() / TCP(sport=sport, dport=dport, flags="FA", seq=seq_c, ack=seq_s), t))
        pk.append(_at(down() / TCP(sport=dport, dport=sport, flags="FA", seq=seq_s, ack=seq_c + 1), t + half))
        pk.append(_at(up() / TCP(sport=sport, dport=dport, flags="A", seq=seq_c + 1, ack=seq_s + 1), t + rtt))
    return pk


# ---- DHCP and DNS ------------------------------------------------------------------
def dhcp(phone: Phone, t: float) -> list:
    """DHCP DISCOVER/OFFER/REQUEST/ACK giving the phone its address and sending its host name."""
    chaddr = bytes.fromhex(phone.mac.replace(":", "")) + b"\0" * 10
    xid = int.from_bytes(hashlib.sha256(phone.mac.encode()).digest()[:4], "big")
    opts = [("hostname", phone.hostname.encode())] if phone.hostname else []

    def client(mtype, extra, at):
        return _at(Ether(src=phone.mac, dst="ff:ff:ff:ff:ff:ff") / IP(src="0.0.0.0", dst="255.255.255.255")
                   / UDP(sport=68, dport=67) / BOOTP(op=1, chaddr=chaddr, xid=xid, flags=0x8000)
                   / DHCP(options=[("message-type", mtype)] + extra + opts + ["end"]), at)

    def server(mtype, at):
        return _at(Ether(src=BOX_MAC, dst=phone.mac) / IP(src=BOX_IP, dst=phone.ip) / UDP(sport=67, dport=68)
                   / BOOTP(op=2, chaddr=chaddr, xid=xid, yiaddr=phone.ip, siaddr=BOX_IP)
                   / DHCP(options=[("message-type", mtype), ("server_id", BOX_IP), ("lease_time", 43200),
                                   ("subnet_mask", "255.255.255.0"), ("router", BOX_IP),
                                   ("name_server", BOX_IP), "end"]), at)

    return [client("discover", [], t), server("offer", t + 0.01),
            client("request", [("requested_addr", phone.ip), ("server_id", BOX_IP)], t + 0.02),
            server("ack", t + 0.03)]


def dns_lookup(phone: Phone, name: str, t: float, answers=(), qtype: int = DNS_A, cname: str | None = None,
               ttl: int = 300, resolver: str = BOX_IP) -> list:
    """A DNS query to the box's resolver and its answer.

    Args:
        name: the question name.
        answers: the A or AAAA addresses answered.
        qtype: DNS_A or DNS_AAAA.
        cname: when set, the answer is ``name CNAME cname`` followed by the addresses for ``cname``.
    """
    qid = int.from_bytes(hashlib.sha256(f"{name}{t}".encode()).digest()[:2], "big")
    q = DNS(id=qid, rd=1, qd=DNSQR(qname=name, qtype=qtype))
    rrs = []
    owner = name
    if cname:
        rrs.append(DNSRR(rrname=name, type=DNS_CNAME, ttl=ttl, rdata=cname))
        owner = cname
    for a in answers:
        rrs.append(DNSRR(rrname=owner, type=qtype, ttl=ttl, rdata=a))
    r = DNS(id=qid, qr=1, rd=1, ra=1, qd=DNSQR(qname=name, qtype=qtype), an=rrs or None)
    return udp_exchange(phone, resolver, 53, t,
                        bytes(q), bytes(r), rtt=0.01)


# ---- TLS ---------------------------------------------------------------------------
def make_cert(common_name: str, issuer_cn: str | None = None, not_before: str = "2025-01-01",
              not_after: str = "2030-01-01", seed: int = 1) -> bytes:
    """A deterministic Ed25519 X.509 certificate (DER).

    Self-signed when ``issuer_cn`` is None; otherwise "issued" by a different
    name (signed with the same key, so it does not verify as self-signed).
    """
    key = ed25519.Ed25519PrivateKey.from_private_bytes(hashlib.sha256(f"key{seed}".encode()).digest())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_cn)]) if issuer_cn else subject
    day = lambda s: _dt.datetime.fromisoformat(s).replace(tzinfo=_dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
            .serial_number(1000 + seed).not_valid_before(day(not_before)).not_valid_after(day(not_after))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(common_name)]), critical=False)
            .sign(key, None))
    return cert.public_bytes(serialization.Encoding.DER)


def tls_connect(phone: Phone, server: str, sni: str | None, t: float, port: int = 443, cert: bytes | None = None,
                upload: int = 0, alpn=("h2", "http/1.1")) -> list:
    """A TLS connection: ClientHello with SNI, then a ServerHello (with a Certificate when ``cert``).

    ``upload`` bytes of opaque application data follow from the phone.
    """
    reply = tls_record(server_hello(sni or server))
    if cert is not None:
        reply = tls_record(server_hello(sni or server) + certificate_msg([cert]), b"\x03\x03")
    client = [tls_record(client_hello(sni, alpn, seed=str(t)))]
    server_data = [reply]
    if upload:
        client.append(b"\x17\x03\x03" + struct.pack("!H", min(upload, 16384)) + b"\xaa" * min(upload, 16384))
        rest = upload - min(upload, 16384)
        while rest > 0:
            n = min(rest, 16384)
            client[-1] += b"\x17\x03\x03" + struct.pack("!H", n) + b"\xaa" * n
            rest -= n
        server_data.append(b"\x17\x03\x03\x00\x10" + b"\xbb" * 16)
    return tcp_session(phone, server, port, t, client, server_data)


# ---- HTTP --------------------------------------------------------------------------
def http_request(phone: Phone, server: str, host: str, t: float, method: str = "GET", path: str = "/",
                 body: bytes = b"", port: int = 80, user_agent: str = "Dalvik/2.1.0 (Linux; U; Android 13)") -> list:
    """An HTTP/1.1 request (with an optional body) and a short 200 answer."""
    head = f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {user_agent}\r\nAccept: */*\r\n"
    if body or method in ("POST", "PUT"):
        head += f"Content-Type: application/octet-stream\r\nContent-Length: {len(body)}\r\n"
    req = (head + "Connection: close\r\n\r\n").encode() + body
    resp = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
    return tcp_session(phone, server, port, t, [req], [resp])


# ---- QUIC --------------------------------------------------------------------------
def quic_connect(phone: Phone, server: str, sni: str, t: float, port: int = 443) -> list:
    """A QUIC v1 Initial from the phone (no answer: the server's would be opaque anyway)."""
    dcid = hashlib.sha256(f"dcid{sni}{t}".encode()).digest()[:8]
    scid = hashlib.sha256(f"scid{sni}{t}".encode()).digest()[:8]
    return udp_exchange(phone, server, port, t, quic_initial(sni, dcid, scid), None)


def tcp_probe(phone: Phone, server: str, t: float, port: int = 443, data: bytes = b"\x00" * 32) -> list:
    """A TCP connection to an address with a little opaque data (no TLS, no name)."""
    return tcp_session(phone, server, port, t, [data], [b"\x00" * 16])


# ---- files -------------------------------------------------------------------------
def write_pcap(path, packets) -> None:
    """Writes packets, sorted by time, to a classic Ethernet pcap file."""
    wrpcap(str(path), sorted(packets, key=lambda p: float(p.time)), linktype=1)


# ---- scenarios ---------------------------------------------------------------------
def stalkerware_phone(c2_names: list[str], c2_ips: list[str], start: float, duration: float = 900.0,
                      checkin: float = 60.0, phone: Phone | None = None) -> tuple[list, list[Contact], Phone]:
    """A phone whose stalkerware checks in with its C2 servers.

    Needs four C2 names and one C2 address (from the indicator set under test).
    What it does, all recorded in the plan:

    - DHCP (host name "android-7f3a");
    - every ``checkin`` seconds, exactly: DNS A for ``c2_names[0]`` (answer
      203.0.113.10) and a TLS connection to it with that SNI (beaconing);
    - once: DNS for ``c2_names[1]`` (answer 203.0.113.11) and a QUIC Initial with that SNI;
    - once: DNS for ``c2_names[2]`` (answer 203.0.113.12) and an HTTP POST to it on port 80 (small body);
    - once: DNS AAAA for ``c2_names[3]`` (answer 2001:db8:c2::13) and TLS over IPv6 with that SNI;
    - once: a TCP connection straight to ``c2_ips[0]`` on port 443 with no DNS lookup;
    - once: an HTTP GET to ``c2_ips[0]`` with that address as Host (no DNS lookup).

    Returns:
        (packets, plan, phone)
    """
    ph = phone or Phone("02:11:22:33:44:55", "10.23.0.10", "fd23::10", "android-7f3a")
    pk, plan = dhcp(ph, start), [Contact("dhcp", start)]
    a0, a1, a2, a6 = "203.0.113.10", "203.0.113.11", "203.0.113.12", "2001:db8:c2::13"
    t = start + 5.0
    while t < start + duration - 5:
        pk += dns_lookup(ph, c2_names[0], t, [a0])
        plan.append(Contact("dns", t, c2_names[0], qtype=DNS_A, answers=[a0]))
        pk += tls_connect(ph, a0, c2_names[0], t + 0.1)
        plan.append(Contact("tls", t + 0.1, c2_names[0], a0, 443))
        t += checkin
    t1 = start + 97.0
    pk += dns_lookup(ph, c2_names[1], t1, [a1])
    pk += quic_connect(ph, a1, c2_names[1], t1 + 0.1)
    plan += [Contact("dns", t1, c2_names[1], qtype=DNS_A, answers=[a1]), Contact("quic", t1 + 0.1, c2_names[1], a1, 443)]
    t2 = start + 151.0
    pk += dns_lookup(ph, c2_names[2], t2, [a2])
    pk += http_request(ph, a2, c2_names[2], t2 + 0.1, "POST", "/api/upload", b'{"sms": 12}')
    plan += [Contact("dns", t2, c2_names[2], qtype=DNS_A, answers=[a2]),
             Contact("http", t2 + 0.1, c2_names[2], a2, 80, method="POST", upload=11)]
    t3 = start + 203.0
    pk += dns_lookup(ph, c2_names[3], t3, [a6], qtype=DNS_AAAA)
    pk += tls_connect(ph, a6, c2_names[3], t3 + 0.1)
    plan += [Contact("dns", t3, c2_names[3], qtype=DNS_AAAA, answers=[a6]), Contact("tls", t3 + 0.1, c2_names[3], a6, 443)]
    t4 = start + 251.0
    pk += tcp_probe(ph, c2_ips[0], t4)
    plan.append(Contact("tcp", t4, "", c2_ips[0], 443))
    t5 = start + 307.0
    pk += http_request(ph, c2_ips[0], c2_ips[0], t5, "GET", "/cmd?id=7f3a")
    plan.append(Contact("http", t5, c2_ips[0], c2_ips[0], 80, method="GET"))
    return pk, plan, ph


# Popular services a clean phone talks to, with plausible addresses for them.
POPULAR = {
    "www.google.com": "142.250.179.100", "clients4.google.com": "142.250.179.110",
    "android.googleapis.com": "142.250.179.106", "play.googleapis.com": "142.250.179.74",
    "www.youtube.com": "142.250.178.14", "i.ytimg.com": "142.250.178.22",
    "graph.facebook.com": "157.240.202.15", "www.instagram.com": "157.240.202.174",
    "web.whatsapp.com": "157.240.202.60", "www.wikipedia.org": "185.15.59.224",
    "api.spotify.com": "35.186.224.25", "www.bbc.co.uk": "151.101.0.81",
    "www.apple.com": "23.40.33.10", "outlook.office365.com": "52.97.146.162",
}


def clean_phone(start: float, duration: float = 420.0, seed: int = 7,
                phone: Phone | None = None) -> tuple[list, list[Contact], Phone]:
    """A busy phone with ordinary traffic to popular services, at irregular times.

    Each contact is a DNS lookup followed by TLS on 443 (mostly), QUIC on 443
    (YouTube) or an HTTP GET on 80; gaps are random (exponential, mean 4 s),
    so nothing is regular.

    Returns:
        (packets, plan, phone)
    """
    rng = random.Random(seed)
    ph = phone or Phone("02:aa:bb:cc:dd:01", "10.23.0.11", "fd23::11", "Pixel-7")
    pk, plan = dhcp(ph, start), [Contact("dhcp", start)]
    names = sorted(POPULAR)
    t = start + 2.0
    while t < start + duration - 3:
        name = rng.choice(names)
        ip = POPULAR[name]
        pk += dns_lookup(ph, name, t, [ip])
        plan.append(Contact("dns", t, name, qtype=DNS_A, answers=[ip]))
        r = rng.random()
        if name == "www.youtube.com" and r < 0.5:
            pk += quic_connect(ph, ip, name, t + 0.05)
            plan.append(Contact("quic", t + 0.05, name, ip, 443))
        elif name == "www.wikipedia.org" and r < 0.3:
            pk += http_request(ph, ip, name, t + 0.05)
            plan.append(Contact("http", t + 0.05, name, ip, 80, method="GET"))
        else:
            pk += tls_connect(ph, ip, name, t + 0.05)
            plan.append(Contact("tls", t + 0.05, name, ip, 443))
        t += rng.expovariate(1 / 4.0) + 0.2
    return pk, plan, ph


__all__ = [
    "BOX_IP",
    "BOX_MAC",
    "POPULAR",
    "Contact",
    "Phone",
    "clean_phone",
    "dhcp",
    "dns_lookup",
    "http_request",
    "make_cert",
    "quic_connect",
    "stalkerware_phone",
    "tcp_probe",
    "tcp_session",
    "tls_connect",
    "udp_exchange",
    "write_pcap",
]
