"""IndicatorSet: matching, allowlist precedence, severities, compiled files, atomic loading."""
import json

import pytest

from appliance import indicators
from appliance.errors import CompiledFileError, ConfigError, IocFormatError
from appliance.indicators import Hit, Indicator, load, load_compiled


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Compiled caches go to a temporary folder, not the user's home."""
    monkeypatch.setenv("POCKETCHECK_CACHE", str(tmp_path / "cache"))
    indicators._DEFAULT_MEMO.clear()


@pytest.fixture
def small(tmp_path):
    """A small hand-written set in three formats plus an allowlist."""
    (tmp_path / "c2.yaml").write_text(
        "- name: EvilSpy\n  type: stalkerware\n"
        "  websites: [evilspy.example]\n"
        "  distribution: [dl.evilspy.example, 'https://github.com/someone/evilspy']\n"
        "  c2:\n    domains: [api.evilspy.example, x1.firebaseio.com, 1ca43.appspot.com]\n"
        "    ips: [203.0.113.10]\n"
        "- name: KidWatch\n  type: watchware\n  websites: [kidwatch.example]\n")
    (tmp_path / "tc.json").write_text(json.dumps({"iocs": [
        {"type": "sha1cert", "tag": "stalkerware", "tlp": "white", "value": "AB" * 20},
        {"type": "cidr", "tag": "stalkerware", "tlp": "white", "value": "198.51.100.0/24"},
        {"type": "ip6addr", "tag": "stalkerware", "tlp": "white", "value": "2001:db8::66"},
        {"type": "domain", "tag": "stalkerware", "tlp": "white", "value": "api.evilspy.example"},
        {"type": "freedns", "tag": "suspect", "tlp": "white", "value": "duckdns.org"},
        {"type": "tld", "tag": "suspect", "tlp": "white", "value": ".xyz"},
        {"type": "domain", "tag": "doh", "tlp": "white", "value": "dns.google"},
        {"type": "ip4addr", "tag": "doh", "tlp": "white", "value": "8.8.8.8"},
    ]}))
    (tmp_path / "allow.json").write_text(json.dumps({"elements": [
        {"type": "domain", "element": "firebaseio.com"}, {"type": "domain", "element": "appspot.com"},
        {"type": "domain", "element": "github.com"}, {"type": "cidr", "element": "198.51.0.0/16"},
        {"type": "domain", "element": "kidwatch.example"}]}))
    return [tmp_path / "c2.yaml", tmp_path / "tc.json", tmp_path / "allow.json"]


def values(hits):
    return [h.indicator.value for h in hits]


def test_domain_matching_on_label_boundaries(small):
    """Subdomains hit; look-alikes, suffix tricks and parents do not; case and trailing dot don't matter."""
    s = load(small)
    names = ["api.evilspy.example", "A.B.API.EvilSpy.Example.", "notapi.evilspy.example", "api.evilspy.example.au",
             "evilspy.example", "www.evilspy.example", "example", "noevilspy.example"]
    got = [values(h) for h in s.match_names(names)]
    assert got == [
        ["api.evilspy.example", "api.evilspy.example", "evilspy.example"],
        ["api.evilspy.example", "api.evilspy.example", "evilspy.example"],
        ["evilspy.example"],
        [],
        ["evilspy.example"],
        ["evilspy.example"],
        [],
        [],
    ]
    # The most specific indicator comes first; within it, the most severe.
    first = s.match_names(["api.evilspy.example"])[0]
    assert [(h.indicator.category, h.indicator.severity) for h in first] == [
        ("stalkerware-c2", "high"), ("stalkerware-c2", "high"), ("vendor-website", "low")]
    assert {h.indicator.source.rsplit("/", 1)[1] for h in first[:2]} == {"c2.yaml", "tc.json"}
    assert all(isinstance(h, Hit) and h.name == "api.evilspy.example" for h in first)


