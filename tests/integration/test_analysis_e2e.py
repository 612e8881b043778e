"""End to end: scapy-built phone captures through the C core, the engine and the CLI.

The expected alerts are derived from the scenario's plan (what the builder
put on the wire) and from the shipped indicator set, not from running the
analysis.
"""
from __future__ import annotations

import datetime
import itertools
import json
import os
import re
import subprocess
import sys
from collections import Counter

import jsonschema
import pytest
import traffic
from paths import ROOT

from appliance import indicators, report
from appliance.analysis import Analyzer, analyze_files
from appliance.errors import PocketcheckError
from appliance.native import Reader

T0 = 1_764_340_000.0
CLI = [sys.executable, "-m", "appliance"]


@pytest.fixture(scope="module")
def iset():
    """The shipped indicator set."""
    return indicators.load_default()


@pytest.fixture(scope="module")
def c2(iset):
    """Four C2 domains and one C2 address from the shipped set, each matching only high indicators."""
    def only_high(hits):
        return hits and all(h.indicator.severity == "high" for h in hits)

    names = sorted(i.value for i in iset.indicators() if i.kind == "domain" and i.category == "stalkerware-c2")
    names = [n for n in names if only_high(iset.match_names([n])[0]) and not iset.is_allowlisted(n)]
    ips = sorted(i.value for i in iset.indicators() if i.kind == "ipv4" and i.category == "stalkerware-c2")
    ips = [i for i in ips if only_high(iset.match_ips([i])[0])]
    # Spread the picks over the list so different families are exercised.
    return [names[k * len(names) // 4] for k in range(4)], [ips[len(ips) // 2]]


@pytest.fixture(scope="module")
def scenes(tmp_path_factory, c2):
    """Capture files: the stalkerware phone alone, the clean phone alone, both on one hotspot."""
    d = tmp_path_factory.mktemp("captures")
    bad_pk, bad_plan, bad = traffic.stalkerware_phone(c2[0], c2[1], T0, duration=900.0)
    good_pk, good_plan, good = traffic.clean_phone(T0 + 3, duration=420.0)
    traffic.write_pcap(d / "stalker.pcap", bad_pk)
    traffic.write_pcap(d / "clean.pcap", good_pk)
    traffic.write_pcap(d / "both.pcap", bad_pk + good_pk)
    return {"dir": d, "bad": (bad_plan, bad), "good": (good_plan, good)}


def expected_alerts(plan, phone, iset) -> set:
    """What the analysis must report for a plan, by the rules as specified (hand-derived)."""
    def hit(name):
        return bool(iset.match_names([name])[0])

    out = Counter()
    rule_of = {"dns": "ioc.dns-query", "tls": "ioc.tls-sni", "quic": "ioc.quic-sni", "http": "ioc.http-host"}
    answered = {a for c in plan if c.kind == "dns" for a in c.answers}
    for c in plan:
        literal = c.name == c.ip     # "Host: <address>": not a name
        if c.kind in rule_of and c.name and not literal and hit(c.name):
            out[(rule_of[c.kind], "high", phone.mac, c.name, None)] += 1
        if c.kind in ("tcp", "tls", "quic", "http") and iset.match_ips([c.ip])[0]:
            out[("ioc.server-ip", "high", phone.mac, None if literal else c.name or None, c.ip)] += 1
        if c.kind in rule_of and c.name and not literal:
            labels = c.name.split(".")
            if labels[-1] in iset.rare_tlds:
                out[("heur.rare-tld", "low", phone.mac, c.name, None)] += 1
            if any(".".join(labels[i:]) in iset.dyndns_suffixes for i in range(1, len(labels) - 1)):
                out[("heur.dyndns", "moderate", phone.mac, c.name, None)] += 1
        if c.kind in ("tcp", "tls", "quic", "http") and c.ip not in answered:
            out[("heur.ip-without-dns", "low", phone.mac, None if literal else c.name or None, c.ip)] += 1
    # Regular check-ins: the TLS contacts with one name, at a fixed interval across the session.
    tls = Counter(c.name for c in plan if c.kind == "tls")
    for name, n in tls.items():
        times = [c.t for c in plan if c.kind == "tls" and c.name == name]
        gaps = {round(b - a) for a, b in itertools.pairwise(times)}
        if n >= 6 and len(gaps) == 1:
            ip = next(c.ip for c in plan if c.kind == "tls" and c.name == name)
            out[("heur.beaconing", "moderate", phone.mac, name, ip)] += n
    return {(*k, n) for k, n in out.items()}


def got_alerts(doc) -> set:
    return {(a["rule"], a["level"], a["device"], a["name"], a["ip"], a["count"]) for a in doc["alerts"]}


def _doc(paths, iset):
    result, files = analyze_files(paths, iset)
    return report.build(result, files, iset, box_id="box-e2e", generated_at="2026-11-28T12:00:00Z")


def test_stalkerware_phone_is_red(scenes, iset):
    """The stalkerware phone's capture gives exactly the alerts its traffic implies, and red."""
    plan, phone = scenes["bad"]
    doc = _doc([scenes["dir"] / "stalker.pcap"], iset)
    jsonschema.validate(doc, report.schema())
    assert got_alerts(doc) == expected_alerts(plan, phone, iset)
    assert doc["verdict"] == "red"
    assert [(d["mac"], d["ip"], d["hostname"], d["verdict"]) for d in doc["devices"]] == [
        (phone.mac, phone.ip, phone.hostname, "red")]
    # Every kind of sighting is there, over IPv4 and IPv6.
    assert {a["rule"] for a in doc["alerts"]} >= {"ioc.dns-query", "ioc.tls-sni", "ioc.quic-sni", "ioc.http-host",
                                                  "ioc.server-ip", "heur.beaconing"}
    v6_name = next(c.name for c in plan if c.kind == "tls" and ":" in c.ip)
    v6 = [a for a in doc["alerts"] if a["rule"] == "ioc.tls-sni" and a["name"] == v6_name]
    assert v6 and v6[0]["evidence"]["flows"]


def test_clean_phone_is_green(scenes, iset):
    """Several minutes of ordinary traffic to popular services give no alert at all."""
    plan, phone = scenes["good"]
    doc = _doc([scenes["dir"] / "clean.pcap"], iset)
    assert doc["alerts"] == [] and doc["verdict"] == "green"
    (dev,) = doc["devices"]
    assert (dev["mac"], dev["ip"], dev["hostname"], dev["verdict"]) == (phone.mac, phone.ip, phone.hostname, "green")
    assert set(dev["names"]) == {c.name for c in plan if c.name}
    assert doc["session"]["duration_s"] > 400


def test_two_phones_on_one_hotspot(scenes, iset):
    """Together, each phone keeps its own verdict and alerts; the session is red."""
    (bplan, bad), (_, good) = scenes["bad"], scenes["good"]
    doc = _doc([scenes["dir"] / "both.pcap"], iset)
    assert got_alerts(doc) == expected_alerts(bplan, bad, iset)
    got = {(d["mac"], d["ip"], d["hostname"], d["verdict"]) for d in doc["devices"]}
    assert got == {(bad.mac, bad.ip, bad.hostname, "red"), (good.mac, good.ip, good.hostname, "green")}
    assert doc["verdict"] == "red"


def test_live_feed_in_chunks_equals_file(scenes, iset):
    """Feeding the packets live, in chunks, with results asked midway, ends with the file's exact result."""
    path = scenes["dir"] / "both.pcap"
    whole, _ = analyze_files([path], iset)
    from scapy.utils import rdpcap

    pkts = rdpcap(str(path))
    live = Analyzer(iset)
    with Reader.open_feed() as reader:
        for i, p in enumerate(pkts):
            reader.feed(1, float(p.time), bytes(p))
            if i % 97 == 0:
                for batch in iter(reader.next_batch, []):
                    live.feed(batch)
                assert live.result().verdict in ("green", "amber", "red")
        reader.finish()
        for batch in reader.batches():
            live.feed(batch)
    end = live.result()
    assert [a.to_dict() for a in end.alerts] == [a.to_dict() for a in whole.alerts]
    assert [d.to_dict(end.alerts) for d in end.devices] == [d.to_dict(whole.alerts) for d in whole.devices]
    assert end.verdict == whole.verdict == "red"


def _cli(*args, **kw):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(CLI + list(args), capture_output=True, text=True, env=env, check=False, timeout=300, **kw)


def test_cli_writes_a_verifiable_report(scenes, tmp_path):
    """`analyze --out --json` exits 0, prints valid report JSON and leaves a folder that verifies."""
    out = tmp_path / "rep"
    r = _cli("analyze", str(scenes["dir"] / "stalker.pcap"), "--out", str(out), "--json", "--box-id", "b1",
             "--key-dir", str(tmp_path / "keys"))
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    jsonschema.validate(doc, report.schema())
    assert doc["verdict"] == "red" and doc["session"]["box_id"] == "b1"
    assert json.loads((out / "report.json").read_text())["alerts"] == doc["alerts"]
    assert (out / "capture" / "stalker.pcap").read_bytes() == (scenes["dir"] / "stalker.pcap").read_bytes()
    assert subprocess.run(["sha256sum", "-c", "--quiet", "MANIFEST.sha256"], cwd=out, check=False).returncode == 0
    assert _cli("verify", str(out)).returncode == 0


def test_cli_text_in_french(scenes):
    """Without --json the verdict and alerts are printed in plain words, here in French."""
    r = _cli("analyze", str(scenes["dir"] / "clean.pcap"), "--lang", "fr")
    assert r.returncode == 0 and r.stdout.startswith("Résultat : Rien de trouvé\n")
    assert "rien à signaler" in r.stdout


@pytest.mark.parametrize("make,expect", [
    (lambda d: d / "missing.pcap", "missing.pcap"),
    (lambda d: (d / "text.pcap").write_text("not a capture") and d / "text.pcap", "text.pcap"),
])
def test_cli_bad_capture_is_one_line_exit_2(tmp_path, make, expect):
    """An unreadable or non-capture file gives exit 2 and one line naming it, no traceback."""
    r = _cli("analyze", str(make(tmp_path)))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and expect in r.stderr


def test_cli_broken_indicator_file_is_exit_2(scenes, tmp_path):
    """A broken --iocs file gives exit 2 and one line, and no report is written."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("- name: x\n  c2: {domains: [\n")
    r = _cli("analyze", str(scenes["dir"] / "clean.pcap"), "--iocs", str(bad), "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_extra_indicator_file_is_used(scenes, tmp_path):
    """--iocs adds indicators to the shipped set: a clean phone's service listed there turns it red."""
    extra = tmp_path / "extra.txt"
    extra.write_text("api.spotify.com\n")
    r = _cli("analyze", str(scenes["dir"] / "clean.pcap"), "--iocs", str(extra), "--json")
    doc = json.loads(r.stdout)
    assert doc["verdict"] == "red"
    assert {a["name"] for a in doc["alerts"] if a["level"] == "high"} == {"api.spotify.com"}


def test_dns_response_echo_counts_once(iset, tmp_path):
    """A lookup (query + response) is one query; a second lookup on another port is another."""
    ph = traffic.Phone("02:00:00:00:00:09", "10.23.0.9")
    c2_name = sorted(i.value for i in iset.indicators() if i.category == "stalkerware-c2" and i.kind == "domain")[5]
    pk = traffic.dns_lookup(ph, c2_name, T0, ["203.0.113.5"]) + traffic.dns_lookup(ph, c2_name, T0 + 30,
                                                                                   ["203.0.113.5"])
    traffic.write_pcap(tmp_path / "d.pcap", pk)
    result, _ = analyze_files([tmp_path / "d.pcap"], iset)
    (a,) = [a for a in result.alerts if a.rule == "ioc.dns-query"]
    assert a.count == 2 and a.frames == [1, 3]


def _tshark_certs(path):
    """(server address, DER, issuer == subject) of each certificate tshark finds in a capture."""
    fields = subprocess.run(["tshark", "-r", str(path), "-Y", "tls.handshake.certificate", "-T", "fields",
                             "-e", "ip.src", "-e", "tls.handshake.certificate", "-E", "occurrence=a",
                             "-E", "aggregator=|"], capture_output=True, text=True, check=True).stdout
    text = subprocess.run(["tshark", "-r", str(path), "-Y", "tls.handshake.certificate", "-V"],
                          capture_output=True, text=True, check=True).stdout
    names = re.findall(r"(issuer|subject): rdnSequence \(0\)\n\s+rdnSequence: (.*)", text)
    pairs = [(names[i][1], names[i + 1][1]) for i in range(0, len(names) - 1, 2)]
    ders = [(line.split("\t")[0], bytes.fromhex(h.replace(":", "")))
            for line in fields.splitlines() if line.strip() for h in line.split("\t")[1].split("|")]
    times = subprocess.run(["tshark", "-r", str(path), "-Y", "tls.handshake.certificate", "-T", "fields",
                            "-e", "x509af.utcTime", "-E", "occurrence=a"], capture_output=True, text=True,
                           check=True).stdout.replace("\n", ",").split(",")
    not_after = [datetime.datetime.strptime(t.replace(" (UTC)", "") + "+0000", "%Y-%m-%d %H:%M:%S%z").timestamp()
                 for t in times[1::2] if t.strip()]
    return [(ip, der, iss == sub, end) for (ip, der), (iss, sub), end in zip(ders, pairs, not_after, strict=True)]


def test_real_self_signed_certificate(pcaps_dir, iset, tmp_path):
    """Real certificates from arkime's ssl-selfsign capture (tshark: issuer == subject, expired by 2025) are
    flagged when served from a public address; in the original capture the server is private, so quiet."""
    path = pcaps_dir / "arkime__ssl-selfsign.pcap"
    found = _tshark_certs(path)
    assert found and all(selfsigned for _, _, selfsigned, _ in found)
    result, _ = analyze_files([path], iset)
    assert [a for a in result.alerts if a.rule.startswith("heur.cert")] == []
    assert iset.is_allowlisted(found[0][0])
    ph = traffic.Phone("02:00:00:00:00:07", "10.23.0.7")
    pk = []
    for i, (_, der, _, _) in enumerate(found):
        ip = f"198.51.100.{100 + i}"
        pk += traffic.dns_lookup(ph, f"s{i}.example.net", T0 + i, [ip])
        pk += traffic.tls_connect(ph, ip, f"s{i}.example.net", T0 + i + 0.1, cert=der)
    traffic.write_pcap(tmp_path / "s.pcap", pk)
    result, _ = analyze_files([tmp_path / "s.pcap"], iset)
    got = sorted((a.rule, a.name, a.ip) for a in result.alerts)
    want = [("heur.cert-self-signed", f"s{i}.example.net", f"198.51.100.{100 + i}") for i in range(len(found))]
    want += [("heur.cert-expired", f"s{i}.example.net", f"198.51.100.{100 + i}")
             for i, (*_, end) in enumerate(found) if end < T0]
    assert got == sorted(want)


def test_every_shared_capture_analyses_or_fails_cleanly(pcaps_dir, iset):
    """No public capture crashes the engine: each gives a result or a one-line PocketcheckError."""
    seen = 0
    for path in sorted(pcaps_dir.iterdir()):
        if path.suffix not in (".pcap", ".pcapng"):
            continue
        try:
            result, files = analyze_files([path], iset)
        except PocketcheckError as exc:
            assert "\n" not in str(exc)
            continue
        doc = report.build(result, files, iset, box_id="x", generated_at="2026-11-28T12:00:00Z")
        jsonschema.validate(doc, report.schema())
        report.render_html(doc, "en")
        seen += 1
    assert seen > 50


def test_cli_config_and_encryption(scenes, tmp_path, new_age_key):
    """--config changes the thresholds in use (shown in the report); a bad one is exit 2; --encrypt-to seals it."""
    cfg = tmp_path / "t.yaml"
    cfg.write_text("beacon_min_contacts: 100\n")
    org, org_public = new_age_key()
    out = tmp_path / "sealed"
    r = _cli("analyze", str(scenes["dir"] / "stalker.pcap"), "--config", str(cfg), "--json", "--out", str(out),
             "--key-dir", str(tmp_path / "keys"), "--encrypt-to", org_public)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["session"]["configuration"]["beacon_min_contacts"] == 100
    assert "heur.beaconing" not in {a["rule"] for a in doc["alerts"]}
    assert sorted(p.name for p in out.iterdir()) == ["MANIFEST.sha256", "MANIFEST.sha256.sig", "report.tar.age"]
    inner = report.decrypt_archive(out / "report.tar.age", org, tmp_path / "plain")
    assert report.verify(inner).intact
    cfg.write_text("beacon_min_contacts: many\n")
    bad = _cli("analyze", str(scenes["dir"] / "stalker.pcap"), "--config", str(cfg))
    assert bad.returncode == 2 and "beacon_min_contacts" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


def _tshark_frames(path, field, value):
    out = subprocess.run(["tshark", "-r", str(path), "-Y", f'{field} == "{value}"', "-T", "fields",
                          "-e", "frame.number"], capture_output=True, text=True, check=True).stdout
    return [int(x) for x in out.split()]


def test_evidence_frames_match_tshark(scenes, iset, c2):
    """The frames cited as evidence are the ones tshark shows carrying that SNI or DNS question."""
    path = scenes["dir"] / "stalker.pcap"
    result, _ = analyze_files([path], iset)
    name = c2[0][0]
    sni = next(a for a in result.alerts if a.rule == "ioc.tls-sni" and a.name == name)
    assert sni.frames == _tshark_frames(path, "tls.handshake.extensions_server_name", name)[:20]
    query = next(a for a in result.alerts if a.rule == "ioc.dns-query" and a.name == name)
    want = _tshark_frames(path, "dns.qry.name", name)
    assert set(query.frames) <= set(want) and len(query.frames) == min(20, query.count)


def test_several_files_are_one_session(scenes, iset, tmp_path):
    """Two files analysed together number frames as their concatenation does (mergecap -a) and keep flows apart."""
    a, b = scenes["dir"] / "stalker.pcap", scenes["dir"] / "clean.pcap"
    subprocess.run(["mergecap", "-F", "pcap", "-a", "-w", str(tmp_path / "cat.pcap"), str(b), str(a)], check=True)
    (together, _), (cat, _) = analyze_files([b, a], iset), analyze_files([tmp_path / "cat.pcap"], iset)
    assert [x.to_dict() for x in together.alerts] == [x.to_dict() for x in cat.alerts]
    assert together.verdict == "red"


def test_builders_decode_in_tshark(scenes):
    """tshark reads back what the plan says was sent: DHCP host name, DNS questions, TLS and QUIC SNI, HTTP Host."""
    plan, phone = scenes["bad"]
    path = scenes["dir"] / "stalker.pcap"

    def field(flt, name):
        out = subprocess.run(["tshark", "-r", str(path), "-Y", flt, "-T", "fields", "-e", name],
                             capture_output=True, text=True, check=True).stdout
        return Counter(x for x in out.split("\n") if x)

    assert field("dhcp.option.dhcp == 3", "dhcp.option.hostname") == Counter({phone.hostname: 1})
    assert field("dns.flags.response == 0", "dns.qry.name") == Counter(c.name for c in plan if c.kind == "dns")
    assert field("tls.handshake.type == 1 && tcp", "tls.handshake.extensions_server_name") == Counter(
        c.name for c in plan if c.kind == "tls")
    assert field("quic && tls.handshake.type == 1", "tls.handshake.extensions_server_name") == Counter(
        c.name for c in plan if c.kind == "quic")
    assert field("http.request", "http.host") == Counter(c.name for c in plan if c.kind == "http")
    assert field("quic", "quic.version") == Counter({"0x00000001": 1})
