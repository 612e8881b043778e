"""Property tests: the C matcher agrees with a slow, obviously correct Python reference."""
from __future__ import annotations

import ipaddress
from array import array

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance.matcher import Matcher

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# A tiny alphabet makes overlaps, shared suffixes and look-alikes frequent.
label = st.text(alphabet="abAB-", min_size=1, max_size=4)
domain = st.lists(label, min_size=1, max_size=3).map(".".join)
keyword = st.text(alphabet="abAB.-", min_size=1, max_size=4)
raw_name = st.text(alphabet="abAB.-", max_size=14)


@st.composite
def names_for(draw, doms):
    """Names that are often a listed domain, a subdomain of one, or a look-alike of one."""
    out = []
    for _ in range(draw(st.integers(0, 25))):
        kind = draw(st.integers(0, 4))
        base = draw(st.sampled_from(doms)) if doms else draw(domain)
        if kind == 0:
            out.append(draw(raw_name))
        elif kind == 1:
            out.append(base)
        elif kind == 2:
            out.append(draw(domain) + "." + base)
        elif kind == 3:
            out.append(draw(label) + base)                     # look-alike: no dot
        else:
            out.append(base + draw(st.sampled_from(["", ".", "..", "x", ".a"])))
    return out


def ref_valid(name: str) -> str | None:
    """The reference normalisation: lower-case, one trailing dot off, no empty label, at most 253 bytes."""
    n = name.lower()
    n = n.removesuffix(".")
    if not n or len(n) > 253 or "" in n.split("."):
        return None
    return n


def ref_names(domains, keywords, names):
    """Every (index, id) the rules say, by brute force over all indicators."""
    out = set()
    for i, name in enumerate(names):
        n = ref_valid(name)
        if n is None:
            continue
        for d, ident in domains:
            d = d.lower()
            if n == d or n.endswith("." + d):
                out.add((i, ident))
        for k, ident in keywords:
            if k.lower() in n:
                out.add((i, ident))
    return out


@SETTINGS
@given(st.data())
def test_names_agree_with_reference(data):
    """Domain and keyword hits equal the brute-force reference; per name, domains come longest first, then keywords."""
    doms = data.draw(st.lists(domain, max_size=12))
    kws = data.draw(st.lists(keyword, max_size=4))
    domains = [(d, i) for i, d in enumerate(doms)]
    keywords = [(k, 1000 + i) for i, k in enumerate(kws)]
    names = data.draw(names_for(doms))
    m = Matcher.build(domains=domains, keywords=keywords)
    got = m.match_names(names)
    assert len(got) == len(set(got)), "a (name, id) pair reported twice"
    assert set(got) == ref_names(domains, keywords, names)
    assert m.rejected == sum(ref_valid(n) is None for n in names)
    # Order within a name: domain ids (most specific first), then keyword ids.
    dlen = {i: len(d.rstrip(".")) for d, i in domains}
    for idx in range(len(names)):
        ids = [ident for i, ident in got if i == idx]
        kinds = [ident >= 1000 for ident in ids]
        assert kinds == sorted(kinds)
        lens = [dlen[ident] for ident in ids if ident < 1000]
        assert lens == sorted(lens, reverse=True)


# Long names: labels up to 70 bytes (sometimes empty), so that dots fall on
# every offset of the 64-byte words the matcher keeps them in, and names pass 253.
long_label = st.text(alphabet="aAb", max_size=70)
long_name = st.lists(long_label, min_size=1, max_size=10).map(".".join)


@SETTINGS
@given(st.data())
def test_long_names_agree_with_reference(data):
    """Names up to and past 253 bytes, from packed bytes and as lines: hits and rejections equal the reference."""
    names = data.draw(st.lists(long_name, min_size=1, max_size=8))
    doms = set()
    for n in names:  # a label suffix of some valid names, so that long names hit
        v = ref_valid(n)
        if v and data.draw(st.booleans()):
            parts = v.split(".")
            doms.add(".".join(parts[data.draw(st.integers(0, len(parts) - 1)):]))
    doms |= {ref_valid(d) for d in data.draw(st.lists(long_name.filter(lambda d: ref_valid(d) is not None),
                                                       max_size=3))}
    domains = [(d, i) for i, d in enumerate(sorted(doms))]
    keywords = [(k, 1000 + i) for i, k in enumerate(data.draw(st.lists(keyword, max_size=2)))]
    m = Matcher.build(domains=domains, keywords=keywords)
    want = ref_names(domains, keywords, names)
    enc = [n.encode() for n in names]
    offs = array("I", [0])
    for e in enc:
        offs.append(offs[-1] + len(e))
    got = m.match_names_bytes(b"".join(enc), offs)
    assert set(got) == want and len(got) == len(set(got))
    assert m.rejected == sum(ref_valid(n) is None for n in names)
    starts = {offs[i] + i: i for i in range(len(names))}  # each line start, past i newlines
    got_lines = m.match_lines(b"\n".join(enc))
    assert {(starts[pos], ident) for pos, ident in got_lines} == want


