"""Scapy builders for the capture-core cases the public captures do not cover.

Each builder returns (packets, linktype, expected) where ``expected`` is the
set of (kind, value) pairs that the builder put on the wire, in the shape of
``oracle.core_names``. Tests write the packets to a pcap and compare both the
core and tshark with ``expected``.
"""
from __future__ import annotations

from scapy.all import (
    DNS,
    DNSQR,
    DNSRR,
    IP,
    TCP,
    UDP,
    CookedLinux,
    Dot1AD,
    Dot1Q,
    Ether,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    Loopback,
    Raw,
    fragment,
    fragment6,
)
from scapy.layers.tls.extensions import ProtocolName, ServerName, TLS_Ext_ALPN, TLS_Ext_ServerName
from scapy.layers.tls.handshake import TLSClientHello
from scapy.layers.tls.record import TLS

try:  # scapy names it differently across versions
    from scapy.layers.l2 import CookedLinuxV2
except ImportError:  # pragma: no cover
    CookedLinuxV2 = None

PHONE_MAC, BOX_MAC = "02:00:00:00:00:01", "02:00:00:00:00:fe"
PHONE4, SERVER4 = "10.23.0.10", "198.18.0.53"
PHONE6, SERVER6 = "fd23::10", "2001:db8::53"

LINKTYPE_ETHERNET, LINKTYPE_NULL, LINKTYPE_RAW, LINKTYPE_SLL, LINKTYPE_SLL2 = 1, 0, 101, 113, 276
LINKTYPE_IPV4, LINKTYPE_IPV6 = 228, 229


def dns_query(name: str, sport=40000, qtype="A", v6=False):
    ip = IPv6(src=PHONE6, dst=SERVER6) if v6 else IP(src=PHONE4, dst=SERVER4)
    return ip / UDP(sport=sport, dport=53) / DNS(id=sport & 0xFFFF, rd=1, qd=DNSQR(qname=name, qtype=qtype))


def eth(pkt):
    return Ether(src=PHONE_MAC, dst=BOX_MAC) / pkt


def client_hello(sni: str, alpn=("h2", "http/1.1")) -> bytes:
    """A TLS 1.2 record holding one ClientHello with SNI and ALPN."""
    exts = [TLS_Ext_ServerName(servernames=[ServerName(servername=sni.encode())]),
            TLS_Ext_ALPN(protocols=[ProtocolName(protocol=p.encode()) for p in alpn])]
    hello = TLSClientHello(version=0x0303, ciphers=[0x1301, 0xC02F, 0x009C], ext=exts)
    return bytes(TLS(type=22, version=0x0301, msg=[hello]))


def tcp_stream(payload_chunks, sport=50000, dport=443, v6=False, order=None, skip=()):
    """A client's TCP stream (SYN, SYN-ACK, ACK, data segments) with chosen segment order and losses."""
    mk = (lambda: IPv6(src=PHONE6, dst=SERVER6)) if v6 else (lambda: IP(src=PHONE4, dst=SERVER4))
    rk = (lambda: IPv6(src=SERVER6, dst=PHONE6)) if v6 else (lambda: IP(src=SERVER4, dst=PHONE4))
    isn, risn = 1000, 5000
    pkts = [eth(mk() / TCP(sport=sport, dport=dport, flags="S", seq=isn)),
            eth(rk() / TCP(sport=dport, dport=sport, flags="SA", seq=risn, ack=isn + 1)),
            eth(mk() / TCP(sport=sport, dport=dport, flags="A", seq=isn + 1, ack=risn + 1))]
    segs, seq = [], isn + 1
    for chunk in payload_chunks:
        segs.append(eth(mk() / TCP(sport=sport, dport=dport, flags="PA", seq=seq, ack=risn + 1) / Raw(chunk)))
        seq += len(chunk)
    order = order or range(len(segs))
    pkts += [segs[i] for i in order if i not in skip]
    return pkts


def tcp_conversation(turns, sport, dport):
    """A TCP connection over IPv4 (handshake, then each (from_client, bytes) turn as one segment, in order)."""
    up, down = (lambda: IP(src=PHONE4, dst=SERVER4)), (lambda: IP(src=SERVER4, dst=PHONE4))
    seq = {True: 1001, False: 5001}
    pkts = [eth(up() / TCP(sport=sport, dport=dport, flags="S", seq=1000)),
            eth(down() / TCP(sport=dport, dport=sport, flags="SA", seq=5000, ack=1001)),
            eth(up() / TCP(sport=sport, dport=dport, flags="A", seq=1001, ack=5001))]
    for from_client, data in turns:
        ip, (a, b) = (up(), (sport, dport)) if from_client else (down(), (dport, sport))
        pkts.append(eth(ip / TCP(sport=a, dport=b, flags="PA", seq=seq[from_client], ack=seq[not from_client])
                        / Raw(data)))
        seq[from_client] += len(data)
    return pkts


