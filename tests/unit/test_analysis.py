"""The detection engine on events built by hand, with the real shipped indicator set.

Each rule has a test that makes it fire and one that keeps it quiet; expected
alerts are derived from what the test put in, never from running the engine.
"""
from __future__ import annotations

import json
import random

import pytest
import traffic
from feeds import OTHER, OTHER_IP, PHONE, PHONE_IP, T0, Feed

from appliance import indicators
from appliance.analysis import Analyzer, Thresholds, is_local
from appliance.errors import ConfigError
from appliance.native import Event


@pytest.fixture(scope="module")
def iset():
    """The shipped indicator set."""
    return indicators.load_default()


def _values(iset, kind, category, severity):
    return sorted(i.value for i in iset.indicators()
                  if i.kind == kind and i.category == category and i.severity == severity)


@pytest.fixture(scope="module")
def c2(iset):
    """C2 domains of the shipped set that no other indicator nests inside and that are not watchware too."""
    names = _values(iset, "domain", "stalkerware-c2", "high")
    out = [n for n in names if n.count(".") == 1 and all(h.indicator.severity == "high"
                                                         for h in iset.match_names([n])[0])]
    assert len(out) >= 4
    return out


def run(iset, events, **thresholds):
    # The rule tests feed a few events: coverage (which turns a thin green
    # into amber) is off here and tested on its own below.
    thresholds.setdefault("min_duration_s", 0)
    thresholds.setdefault("min_coverage_flows", 0)
    a = Analyzer(iset, Thresholds(**thresholds))
    a.feed(events)
    return a.result()


def alerts(result):
    return sorted((a.rule, a.level, a.device, a.name, a.ip) for a in result.alerts)


# ---- indicator rules ------------------------------------------------------------------
@pytest.mark.parametrize("kind,rule", [("tls.sni", "ioc.tls-sni"), ("quic.sni", "ioc.quic-sni"),
                                       ("http.host", "ioc.http-host")])
def test_indicator_on_connection_name_is_high(iset, c2, kind, rule):
    """A C2 name in TLS SNI, QUIC SNI or HTTP Host gives a high alert and a red device."""
    f = Feed()
    ip = "203.0.113.50"
    f.dns("x", T0, [ip])  # unrelated name, gives the address so no "no DNS" alert
    proto = "udp" if kind == "quic.sni" else "tcp"
    port = 80 if kind == "http.host" else 443
    f.conn(ip, T0 + 1, dport=port, kind=kind, name=f"api.{c2[0]}", proto=proto)
    r = run(iset, f.events)
    assert alerts(r) == [(rule, "high", PHONE, f"api.{c2[0]}", "")]
    a = r.alerts[0]
    assert (a.indicator, a.device_ip, a.count, a.frames) == (c2[0], PHONE_IP, 1, [3])
    assert a.family and a.category == "stalkerware-c2" and a.source
    assert r.verdict == "red" and r.devices[0].verdict == "red"


def test_dns_query_and_answers(iset, c2):
    """A C2 query, a CNAME to a C2 name and an answered C2 address are each an alert on that device."""
    c2_ip = _values(iset, "ipv4", "stalkerware-c2", "high")[0]
    f = Feed()
    f.dns(c2[0], T0)                              # query only
    f.dns("cdn.innocent-example.org", T0 + 5, [c2[1]])   # CNAME target is C2
    f.dns("img.innocent-example.org", T0 + 9, [c2_ip])   # answered address is C2
    r = run(iset, f.events)
    assert alerts(r) == sorted([
        ("ioc.dns-query", "high", PHONE, c2[0], ""),
        ("ioc.dns-answer", "high", PHONE, "cdn.innocent-example.org", ""),
        ("ioc.dns-answer", "high", PHONE, "img.innocent-example.org", c2_ip),
    ])
    cname = next(a for a in r.alerts if a.name == "cdn.innocent-example.org")
    assert cname.indicator == c2[1] and cname.detail["matched"] == c2[1]


