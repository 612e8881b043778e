"""The indicator matcher through its Python API: boundary rules, IDN, IPs, fingerprints, the compiled file."""
from __future__ import annotations

import hashlib
import ipaddress
import os

import pytest

from appliance import errors
from appliance.matcher import Matcher
from appliance.names import normalize

# Domains, keywords and the ids they carry; the expectations below are derived by hand from the rules.
DOMAINS = [("evil.com", 1), ("a.evil.com", 2), ("firebaseio.com", 3), ("xn--bcher-kva.example", 4),
           ("shared.example", 5), ("shared.example", 6)]
KEYWORDS = [("stalk", 20), ("spy-", 21)]

NAME_CASES = [
    ("evil.com", [1]),
    ("a.b.evil.com", [1]),
    ("a.evil.com", [2, 1]),
    ("x.a.evil.com", [2, 1]),
    ("notevil.com", []),
    ("evil.com.au", []),
    ("evil.comx", []),
    ("evil-com.net", []),
    ("xevil.com", []),
    ("com", []),
    ("EVIL.COM", [1]),
    ("Sub.Evil.Com.", [1]),
    ("x.firebaseio.com", [3]),
    ("firebaseio.com", [3]),
    ("notfirebaseio.com", []),
    ("bücher.example", [4]),
    ("www.BÜCHER.example", [4]),
    ("xn--bcher-kva.example", [4]),
    ("buecher.example", []),
    ("shared.example", [5, 6]),
    ("stalker.net", [20]),
    ("my-spy-app.evil.com", [1, 21]),
    ("STALK.a.evil.com", [2, 1, 20]),
]

REJECTED = ["a..evil.com", ".evil.com", "evil.com..", "", ".", "a" * 254, "x." * 126 + "evil.com"]


@pytest.fixture(scope="module")
def names_matcher() -> Matcher:
    """A matcher with the domain and keyword table above."""
    return Matcher.build(domains=DOMAINS, keywords=KEYWORDS)


def _by_name(names, hits):
    out = {i: [] for i in range(len(names))}
    for i, ident in hits:
        out[i].append(ident)
    return out


@pytest.mark.parametrize(("name", "want"), NAME_CASES)
def test_name_boundaries(names_matcher, name, want):
    """A name hits exactly its domains on label boundaries (most specific first), then its keywords."""
    got = _by_name([name], names_matcher.match_names([name]))[0]
    assert got == want


def test_batch_equals_one_by_one(names_matcher):
    """Matching the whole table in one batch gives the same hits as one name at a time."""
    names = [n for n, _ in NAME_CASES]
    got = _by_name(names, names_matcher.match_names(names))
    assert [got[i] for i in range(len(names))] == [w for _, w in NAME_CASES]


@pytest.mark.parametrize("name", REJECTED)
def test_rejected_names(names_matcher, name):
    """Names with empty labels or over 253 bytes match nothing and are counted as rejected."""
    assert names_matcher.match_names([name]) == []
    assert names_matcher.rejected == 1


def test_length_limit():
    """A 253-byte name (also with its trailing dot) is matched; 254 bytes is rejected."""
    dom = "b" * 60 + ".example"
    name253 = ("a" * 61 + ".") * 2 + "a" * (253 - 124 - len(dom) - 1) + "." + dom
    assert len(name253) == 253
    m = Matcher.build(domains=[(dom, 7)])
    assert m.match_names([name253, name253 + ".", "a" + name253]) == [(0, 7), (1, 7)]
    assert m.rejected == 1


@pytest.mark.parametrize(("raw", "want"), [
    ("Bücher.Example.", "xn--bcher-kva.example"),
    ("EXAMPLE.com.", "example.com"),
    ("例え.テスト", "xn--r8jz45g.xn--zckzah"),
    ("a..b", None),
    (".a", None),
    ("", None),
    ("é" * 300 + ".com", None),
])
def test_normalize(raw, want):
    """normalize() lower-cases, drops one trailing dot, converts IDN to punycode and refuses non-names."""
    assert normalize(raw) == want


def test_match_names_bytes_fast_path(names_matcher):
    """The zero-copy path over one buffer and a uint32 offsets array agrees with match_names."""
    from array import array
    names = [n for n, _ in NAME_CASES if n.isascii()]
    enc = [n.encode() for n in names]
    offs = array("I", [0])
    for e in enc:
        offs.append(offs[-1] + len(e))
    assert names_matcher.match_names_bytes(b"".join(enc), offs) == names_matcher.match_names(names)


