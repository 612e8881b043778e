"""The `pocketcheck extract` command as a user runs it: records, errors and damaged files."""
import json
import subprocess
import sys

from paths import PCAPS, ROOT

CLI = [sys.executable, "-m", "appliance"]


def run(*args):
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120, cwd=ROOT, check=False)


def test_jsonl_records_carry_the_flow():
    """Every jsonl record has the documented fields, with the client first and a 1-based frame."""
    r = run("extract", str(PCAPS / "dnscap__dns6.pcap"))
    assert r.returncode == 0, r.stderr
    recs = [json.loads(line) for line in r.stdout.splitlines()]
    q = [x for x in recs if x["kind"] == "dns.query"]
    assert q and q[0]["name"] == "google.com" and q[0]["frame"] == 1 and q[0]["proto"] == "udp"
    assert q[0]["dport"] == 53 and ":" in q[0]["src"] and q[0]["mac"].count(":") == 5
    a = [x for x in recs if x["kind"] == "dns.answer"]
    assert a and all({"rrtype", "data"} <= x.keys() for x in a)


def test_tsv_has_header_and_rows():
    """The TSV output starts with its header and keeps one event per line."""
    r = run("extract", "--format", "tsv", str(PCAPS / "arkime__tls-split-client-hello.pcap"))
    lines = r.stdout.splitlines()
    assert lines[0].split("\t")[:5] == ["file", "frame", "ts", "kind", "name"]
    assert any(line.split("\t")[3] == "tls.sni" and line.split("\t")[4] == "clients2.google.com" for line in lines)


def test_not_a_capture_is_one_line_and_exit_2(tmp_path):
    """A file that is not a capture gives one line naming it, exit 2, and the other files are still read."""
    bad = tmp_path / "notes.txt"
    bad.write_text("hello, this is not a capture\n")
    r = run("extract", str(bad), str(PCAPS / "dnscap__dns6.pcap"))
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert str(bad) in r.stderr
    assert '"google.com"' in r.stdout


def test_corrupt_captures_refused_cleanly():
    """Captures libpcap refuses (bad version, over-long option) give a one-line error each."""
    for name in ("libpcap__pcap-invalid-version-1.pcap", "libpcap__shb-option-too-long.pcapng"):
        r = run("extract", str(PCAPS / name))
        assert r.returncode == 2 and "Traceback" not in r.stderr and name in r.stderr, r.stderr


def test_truncated_capture_warns_and_keeps_events():
    """A capture cut mid-record gives the events before the cut, one warning line, and exit 0."""
    r = run("extract", str(PCAPS / "dpkt__truncated_dns_2.pcap"))
    assert r.returncode == 0, r.stderr
    assert "warning" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert any(json.loads(x)["kind"] == "dns.response-question" for x in r.stdout.splitlines())  # frame 1: a response


def test_missing_file(tmp_path):
    """A file that does not exist is named in a one-line error, exit 2."""
    r = run("extract", str(tmp_path / "nope.pcap"))
    assert r.returncode == 2 and "nope.pcap" in r.stderr and "Traceback" not in r.stderr


def test_certificates_have_fingerprints_and_names():
    """tls.cert records carry SHA-1/SHA-256 fingerprints and subjectAltName names parsed from the DER."""
    r = run("extract", str(PCAPS / "arkime__https-generalizedtime.pcap"))
    certs = [json.loads(x) for x in r.stdout.splitlines() if '"tls.cert"' in x]
    assert certs and all(len(c["sha1"]) == 40 and len(c["sha256"]) == 64 for c in certs)
    assert any("yandex" in " ".join(c["san"]) for c in certs)


def test_core_formatting_equals_python_formatting():
    """The lines the C core formats are byte for byte those Python formats, on every shared capture and both formats."""
    import io

    from appliance import extract
    from appliance.errors import PocketcheckError

    compared = 0
    for path in sorted(PCAPS.glob("*.pcap*")):
        for fmt in ("jsonl", "tsv"):
            fast, slow = io.StringIO(), io.StringIO()
            try:
                extract.extract_file(str(path), fast, fmt, True, fast=True)
            except PocketcheckError:
                continue
            extract.extract_file(str(path), slow, fmt, True, fast=False)
            assert fast.getvalue() == slow.getvalue(), f"{path.name} {fmt}"
            compared += fast.getvalue().count("\n")
    assert compared > 10000


def test_response_without_its_query_names_the_phone(tmp_path):
    """A DNS response whose query was not captured is a dns.response-question from the phone (the response's
    destination) with its answer, never a dns.query from the server; tshark agrees it is a response's question."""
    from oracle import tshark_names

    from appliance.sim import packets as P

    reply = P.dns_reply(P.dns_query("only.answered.example", qid=9), "192.0.2.44")
    frame = P.eth(P.ipv4(P.SERVER_IP, P.PHONE_IP, 17, P.udp(53, 40001, reply)), src=P.BOX_MAC, dst=P.PHONE_MAC)
    path = tmp_path / "reply-only.pcap"
    P.write_pcap(path, [frame])
    r = run("extract", str(path))
    assert r.returncode == 0, r.stderr
    recs = [json.loads(line) for line in r.stdout.splitlines()]
    named = [(x["kind"], x["name"], x["src"], x["sport"], x["dst"], x["mac"]) for x in recs if x["kind"] != "flow"]
    phone = (P.PHONE_IP, 40001, P.SERVER_IP, P.PHONE_MAC)
    assert named == [("dns.response-question", "only.answered.example", *phone),
                     ("dns.answer", "only.answered.example", *phone)]
    assert tshark_names(path) == {("dns.response-question", "only.answered.example"),
                                  ("dns.answer", "only.answered.example=192.0.2.44")}


def test_pcapng_with_differing_interfaces_extracts_without_warning():
    """A pcapng whose two interfaces differ in snapshot length is read whole: its DNS names, no warning, exit 0."""
    r = run("extract", str(PCAPS / "pcapplusplus__dns_over_tcp.pcapng"))
    assert r.returncode == 0 and r.stderr.strip() == "", r.stderr
    recs = [json.loads(x) for x in r.stdout.splitlines()]
    assert {x["kind"] for x in recs} >= {"dns.query", "dns.answer"}
    assert all(x["frame"] <= 4 for x in recs)  # capinfos: 4 packets