def test_server_ip_indicator_counts_flows(iset):
    """Three connections to a C2 address make one high alert with count 3 and the flows as evidence."""
    c2_ip = _values(iset, "ipv4", "stalkerware-c2", "high")[0]
    f = Feed()
    ids = [f.conn(c2_ip, T0 + i * 37.0, dport=443) for i in range(3)]
    r = run(iset, f.events)
    hits = [a for a in r.alerts if a.rule == "ioc.server-ip"]
    assert [(a.level, a.ip, a.count, a.flows) for a in hits] == [("high", c2_ip, 3, ids)]
    assert hits[0].first == T0 and hits[0].last == T0 + 2 * 37.0 + 1.0


def test_cert_fingerprints_sha1_and_sha256(tmp_path):
    """A server certificate whose SHA-1 (TinyCheck format) or SHA-256 (MISP CSV) is listed raises ioc.cert."""
    import hashlib
    der1, der2 = traffic.make_cert("one.example", "Some CA", seed=11), traffic.make_cert("two.example", "CA", seed=12)
    tc = tmp_path / "tinycheck.json"
    tc.write_text(json.dumps({"iocs": [{"type": "sha1cert", "tag": "stalkerware", "tlp": "white",
                                        "value": hashlib.sha1(der1).hexdigest()}]}))
    misp = tmp_path / "misp.csv"
    misp.write_text("uuid,event_id,category,type,value,comment,to_ids,date\n"
                    f"5f0c1e2a-0000-4000-8000-000000000001,1,Network activity,x509-fingerprint-sha256,"
                    f"{hashlib.sha256(der2).hexdigest()},test,1,1700000000\n")
    iset = indicators.load([tc, misp], include_default=True)
    f = Feed()
    for der, ip in ((der1, "198.51.100.1"), (der2, "198.51.100.2"), (traffic.make_cert("three.example", "CA", seed=13),
                                                                      "198.51.100.3")):
        f.dns(f"h{ip[-1]}.example", T0, [ip])
        f.conn(ip, T0 + 1, cert=der)
    r = run(iset, f.events)
    got = sorted((a.rule, a.ip, a.name, a.indicator) for a in r.alerts)
    assert got == [("ioc.cert", "198.51.100.1", "one.example", hashlib.sha1(der1).hexdigest()),
                   ("ioc.cert", "198.51.100.2", "two.example", hashlib.sha256(der2).hexdigest())]


def test_ipv6_cidr_and_domain_from_custom_list(tmp_path):
    """Plain-list indicators: an IPv6 CIDR hit on a v6 connection and a domain hit on a v6 device."""
    lst = tmp_path / "extra.txt"
    lst.write_text("2001:db8:66::/48\nstalker-test.example\n")
    iset = indicators.load([lst], include_default=True)
    f = Feed(ip="fd23::10")
    f.dns("app.stalker-test.example", T0, ["2001:db8:66::5"], rrtype=28)
    f.conn("2001:db8:66::5", T0 + 1, kind="tls.sni", name="app.stalker-test.example")
    r = run(iset, f.events)
    assert alerts(r) == sorted([
        ("ioc.dns-query", "high", PHONE, "app.stalker-test.example", ""),
        ("ioc.dns-answer", "high", PHONE, "app.stalker-test.example", "2001:db8:66::5"),
        ("ioc.tls-sni", "high", PHONE, "app.stalker-test.example", ""),
        ("ioc.server-ip", "high", PHONE, "app.stalker-test.example", "2001:db8:66::5"),
    ])


def test_severity_sets_the_verdict(iset):
    """A watchware name alone is low (green); a distribution host is moderate (amber)."""
    watch = _values(iset, "domain", "watchware", "low")
    dist = [d for d in _values(iset, "domain", "distribution", "moderate")
            if max(h.indicator.severity for h in iset.match_names([d])[0]) == "moderate"]
    f = Feed()
    f.dns(watch[0], T0)
    r = run(iset, f.events)
    assert [(a.rule, a.level) for a in r.alerts] == [("ioc.dns-query", "low")] and r.verdict == "green"
    f.dns(dist[0], T0 + 1)
    r = run(iset, f.events)
    assert r.verdict == "amber" and {a.level for a in r.alerts} == {"low", "moderate"}


