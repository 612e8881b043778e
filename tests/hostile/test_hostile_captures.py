"""Malformed captures: every one gives the events before the damage and never a crash.

Each case in ``hostile.captures`` is read through ``appliance.native.Reader``
(file and feed readers) and through ``pocketcheck extract`` in a
subprocess; the expected names come from how the case was built.
"""
import json
import os
import random
import subprocess
import sys

import pytest
import traffic
from hostile import captures, pcapng
from oracle import tshark_frames

from appliance.errors import CaptureFormatError, CaptureOpenError
from appliance.native import Reader
from appliance.sim.packets import (
    PCAP_HEADER,
    client_hello,
    dns_message,
    dns_query,
    down_tcp,
    pcap_bytes,
    record,
    tls_record,
    up_tcp,
    up_udp,
)

CLI = [sys.executable, "-m", "appliance"]


def _names(events):
    return [e.name for e in events if e.kind != "flow"]


def _read(path):
    with Reader.open_file(str(path)) as r:
        events = list(r)
        return events, r.status, r.error, r.stats()


def _extract(*args):
    return subprocess.run(CLI + ["extract", *map(str, args)], capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("case", sorted(captures.CASES))
def test_reader_gives_events_before_the_damage(tmp_path, case):
    """The file reader reports exactly the names of the intact packets and ends eof or truncated, as built."""
    data, names, status = captures.CASES[case]()
    path = tmp_path / f"{case}.pcap"
    path.write_bytes(data)
    events, st, err, _ = _read(path)
    assert _names(events) == names
    assert st == status
    assert bool(err) == (status == "truncated"), err
    if status == "truncated":
        assert "\n" not in err and "damaged" in err


@pytest.mark.parametrize("case", sorted(captures.CASES))
def test_extract_cli_survives_and_warns_once(tmp_path, case):
    """`pocketcheck extract` exits 0, writes the intact names, and prints one warning line for damaged files."""
    data, names, status = captures.CASES[case]()
    path = tmp_path / f"{case}.pcap"
    path.write_bytes(data)
    r = _extract(path)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    recs = [json.loads(line) for line in r.stdout.splitlines()]
    assert [x["name"] for x in recs] == names
    warnings = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(warnings) == (1 if status == "truncated" else 0), r.stderr
    if warnings:
        assert warnings[0].startswith("pocketcheck: warning:") and str(path) in warnings[0]


def test_conflicting_tcp_segments_give_one_sni_each(tmp_path):
    """Retransmissions and overlaps with different bytes give one SNI per connection, built from bytes on the wire."""
    data, candidates, _ = captures.tcp_conflicting_segments()
    path = tmp_path / "overlap.pcap"
    path.write_bytes(data)
    events, st, _, stats = _read(path)
    snis = [e for e in events if e.kind == "tls.sni"]
    assert st == "eof"
    assert len(snis) == 4 and len({e.flow_id for e in snis}) == 4
    assert all(e.name in candidates for e in snis), [e.name for e in snis]
    # The first connection's retransmission repeats bytes already delivered: the original stays.
    assert snis[0].name == "evil.example.net"
    assert stats["flows"] == 4


def test_feed_reader_matches_file_reader_on_packet_damage(tmp_path):
    """Packet-level damage fed frame by frame through a feed reader gives the same names as the file reader."""
    for case in ("dns-hostile-names", "dns-answer-bombs", "ip-fragments", "ip-lies", "quic-bad-lengths"):
        data, names, _ = captures.CASES[case]()
        frames = _split_pcap(data)
        with Reader.open_feed() as r:
            got = []
            for ts, fr in frames:
                r.feed(1, ts, fr)
                got += r.next_batch()
            r.finish()
            for batch in r.batches():
                got += batch
            assert r.status == "eof"
        assert _names(got) == names, case


def _split_pcap(data: bytes):
    """(ts, frame) of every whole record of a classic pcap built by appliance.sim.packets."""
    import struct
    out, off = [], len(PCAP_HEADER)
    while off + 16 <= len(data):
        sec, usec, cl, _ = struct.unpack_from("<IIII", data, off)
        if off + 16 + cl > len(data):
            break
        out.append((sec + usec / 1e6, data[off + 16:off + 16 + cl]))
        off += 16 + cl
    return out


def test_every_cut_of_a_capture_keeps_every_whole_record(tmp_path):
    """A capture cut at any byte (a power cut mid-write) yields exactly the queries of the records before the cut."""
    names = [f"n{i}.example.com" for i in range(12)]
    frames = [up_udp(40000 + i, 53, dns_query(n, i + 1)) for i, n in enumerate(names)]
    data = pcap_bytes(frames)
    ends, off = [], len(PCAP_HEADER)
    for fr in frames:
        off += 16 + len(fr)
        ends.append(off)
    path = tmp_path / "cut.pcap"
    for cut in list(range(len(PCAP_HEADER), len(data) + 1, 7)) + ends:
        path.write_bytes(data[:cut])
        events, st, err, _ = _read(path)
        whole = sum(1 for e in ends if e <= cut)
        assert _names(events) == names[:whole], cut
        assert st == ("eof" if cut in ends or cut == len(PCAP_HEADER) else "truncated"), (cut, err)


def test_a_cut_tls_and_quic_session_still_names_what_was_whole(tmp_path):
    """A phone session (DNS, TLS, QUIC) cut in its last record still reports every name seen before the cut."""
    phone = traffic.Phone("02:00:00:00:00:07", "10.23.0.7")
    pk = (traffic.dns_lookup(phone, "one.example.com", 1.8e9, answers=["198.51.100.1"])
          + traffic.tls_connect(phone, "198.51.100.1", "one.example.com", 1.8e9 + 1)
          + traffic.quic_connect(phone, "198.51.100.2", "two.example.com", 1.8e9 + 2)
          + traffic.dns_lookup(phone, "last.example.com", 1.8e9 + 3))
    whole = tmp_path / "whole.pcap"
    traffic.write_pcap(whole, pk)
    full_names = set(_names(_read(whole)[0]))
    assert {"one.example.com", "two.example.com", "last.example.com"} <= full_names
    data = whole.read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[:-10])  # the last packet (the DNS answer for last.example.com) loses its end
    events, st, _, _ = _read(cut)
    assert st == "truncated"
    assert {"one.example.com", "two.example.com", "last.example.com"} <= set(_names(events))


