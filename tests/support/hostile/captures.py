"""Malformed captures: each builder returns (pcap bytes, the names the core must still report, the end status).

The expected names are derived by hand from how each case is built (the
valid packets around the damage), never from running the core.
"""
from __future__ import annotations

import struct

from appliance.sim.packets import (
    BOX_IP,
    PCAP_HEADER,
    PHONE_IP,
    client_hello,
    dns_message,
    dns_query,
    down_tcp,
    eth,
    ipv4,
    pcap_bytes,
    qname,
    quic_initial,
    record,
    tls_record,
    udp,
    up_tcp,
    up_udp,
)

T0 = 1_800_000_000.0
QUIC_SERVER = "198.51.100.9"


def _good_dns(n: int, prefix: str = "good") -> tuple[list[bytes], list[str]]:
    names = [f"{prefix}{i}.example.com" for i in range(n)]
    return [up_udp(40000 + i, 53, dns_query(nm, i + 1)) for i, nm in enumerate(names)], names


def truncated_record():
    """Three good queries, then a record whose data the file cuts after 24 bytes."""
    frames, names = _good_dns(3)
    cut = record(T0 + 5, up_udp(40100, 53, dns_query("cut.example.com")))[:40]
    return pcap_bytes(frames) + cut, names, "truncated"


def truncated_header():
    """Good queries, then half a record header (a power cut during the write)."""
    frames, names = _good_dns(2)
    return pcap_bytes(frames) + record(T0 + 5, frames[0])[:7], names, "truncated"


def absurd_caplen():
    """A record claiming a 4 GiB frame after good ones."""
    frames, names = _good_dns(3)
    tail = struct.pack("<IIII", int(T0) + 9, 0, 0xFFFFFFF0, 0xFFFFFFF0) + b"x" * 100
    return pcap_bytes(frames) + tail, names, "truncated"


def caplen_over_wirelen():
    """A record whose captured length exceeds the wire length, between good ones (libpcap accepts it)."""
    frames, names = _good_dns(2)
    lying = record(T0 + 1, up_udp(40200, 53, dns_query("lying.example.com", 9)), wirelen=20)
    more, more_names = _good_dns(1, "after")
    return pcap_bytes(frames) + lying + pcap_bytes(more)[len(PCAP_HEADER):], names + ["lying.example.com"] + \
        more_names, "eof"


def header_only():
    """A pcap global header and nothing else (the capture was started, no packet came)."""
    return PCAP_HEADER, [], "eof"


def dns_hostile_names():
    """Compression loops, forward pointers, a 64-byte label, a 320-byte name between good queries.

    A 63-byte label is legal and must come out whole; a zero-length label
    ends the name where it stands (RFC 1035: the root label).
    """
    hdr = lambda qid: struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    self_loop = hdr(7) + b"\xc0\x0c" + struct.pack("!HH", 1, 1)
    two_loop = hdr(8) + b"\x03abc\xc0\x0c" + struct.pack("!HH", 1, 1)
    forward = hdr(9) + b"\xc0\x20" + struct.pack("!HH", 1, 1) + b"\x00" * 30
    pointer_out = hdr(10) + b"\xc3\xff" + struct.pack("!HH", 1, 1)
    label64 = dns_message(11, b"\x40" + b"b" * 64 + b"\x03com\x00")
    name320 = dns_message(12, b"".join(b"\x3f" + b"c" * 63 for _ in range(5)) + b"\x00")
    no_end = hdr(13) + b"\x05abcde\x05abc"
    l63 = "a" * 63 + ".example.com"
    frames = [up_udp(40000, 53, dns_query("first.example.com")),
              up_udp(40001, 53, self_loop), up_udp(40002, 53, two_loop), up_udp(40003, 53, forward),
              up_udp(40004, 53, pointer_out), up_udp(40005, 53, label64), up_udp(40006, 53, name320),
              up_udp(40007, 53, no_end),
              up_udp(40008, 53, dns_query(l63)),
              up_udp(40009, 53, dns_message(14, b"\x03abc\x00\x03com\x00")),
              up_udp(40010, 53, dns_query("last.example.com"))]
    return pcap_bytes(frames), ["first.example.com", l63, "abc", "last.example.com"], "eof"