def test_indicator_beats_allowlist_heuristics_do_not(iset, c2):
    """An allowlisted platform skips heuristics, but a C2 name always alerts, even on an odd port."""
    assert iset.is_allowlisted("www.google.com")
    f = Feed()
    f.conn("142.250.179.100", T0, dport=4444, kind="tls.sni", name="www.google.com")
    f.conn("203.0.113.60", T0 + 5, dport=4444, kind="tls.sni", name=c2[0])
    r = run(iset, f.events)
    assert alerts(r) == sorted([
        ("ioc.tls-sni", "high", PHONE, c2[0], ""),
        ("heur.tls-unusual-port", "low", PHONE, c2[0], "203.0.113.60"),
        ("heur.ip-without-dns", "low", PHONE, c2[0], "203.0.113.60"),
    ])


def test_names_are_normalised_once(iset, c2):
    """Case, one trailing dot and white space do not hide a C2 name; the alert names it as the matcher spells it."""
    f = Feed()
    f.dns(f" API.{c2[0].upper()}.", T0)
    r = run(iset, f.events)
    assert alerts(r) == [("ioc.dns-query", "high", PHONE, f"api.{c2[0]}", "")]
    assert r.devices[0].names == {f"api.{c2[0]}"}


def test_what_cannot_be_a_host_name_is_no_name(iset, c2):
    """A name with an empty label or over 253 bytes is no host name: no alert names it, the device keeps none."""
    f = Feed()
    f.dns(f"{c2[0]}..", T0)
    f.dns(f"api..{c2[0]}", T0 + 1)
    f.dns("a" * 250 + f".{c2[0]}", T0 + 2)
    r = run(iset, f.events)
    assert not [a for a in r.alerts if a.rule.startswith("ioc.")]
    assert r.devices[0].names == set()


# ---- heuristics: fire and quiet ----------------------------------------------------------
def test_ip_without_dns(iset):
    """An address no DNS answer gave is low; answered, local, multicast, broadcast and box addresses are quiet."""
    f = Feed()
    f.conn("198.51.100.7", T0)                     # fires
    f.dns("files.example.org", T0 + 1, ["198.51.100.8"])
    f.conn("198.51.100.8", T0 + 2)                 # answered earlier: quiet
    f.conn("198.51.100.9", T0 + 3)
    f.dns("late.example.org", T0 + 4, ["198.51.100.9"])   # answered later in the session: quiet too
    for dst in ("10.23.0.1", "224.0.0.251", "255.255.255.255", "fe80::1", "192.168.1.20", "203.0.113.1"):
        f.conn(dst, T0 + 5, dport=8009)
    r = run(iset, f.events, box_ips=("203.0.113.1",))
    assert alerts(r) == [("heur.ip-without-dns", "low", PHONE, "", "198.51.100.7")]


def test_ports(iset):
    """TLS off the TLS ports is low; HTTP off the web ports is moderate; usual ports are quiet."""
    f = Feed()
    for ip in ("198.51.100.20", "198.51.100.21", "198.51.100.22", "198.51.100.23"):
        f.dns(f"h{ip[-2:]}.example.net", T0, [ip])
    f.conn("198.51.100.20", T0 + 1, dport=4443, kind="tls.sni", name="h20.example.net")
    f.conn("198.51.100.21", T0 + 1, dport=443, kind="tls.sni", name="h21.example.net")
    f.conn("198.51.100.22", T0 + 1, dport=8765, kind="http.host", name="h22.example.net", method="GET")
    f.conn("198.51.100.23", T0 + 1, dport=8080, kind="http.host", name="h23.example.net", method="GET")
    r = run(iset, f.events)
    assert alerts(r) == sorted([
        ("heur.tls-unusual-port", "low", PHONE, "h20.example.net", "198.51.100.20"),
        ("heur.http-unusual-port", "moderate", PHONE, "h22.example.net", "198.51.100.22"),
    ])
    assert r.verdict == "amber"


