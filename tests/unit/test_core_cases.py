"""Cases the public captures lack, built with scapy: the core must see what was sent, as tshark does."""
import build_pcaps
import pytest
from oracle import core_names, tshark_names
from scapy.utils import PcapWriter

CASES = list(build_pcaps.cases())

# tshark 4.0 differences, each with its reason.
TSHARK_BLIND = {
    # tshark does not decode IPv6 carried in Teredo unless the Teredo heuristic matches.
}


def _write(path, packets, linktype):
    with PcapWriter(str(path), linktype=linktype, sync=True) as w:
        for i, p in enumerate(packets):
            p.time = 1_700_000_000 + i * 0.01
            w.write(p)


@pytest.mark.parametrize("cid,packets,linktype,expected", CASES, ids=[c[0] for c in CASES])
def test_core_sees_what_was_sent(tmp_path, cid, packets, linktype, expected):
    """The core's names for a built capture equal exactly the names the builder put on the wire."""
    path = tmp_path / f"{cid}.pcap"
    _write(path, packets, linktype)
    assert core_names(path) - {i for i in core_names(path) if i[0] == "ja3"} == expected


@pytest.mark.parametrize("cid,packets,linktype,expected", CASES, ids=[c[0] for c in CASES])
def test_tshark_agrees_with_builder(tmp_path, cid, packets, linktype, expected):
    """tshark reads the built capture the same way (so the builders themselves are right)."""
    path = tmp_path / f"{cid}.pcap"
    _write(path, packets, linktype)
    theirs = {i for i in tshark_names(path) if i[0] != "ja3"}
    assert theirs == expected or cid in TSHARK_BLIND, f"tshark saw {sorted(theirs)}"


def test_missing_segment_reports_what_is_there(tmp_path):
    """A ClientHello that lost its middle segment still gives its SNI, flagged partial, and no crash."""
    from appliance.native import Reader

    packets, _ = build_pcaps.missing_segment()
    path = tmp_path / "lost.pcap"
    _write(path, packets, build_pcaps.LINKTYPE_ETHERNET)
    sni = [e for e in Reader.open_file(str(path)) if e.kind == "tls.sni"]
    assert [(e.name, e.partial) for e in sni] == [("lost.example.org", True)]



def _quic_capture(path, sni, version, damage=None):
    """Writes one client Initial datagram (packets.py) of ``version``; ``damage`` flips that byte offset."""
    from appliance.sim import packets

    dg = bytearray(packets.quic_initial(sni, dcid=bytes(range(8)), scid=b"\x11" * 8, version=version))
    if damage is not None:
        dg[damage] ^= 0x01
    packets.write_pcap(path, [packets.eth(packets.ipv4(packets.PHONE_IP, packets.SERVER_IP, 17,
                                                       packets.udp(50000, 443, bytes(dg))))])


@pytest.mark.parametrize("draft", [23, 24, 25, 26])
def test_quic_draft_initial_as_tshark(tmp_path, draft):
    """A client Initial of QUIC drafts 23-26 (their own salt) gives its SNI, exactly as tshark decrypts it."""
    path = tmp_path / f"d{draft}.pcap"
    name = f"draft{draft}.quic.example"
    _quic_capture(path, name, 0xFF000000 | draft)
    assert core_names(path) == tshark_names(path) == {("quic.sni", name)}


def test_quic_greased_version_tried_as_v1(tmp_path):
    """A greased-version Initial keyed with v1's salt gives its SNI; tshark sees the same Initial and version."""
    import subprocess

    path = tmp_path / "grease.pcap"
    _quic_capture(path, "grease.quic.example", 0x1A2A3A4A)
    assert core_names(path) == {("quic.sni", "grease.quic.example")}
    out = subprocess.run(["tshark", "-n", "-r", str(path), "-T", "fields", "-e", "quic.version",
                          "-e", "quic.long.packet_type"], capture_output=True, text=True, timeout=60,
                         check=False).stdout
    # tshark 4.0 recognises the Initial but does not apply v1's salt to a greased version (checktag fails).
    assert out.split() == ["0x1a2a3a4a", "0"]


@pytest.mark.parametrize("damage", [-1, 1, 40])
def test_quic_unknown_version_never_garbage(tmp_path, damage):
    """An unknown-version Initial that v1's keys do not open (tag, version or ciphertext changed) gives
    nothing and counts nothing malformed."""
    from appliance.native import Reader

    path = tmp_path / "other.pcap"
    _quic_capture(path, "hidden.quic.example", 0x1A2A3A4A, damage=damage)
    with Reader.open_file(str(path)) as r:
        assert [e.kind for e in r if e.kind != "flow"] == []
        assert r.stats()["malformed"] == 0


def test_response_question_matched_as_the_phones_query(tmp_path):
    """A C2 name known only from a DNS response (query not captured) is a high ioc.dns-query alert on the phone
    (the response's destination), and the resolver that sent it is no device."""
    from appliance import indicators
    from appliance.analysis import Analyzer
    from appliance.native import Reader
    from appliance.sim import packets as P

    iset = indicators.load_default()
    c2 = next(i.value for i in iset.indicators()
              if i.kind == "domain" and i.category == "stalkerware-c2" and i.severity == "high" and i.value.count(".") == 1)
    reply = P.dns_reply(P.dns_query(c2, qid=5), "192.0.2.45")
    path = tmp_path / "reply-only.pcap"
    P.write_pcap(path, [P.eth(P.ipv4(P.SERVER_IP, P.PHONE_IP, 17, P.udp(53, 40002, reply)),
                              src=P.BOX_MAC, dst=P.PHONE_MAC)])
    a = Analyzer(iset)
    with Reader.open_file(str(path)) as r:
        a.feed(list(r))
    result = a.result()
    hits = [(x.rule, x.level, x.device, x.device_ip, x.name) for x in result.alerts if x.rule == "ioc.dns-query"]
    assert hits == [("ioc.dns-query", "high", P.PHONE_MAC, P.PHONE_IP, c2)]
    assert [(d.mac, d.ip) for d in result.devices] == [(P.PHONE_MAC, P.PHONE_IP)]