def dns_answer_bombs():
    """A response with 65535 claimed answers and answers pointing into themselves, then a good query."""
    q = qname("bomb.example.com")
    ptr_loop_answer = b"\xc0\x0c" + struct.pack("!HHIH", 5, 1, 60, 2) + b"\xc0\x2e"  # CNAME target points at itself
    bomb = dns_message(21, q, answers=ptr_loop_answer, ancount=0xFFFF, response=True)
    frames = [eth(ipv4(BOX_IP, PHONE_IP, 17, udp(53, 40020, bomb)), src="02:00:5e:00:00:01",
                  dst="02:00:00:00:00:05"),
              up_udp(40021, 53, dns_query("after-bomb.example.com"))]
    # The response's question is reported (the core reports the questions of responses too); the
    # looping CNAME is not an answer.
    return pcap_bytes(frames), ["bomb.example.com", "after-bomb.example.com"], "eof"


def _tcp_conn(sport: int, segments, total: int) -> list[bytes]:
    f = [up_tcp(sport, 443, 1000, 0, "S"), down_tcp(443, sport, 5000, 1001, "SA"), up_tcp(sport, 443, 1001, 5001, "A")]
    f += [up_tcp(sport, 443, 1001 + off, 5001, "PA", data) for off, data in segments]
    f += [up_tcp(sport, 443, 1001 + total, 5001, "FA"), down_tcp(443, sport, 5001, 1002 + total, "FA")]
    return f


def tcp_conflicting_segments():
    """Three connections whose ClientHello bytes are retransmitted or overlapped with different data.

    Which copy wins is the reassembly policy; what must hold is one SNI per
    connection, made of bytes that were really on the wire, and no crash.
    Returns (pcap, candidate names per connection, status).
    """
    rec = tls_record(client_hello("evil.example.net"))
    alt = tls_record(client_hello("good.example.org"))
    assert len(rec) == len(alt)
    n = len(rec)
    frames = (_tcp_conn(50001, [(0, rec[:100]), (0, alt[:100]), (100, rec[100:])], n)
              + _tcp_conn(50002, [(0, rec[:120]), (60, alt[60:200]), (120, rec[120:])], n)
              + _tcp_conn(50003, [(100, rec[100:]), (50, alt[50:150]), (0, rec[:100])], n)
              + _tcp_conn(50004, [(0, rec), (0, alt), (0, rec[:10])], n))
    mixes = {"evil.example.net", "good.example.org", "evil.example.org", "good.example.net"}
    return pcap_bytes(frames), mixes, "eof"


def ip_fragments():
    """A DNS query in 8-byte fragments (in order, then reversed with a conflicting duplicate), and absurd fragments."""
    def frags(name, ident, sport):
        q = udp(sport, 53, dns_query(name, ident))
        return [eth(ipv4(PHONE_IP, BOX_IP, 17, q[o:o + 8], ident=ident, frag_off=o, more=o + 8 < len(q)))
                for o in range(0, len(q), 8)]
    in_order = frags("frag.example.com", 77, 40030)
    rev = list(reversed(frags("reversed.example.com", 78, 40031)))
    rev.insert(2, eth(ipv4(PHONE_IP, BOX_IP, 17, b"XXXXXXXX", ident=78, frag_off=8, more=True)))
    beyond = eth(ipv4(PHONE_IP, BOX_IP, 17, b"A" * 1000, ident=79, frag_off=65528))
    zero_len = eth(ipv4(PHONE_IP, BOX_IP, 17, b"", ident=80, frag_off=8, more=True))
    lone_first = eth(ipv4(PHONE_IP, BOX_IP, 17, udp(40032, 53, b"\x00" * 4), ident=81, more=True))
    frames = in_order + rev + [beyond, zero_len, lone_first, up_udp(40033, 53, dns_query("after-frags.example.com"))]
    return pcap_bytes(frames), ["frag.example.com", "reversed.example.com", "after-frags.example.com"], "eof"