def test_http_upload(iset):
    """A POST whose flow sent more than upload_bytes is moderate; a small POST or a big GET is quiet."""
    f = Feed()
    for i, (method, up) in enumerate((("POST", 500_000), ("POST", 2_000), ("GET", 500_000), ("PUT", 150_000))):
        ip = f"198.51.100.{30 + i}"
        f.dns(f"u{i}.example.net", T0, [ip])
        f.conn(ip, T0 + 1, dport=80, kind="http.host", name=f"u{i}.example.net", method=method, up=up)
    r = run(iset, f.events)
    assert alerts(r) == sorted([
        ("heur.http-upload", "moderate", PHONE, "u0.example.net", "198.51.100.30"),
        ("heur.http-upload", "moderate", PHONE, "u3.example.net", "198.51.100.33"),
    ])
    assert {a.name: a.detail["bytes"] for a in r.alerts} == {"u0.example.net": 500_000, "u3.example.net": 150_000}
    r2 = run(iset, f.events, upload_bytes=1_000_000)
    assert r2.alerts == []


def test_certificates(iset):
    """Self-signed and expired leaf certificates are moderate; a valid CA-issued one is quiet."""
    certs = {"198.51.100.40": traffic.make_cert("self.example.net", seed=1),
             "198.51.100.41": traffic.make_cert("old.example.net", "Some CA", "2019-01-01", "2020-01-01", seed=2),
             "198.51.100.42": traffic.make_cert("fine.example.net", "Some CA", seed=3)}
    f = Feed()
    for ip, der in certs.items():
        f.dns(f"c{ip[-2:]}.example.net", T0, [ip])
        f.conn(ip, T0 + 1, kind="tls.sni", name=f"c{ip[-2:]}.example.net", cert=der)
    r = run(iset, f.events)
    assert alerts(r) == sorted([
        ("heur.cert-self-signed", "moderate", PHONE, "c40.example.net", "198.51.100.40"),
        ("heur.cert-expired", "moderate", PHONE, "c41.example.net", "198.51.100.41"),
    ])


def test_certificates_parse_the_same_with_an_older_cryptography(monkeypatch):
    """cryptography < 42 (Debian bookworm's 38, in the SD image) has no not_valid_*_utc: the dates still come out,
    the same as with a current one (they were an 'unparsable certificate' on the box)."""
    from cryptography import x509

    from appliance import certs

    der = traffic.make_cert("old.example.net", "Some CA", "2019-01-01", "2020-01-01", seed=2)
    now = certs.parse(der)
    assert not now.error and now.not_after.startswith("2020-01-01")
    real = x509.load_der_x509_certificate

    class Bookworm:  # what cryptography 38's certificate offers for the dates
        def __init__(self, cert):
            self._cert = cert
            for name in ("not_valid_before", "not_valid_after"):
                utc = getattr(cert, name + "_utc", None)  # absent when this really is an old cryptography
                setattr(self, name, utc.replace(tzinfo=None) if utc is not None else getattr(cert, name))

        def __getattr__(self, name):
            if name.endswith("_utc"):
                raise AttributeError(name)
            return getattr(self._cert, name)

    monkeypatch.setattr(x509, "load_der_x509_certificate", lambda d: Bookworm(real(d)))
    assert certs.parse(der) == now


