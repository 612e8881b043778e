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