def test_hit_array_growth():
    """A name with more hits than the hit array holds still gets them all (the array grows)."""
    kws = [(f"k{i:04d}", i) for i in range(20000)]
    name = "".join(k for k, _ in kws[:20000:1])[:253]
    m = Matcher.build(keywords=kws)
    expected = {i for k, i in kws if k in name}
    got = m.match_names([name])
    assert {i for _, i in got} == expected and len(got) == len(expected) > 40


IP_SET = [
    (ipaddress.ip_network("0.0.0.0/0"), 100),
    (ipaddress.ip_network("10.0.0.0/8"), 101),
    (ipaddress.ip_address("10.1.2.3"), 102),
    (ipaddress.ip_network("10.1.2.0/24"), 103),
    (ipaddress.ip_network("198.51.100.7/32"), 104),
    (ipaddress.ip_network("2001:db8::/32"), 200),
    (ipaddress.ip_address("2001:db8::1"), 201),
    (ipaddress.ip_network("2001:db8::1/128"), 202),
    (ipaddress.ip_network("::/0"), 203),
]

IP_CASES = [
    ("10.1.2.3", [102, 103, 101, 100]),
    ("10.1.2.4", [103, 101, 100]),
    ("10.200.0.1", [101, 100]),
    ("8.8.8.8", [100]),
    ("198.51.100.7", [104, 100]),
    ("198.51.100.8", [100]),
    ("2001:db8::1", [201, 202, 200, 203]),
    ("2001:0db8:0:0::1", [201, 202, 200, 203]),
    ("2001:DB8:0000:0000:0000:0000:0000:0001", [201, 202, 200, 203]),
    ("2001:db8::2", [200, 203]),
    ("2001:db9::1", [203]),
    ("::ffff:10.1.2.3", [102, 103, 101, 100]),
    ("fe80::1%wlan0", [203]),
    ("not an address", []),
    ("999.1.1.1", []),
]


@pytest.mark.parametrize(("addr", "want"), IP_CASES)
def test_ip_prefixes(addr, want):
    """An address hits every covering prefix, longest first; v4-mapped IPv6 counts as IPv4; /0 covers all."""
    m = Matcher.build(ips=IP_SET)
    got = [i for _, i in m.match_ips([addr])]
    # Equal-length prefixes (two /128 spellings of one address) may come in either order.
    assert sorted(got) == sorted(want)
    lengths = {i: n.prefixlen if hasattr(n, "prefixlen") else n.max_prefixlen for n, i in IP_SET}
    assert [lengths[i] for i in got] == sorted((lengths[i] for i in got), reverse=True)


def test_fingerprints():
    """SHA-1 and SHA-256 fingerprints match exactly; other lengths and near misses do not."""
    s1 = hashlib.sha1(b"cert").digest()
    s2 = hashlib.sha256(b"cert").digest()
    m = Matcher.build(hashes=[(s1, 1), (s2, 2), (s1, 3)])
    got = m.match_hashes([s1, s2, s2[:20], s1[:-1] + b"\0", b"short"])
    assert sorted(got) == [(0, 1), (0, 3), (1, 2)]


def test_bad_indicators():
    """Malformed indicators are refused with IocFormatError naming the problem."""
    with pytest.raises(errors.IocFormatError, match="domain"):
        Matcher.build(domains=[("a..b", 1)])
    with pytest.raises(errors.IocFormatError, match="fingerprint"):
        Matcher.build(hashes=[(b"x" * 19, 1)])
    with pytest.raises(errors.IocFormatError, match="address"):
        Matcher.build(ips=[("10.0.0.0/33", 1)])


def test_save_load_round_trip(tmp_path):
    """A saved matcher loads by mmap, matches identically and serves metadata records lazily."""
    s1 = hashlib.sha1(b"c").digest()
    m = Matcher.build(domains=DOMAINS, keywords=KEYWORDS, ips=IP_SET, hashes=[(s1, 300)])
    meta = [f"record {i}".encode() for i in range(301)]
    path = tmp_path / "iocs.pcm"
    m.save(path, meta)
    loaded = Matcher.load(path)
    names = [n for n, _ in NAME_CASES] + REJECTED
    assert loaded.match_names(names) == m.match_names(names)
    addrs = [a for a, _ in IP_CASES]
    assert loaded.match_ips(addrs) == m.match_ips(addrs)
    assert loaded.match_hashes([s1]) == [(0, 300)]
    assert loaded.metadata(300) == b"record 300" and loaded.metadata(0) == b"record 0"
    with pytest.raises(KeyError):
        loaded.metadata(301)
    st = loaded.stats()
    assert st["loaded"] == 1 and st["memory_bytes"] == os.path.getsize(path) and st["domains"] == 5