def test_dyndns_and_rare_tld(iset):
    """A subdomain of a dynamic-DNS provider is moderate, a rare TLD low; the provider itself and .com are quiet."""
    provider = "duckdns.org" if "duckdns.org" in iset.dyndns_suffixes else min(iset.dyndns_suffixes)
    tld = "tk" if "tk" in iset.rare_tlds else min(iset.rare_tlds)
    f = Feed()
    for n in (f"myhome.{provider}", provider, f"shop.example.{tld}", "shop.example.com"):
        f.dns(n, T0)
    r = run(iset, f.events)
    assert alerts(r) == sorted([
        ("heur.dyndns", "moderate", PHONE, f"myhome.{provider}", ""),
        ("heur.rare-tld", "low", PHONE, f"shop.example.{tld}", ""),
    ])


def test_encrypted_dns(iset):
    """DoT on 853 and a known DoH resolver are low visibility warnings; ordinary HTTPS is quiet."""
    doh = min(iset.doh_names)
    f = Feed()
    f.conn("198.51.100.50", T0, dport=853)
    f.dns(doh, T0 + 1, ["198.51.100.51"])
    f.conn("198.51.100.51", T0 + 2, kind="tls.sni", name=doh)
    f.dns("www.example.net", T0 + 3, ["198.51.100.52"])
    f.conn("198.51.100.52", T0 + 4, kind="tls.sni", name="www.example.net")
    r = run(iset, f.events)
    enc = sorted((a.rule, a.level, a.name, a.ip, a.detail["protocol"]) for a in r.alerts
                 if a.rule == "heur.encrypted-dns")
    assert enc == sorted([("heur.encrypted-dns", "low", "", "198.51.100.50", "dot"),
                          ("heur.encrypted-dns", "low", doh, "198.51.100.51", "doh")])
    assert "encrypted-dns" in r.warnings


def test_beaconing(iset):
    """Regular check-ins across the session are moderate; irregular, too few or too frequent ones are quiet."""
    rng = random.Random(3)
    f = Feed()
    f.dns("beacon.example.net", T0, ["198.51.100.60"])
    f.dns("random.example.net", T0, ["198.51.100.61"])
    f.dns("few.example.net", T0, ["198.51.100.62"])
    for i in range(15):                              # every 60 s +-1 s for 14 minutes
        f.conn("198.51.100.60", T0 + 60 * i + rng.uniform(-1, 1), kind="tls.sni", name="beacon.example.net")
    t = T0
    for _ in range(15):                              # irregular
        t += rng.expovariate(1 / 50)
        f.conn("198.51.100.61", t, kind="tls.sni", name="random.example.net")
    for i in range(3):                               # regular but only three times
        f.conn("198.51.100.62", T0 + 100 * i, kind="tls.sni", name="few.example.net")
    r = run(iset, f.events)
    assert alerts(r) == [("heur.beaconing", "moderate", PHONE, "beacon.example.net", "198.51.100.60")]
    b = r.alerts[0]
    assert b.count == 15 and 59 <= b.detail["interval_s"] <= 61
    assert run(iset, f.events, beacon_max_jitter=0.001).alerts == []


def test_many_low_and_moderate_never_make_high(iset):
    """Every heuristic at once on one host gives amber, never red."""
    provider = min(iset.dyndns_suffixes)
    name = f"c2.{provider}"
    f = Feed()
    for i in range(12):
        f.conn("198.51.100.70", T0 + 60 * i, dport=8765, kind="http.host", name=name, method="POST",
               up=400_000, cert=traffic.make_cert(name))
    r = run(iset, f.events)
    assert {a.level for a in r.alerts} == {"low", "moderate"}
    assert {a.rule for a in r.alerts} >= {"heur.dyndns", "heur.http-unusual-port", "heur.http-upload",
                                          "heur.cert-self-signed", "heur.ip-without-dns", "heur.beaconing"}
    assert r.verdict == "amber"