@SETTINGS
@given(st.data())
def test_saved_matcher_agrees(data):
    """A saved and reloaded matcher gives exactly the hits of the matcher it was saved from."""
    import os
    import tempfile
    doms = data.draw(st.lists(domain, max_size=10))
    kws = data.draw(st.lists(keyword, max_size=3))
    names = data.draw(names_for(doms))
    m = Matcher.build(domains=[(d, i) for i, d in enumerate(doms)], keywords=[(k, 50 + i) for i, k in enumerate(kws)])
    fd, path = tempfile.mkstemp(suffix=".pcm")
    os.close(fd)
    try:
        m.save(path, [bytes([i]) * i for i in range(60)])
        loaded = Matcher.load(path)
        assert loaded.match_names(names) == m.match_names(names)
        assert loaded.metadata(7) == b"\x07" * 7
    finally:
        os.unlink(path)


v4net = st.builds(lambda a, p: ipaddress.ip_network((a, p), strict=False),
                  st.integers(0, 2**32 - 1), st.integers(0, 32))
v6net = st.builds(lambda a, p: ipaddress.ip_network((a, p), strict=False),
                  st.integers(0, 2**128 - 1), st.integers(0, 128))


@st.composite
def addrs_near(draw, nets):
    """Addresses inside, at the edges of, or just outside the given networks, plus random ones."""
    out = []
    for _ in range(draw(st.integers(0, 20))):
        if nets and draw(st.booleans()):
            net = draw(st.sampled_from(nets))
            base = int(net.network_address)
            off = draw(st.sampled_from([0, net.num_addresses - 1, net.num_addresses, -1]))
            val = (base + off) % (2 ** net.max_prefixlen)
            out.append(ipaddress.ip_address(val) if net.version == 4 else ipaddress.IPv6Address(val))
        elif draw(st.booleans()):
            out.append(ipaddress.IPv4Address(draw(st.integers(0, 2**32 - 1))))
        else:
            out.append(ipaddress.IPv6Address(draw(st.integers(0, 2**128 - 1))))
    return out


@SETTINGS
@given(st.data())
def test_ips_agree_with_reference(data):
    """Every covering prefix is reported, longest first, as `address in network` says."""
    nets = data.draw(st.lists(st.one_of(v4net, v6net), max_size=12))
    pairs = [(n, i) for i, n in enumerate(nets)]
    addrs = data.draw(addrs_near(nets))
    m = Matcher.build(ips=pairs)
    got = m.match_ips([str(a) for a in addrs])

    def covers(net, addr):
        if addr.version == 6 and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        if net.version == 6 and net.prefixlen >= 96 and ipaddress.ip_network("::ffff:0:0/96").supernet_of(net):
            net = ipaddress.ip_network((int(net.network_address) & 0xFFFFFFFF, net.prefixlen - 96))
        return net.version == addr.version and addr in net

    want = {(i, ident) for i, a in enumerate(addrs) for n, ident in pairs if covers(n, a)}
    assert set(got) == want and len(got) == len(want)
    for idx in range(len(addrs)):
        lens = [nets[ident].prefixlen - (96 if nets[ident].version == 6 and nets[ident].prefixlen >= 96 and
                                         ipaddress.ip_network("::ffff:0:0/96").supernet_of(nets[ident]) else 0)
                for i, ident in got if i == idx]
        assert lens == sorted(lens, reverse=True)


@SETTINGS
@given(st.lists(st.binary(min_size=20, max_size=20) | st.binary(min_size=32, max_size=32), max_size=10),
       st.lists(st.binary(min_size=0, max_size=33), max_size=10))
def test_hashes_agree_with_reference(digests, others):
    """A fingerprint matches exactly the indicators equal to it."""
    pairs = [(d, i) for i, d in enumerate(digests)]
    queries = digests + others
    m = Matcher.build(hashes=pairs)
    want = {(q, i) for q, d in enumerate(queries) for dd, i in pairs if d == dd}
    assert set(m.match_hashes(queries)) == want
