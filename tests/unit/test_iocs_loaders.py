"""Indicator file readers, on the real upstream files and on broken ones.

Expected counts come from the upstream folder's SOURCE.md (counted when the
files were copied) or are derived by hand from the small files written here,
never from running the readers.
"""
import csv
import json
import time

import pytest
import yaml

from appliance.errors import IocFormatError
from appliance.iocs_formats import classify, detect, normalize_domain, parse_file
from appliance.names import normalize

ECHAP = "stalkerware-indicators"


def unique(parsed, kind=None, category=None):
    """The set of distinct values of the records with that kind / category."""
    return {r.value for r in parsed.all_records()
            if (kind is None or r.kind == kind) and (category is None or r.category == category)}


# ---------------------------------------------------------------- real upstream files

def test_echap_ioc_yaml_counts_match_source_md(iocs_upstream):
    """ioc.yaml gives SOURCE.md's 925 unique C2 domains, 65+3 C2 IPs, 624 websites and 147 families."""
    p = parse_file(iocs_upstream / ECHAP / "ioc.yaml")
    assert p.format == "echap-yaml"
    assert len(unique(p, "domain", "stalkerware-c2")) == 925
    assert len([r for r in p.records if r.kind == "ipv4" and r.category == "stalkerware-c2"]) == 65 + 3
    assert len([r for r in p.records if r.category == "vendor-website"]) == 624
    assert len(p.extra["families"]) == 147
    # 44 distribution entries: one is an IP, two are GitHub URLs (host taken, marked as URL).
    dist = [r for r in p.records if r.category == "distribution"]
    assert len(dist) == 44
    assert [r.value for r in dist if r.kind == "ipv4"] == ["178.63.71.15"]
    assert sorted(r.value for r in dist if r.via_url) == ["github.com", "github.com"]
    # Android-only data is counted, not turned into network indicators.
    assert p.skipped["android-package"] == 616
    assert p.skipped["apk-signing-certificate"] == 472


def test_echap_misspelled_c2_ip_key_is_read(iocs_upstream):
    """The three addresses under the misspelled `c2.ip` (MobiStealth, Ahmyth) are loaded, with their family."""
    raw = yaml.safe_load((iocs_upstream / ECHAP / "ioc.yaml").read_text())
    expected = {(ip, fam["name"]) for fam in raw for ip in (fam.get("c2") or {}).get("ip", [])}
    assert len(expected) == 3
    p = parse_file(iocs_upstream / ECHAP / "ioc.yaml")
    got = {(r.value, r.family) for r in p.records if r.kind == "ipv4" and r.category == "stalkerware-c2"}
    assert expected <= got
    assert {f for _, f in expected} == {"MobiStealth", "Ahmyth"}


def test_echap_c2_domains_equal_upstream_hosts_file(iocs_upstream):
    """The C2 domains read from ioc.yaml are exactly upstream's own generated/hosts list."""
    hosts = set((iocs_upstream / ECHAP / "generated/hosts").read_text().split())
    p = parse_file(iocs_upstream / ECHAP / "ioc.yaml")
    assert unique(p, "domain", "stalkerware-c2") == hosts


def test_echap_c2_ips_equal_upstream_network_csv_plus_c2_ip(iocs_upstream):
    """C2 IPs = network.csv's 65 ipv4 rows (what upstream's generator saw) + the 3 under `c2.ip`."""
    with open(iocs_upstream / ECHAP / "generated/network.csv", newline="") as fh:
        csv_ips = {row["indicator"] for row in csv.DictReader(fh) if row["type"] == "ipv4"}
    p = parse_file(iocs_upstream / ECHAP / "ioc.yaml")
    ips = unique(p, "ipv4", "stalkerware-c2")
    assert csv_ips < ips
    assert ips - csv_ips == {"72.167.46.196", "5.79.71.114", "85.10.199.40"}


def test_watchware_yaml_counts(iocs_upstream):
    """watchware.yaml: 27 families; 67 C2 domains + 46 websites + 1 distribution, all low-key 'watchware'."""
    p = parse_file(iocs_upstream / ECHAP / "watchware.yaml")
    assert len(p.extra["families"]) == 27
    assert {r.category for r in p.records} == {"watchware"}
    assert len([r for r in p.records if r.kind in ("domain", "ipv4")]) == 67 + 1 + 46 + 1
    assert p.skipped["ios-bundle"] == 6


