"""pcapng files whose interfaces differ (link type, snapshot length, byte order, sections).

One libpcap handle stops at the second interface of such a file; the core
reads them through native/src/pcapng_route.c. Each builder returns
``(bytes, expected)`` where ``expected`` lists, in file order, one
``(name, ts_ns)`` per packet (every packet carries one DNS query), from how
the file was built; ``CASES`` maps a case to ``(builder, status)``.
"""
from __future__ import annotations

import struct

from appliance.sim.packets import PHONE_IP, SERVER_IP, dns_query, eth, ipv4, udp

T0_NS = 1_800_000_000_123_456_789
DLT_EN10MB, DLT_RAW, DLT_LINUX_SLL = 1, 101, 113


def _block(btype: int, body: bytes, be: bool) -> bytes:
    e = ">" if be else "<"
    body += b"\0" * ((-len(body)) % 4)
    ln = 12 + len(body)
    return struct.pack(e + "II", btype, ln) + body + struct.pack(e + "I", ln)


def _opt(code: int, value: bytes, be: bool) -> bytes:
    return struct.pack((">" if be else "<") + "HH", code, len(value)) + value + b"\0" * ((-len(value)) % 4)


def shb(be: bool = False) -> bytes:
    """A Section Header Block, version 1.0, section length unknown."""
    return _block(0x0A0D0D0A, struct.pack((">" if be else "<") + "IHHq", 0x1A2B3C4D, 1, 0, -1), be)


def idb(linktype: int, snaplen: int = 65535, tsresol: int | None = None, be: bool = False) -> bytes:
    """An Interface Description Block; tsresol is the if_tsresol byte (6 = microseconds when absent)."""
    opts = b"" if tsresol is None else _opt(9, bytes([tsresol]), be) + _opt(0, b"", be)
    return _block(1, struct.pack((">" if be else "<") + "HHI", linktype, 0, snaplen) + opts, be)


def units(ts_ns: int, tsresol: int | None) -> int:
    """ts_ns in an interface's timestamp units (if_tsresol: 10^-n, or 2^-n with the top bit set)."""
    r = 6 if tsresol is None else tsresol
    if r & 0x80:
        return (ts_ns << (r & 0x7F)) // 1_000_000_000
    return ts_ns * 10 ** r // 1_000_000_000


def epb(iface: int, ts_units: int, frame: bytes, be: bool = False, caplen: int | None = None) -> bytes:
    """An Enhanced Packet Block (caplen < len(frame) cuts the frame, as a snapshot length does)."""
    cap = len(frame) if caplen is None else caplen
    head = struct.pack((">" if be else "<") + "IIIII", iface, ts_units >> 32, ts_units & 0xFFFFFFFF, cap, len(frame))
    return _block(6, head + frame[:cap], be)


def opb(iface: int, ts_units: int, frame: bytes, be: bool = False) -> bytes:
    """An obsolete Packet Block (16-bit interface id, 16-bit drop count)."""
    e = ">" if be else "<"
    return _block(2, struct.pack(e + "HHIIII", iface, 0, ts_units >> 32, ts_units & 0xFFFFFFFF, len(frame),
                                 len(frame)) + frame, be)


def spb(frame: bytes, be: bool = False) -> bytes:
    """A Simple Packet Block: interface 0 of its section, no timestamp."""
    return _block(3, struct.pack((">" if be else "<") + "I", len(frame)) + frame, be)


def other_blocks(be: bool = False) -> bytes:
    """Blocks the router skips: a Name Resolution Block, an Interface Statistics Block, a Decryption Secrets Block.

    (No custom block: tshark shows a copyable one as a frame of its own, libpcap skips it.)
    """
    e = ">" if be else "<"
    nrb = _block(4, struct.pack(e + "HH", 1, 8) + bytes([10, 0, 0, 1]) + b"box\0" + struct.pack(e + "HH", 0, 0), be)
    isb = _block(5, struct.pack(e + "III", 0, 0, 0), be)
    keylog = b"CLIENT_RANDOM 00 00\n"
    dsb = _block(10, struct.pack(e + "II", 0x544C534B, len(keylog)) + keylog, be)
    return nrb + isb + dsb


def _ip(name: str, i: int) -> bytes:
    return ipv4(PHONE_IP, SERVER_IP, 17, udp(41000 + i, 53, dns_query(name, i + 1)), ident=i + 1)


def frame(linktype: int, name: str, i: int) -> bytes:
    """A DNS query for name framed for linktype (Ethernet, raw IP or Linux cooked capture)."""
    ip = _ip(name, i)
    if linktype == DLT_EN10MB:
        return eth(ip)
    if linktype == DLT_RAW:
        return ip
    if linktype == DLT_LINUX_SLL:
        return struct.pack(">HHH", 0, 1, 6) + bytes.fromhex("020000000005") + b"\0\0" + struct.pack(">H", 0x0800) + ip
    raise ValueError(linktype)