def split(data: bytes, n: int) -> list[bytes]:
    step = -(-len(data) // n)
    return [data[i:i + step] for i in range(0, len(data), step)]


def cases():
    """Yields (case id, packets, linktype, expected set)."""
    q = ("dns.query", "qinq.example.com")
    yield "qinq", [Ether(src=PHONE_MAC, dst=BOX_MAC) / Dot1AD(vlan=100) / Dot1Q(vlan=200)
                   / dns_query("qinq.example.com")], LINKTYPE_ETHERNET, {q}
    yield "sll", [CookedLinux(pkttype=4, lladdrtype=1, lladdrlen=6, src=b"\x02\0\0\0\0\x01\0\0")
                  / dns_query("sll.example.com")], LINKTYPE_SLL, {("dns.query", "sll.example.com")}
    if CookedLinuxV2 is not None:
        yield "sll2", [CookedLinuxV2(proto=0x0800, lladdrtype=1, lladdrlen=6, src=b"\x02\0\0\0\0\x01\0\0")
                       / dns_query("sll2.example.com")], LINKTYPE_SLL2, {("dns.query", "sll2.example.com")}
    yield "raw-v4", [dns_query("raw4.example.com")], LINKTYPE_RAW, {("dns.query", "raw4.example.com")}
    yield "raw-v6-229", [dns_query("raw6.example.com", v6=True)], LINKTYPE_IPV6, {("dns.query", "raw6.example.com")}
    yield "ipv4-228", [dns_query("ipv4.example.com")], LINKTYPE_IPV4, {("dns.query", "ipv4.example.com")}
    yield "null-v6", [Loopback(type=30) / dns_query("null6.example.com", v6=True),
                      Loopback(type=24) / dns_query("null6b.example.com", v6=True),
                      Loopback(type=2) / dns_query("null4.example.com")], LINKTYPE_NULL, {
        ("dns.query", "null6.example.com"), ("dns.query", "null6b.example.com"), ("dns.query", "null4.example.com")}
    ext = IPv6(src=PHONE6, dst=SERVER6) / IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt() / UDP(sport=40001, dport=53) \
        / DNS(rd=1, qd=DNSQR(qname="exthdr.example.com"))
    yield "v6-ext-headers", [eth(ext)], LINKTYPE_ETHERNET, {("dns.query", "exthdr.example.com")}

    # A DNS response big enough to fragment, fragments sent in reverse order.
    ans = [DNSRR(rrname="frag.example.com", type="CNAME", rdata="c2.frag.example.net")]
    ans += [DNSRR(rrname="c2.frag.example.net", type="A", rdata=f"198.18.1.{i + 1}", ttl=60) for i in range(60)]
    resp = IP(src=SERVER4, dst=PHONE4, id=77) / UDP(sport=53, dport=40002) / DNS(
        id=1, qr=1, qd=DNSQR(qname="frag.example.com"), an=ans)
    frags = [eth(f) for f in fragment(resp, fragsize=400)][::-1]
    want = {("dns.response-question", "frag.example.com"), ("dns.answer", "frag.example.com=c2.frag.example.net")}
    want |= {("dns.answer", f"c2.frag.example.net=198.18.1.{i + 1}") for i in range(60)}
    yield "ipv4-fragments-reversed", frags, LINKTYPE_ETHERNET, want

    resp6 = IPv6(src=SERVER6, dst=PHONE6) / IPv6ExtHdrFragment(id=99) / UDP(sport=53, dport=40003) / DNS(
        id=2, qr=1, qd=DNSQR(qname="frag6.example.com", qtype="AAAA"),
        an=[DNSRR(rrname="frag6.example.com", type="AAAA", rdata="2001:db8::1", ttl=30)],
        ar=[DNSRR(rrname="pad.example.com", type="TXT", rdata=["x" * 250] * 6)])
    big = resp6
    yield "ipv6-fragments", [eth(f) for f in fragment6(big, 500)], LINKTYPE_ETHERNET, {
        ("dns.response-question", "frag6.example.com"), ("dns.answer", "frag6.example.com=2001:db8::1")}

    six4 = IP(src=PHONE4, dst="192.0.2.1", proto=41) / IPv6(src=PHONE6, dst=SERVER6) / UDP(sport=40004, dport=53) \
        / DNS(rd=1, qd=DNSQR(qname="sixinfour.example.com"))
    teredo = IP(src=PHONE4, dst="192.0.2.2") / UDP(sport=40005, dport=3544) / IPv6(src="2001:0:4136:e378::1",
                                                                                     dst=SERVER6) \
        / UDP(sport=40006, dport=53) / DNS(rd=1, qd=DNSQR(qname="teredo.example.com"))
    yield "6in4-and-teredo", [eth(six4), eth(teredo)], LINKTYPE_ETHERNET, {
        ("dns.query", "sixinfour.example.com"), ("dns.query", "teredo.example.com")}

    # DNS over TCP: three messages in one segment, then one message over three segments.
    msgs = [bytes(DNS(id=i, rd=1, qd=DNSQR(qname=f"tcp{i}.example.com"))) for i in range(3)]
    framed = b"".join(len(m).to_bytes(2, "big") + m for m in msgs)
    last = bytes(DNS(id=9, rd=1, qd=DNSQR(qname="tcpsplit.example.com")))
    last = len(last).to_bytes(2, "big") + last
    pkts = tcp_stream([framed, last[:1], last[1:10], last[10:]], sport=50001, dport=53)
    yield "dns-over-tcp", pkts, LINKTYPE_ETHERNET, {("dns.query", f"tcp{i}.example.com") for i in range(3)} | {
        ("dns.query", "tcpsplit.example.com")}

    hello = client_hello("split.example.org")
    yield "tls-split-out-of-order", tcp_stream(split(hello, 4), sport=50002, order=[0, 2, 1, 3]), \
        LINKTYPE_ETHERNET, {("tls.sni", "split.example.org")}
    # One ClientHello over two TLS records (the handshake message split at the record layer).
    body = hello[5:]
    rec = bytes([22, 3, 1]) + len(body[:40]).to_bytes(2, "big") + body[:40] \
        + bytes([22, 3, 1]) + len(body[40:]).to_bytes(2, "big") + body[40:]
    yield "tls-two-records", tcp_stream([rec], sport=50003), LINKTYPE_ETHERNET, {("tls.sni", "split.example.org")}
    yield "tls-over-ipv6", tcp_stream([client_hello("v6.example.org")], sport=50004, v6=True), \
        LINKTYPE_ETHERNET, {("tls.sni", "v6.example.org")}
    yield "tls-unusual-port", tcp_stream([client_hello("port.example.org")], sport=50005, dport=8443), \
        LINKTYPE_ETHERNET, {("tls.sni", "port.example.org")}

    # MySQL's TLS: the client's 32-byte SSL request (sequence 1, CLIENT_SSL), cut over two segments, then its
    # ClientHello on the same stream; the same request without CLIENT_SSL is a plain login: nothing follows.
    def ssl_request(caps: int) -> bytes:
        return (32).to_bytes(3, "little") + b"\x01" + caps.to_bytes(4, "little") + (1 << 24).to_bytes(4, "little") \
            + b"\x21" + bytes(23)
    req = ssl_request(0x000FAE8D)
    greeting = b"\x0a5.5.40-MariaDB\x00" + (7).to_bytes(4, "little") + b"saltsalt\x00" + (0xAE8D).to_bytes(2, "little") \
        + b"\x21\x02\x00\x0f\x00\x15" + bytes(10) + b"moresaltsalt\x00mysql_native_password\x00"
    # the server speaks first (tshark's MySQL dissector needs its greeting to follow the switch to TLS)
    pkts = tcp_conversation([(False, len(greeting).to_bytes(3, "little") + b"\x00" + greeting), (True, req[:5]),
                             (True, req[5:]), (True, client_hello("db.example.org"))], sport=50009, dport=3306)
    yield "mysql-tls", pkts, LINKTYPE_ETHERNET, {("tls.sni", "db.example.org")}
    # Mail STARTTLS: the text conversation, then TLS on the same stream (an SMTP line cut over two segments).
    smtp = [(False, b"220 mx.example.net ESMTP\r\n"), (True, b"EHLO phone\r\n"),
            (False, b"250-mx.example.net\r\n250-SIZE 10240000\r\n250 STARTTLS\r\n"), (True, b"STAR"),
            (True, b"TTLS\r\n"), (False, b"220 2.0.0 Ready to start TLS\r\n"), (True, client_hello("smtp.example.net"))]
    yield "smtp-starttls", tcp_conversation(smtp, sport=50011, dport=587), LINKTYPE_ETHERNET, {
        ("tls.sni", "smtp.example.net")}
    imap = [(False, b"* OK [CAPABILITY IMAP4rev1 STARTTLS] ready\r\n"), (True, b"a1 STARTTLS\r\n"),
            (False, b"a1 OK Begin TLS negotiation now\r\n"), (True, client_hello("imap.example.net"))]
    yield "imap-starttls", tcp_conversation(imap, sport=50012, dport=143), LINKTYPE_ETHERNET, {
        ("tls.sni", "imap.example.net")}
    # Mail in the clear: text, then a binary byte that is not TLS; nothing to report.
    # A mail sent in the clear is read no further than 16 KiB: a TLS-looking record after it is not parsed.
    body = b"".join(b"line %05d of a long mail body in the clear\r\n" % i for i in range(400))
    yield "smtp-long-clear", tcp_conversation([(False, b"220 mx ESMTP\r\n"), (True, b"DATA\r\n" + body[:1400]),
                                               *[(True, body[i:i + 1400]) for i in range(1400, len(body), 1400)],
                                               (True, client_hello("late.example.net"))], sport=50014, dport=25), \
        LINKTYPE_ETHERNET, set()
    yield "smtp-plain", tcp_conversation([(False, b"220 mx ESMTP\r\n"), (True, b"HELO x\r\n\x00\x16\x03")],
                                         sport=50013, dport=25), LINKTYPE_ETHERNET, set()
    yield "mysql-plain-login", tcp_stream([ssl_request(0x000FAE8D & ~0x0800)], sport=50010, dport=3306), \
        LINKTYPE_ETHERNET, set()

    http = (b"GET /check-in?id=1 HTTP/1.1\r\nHost: api.example.net:8080\r\nUser-Agent: okhttp/4.9\r\n\r\n"
            b"POST /upload HTTP/1.1\r\nHost: [2001:db8::80]:8080\r\nContent-Length: 3\r\n\r\nabc")
    yield "http-pipelined", tcp_stream(split(http, 3), sport=50006, dport=80), LINKTYPE_ETHERNET, {
        ("http.host", "api.example.net"), ("http.host", "2001:db8::80")}

    mdns = IP(src=PHONE4, dst="224.0.0.251") / UDP(sport=5353, dport=5353) / DNS(qd=DNSQR(qname="phone.local"))
    llmnr = IP(src=PHONE4, dst="224.0.0.252") / UDP(sport=40007, dport=5355) / DNS(qd=DNSQR(qname="printer"))
    yield "mdns-llmnr", [eth(mdns), eth(llmnr)], LINKTYPE_ETHERNET, {
        ("mdns.query", "phone.local"), ("llmnr.query", "printer")}

    dual = IPv6(src=SERVER6, dst=PHONE6) / UDP(sport=53, dport=40008) / DNS(
        id=3, qr=1, qd=DNSQR(qname="www.example.com"),
        an=[DNSRR(rrname="www.example.com", type="CNAME", rdata="edge.example.net"),
            DNSRR(rrname="edge.example.net", type="A", rdata="198.18.2.2"),
            DNSRR(rrname="edge.example.net", type="AAAA", rdata="2001:db8::2:2")])
    yield "dns-answers-v6", [eth(dual)], LINKTYPE_ETHERNET, {
        ("dns.response-question", "www.example.com"), ("dns.answer", "www.example.com=edge.example.net"),
        ("dns.answer", "edge.example.net=198.18.2.2"), ("dns.answer", "edge.example.net=2001:db8::2:2")}


def missing_segment():
    """A ClientHello whose SNI is in the first segment and whose second segment never arrives."""
    from scapy.layers.tls.extensions import TLS_Ext_Padding

    exts = [TLS_Ext_ServerName(servernames=[ServerName(servername=b"lost.example.org")]),
            TLS_Ext_Padding(padding=b"\0" * 600)]
    hello = bytes(TLS(type=22, version=0x0301, msg=[TLSClientHello(version=0x0303, ciphers=[0x1301], ext=exts)]))
    return tcp_stream(split(hello, 3), sport=50010, skip=(1,)), hello