def test_tinycheck_iocs_counts(iocs_upstream):
    """TinyCheck: 132 TLS cert SHA-1s, 81 Snort rules skipped, freedns/tld/ns as heuristics data."""
    p = parse_file(iocs_upstream / "tinycheck/assets/iocs.json")
    assert p.format == "tinycheck"
    certs = [r for r in p.records if r.kind == "cert-sha1"]
    assert len(certs) == 132 and all(len(r.value) == 40 for r in certs)
    assert p.skipped["snort-rule"] == 81
    assert len(p.heuristics["rare_tlds"]) == 23
    assert "xyz" in p.heuristics["rare_tlds"]  # upstream writes ".xyz"
    assert len(p.heuristics["suspect_nameservers"]) == 20
    raw = json.loads((iocs_upstream / "tinycheck/assets/iocs.json").read_text())["iocs"]
    assert p.heuristics["dyndns_suffixes"] == {i["value"].lower() for i in raw if i["type"] == "freedns"}
    # domain/pegasus 1,406 + apt/spyware/cybercrime 12 (SOURCE.md) are "spyware".
    assert len([r for r in p.records if r.kind == "domain" and r.category == "spyware"]) == 1406 + 12


def test_spyguard_doh_goes_to_heuristics(iocs_upstream):
    """SpyGuard's `doh` entries (4 names, 6 IPv4, 2 IPv6) become heuristics data, not indicators."""
    p = parse_file(iocs_upstream / "spyguard/assets/iocs.json")
    assert len(p.heuristics["doh_names"]) == 4
    assert len(p.heuristics["doh_ips"]) == 8
    assert "1.1.1.1" in p.heuristics["doh_ips"] and "2620:fe::fe" in p.heuristics["doh_ips"]
    assert not {r.value for r in p.records} & p.heuristics["doh_ips"]
    assert p.skipped["snort-rule"] == 10


def test_echap_tinycheck_export(iocs_upstream):
    """Échap's TinyCheck export: 1,455 unique domain values of which 2 URLs share one host, plus 65 IPs."""
    p = parse_file(iocs_upstream / ECHAP / "generated/indicators-for-tinycheck.json")
    # One "domain" value is an IP (178.63.71.15) and the 2 GitHub URLs collapse to github.com.
    assert len(unique(p, "domain")) == 1455 - 1 - 1
    assert len(unique(p, "ipv4")) == 65 + 1


def test_misp_event_merged_by_name(iocs_upstream):
    """Upstream's misp_event.json (no Event wrapper): 991 unique domains, families from the objects' names."""
    p = parse_file(iocs_upstream / ECHAP / "generated/misp_event.json")
    assert p.format == "misp"
    assert len(unique(p, "domain")) == 991
    assert len(p.extra["families"]) == 173
    # The link attribute is to_ids=false; APK signing certificates are skipped.
    assert p.skipped["apk-signing-certificate"] == 490
    fams = {r.family for r in p.records if r.value == "protocol-a748.thetruthspy.com"}
    assert fams == {"TheTruthSpy"}


def test_plain_lists_from_upstream(iocs_upstream):
    """generated/hosts is a plain list of 925 names; quad9_blocklist.txt's URLs give their host."""
    p = parse_file(iocs_upstream / ECHAP / "generated/hosts")
    assert p.format == "plain" and len(unique(p, "domain")) == 925
    q = parse_file(iocs_upstream / ECHAP / "generated/quad9_blocklist.txt")
    assert "github.com" in unique(q, "domain")


def test_tinycheck_whitelist_is_an_allowlist(iocs_upstream):
    """whitelist.json loads as allowlist entries: 842 domains and 685+3+1 networks (SOURCE.md)."""
    p = parse_file(iocs_upstream / "tinycheck/assets/whitelist.json")
    assert p.format == "tinycheck-allowlist"
    assert not p.records
    assert len(p.allow_domains) == 842
    assert len(p.allow_networks) == 685 + 3 + 1


# ---------------------------------------------------------------- small hand-written files