def _packets(plan, be: bool, first: int = 0):
    """plan: (iface, linktype, tsresol) per packet, numbered from first; returns (EPB bytes, expected)."""
    out, expected = b"", []
    for i, (iface, linktype, tsresol) in enumerate(plan, first):
        name = f"p{i}-if{iface}-dlt{linktype}.example.com"
        ts = T0_NS + i * 1_000_000_001  # a second and a nanosecond apart: both resolutions show
        u = units(ts, tsresol)
        out += epb(iface, u, frame(linktype, name, i), be)
        # what the interface's resolution keeps of ts, back in nanoseconds
        r = 6 if tsresol is None else tsresol
        expected.append((name, u * 1_000_000_000 >> (r & 0x7F) if r & 0x80 else u * 1_000_000_000 // 10 ** r))
    return out, expected


def two_linktypes(be: bool = False):
    """Ethernet, raw IP and Linux SLL interfaces in one section, packets interleaved, other blocks between."""
    ifs = [(DLT_EN10MB, None), (DLT_RAW, 9), (DLT_LINUX_SLL, 0x80 | 20)]
    plan = [(k, *ifs[k]) for k in (0, 1, 1, 2, 0, 2, 1, 0)]
    body, expected = _packets(plan, be)
    head = shb(be) + b"".join(idb(lt, 65535, r, be) for lt, r in ifs)
    return head + other_blocks(be) + body + other_blocks(be), expected


def two_linktypes_big_endian():
    """The same as two_linktypes, written big-endian."""
    return two_linktypes(be=True)


def two_snaplens():
    """Two Ethernet interfaces that differ only in snapshot length (65535 and 80: the frames fit both)."""
    data = shb() + idb(DLT_EN10MB, 65535) + idb(DLT_EN10MB, 80)
    expected = []
    for i, iface in enumerate((0, 1, 0, 1)):
        name = f"s{i}.example.com"
        fr, ts = frame(DLT_EN10MB, name, i), T0_NS + i * 1_000_000_000
        assert len(fr) <= 80
        data += epb(iface, units(ts, None), fr)
        expected.append((name, ts // 1000 * 1000))
    return data, expected


def sections():
    """Three sections: little-endian Ethernet; big-endian raw IP + Ethernet (ns); little-endian SLL (an SPB) + raw IP (a PB)."""
    s1, e1 = _packets([(0, DLT_EN10MB, None)] * 2, False)
    s2, e2 = _packets([(1, DLT_EN10MB, 9), (0, DLT_RAW, None), (1, DLT_EN10MB, 9)], True, first=2)
    data = shb() + idb(DLT_EN10MB) + s1
    data += shb(True) + idb(DLT_RAW, 65535, None, True) + idb(DLT_EN10MB, 65535, 9, True) + other_blocks(True) + s2
    ts = T0_NS + 10 * 1_000_000_000
    data += (shb() + idb(DLT_LINUX_SLL, 4000) + idb(DLT_RAW)
             + opb(1, units(ts, None), frame(DLT_RAW, "opb.example.com", 21))
             + spb(frame(DLT_LINUX_SLL, "spb.example.com", 20)))
    # an SPB has no timestamp: libpcap gives 0
    return data, e1 + e2 + [("opb.example.com", ts // 1000 * 1000), ("spb.example.com", 0)]


def truncated():
    """Two link types, four packets, then an EPB the file cuts in the middle."""
    data, expected = two_linktypes()
    cut = epb(1, 5, frame(DLT_RAW, "cut.example.com", 99))
    return data + cut[:len(cut) - 9], expected


def too_many_interfaces():
    """A packet on each of the first two interfaces (Ethernet, raw IP), then 64 more interface blocks."""
    body, expected = _packets([(0, DLT_EN10MB, None), (1, DLT_RAW, None)], False)
    data = shb() + idb(DLT_EN10MB) + idb(DLT_RAW) + body + b"".join(idb(DLT_RAW) for _ in range(64))
    return data + epb(0, 1, frame(DLT_EN10MB, "late.example.com", 9)), expected


def unknown_interface():
    """Two link types, then a packet naming interface 7 of a section with two."""
    body, expected = _packets([(0, DLT_EN10MB, None), (1, DLT_RAW, None)], False)
    return shb() + idb(DLT_EN10MB) + idb(DLT_RAW) + body + epb(7, 1, frame(DLT_RAW, "nowhere.example.com", 9)), expected


# case -> (builder, end status); a damaged one ends "truncated" with its reason in the reader's error.
CASES = {
    "two-linktypes": (two_linktypes, "eof"),
    "two-linktypes-big-endian": (two_linktypes_big_endian, "eof"),
    "two-snaplens": (two_snaplens, "eof"),
    "sections": (sections, "eof"),
    "truncated": (truncated, "truncated"),
    "too-many-interfaces": (too_many_interfaces, "truncated"),
    "unknown-interface": (unknown_interface, "truncated"),
}