# ---- devices and sessions ---------------------------------------------------------------
def test_devices_have_their_own_verdicts(iset, c2):
    """Two phones: one red, one green; DHCP names and addresses are kept; the session is red."""
    bad, good = Feed(), Feed(OTHER, OTHER_IP)
    good.frame = 100
    bad.ev("dhcp", T0, name="android-7f3a", data=PHONE_IP, src="0.0.0.0")
    good.ev("dhcp", T0, name="Pixel-7", data=OTHER_IP, src="0.0.0.0")
    bad.dns(c2[0], T0 + 1)
    good.dns("www.wikipedia.org", T0 + 1, ["185.15.59.224"])
    good.conn("185.15.59.224", T0 + 2, kind="tls.sni", name="www.wikipedia.org")
    r = run(iset, bad.events + good.events)
    got = {(d.mac, d.ip, d.hostname, d.verdict) for d in r.devices}
    assert got == {(PHONE, PHONE_IP, "android-7f3a", "red"), (OTHER, OTHER_IP, "Pixel-7", "green")}
    assert r.verdict == "red"
    assert [d.mac for d in r.devices] == [PHONE, OTHER]     # worst first
    assert r.devices[1].names == {"www.wikipedia.org"}


def test_empty_and_short_sessions(iset):
    """No events: amber (never green) with an 'empty' warning; a two-minute session warns it was short."""
    r = run(iset, [], min_duration_s=300, min_coverage_flows=20)
    assert (r.verdict, r.warnings, r.devices) == ("amber", ["empty"], [])
    assert r.coverage["conclusive"] is False and r.coverage["reasons"] == ["short", "little-traffic"]
    f = Feed()
    f.dns("www.example.net", T0, ["198.51.100.1"])
    f.dns("www.example.net", T0 + 120)
    assert run(iset, f.events, min_duration_s=300).warnings == ["short"]


def test_chunked_feed_equals_whole(iset, c2):
    """Feeding the same events in random chunks gives exactly the result of one batch."""
    f = Feed()
    for i in range(12):
        f.dns(c2[0], T0 + 60 * i, ["203.0.113.10"])
        f.conn("203.0.113.10", T0 + 60 * i + 0.1, kind="tls.sni", name=c2[0])
        f.conn(f"198.51.100.{i}", T0 + 60 * i + 7, dport=4443, kind="tls.sni", name=f"n{i}.example.{'tk'}")
    whole = run(iset, f.events)
    rng = random.Random(1)
    for _ in range(5):
        a = Analyzer(iset)
        i = 0
        while i < len(f.events):
            n = rng.randint(1, 9)
            a.feed(f.events[i:i + n])
            a.result()                                # asking midway changes nothing
            i += n
        part = a.result()
        assert [x.to_dict() for x in part.alerts] == [x.to_dict() for x in whole.alerts]
        assert [d.to_dict(part.alerts) for d in part.devices] == [d.to_dict(whole.alerts) for d in whole.devices]
        assert part.verdict == whole.verdict == "red"


def test_thresholds_from_file(tmp_path):
    """A config file overrides thresholds; unknown keys, wrong types and bad YAML are one-line ConfigErrors."""
    p = tmp_path / "t.yaml"
    p.write_text("upload_bytes: 5000\nbeacon_min_contacts: 4\ntls_ports: [443, 4443]\n")
    t = Thresholds.from_file(p)
    assert (t.upload_bytes, t.beacon_min_contacts, t.tls_ports, t.beacon_max_jitter) == (5000, 4, (443, 4443), 0.15)
    for text, msg in (("upload_byte: 5\n", "unknown threshold"), ("upload_bytes: lots\n", "must be a number"),
                      ("tls_ports: 443\n", "must be a list"), ("beacon_min_contacts: 2.5\n", "whole number"),
                      ("upload_bytes: [\n", "not a valid YAML")):
        p.write_text(text)
        with pytest.raises(ConfigError, match=msg) as exc:
            Thresholds.from_file(p)
        assert "\n" not in str(exc.value)


