"""Packets and captures built byte by byte: the one packet builder of the tree.

The simulated phones and fake internet (:mod:`appliance.sim`), the demo's
replay capture and the tests all build their frames here: Ethernet, IPv4,
UDP, TCP, checksums, DNS messages, TLS records and ClientHellos, QUIC v1
Initials (protected as RFC 9001 says) and classic pcap files.

Every field goes on the wire exactly as asked: a length may lie and a name
may be malformed on purpose (the hostile tests need that; scapy would "fix"
a wrong length or refuse a pointer loop). Tests that want an independent
builder as an oracle use scapy instead. Addresses are text ("10.23.0.5"),
MACs are text ("02:00:00:00:00:05"). Nothing here keeps state: a builder
given the same arguments returns the same bytes, except where a docstring
says that an omitted value is random.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
import socket
import struct

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

# The addresses a frame gets when the caller names none (a phone and the box on the hotspot).
PHONE_MAC = "02:00:00:00:00:05"
BOX_MAC = "02:00:5e:00:00:01"
PHONE_IP = "10.23.0.5"
BOX_IP = "10.23.0.1"
SERVER_IP = "198.51.100.7"
DLT_EN10MB = 1
IPPROTO_TCP, IPPROTO_UDP = 6, 17
_TCP_FLAGS = {"F": 0x01, "S": 0x02, "R": 0x04, "P": 0x08, "A": 0x10}


def _u16(n: int) -> bytes:
    return struct.pack("!H", n)


def _u24(n: int) -> bytes:
    return struct.pack("!I", n)[1:]


# ---------------------------------------------------------------- link and IP
def mac(text: str) -> bytes:
    """The six bytes of a MAC written "02:00:00:00:00:05"."""
    return bytes.fromhex(text.replace(":", ""))


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of ``data``, padded with a zero byte when odd."""
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ipv4(src: str, dst: str, proto: int, payload: bytes, ident: int = 1, frag_off: int = 0, more: bool = False,
         total_len: int | None = None, ttl: int = 64, df: bool = False) -> bytes:
    """An IPv4 packet (no options) with a correct header checksum.

    Args:
        src, dst: the addresses.
        proto: the protocol number (6 TCP, 17 UDP...).
        payload: what follows the header.
        ident: the identification field (taken modulo 2**16).
        frag_off: the fragment offset in bytes (a multiple of 8).
        more: the more-fragments flag.
        total_len: the total length field; by default the true one, may lie on purpose.
        ttl: the time to live.
        df: the don't-fragment flag (what a phone's stack sets).
    Returns:
        The header and payload.
    """
    tot = 20 + len(payload) if total_len is None else total_len
    flags = (0x4000 if df else 0) | (0x2000 if more else 0) | (frag_off // 8)
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, tot, ident & 0xFFFF, flags, ttl, proto, 0,
                      socket.inet_aton(src), socket.inet_aton(dst))
    return hdr[:10] + _u16(checksum(hdr)) + hdr[12:] + payload


def udp(sport: int, dport: int, payload: bytes, length: int | None = None) -> bytes:
    """A UDP header and payload, checksum 0 (none: legal on IPv4; see :func:`with_l4_checksum`).

    ``length`` is the length field; by default the true one, may lie on purpose.
    """
    ln = 8 + len(payload) if length is None else length
    return struct.pack("!HHHH", sport, dport, ln, 0) + payload


def tcp(sport: int, dport: int, seq: int, ack: int, flags: str, payload: bytes = b"", window: int = 65535) -> bytes:
    """A TCP header (no options) and payload, checksum 0 (see :func:`with_l4_checksum`).

    Args:
        flags: letters from "FSRPA" ("S", "SA", "PA"...).
    Raises:
        KeyError: a flag letter outside "FSRPA".
    """
    bits = sum(_TCP_FLAGS[c] for c in flags)
    return struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 5 << 4, bits,
                       window, 0, 0) + payload