def test_stix2_bundle(tmp_path):
    """STIX 2: domain/ipv4/ipv6/url patterns, family through `indicates`, split on the first '=' only."""
    objs = [
        {"type": "malware", "id": "malware--1", "name": "EvilSpy", "is_family": False},
        {"type": "indicator", "id": "indicator--1", "pattern_type": "stix", "pattern": "[domain-name:value='c2.evil.example']"},
        {"type": "indicator", "id": "indicator--2", "pattern_type": "stix", "pattern": "[ipv4-addr:value = '203.0.113.9']"},
        {"type": "indicator", "id": "indicator--3", "pattern_type": "stix", "pattern": "[ipv6-addr:value='2001:db8::7']"},
        {"type": "indicator", "id": "indicator--4", "pattern_type": "stix",
         "pattern": "[url:value='https://dl.evil.example/get?id=5&x=y']"},
        {"type": "indicator", "id": "indicator--5", "pattern_type": "stix", "pattern": "[app:id='com.evil.spy']"},
        {"type": "indicator", "id": "indicator--6", "pattern_type": "stix",
         "pattern": "[file:hashes.sha256='" + "ab" * 32 + "']"},
        {"type": "relationship", "id": "relationship--1", "relationship_type": "indicates",
         "source_ref": "indicator--1", "target_ref": "malware--1"},
        {"type": "relationship", "id": "relationship--4", "relationship_type": "indicates",
         "source_ref": "indicator--4", "target_ref": "malware--1"},
    ]
    f = tmp_path / "x.stix2"
    f.write_text(json.dumps({"type": "bundle", "id": "bundle--1", "objects": objs}))
    p = parse_file(f)
    assert p.format == "stix2"
    got = {(r.value, r.kind, r.family) for r in p.records}
    assert got == {("c2.evil.example", "domain", "EvilSpy"), ("203.0.113.9", "ipv4", ""),
                   ("2001:db8::7", "ipv6", ""), ("dl.evil.example", "domain", "EvilSpy")}
    assert p.skipped["STIX app:id"] == 1 and p.skipped["STIX file:hashes.sha256"] == 1


def test_stix2_bad_value_names_the_indicator(tmp_path):
    """An invalid domain in a STIX pattern is an error naming the indicator id."""
    f = tmp_path / "bad.json"
    f.write_text(json.dumps({"type": "bundle", "objects": [
        {"type": "indicator", "id": "indicator--bad", "pattern": "[domain-name:value='not a domain']"}]}))
    with pytest.raises(IocFormatError, match=r"bad\.json: indicator indicator--bad: .*not a valid domain"):
        parse_file(f)


def test_misp_event_with_wrapper_and_csv(tmp_path):
    """A wrapped MISP event and the MISP CSV export give the same indicators; to_ids=0 rows are skipped."""
    event = {"Event": {"info": "Op Test", "Attribute": [
        {"type": "domain", "value": "bad.example", "to_ids": True},
        {"type": "ip-dst", "value": "198.51.100.7", "to_ids": True},
        {"type": "domain|ip", "value": "both.example|198.51.100.8", "to_ids": True},
        {"type": "x509-fingerprint-sha256", "value": "AA:" * 31 + "AA", "to_ids": True},
        {"type": "domain", "value": "context.example", "to_ids": False},
        {"type": "md5", "value": "00" * 16, "to_ids": True},
    ]}}
    f = tmp_path / "event.json"
    f.write_text(json.dumps(event))
    p = parse_file(f)
    assert p.format == "misp"
    expected = {("bad.example", "domain"), ("198.51.100.7", "ipv4"), ("both.example", "domain"),
                ("198.51.100.8", "ipv4"), ("aa" * 32, "cert-sha256")}
    assert {(r.value, r.kind) for r in p.records} == expected
    assert {r.family for r in p.records} == {"Op Test"}
    c = tmp_path / "export.csv"
    c.write_text("uuid,event_id,category,type,value,comment,to_ids,date\n"
                 "u1,7,Network activity,domain,bad.example,Op Test,1,1700000000\n"
                 "u2,7,Network activity,ip-dst,198.51.100.7,Op Test,1,1700000000\n"
                 "u3,7,Network activity,domain|ip,both.example|198.51.100.8,Op Test,1,1700000000\n"
                 f"u4,7,Network activity,x509-fingerprint-sha256,{'AA:' * 31}AA,Op Test,1,1700000000\n"
                 "u5,7,Network activity,domain,context.example,,0,1700000000\n")
    q = parse_file(c)
    assert q.format == "misp-csv"
    assert {(r.value, r.kind) for r in q.records} == expected