def test_indicator_beats_allowlist_on_shared_platforms(small):
    """x1.firebaseio.com hits although firebaseio.com is allowlisted; the platform itself neither hits nor alerts."""
    s = load(small)
    hits = s.match_names(["x1.firebaseio.com", "deep.x1.firebaseio.com", "firebaseio.com", "other.firebaseio.com",
                          "1ca43.appspot.com", "appspot.com"])
    assert [values(h) for h in hits] == [["x1.firebaseio.com"], ["x1.firebaseio.com"], [], [],
                                         ["1ca43.appspot.com"], []]
    assert not s.is_allowlisted("x1.firebaseio.com")
    assert not s.is_allowlisted("deep.x1.firebaseio.com")
    assert s.is_allowlisted("firebaseio.com") and s.is_allowlisted("other.firebaseio.com")
    assert not s.is_allowlisted("unknown.example")
    # An allowlisted watchware website is still an (low) indicator.
    assert not s.is_allowlisted("kidwatch.example")
    assert values(s.match_names(["kidwatch.example"])[0]) == ["kidwatch.example"]


def test_url_on_a_shared_platform_is_dropped(small):
    """A distribution URL on github.com does not make github.com an indicator (counted as skipped)."""
    s = load(small)
    assert s.match_names(["github.com"]) == [[]]
    assert s.is_allowlisted("github.com")
    assert s.counts["skipped"]["URL on a shared platform"] == 1


def test_ip_matching_and_allowlist(small):
    """IPv4/IPv6 addresses and CIDRs hit; an indicator inside an allowlisted range still hits."""
    s = load(small)
    hits = s.match_ips(["203.0.113.10", "198.51.100.77", "2001:0db8:0:0::66", "198.51.1.1", "203.0.113.11", "junk"])
    assert [values(h) for h in hits] == [["203.0.113.10"], ["198.51.100.0/24"], ["2001:db8::66"], [], [], []]
    assert s.is_allowlisted("198.51.1.1")
    assert not s.is_allowlisted("198.51.100.77")


def test_certificates(small):
    """Certificate SHA-1s hit in any case or with colons; wrong lengths and junk hit nothing."""
    s = load(small)
    hits = s.match_certs(["ab" * 20, ":".join(["AB"] * 20), "ab" * 19, "zz", "cd" * 32])
    assert [values(h) for h in hits] == [["ab" * 20], ["ab" * 20], [], [], []]
    assert hits[0][0].indicator.kind == "cert-sha1" and hits[0][0].indicator.severity == "high"


def test_default_severities_and_overrides(small):
    """C2 and certificates are high, distribution moderate, websites/watchware low; overrides apply by category."""
    s = load(small)
    sev = {i.value: (i.category, i.severity) for i in s.indicators()}
    assert sev["203.0.113.10"] == ("stalkerware-c2", "high")
    assert sev["dl.evilspy.example"] == ("distribution", "moderate")
    assert sev["evilspy.example"] == ("vendor-website", "low")
    assert sev["kidwatch.example"] == ("watchware", "low")
    assert sev["ab" * 20] == ("stalkerware-c2", "high")
    o = load(small, severities={"watchware": "moderate", "distribution": "high"})
    sev = {i.value: i.severity for i in o.indicators()}
    assert sev["kidwatch.example"] == "moderate" and sev["dl.evilspy.example"] == "high"
    with pytest.raises(ConfigError, match="watchware"):
        load(small, severities={"watchware": "alarming"})


def test_heuristics_data(small):
    """freedns, tld and doh entries fill the heuristics sets, not the indicators."""
    s = load(small)
    assert s.dyndns_suffixes == {"duckdns.org"}
    assert s.rare_tlds == {"xyz"}
    assert s.doh_names == {"dns.google"} and s.doh_ips == {"8.8.8.8"}
    assert s.match_names(["x.duckdns.org", "dns.google"]) == [[], []]


def test_indicator_fields(small):
    """Indicators are frozen dataclasses carrying source and licence."""
    s = load(small)
    ind = s.match_ips(["203.0.113.10"])[0][0].indicator
    assert isinstance(ind, Indicator)
    assert (ind.kind, ind.family, ind.licence) == ("ipv4", "EvilSpy", "unknown")
    with pytest.raises(AttributeError):
        ind.severity = "low"