@pytest.mark.parametrize("content", [b"", b"\xd4\xc3\xb2", b"hello, this is not a capture\n", os.urandom(4096),
                                     PCAP_HEADER[:4] + b"\xff" * 20])
def test_not_a_capture_is_refused_in_one_line(tmp_path, content):
    """Empty, tiny, text and random files are refused with one line and exit 2, never a traceback."""
    path = tmp_path / "bad.pcap"
    path.write_bytes(content)
    with pytest.raises((CaptureFormatError, CaptureOpenError)):
        Reader.open_file(str(path))
    r = _extract(path)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("pocketcheck: ") and "Traceback" not in r.stderr


def test_directory_fifo_and_missing_path_are_refused(tmp_path):
    """A directory, a missing path and a FIFO with no writer are refused with one line each (the FIFO never blocks)."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for target in (tmp_path, tmp_path / "missing.pcap"):
        r = _extract(target)
        assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
    # A FIFO is opened by libpcap like a file: with a writer that closes at once, it is an empty input.
    writer = subprocess.Popen(["sh", "-c", f"exec 3>'{fifo}'; exec 3>&-"])
    try:
        r = _extract(fifo)
    finally:
        writer.wait(10)
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_random_frames_fed_with_every_link_type_never_crash():
    """Random bytes fed as frames of every link type the core knows (and unknown ones) end cleanly."""
    rng = random.Random(6)
    base = [up_udp(1, 53, dns_query("x.example.com"))]
    with Reader.open_feed() as r:
        for i in range(20000):
            lt = rng.choice((0, 1, 101, 113, 276, 228, 229, 12, 239, 147, 9999))
            if rng.random() < 0.3:
                fr = bytearray(rng.choice(base))
                for _ in range(rng.randint(1, 8)):
                    fr[rng.randrange(len(fr))] = rng.randrange(256)
                fr = bytes(fr[:rng.randint(0, len(fr))])
            else:
                fr = rng.randbytes(rng.randint(0, 200))
            r.feed(lt, 1.8e9 + i * 0.001, fr)
            if i % 500 == 0:
                r.next_batch()
        r.finish()
        for _ in r.batches():
            pass
        assert r.status == "eof"
        assert r.stats()["packets"] == 20000


def test_damaged_nflog_frames_never_crash():
    """Every cut and many byte flips of real NFLOG frames (link type 239) end cleanly; intact ones give their
    names, and a damaged TLV counts as malformed rather than being read past."""
    from paths import PCAPS
    from scapy.utils import RawPcapReader

    frames = [bytes(d) for d, _ in RawPcapReader(str(PCAPS / "tcpdump__nflog.pcap"))]
    rng = random.Random(239)
    with Reader.open_feed() as r:
        for fr in frames:
            r.feed(239, 1.8e9, fr)
        r.finish()
        intact = [e for b in r.batches() for e in b if e.kind == "dns.response-question"]
        assert len(intact) == 4 and r.stats()["malformed"] == 0
    with Reader.open_feed() as r:
        n = 0
        for fr in frames:
            for cut in range(len(fr)):
                r.feed(239, 1.8e9 + n * 1e-3, fr[:cut])
                n += 1
            for _ in range(300):
                bad = bytearray(fr)
                bad[rng.randrange(4, 80)] = rng.randrange(256)   # the TLV headers before the payload
                r.feed(239, 1.8e9 + n * 1e-3, bytes(bad))
                n += 1
            if n % 200 == 0:
                r.next_batch()
        r.finish()
        for _ in r.batches():
            pass
        assert r.status == "eof" and r.stats()["packets"] == n and r.stats()["malformed"] > 0


def test_record_with_zero_length_frames_between_good_ones(tmp_path):
    """Zero-length records are skipped; the queries around them are reported."""
    a, b = up_udp(1, 53, dns_query("a.example.com")), up_udp(2, 53, dns_query("b.example.com"))
    data = PCAP_HEADER + record(1.8e9, a) + record(1.8e9 + 1, b"") * 3 + record(1.8e9 + 2, b)
    path = tmp_path / "zero.pcap"
    path.write_bytes(data)
    events, st, _, stats = _read(path)
    assert _names(events) == ["a.example.com", "b.example.com"] and st == "eof"
    assert stats["packets"] == 5


def test_hostile_strings_keep_both_output_formats_intact(tmp_path):
    """Quotes, backslashes, control bytes and invalid UTF-8 in names: JSON lines parse, TSV rows keep 12 columns,
    and the C formatter writes exactly what the Python one does."""
    import io

    from appliance import extract

    data, n_dns, _ = captures.hostile_strings()
    path = tmp_path / "strings.pcap"
    path.write_bytes(data)
    for fmt in ("jsonl", "tsv"):
        fast, slow = io.StringIO(), io.StringIO()
        assert extract.extract_file(str(path), fast, fmt, True, fast=True) is None
        extract.extract_file(str(path), slow, fmt, True, fast=False)
        assert fast.getvalue() == slow.getvalue(), fmt
        lines = fast.getvalue().splitlines()
        assert not any((ch < " " and ch != "\t") or ch == "\x7f" for line in lines for ch in line)
        if fmt == "jsonl":
            recs = [json.loads(line) for line in lines]
            named = [r for r in recs if r["kind"] != "flow"]
            assert [r["kind"] for r in named] == ["dns.query"] * n_dns + ["http.host"]
            assert all(r["name"].endswith(".example.com") for r in named[:n_dns])
        else:
            assert all(line.count("\t") == 11 for line in lines), [ln for ln in lines if ln.count("\t") != 11]


def test_markup_in_names_never_reaches_the_report_as_markup(tmp_path):
    """An SNI and DNS names carrying HTML are escaped in report.html (the red verdict still comes from the name)."""
    labels = [b"<script>alert(1)</script>", b"<img\x20src=x\x20onerror=alert(2)>"]
    frames = [up_udp(40000 + i, 53, dns_message(i + 1, bytes([len(lab)]) + lab + b"\x07example\x03com\x00"))
              for i, lab in enumerate(labels)]
    evil = "<b>x</b>.protocol-a946.thetruthspy.com"
    rec = tls_record(client_hello(evil))
    frames += [up_tcp(50001, 443, 1000, 0, "S"), down_tcp(443, 50001, 5000, 1001, "SA"),
               up_tcp(50001, 443, 1001, 5001, "A"), up_tcp(50001, 443, 1001, 5001, "PA", rec)]
    path = tmp_path / "markup.pcap"
    path.write_bytes(pcap_bytes(frames))
    out = tmp_path / "rep"
    r = subprocess.run(CLI + ["analyze", str(path), "--out", str(out), "--key-dir", str(tmp_path / "keys"), "--json"],
                       capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["verdict"] == "red"
    html = (out / "report.html").read_text()
    assert "<script>alert" not in html and "<img src=x" not in html and "<b>x</b>" not in html
    assert "&lt;b&gt;x&lt;/b&gt;.protocol-a946.thetruthspy.com" in html


@pytest.mark.parametrize("case", sorted(pcapng.CASES))
def test_pcapng_with_differing_interfaces_reads_every_packet(tmp_path, case):
    """Every packet of a pcapng whose interfaces differ is read, in file order, with its interface's timestamps."""
    build, status = pcapng.CASES[case]
    data, expected = build()
    path = tmp_path / f"{case}.pcapng"
    path.write_bytes(data)
    events, st, err, stats = _read(path)
    queries = [e for e in events if e.kind == "dns.query"]
    assert [e.name for e in queries] == [name for name, _ in expected]
    assert [e.frame for e in queries] == list(range(1, len(expected) + 1))
    # Event.ts is a float (about 240 ns apart at 1.8e9 s): close enough to tell ns, us and 2^-20 s resolutions apart
    assert all(abs(e.ts * 1e9 - ts) < 300 for e, (_, ts) in zip(queries, expected)), [e.ts for e in queries]
    assert stats["packets"] == len(expected)
    assert (st, bool(err)) == (status, status == "truncated"), err
    if status == "truncated":
        assert "\n" not in err and f"damaged after frame {len(expected)}" in err