def with_l4_checksum(src: str, dst: str, proto: int, segment: bytes) -> bytes:
    """The UDP or TCP ``segment`` with its checksum over the IPv4 pseudo-header filled in."""
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + bytes([0, proto]) + _u16(len(segment))
    at = 6 if proto == IPPROTO_UDP else 16
    return segment[:at] + _u16(checksum(pseudo + segment)) + segment[at + 2:]


def eth(ip_packet: bytes, src: str = PHONE_MAC, dst: str = BOX_MAC, ethertype: int = 0x0800) -> bytes:
    """An Ethernet II frame around an IP packet (by default from the phone to the box)."""
    return mac(dst) + mac(src) + _u16(ethertype) + ip_packet


def up_udp(sport: int, dport: int, payload: bytes, dst: str = BOX_IP, src: str = PHONE_IP, ident: int = 1) -> bytes:
    """A frame from the phone: Ethernet + IPv4 + UDP (no UDP checksum)."""
    return eth(ipv4(src, dst, IPPROTO_UDP, udp(sport, dport, payload), ident))


def up_tcp(sport: int, dport: int, seq: int, ack: int, flags: str, payload: bytes = b"", dst: str = SERVER_IP,
           src: str = PHONE_IP, ident: int = 1) -> bytes:
    """A TCP frame from the phone (no TCP checksum)."""
    return eth(ipv4(src, dst, IPPROTO_TCP, tcp(sport, dport, seq, ack, flags, payload), ident))


def down_tcp(sport: int, dport: int, seq: int, ack: int, flags: str, payload: bytes = b"", src: str = SERVER_IP,
             dst: str = PHONE_IP, ident: int = 1) -> bytes:
    """A TCP frame towards the phone (no TCP checksum)."""
    return eth(ipv4(src, dst, IPPROTO_TCP, tcp(sport, dport, seq, ack, flags, payload), ident),
               src=BOX_MAC, dst=PHONE_MAC)


# ------------------------------------------------------------------------ DNS
def qname(name: str) -> bytes:
    """The wire form of a dotted name (no compression; an empty inner label stays, on purpose)."""
    out = b""
    for label in name.rstrip(".").split("."):
        raw = label.encode()
        out += bytes([len(raw)]) + raw
    return out + b"\0"


def dns_message(qid: int, qname_wire: bytes, qtype: int = 1, answers: bytes = b"", ancount: int = 0,
                response: bool = False) -> bytes:
    """A DNS message with one question whose name is given in wire form (may be malformed).

    Args:
        qid: the message id.
        qname_wire: the question name as it goes on the wire (see :func:`qname`).
        qtype: the question type (1 A, 28 AAAA).
        answers: resource records appended as they are.
        ancount: the answer count field (may disagree with ``answers`` on purpose).
        response: a response (flags 0x8180) rather than a query with RD set (0x0100).
    Returns:
        The message bytes.
    """
    flags = 0x8180 if response else 0x0100
    return struct.pack("!HHHHHH", qid, flags, 1, ancount, 0, 0) + qname_wire + struct.pack("!HH", qtype, 1) + answers


def dns_query(name: str, qid: int = 1, qtype: int = 1) -> bytes:
    """A well-formed DNS query (RD set) for one name; pass a random ``qid`` for a real lookup."""
    return dns_message(qid, qname(name), qtype)


