"""The columnar path of an indicator set: plain lists read in C, one assembler, the hash, the compiled file."""
from __future__ import annotations

import json
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance import iocs_formats
from appliance.errors import CompiledFileError
from appliance.indicators import Source, assemble, load, load_compiled
from appliance.iocs_formats import parse_file
from appliance.matcher import Matcher

# Lines built from what makes a domain clean or not: case, digits, '_', '-', dots, space, tab, '#', '/', ':', CR;
# and hosts-file lines of such names (the C scan takes one-name lines itself).
_TEXT = st.text(alphabet="aZ09_-.. \t#/:\r*", min_size=0, max_size=24)
LINE = st.one_of(_TEXT, st.builds("{}{}{}".format, st.sampled_from(["0.0.0.0", "127.0.0.1", "0.0.0.00"]),
                                  st.sampled_from([" ", "\t", " \t"]),
                                  st.one_of(_TEXT, st.sampled_from(["Localhost.LocalDomain", "evil.example "]))))


def _per_line(path, lines: list) -> tuple[Counter, int, Counter]:
    """What the general per-line reader alone makes of the lines: (kind, value) counts, invalid values, skipped."""
    ctx = iocs_formats._Ctx(str(path), "plain", strict=False)
    for n, line in enumerate(lines, 1):
        iocs_formats._plain_line(ctx, line, n, "list")
    return Counter((r.kind, r.value) for r in ctx.out.records), ctx.out.invalid, ctx.out.skipped


@settings(max_examples=500, deadline=None)
@given(st.lists(LINE, max_size=12))
def test_c_scan_reads_lines_as_the_per_line_reader_does(tmp_path_factory, lines):
    """Whatever the C scan takes as clean domains and hands back, the result equals reading every line in Python."""
    path = tmp_path_factory.mktemp("plain") / "list.txt"
    path.write_bytes("\n".join(lines).encode())
    p = parse_file(path, "plain", strict=False)
    got = Counter((r.kind, r.value) for r in p.all_records())
    want, invalid, skipped = _per_line(path, "\n".join(lines).splitlines())
    assert (got, p.invalid, p.skipped) == (want, invalid, skipped)


def test_block_holds_the_clean_lines_and_records_the_rest(tmp_path):
    """Clean lines (any case, CRLF, one-name hosts lines) go to the block; other lines to records; line numbers hold."""
    f = tmp_path / "mix.txt"
    f.write_bytes(b"A.example\r\nb.example\n# note\n0.0.0.0 c.example\n0.0.0.0 f.example g.example\nd.example\n"
                  b"http://e.example/x\nnot valid\n127.0.0.1 localhost.localdomain\n")
    p = parse_file(f, strict=False)
    assert [r.value for r in p.block.records()] == ["a.example", "b.example", "c.example", "d.example"]
    assert [(r.value, r.via_url) for r in p.records] == [("f.example", False), ("g.example", False),
                                                         ("e.example", True)]
    assert p.invalid == 1 and p.invalid_reasons[0].startswith("line 8:")
    assert p.skipped["hosts-file local name"] == 1


def _hits(iset, name: str) -> list:
    return sorted((h.indicator.value, h.indicator.family) for h in iset.match_names([name])[0])


def test_duplicates_within_and_across_lists(tmp_path):
    """A repeated line is one indicator; one domain in two lists is one group with both families."""
    one, two = tmp_path / "one.txt", tmp_path / "two.txt"
    one.write_text("a.example\nb.example\na.example\nb.example  # again, on the per-line path\n")
    two.write_text("b.example\nc.example\n")
    s = load([one, two])
    assert s.counts["total"] == 4 and s.counts["families"] == 2
    assert _hits(s, "x.b.example") == [("b.example", "one"), ("b.example", "two")]
    assert _hits(s, "a.example") == [("a.example", "one")]
    assert len(s.match_names(["a.example"])[0]) == 1  # not once per repeat
    doc = s.document()
    assert [i[:3] for i in doc["indicators"]] == [["a.example", "domain", "one"], ["b.example", "domain", "one"],
                                                  ["b.example", "domain", "two"], ["c.example", "domain", "two"]]