def ip_lies():
    """IPv4 headers whose lengths lie (total length beyond the frame, below the header, IHL < 5)."""
    q = udp(40040, 53, dns_query("never.example.com"))
    big = eth(ipv4(PHONE_IP, BOX_IP, 17, q, total_len=60000))
    small = eth(ipv4(PHONE_IP, BOX_IP, 17, q, total_len=12))
    ihl = bytearray(ipv4(PHONE_IP, BOX_IP, 17, q))
    ihl[0] = 0x43
    udp_len = eth(ipv4(PHONE_IP, BOX_IP, 17, udp(40041, 53, dns_query("never2.example.com"), length=4000)))
    frames = [big, small, eth(bytes(ihl)), udp_len, b"\x00" * 5, up_udp(40042, 53, dns_query("after-lies.example.com"))]
    return pcap_bytes(frames), ["after-lies.example.com"], "eof"


def quic_bad_lengths():
    """QUIC Initials with lying length, token length and CID lengths, then a good one."""
    good = quic_initial("quic.example.com", bytes(range(8)), b"\x01" * 8)
    off = 1 + 4 + 1 + 8 + 1 + 8 + 1  # first byte, version, DCID len + DCID, SCID len + SCID, token length
    bad = [good[:off] + struct.pack("!H", 0x4000 | 4000) + good[off + 2:],   # length beyond the datagram
           good[:off] + struct.pack("!H", 0x4000) + good[off + 2:],          # length 0
           good[:off] + b"\x01" + good[off + 2:],                            # shorter than the packet number
           good[:off - 1] + b"\x80\xff\xff\xff" + good[off:],                # token length 1 GiB
           good[:5] + b"\xff" + good[6:],                                    # DCID length 255
           good[:5] + b"\x15" + good[6:],                                    # DCID length 21 (> 20)
           good[:off] + b"\xff" * 8 + good[off + 2:],                        # 8-byte varint length
           good[:40], good[:5],
           good[:off] + b"\x01" + good[off + 2:] + good]                     # a bad packet coalesced before a good
    frames = [up_udp(41000 + i, 443, b, dst="198.51.100.9") for i, b in enumerate(bad)]
    frames.append(up_udp(42000, 443, good, dst="198.51.100.9"))
    return pcap_bytes(frames), ["quic.example.com"], "eof"


def snaplen_cut_hello():
    """A ClientHello cut by the capture's snap length (caplen < wirelen): SNI still reported, marked partial."""
    rec = tls_record(client_hello("snapped.example.net"))
    frames = _tcp_conn(50010, [], 0)[:3]
    full = up_tcp(50010, 443, 1001, 5001, "PA", rec)
    body = pcap_bytes(frames) + record(T0 + 1, full[:54 + 140], wirelen=len(full))
    return body, ["snapped.example.net"], "eof"


def _pcapng_block(btype: int, body: bytes) -> bytes:
    pad = (-len(body)) % 4
    ln = 12 + len(body) + pad
    return struct.pack("<II", btype, ln) + body + b"\0" * pad + struct.pack("<I", ln)


def pcapng_cut_block():
    """A pcapng file: section, interface, two packets, then a block cut in the middle."""
    shb = _pcapng_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    idb = _pcapng_block(1, struct.pack("<HHI", 1, 0, 65535))
    frames, names = _good_dns(2, "ng")

    def epb(i, fr):
        ts = int((T0 + i) * 1e6)
        return _pcapng_block(6, struct.pack("<IIIII", 0, ts >> 32, ts & 0xFFFFFFFF, len(fr), len(fr)) + fr)
    cut = epb(9, up_udp(40300, 53, dns_query("lost.example.com")))[:30]
    return shb + idb + b"".join(epb(i, f) for i, f in enumerate(frames)) + cut, names, "truncated"