def test_plain_list_hosts_file_comments_and_cidr(tmp_path):
    """Plain lists: names, IPs, CIDRs, URLs, hosts-file lines, comments; localhost is not an indicator."""
    f = tmp_path / "mylist.txt"
    f.write_text("# my list\n"
                 "Evil.Example.\n"
                 "0.0.0.0 tracker.example ads.example  # sinkholed\n"
                 "127.0.0.1 localhost\n"
                 "203.0.113.0/24\n"
                 "2001:db8::/48\n"
                 "192.0.2.5\n"
                 "*.wild.example\n"
                 "http://dl.example/app.apk\n"
                 "bücher.example\n"
                 "\n")
    p = parse_file(f)
    assert p.format == "plain"
    assert {(r.value, r.kind) for r in p.all_records()} == {
        ("evil.example", "domain"), ("tracker.example", "domain"), ("ads.example", "domain"),
        ("203.0.113.0/24", "cidr"), ("2001:db8::/48", "cidr"), ("192.0.2.5", "ipv4"),
        ("wild.example", "domain"), ("dl.example", "domain"), ("xn--bcher-kva.example", "domain")}
    assert {r.family for r in p.all_records()} == {"mylist"}
    assert p.skipped["hosts-file local name"] == 1


def test_detect_formats():
    """Format detection from the content alone."""
    assert detect("- name: X\n  type: stalkerware\n") == "echap-yaml"
    assert detect('{"iocs": []}') == "tinycheck"
    assert detect('{"type": "bundle", "objects": []}') == "stix2"
    assert detect('{"Event": {}}') == "misp"
    assert detect("uuid,event_id,category,type,value,comment,to_ids,date\n") == "misp-csv"
    assert detect("# c\nevil.example\n") == "plain"


@pytest.mark.parametrize("value,kind,norm", [
    ("EVIL.example.", "domain", "evil.example"),
    ("https://x.example:8443/p?q=1", "domain", "x.example"),
    ("10.1.2.3", "ipv4", "10.1.2.3"),
    ("2001:0db8:0:0::1", "ipv6", "2001:db8::1"),
    ("10.1.2.3/32", "ipv4", "10.1.2.3"),
    ("10.1.2.0/23", "cidr", "10.1.2.0/23"),
])
def test_classify(value, kind, norm):
    """Values are classified and written in one canonical spelling."""
    assert classify(value)[:2] == (kind, norm)


@pytest.mark.parametrize("value,reason", [
    ("com", "single label"), ("a..b", "not a valid domain"), ("-x.com", "not a valid domain"),
    ("x" * 64 + ".com", "not a valid domain"), ("a." * 127 + "com", "longer than 253"),
    ("10.0.0.0/4", "too broad"), ("300.1.1.1", "not a valid IP"), ("evil.123", "numeric"),
])
def test_invalid_values(value, reason):
    """Invalid or too broad values are refused with a reason."""
    with pytest.raises(ValueError, match=reason):
        classify(value)


def test_normalize_domain_agrees_with_matcher():
    """Indicator normalisation and the matcher's name normalisation spell IDNs the same way."""
    for name in ("bücher.example", "ÉCHAP.Example.", "xn--bcher-kva.example", "Straße.de"):
        assert normalize_domain(name) == normalize(name)


# ---------------------------------------------------------------- broken files

def echap_yaml(*families):
    return yaml.safe_dump(list(families), sort_keys=False)


@pytest.mark.parametrize("content,where,reason", [
    ("- name: A\n  c2:\n    domains: [ok.example\n", "line", "invalid YAML"),       # truncated
    ("name: A\n", "", "expected a YAML list"),
    ("- name: A\n  c2: [x.example]\n", "entry 1 \\(A\\) c2", "expected a mapping"),
    ("- name: A\n  c2:\n    domains: x.example\n", "entry 1 \\(A\\) c2.domains", "expected a list"),
    ("- name: A\n  websites: [7]\n", "entry 1 \\(A\\) websites", "expected a text value"),
    ("- name: A\n- name: B\n  c2:\n    domains: [ok.example, 'bad domain']\n",
     "entry 2 \\(B\\) c2.domains", "not a valid domain"),
    ("- name: A\n  c2:\n    ipz: [1.2.3.4]\n", "entry 1 \\(A\\) c2", "unknown key 'ipz'"),
    ("- name: A\n  c2:\n    ips: [evil.example]\n", "entry 1 \\(A\\) c2.ips", "expected ipv4"),
    ("- type: stalkerware\n", "entry 1", "missing or invalid 'name'"),
    ("- name: A\n  hosts: [x.example]\n", "entry 1 \\(A\\)", "unknown key 'hosts'"),  # C2 or website: ambiguous
    ("- name: A\n  c2:\n    ip: 1.2.3.4\n", "entry 1 \\(A\\) c2 c2.ip", "expected a list"),
])
def test_broken_echap_yaml(tmp_path, content, where, reason):
    """Each broken YAML gives IocFormatError naming file, entry and reason."""
    f = tmp_path / "broken.yaml"
    f.write_text(content)
    with pytest.raises(IocFormatError, match=rf"broken\.yaml: {where}.*{reason}"):
        parse_file(f, "echap-yaml")