def test_hash_is_over_content_not_the_path_taken(tmp_path):
    """A value read by the C scan or by the per-line reader gives the same hash; a changed value or severity another."""
    fast, slow = tmp_path / "a" / "list.txt", tmp_path / "b" / "list.txt"
    fast.parent.mkdir()
    slow.parent.mkdir()
    fast.write_text("evil.example\nbad.example\n")
    slow.write_text("evil.example # c2\n0.0.0.0 bad.example  # sinkholed\n")
    pf, ps = parse_file(fast), parse_file(slow)
    assert pf.block is not None and ps.block is None
    pf.extra["source"] = ps.extra["source"] = Source("the list")  # only the content differs
    a, b = assemble([pf]), assemble([ps])
    assert a.sha256 == b.sha256
    assert assemble([pf], severities={"listed": "low"}).sha256 != a.sha256
    other = tmp_path / "c" / "list.txt"
    other.parent.mkdir()
    other.write_text("evil.example\nbad.examplf\n")
    po = parse_file(other)
    po.extra["source"] = Source("the list")
    assert assemble([po]).sha256 != a.sha256


def test_compiled_round_trip_with_every_shape_of_group(tmp_path):
    """Single-record runs, a multi-record group, keywords and addresses come back from the compiled file unchanged."""
    lst, echap = tmp_path / "big.txt", tmp_path / "other.txt"
    lst.write_text("".join(f"host{i}.example\n" for i in range(3000)) + "198.51.100.7\nshared.example\n")
    echap.write_text("shared.example\n203.0.113.0/24\n")
    s = load([lst, echap], severities={"listed": "moderate"})
    out = tmp_path / "set.pcm"
    s.save_compiled(out)
    c = load_compiled(out)
    names = ["host0.example", "a.host2999.example", "shared.example", "nothing.example"]
    assert c.match_names(names) == s.match_names(names)
    assert c.match_ips(["198.51.100.7", "203.0.113.9"]) == s.match_ips(["198.51.100.7", "203.0.113.9"])
    assert (c.version, c.sha256, c.counts) == (s.version, s.sha256, s.counts)
    assert [h.indicator.family for h in c.match_names(["shared.example"])[0]] == ["big", "other"]
    assert sorted(c.indicators(), key=repr) == sorted(s.indicators(), key=repr)


def test_compiled_file_of_the_previous_record_format_is_refused(tmp_path):
    """A compiled file with version-2 indicator records asks to be recompiled."""
    m = Matcher.build(domains=[("evil.example", 1)])
    header = {"format": "pocketcheck-compiled-iocs", "version": 2, "set_version": "x", "sha256": "0" * 64,
              "counts": {}, "groups": 1, "sources": [{"id": "s"}], "profiles": []}
    m.save(tmp_path / "old.pcm", [json.dumps(header).encode(), b"0\tevil.example"])
    with pytest.raises(CompiledFileError, match="recompile"):
        load_compiled(tmp_path / "old.pcm")


def test_damaged_runs_are_refused(tmp_path):
    """Runs that do not start at id 1 or name a missing profile are a damaged header."""
    s = load([_write(tmp_path / "l.txt", "a.example\n")])
    s.save_compiled(tmp_path / "ok.pcm")
    header = json.loads(load_compiled(tmp_path / "ok.pcm")._matcher.metadata(0))
    for runs in ([[2, 0]], [[1, 5]], [[1, 0], [1, 0]]):
        bad = dict(header, runs=runs)
        m = Matcher.build(domains=[("a.example", 1)])
        m.save(tmp_path / "bad.pcm", [json.dumps(bad).encode(), b"a.example"])
        with pytest.raises(CompiledFileError, match="runs"):
            load_compiled(tmp_path / "bad.pcm")


def _write(path, text: str):
    path.write_text(text)
    return path


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_c_scan_of_any_bytes_stores_only_clean_domains(data):
    """Over arbitrary bytes, the C scan stops or ends within the buffer and every value it stores is a clean domain."""
    from appliance.matcher import DomainLines

    lines, pos = DomainLines(data), 0
    while pos < len(data):
        pos = lines.read(pos)
        assert 0 <= pos <= len(data)
        nl = data.find(b"\n", pos)
        pos = len(data) if nl < 0 else nl + 1
    values, offsets = lines.finish()
    assert offsets[0] == 0 and offsets[-1] == len(values) and list(offsets) == sorted(offsets)
    for i in range(len(offsets) - 1):
        v = bytes(values[offsets[i]:offsets[i + 1]]).decode("ascii")
        assert iocs_formats.normalize_domain(v) == v