@pytest.mark.parametrize("case", sorted(c for c, (_, status) in pcapng.CASES.items() if status == "eof"))
def test_pcapng_with_differing_interfaces_matches_tshark(tmp_path, case):
    """tshark reads the built file as the core does: the same frames, numbers, names and timestamps."""
    data, _ = pcapng.CASES[case][0]()
    path = tmp_path / f"{case}.pcapng"
    path.write_bytes(data)
    events, st, _, stats = _read(path)
    theirs = tshark_frames(path)
    assert st == "eof" and stats["packets"] == len(theirs)
    ours = [(e.frame, e.name) for e in events if e.kind == "dns.query"]
    assert ours == [(n, name) for n, _, name in theirs]
    by_frame = {n: ts for n, ts, _ in theirs}
    assert all(abs(e.ts - by_frame[e.frame]) < 3e-7 for e in events if e.kind == "dns.query")


def test_pcapng_interface_limit_named_in_the_warning(tmp_path):
    """A section with more interfaces than the core opens gives the events before it and a warning naming the limit."""
    data, expected = pcapng.too_many_interfaces()
    path = tmp_path / "many.pcapng"
    path.write_bytes(data)
    r = _extract(path)
    assert r.returncode == 0, r.stderr
    assert [json.loads(x)["name"] for x in r.stdout.splitlines()] == [name for name, _ in expected]
    assert len(r.stderr.strip().splitlines()) == 1 and "more than 64 interfaces" in r.stderr
