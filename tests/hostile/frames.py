"""Raw frame and pcap builders: fast enough for a million packets, exact enough to be malformed on purpose.

scapy would "fix" a wrong length or refuse a pointer loop; these helpers put
exactly the bytes asked for on the wire. Addresses are text ("10.23.0.5"),
MACs are text ("02:00:00:00:00:05").
"""
from __future__ import annotations

import socket
import struct

PHONE_MAC = "02:00:00:00:00:05"
BOX_MAC = "02:00:5e:00:00:01"
PHONE_IP = "10.23.0.5"
BOX_IP = "10.23.0.1"
DLT_EN10MB = 1


def _mac(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))


def _csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ipv4(src: str, dst: str, proto: int, payload: bytes, ident: int = 1, frag_off: int = 0, more: bool = False,
         total_len: int | None = None, ttl: int = 64) -> bytes:
    """An IPv4 packet; ``frag_off`` in bytes (multiple of 8), ``total_len`` may lie on purpose."""
    tot = 20 + len(payload) if total_len is None else total_len
    flags = (0x2000 if more else 0) | (frag_off // 8)
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, tot, ident & 0xFFFF, flags, ttl, proto, 0,
                      socket.inet_aton(src), socket.inet_aton(dst))
    hdr = hdr[:10] + struct.pack("!H", _csum(hdr)) + hdr[12:]
    return hdr + payload


def udp(sport: int, dport: int, payload: bytes, length: int | None = None) -> bytes:
    """A UDP header + payload (checksum 0: none, legal on IPv4); ``length`` may lie."""
    ln = 8 + len(payload) if length is None else length
    return struct.pack("!HHHH", sport, dport, ln, 0) + payload


def tcp(sport: int, dport: int, seq: int, ack: int, flags: str, payload: bytes = b"", window: int = 65535) -> bytes:
    """A TCP header (no options) + payload; flags as letters from "FSRPA"."""
    bits = sum({"F": 1, "S": 2, "R": 4, "P": 8, "A": 16}[c] for c in flags)
    return struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 5 << 4, bits,
                       window, 0, 0) + payload


def eth(ip_packet: bytes, src: str = PHONE_MAC, dst: str = BOX_MAC, ethertype: int = 0x0800) -> bytes:
    """An Ethernet II frame around an IP packet."""
    return _mac(dst) + _mac(src) + struct.pack("!H", ethertype) + ip_packet


def up_udp(sport: int, dport: int, payload: bytes, dst: str = BOX_IP, src: str = PHONE_IP, ident: int = 1) -> bytes:
    """A frame from the phone: Ethernet + IPv4 + UDP."""
    return eth(ipv4(src, dst, 17, udp(sport, dport, payload), ident))


def up_tcp(sport: int, dport: int, seq: int, ack: int, flags: str, payload: bytes = b"", dst: str = "198.51.100.7",
           src: str = PHONE_IP, ident: int = 1) -> bytes:
    """A TCP frame from the phone."""
    return eth(ipv4(src, dst, 6, tcp(sport, dport, seq, ack, flags, payload), ident))


def down_tcp(sport: int, dport: int, seq: int, ack: int, flags: str, payload: bytes = b"", src: str = "198.51.100.7",
             dst: str = PHONE_IP, ident: int = 1) -> bytes:
    """A TCP frame towards the phone."""
    return eth(ipv4(src, dst, 6, tcp(sport, dport, seq, ack, flags, payload), ident), src=BOX_MAC, dst=PHONE_MAC)


# ---- DNS -------------------------------------------------------------------------
def qname(name: str) -> bytes:
    """The wire form of a dotted name (no compression)."""
    out = b""
    for label in name.rstrip(".").split("."):
        raw = label.encode()
        out += bytes([len(raw)]) + raw
    return out + b"\0"


def dns_message(qid: int, qname_wire: bytes, qtype: int = 1, answers: bytes = b"", ancount: int = 0,
                response: bool = False) -> bytes:
    """A DNS message with one question whose name is given in wire form (may be malformed)."""
    flags = 0x8180 if response else 0x0100
    return struct.pack("!HHHHHH", qid, flags, 1, ancount, 0, 0) + qname_wire + struct.pack("!HH", qtype, 1) + answers


def dns_query(name: str, qid: int = 1) -> bytes:
    """A well-formed DNS query for an A record."""
    return dns_message(qid, qname(name))


# ---- TLS -------------------------------------------------------------------------
def tls_record(handshake: bytes) -> bytes:
    """A TLS handshake record around one handshake message."""
    return b"\x16\x03\x01" + struct.pack("!H", len(handshake)) + handshake


# ---- pcap ------------------------------------------------------------------------
PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, DLT_EN10MB)


def record(ts: float, frame: bytes, caplen: int | None = None, wirelen: int | None = None) -> bytes:
    """One classic pcap record (microseconds); caplen/wirelen may lie on purpose."""
    sec = int(ts)
    cl = len(frame) if caplen is None else caplen
    wl = max(cl, len(frame)) if wirelen is None else wirelen
    return struct.pack("<IIII", sec, round((ts - sec) * 1e6), cl, wl) + frame


def pcap_bytes(frames, t0: float = 1_800_000_000.0, step: float = 0.01) -> bytes:
    """A whole pcap: frames (bytes, or (ts, bytes) tuples) after the global header."""
    out = [PCAP_HEADER]
    for i, fr in enumerate(frames):
        ts, data = fr if isinstance(fr, tuple) else (t0 + i * step, fr)
        out.append(record(ts, data))
    return b"".join(out)


def write_pcap(path, frames, t0: float = 1_800_000_000.0, step: float = 0.01, tail: bytes = b"") -> None:
    """Writes frames as a pcap, then ``tail`` (raw bytes: a cut or lying record)."""
    with open(path, "wb") as fh:
        fh.write(pcap_bytes(frames, t0, step) + tail)