def test_is_local():
    """Hotspot, loopback, link-local, multicast and broadcast are local; public and documentation ranges are not."""
    assert all(is_local(a) for a in ("10.23.0.1", "192.168.0.5", "224.0.0.251", "255.255.255.255", "fe80::1",
                                     "ff02::fb", "fd23::1", "::ffff:10.0.0.1", "not-an-ip"))
    assert not any(is_local(a) for a in ("8.8.8.8", "203.0.113.9", "2001:db8::1", "198.18.0.1"))


def test_bounded_under_hostile_variety(iset, c2):
    """Thousands of distinct suspicious names are capped with a 'limits' warning; indicator alerts are all kept."""
    provider = min(iset.dyndns_suffixes)
    f = Feed()
    for i in range(300):
        f.dns(f"h{i}.{provider}", T0 + i)
    for n in c2[:20]:
        f.dns(n, T0 + 400)
    r = run(iset, f.events, max_heuristic_alerts=50)
    assert sum(a.rule == "heur.dyndns" for a in r.alerts) == 50
    assert {a.name for a in r.alerts if a.rule == "ioc.dns-query"} == set(c2[:20])
    assert "limits" in r.warnings and r.verdict == "red"
    many = [Event(frame=i + 1, ts=T0 + i, kind="dns.query", name="www.example.net", mac=f"02:00:00:00:{i // 256:02x}:"
                  f"{i % 256:02x}", src=f"10.23.{i // 256}.{i % 256}") for i in range(300)]
    r = run(iset, many, max_devices=100)
    assert len(r.devices) == 100 and "limits" in r.warnings