def test_yaml_alias_bomb_refused_quickly(tmp_path):
    """A 'billion laughs' YAML is refused at its first alias, in well under a second."""
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    f = tmp_path / "bomb.yaml"
    f.write_text("- name: X\n  bomb:\n" + "\n".join("    " + line for line in lines) + "\n")
    t = time.monotonic()
    with pytest.raises(IocFormatError, match=r"bomb\.yaml: .*aliases .* not allowed"):
        parse_file(f, "echap-yaml")
    assert time.monotonic() - t < 1


def test_yaml_too_deep(tmp_path):
    """Deeply nested YAML is refused with the line."""
    f = tmp_path / "deep.yaml"
    f.write_text("- " + "[" * 100 + "]" * 100 + "\n")
    with pytest.raises(IocFormatError, match=r"deep\.yaml: line 1: nested deeper"):
        parse_file(f, "echap-yaml")


def test_yaml_python_tags_refused(tmp_path):
    """Python object tags are not constructed (safe loading)."""
    f = tmp_path / "evil.yaml"
    f.write_text("- name: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(IocFormatError, match=r"evil\.yaml: .*invalid YAML"):
        parse_file(f, "echap-yaml")


def test_100_mb_file_refused_fast(tmp_path):
    """A 100 MB file is refused by the size limit before being read."""
    f = tmp_path / "huge.txt"
    with open(f, "wb") as fh:
        fh.truncate(100 * 1024 * 1024)
    t = time.monotonic()
    with pytest.raises(IocFormatError, match=r"huge\.txt: file is 104\.9 MB, over the 52 MB limit"):
        parse_file(f)
    assert time.monotonic() - t < 0.5
    small = tmp_path / "small.txt"
    small.write_text("evil.example\n" * 100)
    with pytest.raises(IocFormatError, match="over the"):
        parse_file(small, max_bytes=1000)


def test_non_utf8_names_line(tmp_path):
    """Bytes that are not UTF-8 are refused naming the line and offset."""
    f = tmp_path / "latin1.txt"
    f.write_bytes(b"ok.example\nbad\xe9.example\n")
    with pytest.raises(IocFormatError, match=r"latin1\.txt: line 2: not UTF-8 text \(bad byte at offset 14\)"):
        parse_file(f)


@pytest.mark.parametrize("content,reason", [
    ('{"iocs": [{"type": "domain", "tag": "x", "value": "a.example"}', "invalid JSON"),   # truncated
    ('{"iocs": {"type": "domain"}}', "expected {\"iocs\""),
    ('{"iocs": [{"type": "domain", "tag": "x", "value": 5}]}', "must be text"),
    ('{"iocs": [{"type": "teleport", "tag": "x", "value": "a"}]}', "unknown type 'teleport'"),
    ('{"iocs": [{"type": "sha1cert", "tag": "x", "value": "abc"}]}', "not a SHA-1"),
    ('{"iocs": [{"type": "ip4addr", "tag": "x", "value": "2001:db8::1"}]}', "expected ipv4"),
])
def test_broken_tinycheck_json(tmp_path, content, reason):
    """Broken TinyCheck files name the file, the entry index and the reason."""
    f = tmp_path / "t.json"
    f.write_text(content)
    with pytest.raises(IocFormatError, match=rf"t\.json: .*{reason}"):
        parse_file(f)


def test_unknown_json_and_format(tmp_path):
    """JSON of no known shape, and an unknown --format, are clear errors."""
    f = tmp_path / "u.json"
    f.write_text('{"hello": 1}')
    with pytest.raises(IocFormatError, match="not a format pocketcheck knows"):
        parse_file(f)
    with pytest.raises(IocFormatError, match="unknown format 'xml'"):
        parse_file(f, "xml")


def test_lenient_mode_counts_invalid_values(tmp_path):
    """strict=False skips invalid values but counts them and keeps the reasons."""
    f = tmp_path / "community.txt"
    f.write_text("good.example\nnot valid here\nbad..example\nalso-good.example\n")
    with pytest.raises(IocFormatError, match="line 2"):
        parse_file(f)
    p = parse_file(f, strict=False)
    assert unique(p) == {"good.example", "also-good.example"}
    assert p.invalid == 2
    assert p.invalid_reasons[0].startswith("line 2:")


def test_json_nesting_bomb(tmp_path):
    """JSON nested a million levels deep is a one-line error, not a crash."""
    f = tmp_path / "deep.json"
    f.write_text("[" * 1_000_000 + "]" * 1_000_000)
    with pytest.raises(IocFormatError, match=r"deep\.json: "):
        parse_file(f, "tinycheck")


def test_wrong_types_in_misp(tmp_path):
    """A MISP attribute list that is not a list names the event and key."""
    f = tmp_path / "m.json"
    f.write_text(json.dumps({"Event": {"info": "x", "Attribute": {"type": "domain"}}}))
    with pytest.raises(IocFormatError, match=r"m\.json: event Attribute: expected a list"):
        parse_file(f)


# ---- data faults surfaced: misspelled keys read, names under two families -----------------
def test_misspelled_keys_are_read_and_recorded(tmp_path):
    """`c2: ip:`, `c2: domain:` and a family's `website:` are read as ips/domains/websites and noted, with values."""
    f = tmp_path / "typos.yaml"
    f.write_text("- name: A\n  website: [a-vendor.example]\n  c2:\n    domain: [c2.a.example]\n"
                 "    ips: [192.0.2.1]\n    ip: [192.0.2.2]\n")
    p = parse_file(f, "echap-yaml")
    got = {(r.value, r.kind, r.category) for r in p.records}
    assert got == {("a-vendor.example", "domain", "vendor-website"), ("c2.a.example", "domain", "stalkerware-c2"),
                   ("192.0.2.1", "ipv4", "stalkerware-c2"), ("192.0.2.2", "ipv4", "stalkerware-c2")}
    assert p.recovered == [("entry 1 (A)", "website", "websites", ["a-vendor.example"]),
                           ("entry 1 (A) c2", "c2.domain", "c2.domains", ["c2.a.example"]),
                           ("entry 1 (A) c2", "c2.ip", "c2.ips", ["192.0.2.2"])]
    clean = tmp_path / "clean.yaml"
    clean.write_text("- name: A\n  c2:\n    ips: [192.0.2.1]\n")
    assert parse_file(clean, "echap-yaml").recovered == []


def test_upstream_recoveries_are_exactly_the_misspelled_c2_ip(iocs_upstream):
    """On the shipped upstream file, what is recovered is exactly what upstream wrote under `c2.ip`."""
    path = iocs_upstream / "stalkerware-indicators" / "ioc.yaml"
    raw = yaml.safe_load(path.read_text())
    expected = [(fam["name"], [str(v) for v in fam["c2"]["ip"]]) for fam in raw if "ip" in (fam.get("c2") or {})]
    p = parse_file(path)
    assert [(w.split("(", 1)[1].split(")")[0], vals) for w, key, to, vals in p.recovered] == expected
    assert {(key, to) for _, key, to, _ in p.recovered} == {("c2.ip", "c2.ips")}


def test_a_value_under_two_families_is_reported_once_with_both(tmp_path, iocs_upstream):
    """A name listed by two families comes back once with both; upstream's shared names are found the same way."""
    from appliance.iocs_formats import several_families

    f = tmp_path / "two.yaml"
    f.write_text("- name: A\n  websites: [shared.example]\n  c2:\n    domains: [shared.example]\n"
                 "- name: B\n  websites: [shared.example, only-b.example]\n")
    assert several_families(parse_file(f, "echap-yaml")) == [("domain", "shared.example", ["A", "B"])]
    raw = yaml.safe_load((iocs_upstream / "stalkerware-indicators" / "ioc.yaml").read_text())
    owners: dict = {}
    for fam in raw:
        for key in ("websites", "distribution"):
            for v in fam.get(key) or []:
                if "/" not in v:   # URLs with a path are entries of their own
                    owners.setdefault(normalize(v) or v, set()).add(fam["name"])
        for v in (fam.get("c2") or {}).get("domains") or []:
            owners.setdefault(normalize(v) or v, set()).add(fam["name"])
    expected = sorted(v for v, fams in owners.items() if len(fams) > 1)
    got = several_families(parse_file(iocs_upstream / "stalkerware-indicators" / "ioc.yaml"))
    assert [v for _, v, _ in got] == expected and expected