def read_name(msg: bytes, off: int) -> tuple[str, int]:
    """Reads a possibly compressed name at ``off`` of a DNS message.

    Returns:
        The dotted name and the offset just after it (after the first pointer, if any).
    Raises:
        ValueError: the name runs past the message or its pointers loop.
    """
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
        struct.error: a record runs past the message.
    """
    if len(msg) < 12:
        raise ValueError("short DNS message")
    qid, _flags, qd, an, _ns, _ar = struct.unpack("!HHHHHH", msg[:12])
    if qd != 1:
        raise ValueError("expected one question")
    name, off = read_name(msg, 12)
    qtype = struct.unpack("!H", msg[off:off + 2])[0]
    off += 4
    answers = []
    for _ in range(an):
        _, off = read_name(msg, off)
        rtype, _cls, _ttl, rdlen = struct.unpack("!HHIH", msg[off:off + 10])
        off += 10
        if rtype == 1 and rdlen == 4:
            answers.append(socket.inet_ntoa(msg[off:off + 4]))
        off += rdlen
    return qid, name, qtype, answers


def dns_reply(query: bytes, address: str | None, ttl: int = 60) -> bytes:
    """The answer to a one-question query: ``address`` for an A question, no data otherwise.

    Args:
        query: the query message (as :func:`dns_query` builds it).
        address: the IPv4 address answered (None: an empty answer).
        ttl: the record's time to live.
    Raises:
        ValueError: the query is malformed.
    """
    qid, _, qtype, _ = dns_parse(query)
    _, qend = read_name(query, 12)
    question = query[12:qend + 4]
    if qtype == 1 and address is not None:
        rr = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, ttl, 4) + socket.inet_aton(address)
        return struct.pack("!HHHHHH", qid, 0x8180, 1, 1, 0, 0) + question + rr
    return struct.pack("!HHHHHH", qid, 0x8180, 1, 0, 0, 0) + question


# ------------------------------------------------------------------------ TLS
def _ext(etype: int, body: bytes) -> bytes:
    return _u16(etype) + _u16(len(body)) + body


def client_hello(sni: str | None, alpn=("h2", "http/1.1"), quic: bool = False, seed: str = "") -> bytes:
    """A TLS 1.3-capable ClientHello handshake message (no record header).

    Args:
        sni: the server name (None: no server_name extension).
        alpn: ALPN protocol names.
        quic: add quic_transport_parameters (for QUIC Initials) and drop TLS 1.2 fallbacks.
        seed: makes random, session id and key share deterministic.
    Returns:
        The handshake message.
    """
    rnd = hashlib.sha256(f"random{sni}{seed}".encode()).digest()
    sid = b"" if quic else hashlib.sha256(f"sid{sni}{seed}".encode()).digest()
    suites = [0x1301, 0x1302, 0x1303] + ([] if quic else [0xC02B, 0xC02F, 0xC02C, 0xC030, 0xCCA9, 0xCCA8])
    exts = b""
    if sni:
        host = sni.encode("idna") if not sni.isascii() else sni.encode()
        entry = b"\x00" + _u16(len(host)) + host
        exts += _ext(0x0000, _u16(len(entry)) + entry)
    exts += _ext(0x000A, _u16(6) + _u16(0x001D) + _u16(0x0017) + _u16(0x0018))
    if not quic:
        exts += _ext(0x000B, b"\x01\x00")
    sigalgs = [0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601]
    exts += _ext(0x000D, _u16(2 * len(sigalgs)) + b"".join(_u16(s) for s in sigalgs))
    if alpn:
        lst = b"".join(bytes([len(p)]) + p.encode() for p in alpn)
        exts += _ext(0x0010, _u16(len(lst)) + lst)
    versions = [0x0304] if quic else [0x0304, 0x0303]
    exts += _ext(0x002B, bytes([2 * len(versions)]) + b"".join(_u16(v) for v in versions))
    exts += _ext(0x002D, b"\x01\x01")
    share = hashlib.sha256(f"share{sni}{seed}".encode()).digest()
    exts += _ext(0x0033, _u16(36) + _u16(0x001D) + _u16(32) + share)
    if quic:
        exts += _ext(0x0039, bytes([0x04, 0x04, 0x80, 0x10, 0x00, 0x00, 0x01, 0x04, 0x80, 0x00, 0x75, 0x30]))
    body = (b"\x03\x03" + rnd + bytes([len(sid)]) + sid + _u16(2 * len(suites))
            + b"".join(_u16(s) for s in suites) + b"\x01\x00" + _u16(len(exts)) + exts)
    return b"\x01" + _u24(len(body)) + body


def tls_record(handshake: bytes, version: bytes = b"\x03\x01") -> bytes:
    """A TLS handshake record around handshake messages (record version TLS 1.0 by default, as clients send)."""
    return b"\x16" + version + _u16(len(handshake)) + handshake


def server_hello(seed: str = "") -> bytes:
    """A TLS 1.2 ServerHello handshake message (ECDHE-RSA-AES128-GCM), deterministic from ``seed``."""
    body = b"\x03\x03" + hashlib.sha256(f"srv{seed}".encode()).digest() + b"\x00" + _u16(0xC02F) + b"\x00" + _u16(0)
    return b"\x02" + _u24(len(body)) + body


def certificate_msg(ders: list[bytes]) -> bytes:
    """A TLS 1.2 Certificate handshake message carrying a DER chain (leaf first)."""
    lst = b"".join(_u24(len(d)) + d for d in ders)
    body = _u24(len(lst)) + lst
    return b"\x0b" + _u24(len(body)) + body


# ----------------------------------------------------------------------- QUIC
_QUIC_V1_SALT = bytes.fromhex("38762cf7f55934b34d179ae6a4c80cadccbb7f0a")
# Drafts 23-28 had their own Initial salt (draft-ietf-quic-tls-23 5.2).
_QUIC_D23_SALT = bytes.fromhex("c3eef712c72ebb5a11a7d2432bb46365bef9f502")


def varint(n: int) -> bytes:
    """A QUIC variable-length integer (RFC 9000 16), up to 2**30 - 1."""
    if n < 64:
        return bytes([n])
    if n < 16384:
        return _u16(0x4000 | n)
    return struct.pack("!I", 0x80000000 | n)


def _hkdf_expand_label(secret: bytes, label: str, length: int) -> bytes:
    # HKDF-Expand (RFC 5869) with TLS 1.3's HkdfLabel (RFC 8446 7.1), SHA-256.
    full = b"tls13 " + label.encode()
    info = _u16(length) + bytes([len(full)]) + full + b"\x00"
    out, block, i = b"", b"", 1
    while len(out) < length:
        block = hmac.new(secret, block + info + bytes([i]), hashlib.sha256).digest()
        out += block
        i += 1
    return out[:length]


def quic_client_initial_keys(dcid: bytes, version: int = 1) -> tuple[bytes, bytes, bytes]:
    """Derives a QUIC client's Initial packet key, IV and header-protection key (RFC 9001 5.2).

    Drafts 23-28 (0xff000017-0xff00001c) use their own salt; every other
    version gets v1's, as a client forcing Version Negotiation with a
    greased version does.
    """
    salt = _QUIC_D23_SALT if 0xFF000017 <= version <= 0xFF00001C else _QUIC_V1_SALT
    # HKDF-Extract(salt, ikm) is HMAC-SHA256 keyed with the salt (RFC 5869).
    initial = hmac.new(salt, dcid, hashlib.sha256).digest()
    client = _hkdf_expand_label(initial, "client in", 32)
    return (_hkdf_expand_label(client, "quic key", 16), _hkdf_expand_label(client, "quic iv", 12),
            _hkdf_expand_label(client, "quic hp", 16))


def quic_initial(sni: str, dcid: bytes | None = None, scid: bytes | None = None, pn: int = 0,
                 alpn=("h3",), version: int = 1) -> bytes:
    """A client's first QUIC v1 Initial datagram carrying a ClientHello, protected per RFC 9001 section 5.

    The packet is protected exactly as a real client does it (Initial keys
    from the destination connection id, AES-128-GCM, header protection) and
    padded to 1200 bytes, so any QUIC-aware reader can decrypt it.

    Args:
        sni: the server name in the ClientHello.
        dcid: the destination connection ID chosen by the client; it keys the
            Initial secrets and seeds the ClientHello (random 8 bytes when omitted).
        scid: the source connection ID (random 8 bytes when omitted).
        pn: the packet number.
        alpn: ALPN protocol names.
        version: the long header's version (v1's packet layout; keys as
            :func:`quic_client_initial_keys` derives them).
    Returns:
        The UDP payload.
    """
    dcid = secrets.token_bytes(8) if dcid is None else dcid
    scid = secrets.token_bytes(8) if scid is None else scid
    key, iv, hp = quic_client_initial_keys(dcid, version)
    ch = client_hello(sni, alpn, quic=True, seed=dcid.hex())
    frames = b"\x06" + varint(0) + varint(len(ch)) + ch
    pn_len = 2
    head_wo_len = (bytes([0xC0 | (pn_len - 1)]) + struct.pack("!I", version) + bytes([len(dcid)]) + dcid
                   + bytes([len(scid)]) + scid + varint(0))
    # Pad the frames so the whole datagram is 1200 bytes (RFC 9000 14.1; length field: 2-byte varint).
    pad = 1200 - (len(head_wo_len) + 2 + pn_len + len(frames) + 16)
    frames += b"\x00" * max(pad, 0)
    header = head_wo_len + _u16(0x4000 | (pn_len + len(frames) + 16)) + pn.to_bytes(pn_len, "big")
    nonce = (int.from_bytes(iv, "big") ^ pn).to_bytes(12, "big")
    sealed = AESGCM(key).encrypt(nonce, frames, header)
    sample = sealed[4 - pn_len:4 - pn_len + 16]
    enc = Cipher(algorithms.AES(hp), modes.ECB()).encryptor()
    mask = enc.update(sample) + enc.finalize()
    first = bytes([header[0] ^ (mask[0] & 0x0F)])
    pn_off = len(header) - pn_len
    pn_bytes = bytes(b ^ m for b, m in zip(header[pn_off:], mask[1:1 + pn_len], strict=True))
    return first + header[1:pn_off] + pn_bytes + sealed


# ----------------------------------------------------------------------- pcap
PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, DLT_EN10MB)


def record(ts: float, frame: bytes, caplen: int | None = None, wirelen: int | None = None) -> bytes:
    """One classic pcap record (microseconds); ``caplen``/``wirelen`` may lie on purpose."""
    sec = int(ts)
    cl = len(frame) if caplen is None else caplen
    wl = max(cl, len(frame)) if wirelen is None else wirelen
    return struct.pack("<IIII", sec, round((ts - sec) * 1e6), cl, wl) + frame


def pcap_bytes(frames, t0: float = 1_800_000_000.0, step: float = 0.01) -> bytes:
    """A whole classic Ethernet pcap: the global header, then one record per frame.

    Args:
        frames: frames as bytes (timed ``t0``, ``t0 + step``...) or (ts, bytes) tuples.
        t0, step: the times of frames given without one.
    Returns:
        The file's bytes.
    """
    out = [PCAP_HEADER]
    for i, fr in enumerate(frames):
        ts, data = fr if isinstance(fr, tuple) else (t0 + i * step, fr)
        out.append(record(ts, data))
    return b"".join(out)


def write_pcap(path, frames, t0: float = 1_800_000_000.0, step: float = 0.01, tail: bytes = b"") -> None:
    """Writes frames as a pcap (see :func:`pcap_bytes`), then ``tail`` (raw bytes: a cut or lying record).

    Raises:
        OSError: the file cannot be written.
    """
    with open(path, "wb") as fh:
        fh.write(pcap_bytes(frames, t0, step) + tail)


__all__ = [
    "BOX_IP", "BOX_MAC", "DLT_EN10MB", "PCAP_HEADER", "PHONE_IP", "PHONE_MAC", "SERVER_IP",
    "certificate_msg", "checksum", "client_hello", "dns_message", "dns_parse", "dns_query", "dns_reply",
    "down_tcp", "eth", "ipv4", "mac", "pcap_bytes", "qname", "quic_client_initial_keys", "quic_initial",
    "read_name", "record", "server_hello", "tcp", "tls_record", "udp", "up_tcp", "up_udp", "varint",
    "with_l4_checksum", "write_pcap",
]