def pcapng_absurd_block():
    """A pcapng block whose length field claims 2 GiB after a good packet."""
    shb = _pcapng_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    idb = _pcapng_block(1, struct.pack("<HHI", 1, 0, 65535))
    frames, names = _good_dns(1, "ng")
    ts = int(T0 * 1e6)
    epb = _pcapng_block(6, struct.pack("<IIIII", 0, ts >> 32, ts & 0xFFFFFFFF, len(frames[0]), len(frames[0]))
                        + frames[0])
    return shb + idb + epb + struct.pack("<II", 6, 0x7FFFFFFC) + b"\0" * 64, names, "truncated"


CASES = {
    "truncated-record": truncated_record,
    "truncated-header": truncated_header,
    "absurd-caplen": absurd_caplen,
    "caplen-over-wirelen": caplen_over_wirelen,
    "header-only": header_only,
    "dns-hostile-names": dns_hostile_names,
    "dns-answer-bombs": dns_answer_bombs,
    "ip-fragments": ip_fragments,
    "ip-lies": ip_lies,
    "quic-bad-lengths": quic_bad_lengths,
    "snaplen-cut-hello": snaplen_cut_hello,
    "pcapng-cut-block": pcapng_cut_block,
    "pcapng-absurd-block": pcapng_absurd_block,
}


def hostile_strings():
    """Names full of what breaks output formats: quotes, backslashes, control bytes, invalid UTF-8, tabs.

    DNS labels may hold any byte; a ClientHello's SNI and an HTTP Host or
    User-Agent are whatever the sender wrote. Returns (pcap, number of named
    events expected, status); the names themselves are checked by comparing the
    two output paths and by parsing every line.
    """
    labels = [b'quo"te', b"back\\slash", b"nl\nx", b"tab\tx", b"nul\x00x", b"bad\xffutf8", b"cut\xc3", b"\xe2\x80\xae",
              b"esc\x1b[31m", b"del\x7f"]
    frames = []
    for i, lab in enumerate(labels):
        wire = bytes([len(lab)]) + lab + b"\x07example\x03com\x00"
        frames.append(up_udp(40400 + i, 53, dns_message(100 + i, wire)))
    # HTTP request with hostile Host, path and User-Agent
    req = (b"GET /p\"a\\th\x01?q=\xff HTTP/1.1\r\nHost: ho\"st\\\x7f.example\xff\r\n"
           b"User-Agent: ua\t\"x\"\\\x1b\xc3\r\n\r\n")
    frames += _tcp_conn(50020, [(0, req)], len(req))[:3] + [up_tcp(50020, 80, 1001, 5001, "PA", req)]
    frames[-4:-1] = [f.replace(b"\x01\xbb", b"\x00\x50", 1) for f in frames[-4:-1]]
    return pcap_bytes(frames), len(labels), "eof"


def unknown_linktype():
    """A pcap of a link type the core does not decode (USER0): nothing is reported, nothing breaks."""
    frames, _ = _good_dns(3)
    header = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 147)
    return header + pcap_bytes(frames)[len(PCAP_HEADER):], [], "eof"


def big_endian_nanoseconds():
    """A big-endian, nanosecond-resolution pcap (as some capture tools write): read like any other."""
    frames, names = _good_dns(3, "be")
    out = [struct.pack(">IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 65535, 1)]
    for i, fr in enumerate(frames):
        out.append(struct.pack(">IIII", int(T0) + i, 123456789, len(fr), len(fr)) + fr)
    return b"".join(out), names, "eof"


CASES["unknown-linktype"] = unknown_linktype
CASES["big-endian-nanoseconds"] = big_endian_nanoseconds