def test_compiled_round_trip(small, tmp_path):
    """A compiled set answers exactly like the set it came from, with the same version and hash."""
    s = load(small, severities={"watchware": "moderate"})
    out = tmp_path / "set.pcm"
    s.save_compiled(out)
    c = load_compiled(out)
    names = ["api.evilspy.example", "x.x1.firebaseio.com", "kidwatch.example", "nothing.example"]
    assert c.match_names(names) == s.match_names(names)
    assert c.match_ips(["198.51.100.1"]) == s.match_ips(["198.51.100.1"])
    assert c.match_certs(["ab" * 20]) == s.match_certs(["ab" * 20])
    assert (c.version, c.sha256, c.counts) == (s.version, s.sha256, s.counts)
    assert c.is_allowlisted("other.firebaseio.com") and not c.is_allowlisted("x1.firebaseio.com")
    assert c.doh_ips == s.doh_ips
    # Overrides also apply when loading a compiled file.
    c2 = load_compiled(out, severities={"watchware": "low"})
    assert c2.match_names(["kidwatch.example"])[0][0].indicator.severity == "low"


def test_damaged_compiled_file(small, tmp_path):
    """A truncated or foreign compiled file is a CompiledFileError."""
    out = tmp_path / "set.pcm"
    load(small).save_compiled(out)
    data = out.read_bytes()
    (tmp_path / "cut.pcm").write_bytes(data[: len(data) // 2])
    with pytest.raises(CompiledFileError):
        load_compiled(tmp_path / "cut.pcm")
    (tmp_path / "text.pcm").write_text("evil.example\n")
    with pytest.raises(CompiledFileError):
        load_compiled(tmp_path / "text.pcm")


def test_failed_load_changes_nothing(small, tmp_path):
    """Loading a good file and a bad one raises; the set already in use is untouched."""
    in_use = load(small)
    before = (in_use.sha256, in_use.counts, in_use.match_names(["api.evilspy.example"]))
    bad = tmp_path / "bad.txt"
    bad.write_text("fine.example\nnot a name\n")
    with pytest.raises(IocFormatError, match=r"bad\.txt: line 2"):
        load([*small, bad])
    assert (in_use.sha256, in_use.counts, in_use.match_names(["api.evilspy.example"])) == before


def test_version_and_hash_follow_content(small, tmp_path):
    """The same content gives the same hash whatever the order of files; other content another hash."""
    a, b = load(small), load(list(reversed(small)))
    assert a.sha256 == b.sha256 and a.version.startswith("custom-")
    extra = tmp_path / "extra.txt"
    extra.write_text("more.example\n")
    assert load([*small, extra]).sha256 != a.sha256


def test_include_default_and_folders(small, tmp_path):
    """include_default adds the shipped set; a folder loads every file in it."""
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "a.txt").write_text("only-mine.example\n")
    s = load([folder], include_default=True)
    default = indicators.load_default()
    assert s.counts["total"] == default.counts["total"] + 1
    assert s.version.startswith(default.version + "+custom-")
    assert values(s.match_names(["only-mine.example"])[0]) == ["only-mine.example"]
    assert s.dyndns_suffixes == default.dyndns_suffixes


def test_load_default_uses_and_rebuilds_the_cache(tmp_path):
    """The first load compiles into the cache; the next maps it; a damaged cache is rebuilt."""
    first = indicators.load_default()
    cached = list((tmp_path / "cache").glob("iocs-default-*.pcm"))
    assert len(cached) == 1
    indicators._DEFAULT_MEMO.clear()
    second = indicators.load_default()
    assert second._assembled is None  # served from the compiled file
    assert second.sha256 == first.sha256
    cached[0].write_bytes(b"garbage")
    indicators._DEFAULT_MEMO.clear()
    third = indicators.load_default()
    assert third.sha256 == first.sha256
    assert cached[0].stat().st_size > 1000


def test_read_only_cache_is_not_an_error(tmp_path, monkeypatch):
    """When the cache folder cannot be written, the shipped set is built in memory."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("POCKETCHECK_CACHE", str(blocker / "sub"))
    s = indicators.load_default()
    assert s.counts["total"] > 1000


def test_international_names(tmp_path):
    """An IDN indicator matches its Unicode and punycode spellings, and subdomains of either."""
    f = tmp_path / "idn.txt"
    f.write_text("bücher.example\n")
    s = load([f])
    hits = s.match_names(["BÜCHER.example", "xn--bcher-kva.example", "shop.bücher.example", "bucher.example"])
    assert [values(h) for h in hits] == [["xn--bcher-kva.example"]] * 3 + [[]]