def test_hostile_events_never_crash(iset):
    """Random kinds, names, addresses, ports and certificates give a valid report, never an exception."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from appliance import report

    kinds = st.sampled_from(["dns.query", "dns.answer", "mdns.query", "tls.sni", "quic.sni", "http.host", "tls.cert",
                             "flow", "dhcp", "unknown.99"])
    addr = st.sampled_from(["", "0.0.0.0", "10.23.0.10", "203.0.113.9", "fd23::10", "2001:db8::1", "not-an-ip",
                            "255.255.255.255", "::"])
    name = st.one_of(st.text(max_size=300), st.sampled_from(["<script>x</script>", "a..b", ".", "x" * 260]))
    event = st.builds(
        lambda i, k, n, s, d, dp, data, der, rr, m, b: Event(
            frame=i + 1, ts=T0 + i, kind=k, name=n, src=s, dst=d, dport=dp, sport=dp ^ 1, data=data, der=der,
            rrtype=rr, mac=m, flow_id=i % 7, method="POST", bytes=(b, b), first=T0 + i, last=T0 + i + 1),
        st.integers(0, 10_000), kinds, name, addr, addr, st.integers(0, 65535),
        st.one_of(addr, name), st.binary(max_size=64), st.sampled_from([1, 5, 28, 0]),
        st.sampled_from(["", PHONE, OTHER]), st.integers(0, 10**9))

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(event, max_size=40))
    def check(events):
        a = Analyzer(iset)
        a.feed(sorted(events, key=lambda e: e.frame))
        doc = report.build(a.result(), [], iset, box_id="b", generated_at="2026-01-01T00:00:00Z")
        report.validate(doc)
        report.render_html(doc, "fr")
        report.text_summary(doc, "en")

    check()


# ---- coverage: what the check could see -------------------------------------------------
def _busy_phone(minutes: float, flows: int, f: Feed | None = None) -> Feed:
    """A phone visiting ordinary sites: `flows` TLS connections spread over `minutes`."""
    f = f or Feed()
    step = minutes * 60 / max(flows, 1)
    for i in range(flows):
        f.dns("www.wikipedia.org", T0 + i * step, ["185.15.59.224"])
        f.conn("185.15.59.224", T0 + i * step + 0.1, kind="tls.sni", name="www.wikipedia.org")
    return f


def _cov(iset, events):
    a = Analyzer(iset)
    a.feed(events)
    return a.result()


def test_long_busy_clean_session_is_green_and_enough(iset):
    """Fifteen minutes and 30 connections with nothing found: green, coverage enough and conclusive."""
    r = _cov(iset, _busy_phone(15, 30).events)
    assert r.verdict == "green" and [d.verdict for d in r.devices] == ["green"]
    c = r.coverage
    assert (c["enough"], c["conclusive"], c["reasons"], c["devices"], c["flows"]) == (True, True, [], 1, 30)
    assert c["duration_s"] == pytest.approx(r.duration)
    assert c["uplink"] is True          # the servers answered (bytes down): the phone had internet


def test_short_clean_session_is_not_enough_traffic_to_tell(iset):
    """Four minutes with nothing found is amber with conclusive false and the 'short' reason, never green."""
    r = _cov(iset, _busy_phone(4, 30).events)
    assert r.verdict == "amber" and r.alerts == []
    assert [(d.verdict, d.conclusive) for d in r.devices] == [("amber", False)]
    assert (r.coverage["enough"], r.coverage["conclusive"], r.coverage["reasons"]) == (False, False, ["short"])


def test_quiet_phone_in_a_long_session_is_not_enough_traffic(iset):
    """A phone that made 3 connections in 15 minutes is amber, not green, for 'little traffic'."""
    f = _busy_phone(15, 3)
    r = _cov(iset, f.events)
    assert r.verdict == "amber" and r.coverage["reasons"] == ["little-traffic"]
    assert r.devices[0].flows == 3 and not r.devices[0].conclusive


def test_thin_coverage_never_hides_a_red_or_a_real_amber(iset, c2):
    """Thin coverage changes only green: a hit stays red; a moderate finding stays a conclusive amber."""
    f = Feed()
    f.dns(c2[0], T0)
    r = _cov(iset, f.events)
    assert r.verdict == "red" and r.coverage["conclusive"] and not r.coverage["enough"]
    g = Feed()
    g.conn("198.51.100.7", T0, dport=4444, kind="http.host", name="upload.photos-share.net")  # moderate: HTTP, odd port
    r = _cov(iset, g.events)
    assert r.verdict == "amber" and r.devices[0].conclusive and r.coverage["conclusive"]


def test_encrypted_dns_and_name_only_shares(iset):
    """Encrypted DNS connections against lookups read in clear give the share; QUIC and TLS without a certificate are name-only."""
    f = _busy_phone(15, 20)        # 20 lookups read in clear
    for i in range(4):
        f.conn("10.23.0.1", T0 + i, dport=53, proto="udp")            # their UDP flows: not counted twice
    for i in range(5):
        f.conn("1.1.1.1", T0 + 5 + i, dport=853)                       # DoT connections
    f.conn("142.250.1.1", T0 + 6, kind="quic.sni", name="www.google.com", proto="udp")
    cert = traffic.make_cert("www.example.org")
    f.conn("93.184.216.34", T0 + 7, kind="tls.sni", name="www.example.org", cert=cert)  # TLS 1.2: cert seen
    r = _cov(iset, f.events)
    dns, tls = r.coverage["dns"], r.coverage["tls"]
    assert (dns["plain"], dns["encrypted"], dns["encrypted_share"]) == (20, 5, 0.2)
    # 20 wikipedia TLS flows without a certificate + QUIC are name-only; the example.org flow showed its certificate.
    assert (tls["flows"], tls["quic"], tls["name_only"]) == (22, 1, 21)
    assert tls["name_only_share"] == round(21 / 22, 3)


def test_offline_session_has_no_uplink_and_empty_shares_are_null(iset):
    """Flows that only reach the box (offline mode) mean no uplink; no DNS or TLS gives null shares, not 0."""
    f = Feed()
    for i in range(3):
        f.conn("10.23.0.1", T0 + i, dport=80, down=0)
    c = _cov(iset, f.events).coverage
    assert c["uplink"] is False
    assert c["dns"]["encrypted_share"] is None and c["tls"]["name_only_share"] is None
    assert _cov(iset, []).coverage["uplink"] is None