def _saved(tmp_path) -> bytes:
    path = tmp_path / "good.pcm"
    Matcher.build(domains=DOMAINS, keywords=KEYWORDS).save(path, [b"m"])
    return path.read_bytes()


@pytest.mark.parametrize(("damage", "message"), [
    (lambda b: b[: len(b) // 2], "truncated"),
    (lambda b: b[:10], "too short"),
    (lambda b: b[:200] + bytes([b[200] ^ 1]) + b[201:], "checksum"),
    (lambda b: b[:-1] + bytes([b[-1] ^ 0x80]), "checksum"),
    (lambda b: b[:8] + (1).to_bytes(4, "little") + b[12:], "version 1.*recompile"),
    (lambda b: b[:8] + (3).to_bytes(4, "little") + b[12:], "version 3"),
    (lambda b: b"NOTMATCH" + b[8:], "magic"),
    (lambda b: b + b"\0" * 8, "truncated or padded"),
])
def test_damaged_file(tmp_path, damage, message):
    """A damaged, truncated or other-version file raises CompiledFileError with a clear reason."""
    bad = tmp_path / "bad.pcm"
    bad.write_bytes(damage(_saved(tmp_path)))
    with pytest.raises(errors.CompiledFileError, match=message):
        Matcher.load(bad)


def test_missing_file(tmp_path):
    """Loading a file that does not exist raises CompiledFileError naming it."""
    with pytest.raises(errors.CompiledFileError, match="missing.pcm"):
        Matcher.load(tmp_path / "missing.pcm")


def test_metadata_needs_a_loaded_matcher():
    """A freshly built matcher has no metadata section to read."""
    with pytest.raises(errors.PocketcheckError):
        Matcher.build(domains=[("evil.com", 0)]).metadata(0)


def test_upstream_indicators(iocs_upstream):
    """Every C2 domain of the Échap set matches itself and a subdomain, and a look-alike prefix does not."""
    hosts = (iocs_upstream / "stalkerware-indicators" / "generated" / "hosts").read_text().split()
    doms = sorted({normalize(h) for h in hosts} - {None})
    assert len(doms) > 900
    m = Matcher.build(domains=[(d, i) for i, d in enumerate(doms)])
    own = {i for _, i in m.match_names(doms)}
    assert own == set(range(len(doms)))
    sub = m.match_names(["zz9." + d for d in doms])
    assert {i for i, _ in sub} == set(range(len(doms)))
    # "zz9" + d is not a subdomain of d; it may still be a subdomain of another listed domain.
    look = ["zz9" + d for d in doms]
    expect = {(i, j) for i, n in enumerate(look) for j, d in enumerate(doms) if n.endswith("." + d)}
    assert set(m.match_names(look)) == expect


def test_file_layout(tmp_path):
    """The file starts with the magic and format 2, little-endian, and its checksum is zlib's CRC-32 of bytes 24.."""
    import zlib
    path = tmp_path / "x.pcm"
    Matcher.build(domains=DOMAINS).save(path, [b"meta" * 100])
    raw = path.read_bytes()
    assert raw[:8] == b"PCMATCH\x1a"
    assert int.from_bytes(raw[8:12], "little") == 2
    assert int.from_bytes(raw[24:32], "little") == len(raw)
    assert int.from_bytes(raw[20:24], "little") == zlib.crc32(raw[24:])
    assert len(raw) % 8 == 0


def test_bytes_and_str_indicators_agree(names_matcher):
    """Domains and keywords given as ASCII bytes build the same matcher as the same values given as str."""
    as_bytes = Matcher.build(domains=[(d.encode(), i) for d, i in DOMAINS],
                             keywords=[(k.encode(), i) for k, i in KEYWORDS])
    names = [n for n, _ in NAME_CASES] + REJECTED
    assert as_bytes.match_names(names) == names_matcher.match_names(names)


def test_fuzz_seeds_are_current_compiled_files(tmp_path):
    """The fuzz harness's compiled-file seeds load: a seed of an older format stops at the version check.

    Regenerate them as native/fuzz/fuzz_matcher.c's top comment says.
    """
    seed_dir = os.path.join(os.path.dirname(__file__), "..", "..", "native", "fuzz", "corpus", "fuzz_matcher")
    seeds = sorted(f for f in os.listdir(seed_dir) if f.startswith("file-"))
    assert len(seeds) >= 5
    for name in seeds:
        with open(os.path.join(seed_dir, name), "rb") as f:
            data = f.read()
        assert data[:1] == b"\x01", f"{name}: not a mode-1 (compiled file) seed"
        path = tmp_path / name
        path.write_bytes(data[1:])
        Matcher.load(path).stats()
