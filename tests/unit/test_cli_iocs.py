"""`pocketcheck iocs ...` and `pocketcheck match` as a user runs them (subprocess, exit codes, one-line errors)."""
import json
import os
import subprocess

import pytest
from paths import ROOT

CLI = [str(ROOT / ".venv/bin/pocketcheck")]


@pytest.fixture
def env(tmp_path):
    """An environment whose caches and data folders are private to the test."""
    e = dict(os.environ)
    e["POCKETCHECK_CACHE"] = str(tmp_path / "cache")
    e["POCKETCHECK_IOCS_DIR"] = str(tmp_path / "imported")
    return e


def run(env, *args, stdin=None):
    return subprocess.run([*CLI, *map(str, args)], input=stdin, capture_output=True, text=True, timeout=120,
                          env=env, check=False)


def one_line_error(proc, *fragments):
    """Exit 2, exactly one line on stderr, no traceback, and the fragments in it."""
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    for frag in fragments:
        assert frag in lines[0], lines[0]


@pytest.fixture
def files(tmp_path):
    """A good YAML file, a good plain list and a broken list."""
    good = tmp_path / "good.yaml"
    good.write_text("- name: EvilSpy\n  type: stalkerware\n  c2:\n    domains: [c2.evil.example]\n"
                    "    ips: [203.0.113.10]\n  websites: [evil.example]\n")
    plain = tmp_path / "list.txt"
    plain.write_text("# mine\nother.example\n2001:db8::/32\n")
    bad = tmp_path / "bad.txt"
    bad.write_text("fine.example\nnot a name at all\n")
    return good, plain, bad


def test_match_arguments_default_set(env):
    """Matching names and IPs from the command line against the shipped set prints TSV hit lines, in order."""
    p = run(env, "match", "x.1ca43.appspot.com", "appspot.com", "85.10.199.40", "www.example.com")
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == [
        "x.1ca43.appspot.com\t1ca43.appspot.com\tdomain\tTheTruthSpy\thigh",
        "85.10.199.40\t85.10.199.40\tipv4\tAhmyth\thigh",
    ]


def test_match_stdin_with_iocs_files(env, files):
    """Names from stdin (mixed case, trailing dots, IPs, blank lines) against --iocs files; exit 0 with no hits too."""
    good, plain, _ = files
    stdin = "A.C2.Evil.Example.\nnothing.example\n\n203.0.113.10\n2001:db8:1::5\nbücher.example\nother.example\n"
    p = run(env, "match", "--iocs", good, "--iocs", plain, stdin=stdin)
    assert p.returncode == 0, p.stderr
    assert sorted(p.stdout.splitlines()) == sorted([
        "A.C2.Evil.Example.\tc2.evil.example\tdomain\tEvilSpy\thigh",
        "A.C2.Evil.Example.\tevil.example\tdomain\tEvilSpy\tlow",
        "203.0.113.10\t203.0.113.10\tipv4\tEvilSpy\thigh",
        "2001:db8:1::5\t2001:db8::/32\tcidr\tlist\thigh",
        "other.example\tother.example\tdomain\tlist\thigh",
    ])
    empty = run(env, "match", "--iocs", good, stdin="clean.example\n")
    assert (empty.returncode, empty.stdout) == (0, "")


def test_match_severity_override(env, files):
    """--severity CATEGORY=LEVEL changes the severity printed."""
    good, _, _ = files
    p = run(env, "match", "--iocs", good, "--severity", "vendor-website=moderate", "evil.example")
    assert p.stdout == "evil.example\tevil.example\tdomain\tEvilSpy\tmoderate\n"
    one_line_error(run(env, "match", "--iocs", good, "--severity", "vendor-website=scary", "x.example"),
                   "vendor-website")


def test_bad_file_one_line_error(env, files):
    """A broken --iocs file: exit 2, one line naming the file, the line and the reason."""
    _, _, bad = files
    one_line_error(run(env, "match", "--iocs", bad, "x.example"), "bad.txt", "line 2", "expected one name")
    one_line_error(run(env, "iocs", "verify", bad), "bad.txt", "line 2")
    one_line_error(run(env, "match", "--iocs", bad.parent / "missing.txt", "x"), "missing.txt")
    bomb = bad.parent / "bomb.yaml"
    bomb.write_text("- name: &a X\n  names: [*a, *a]\n")
    one_line_error(run(env, "iocs", "verify", bomb), "bomb.yaml", "aliases")
    nonutf = bad.parent / "latin.txt"
    nonutf.write_bytes(b"caf\xe9.example\n")
    one_line_error(run(env, "iocs", "stats", "--iocs", nonutf), "latin.txt", "not UTF-8")


def test_verify_ok(env, files):
    """verify reports each good file with its format and count, and exits 0."""
    good, plain, _ = files
    p = run(env, "iocs", "verify", good, plain)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == [f"{good}: OK (echap-yaml), 3 indicators", f"{plain}: OK (plain), 2 indicators"]


def test_verify_lists_what_it_recovered_from_the_upstream_file(env, iocs_upstream):
    """verify on the shipped upstream ioc.yaml lists the misspelled `c2.ip` values it read and the shared names."""
    path = iocs_upstream / "stalkerware-indicators" / "ioc.yaml"
    p = run(env, "iocs", "verify", path)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].startswith(f"{path}: OK (echap-yaml), ")
    recovered = [ln for ln in lines if ln.startswith("  recovered: ")]
    assert len(recovered) == 2
    assert any("(MobiStealth) c2: 2 value(s) under 'c2.ip' read as 'c2.ips': 72.167.46.196, 5.79.71.114" in ln
               for ln in recovered)
    shared = [ln for ln in lines if ln.startswith("  several families: ")]
    assert "  several families: www.spappmonitoring.com (domain) is listed under EasyPhoneTrack, SpyPhoneApp" \
        in shared and len(shared) == len(set(shared))


def test_import_writes_nothing_unless_all_valid(env, files, tmp_path):
    """import validates every file first: with one bad file nothing is written; then both good files are."""
    good, plain, bad = files
    into = tmp_path / "imported"
    one_line_error(run(env, "iocs", "import", good, bad), "bad.txt")
    assert not into.exists() or not any(into.iterdir())
    p = run(env, "iocs", "import", good, plain)  # default folder from POCKETCHECK_IOCS_DIR
    assert p.returncode == 0, p.stderr
    assert sorted(x.name for x in into.iterdir()) == ["good.json", "list.json"]
    doc = json.loads((into / "good.json").read_text())
    assert doc["format"] == "pocketcheck-iocs"
    # The normalised copy loads back (and is detected as such) with the same hits.
    m = run(env, "match", "--iocs", into, "c2.evil.example", "other.example")
    assert sorted(m.stdout.splitlines()) == sorted([
        "c2.evil.example\tc2.evil.example\tdomain\tEvilSpy\thigh",
        "c2.evil.example\tevil.example\tdomain\tEvilSpy\tlow",
        "other.example\tother.example\tdomain\tlist\thigh"])


def test_import_skip_invalid_warns(env, files, tmp_path):
    """--skip-invalid imports the good values and warns with the count on stderr."""
    _, _, bad = files
    p = run(env, "iocs", "import", "--into", tmp_path / "x", "--skip-invalid", bad)
    assert p.returncode == 0, p.stderr
    assert "skipped 1 invalid value(s)" in p.stderr and "line 2" in p.stderr
    assert json.loads((tmp_path / "x/bad.json").read_text())["indicators"][0][0] == "fine.example"


def test_stats_default_and_json(env):
    """stats describes the shipped set (text and JSON)."""
    p = run(env, "iocs", "stats")
    assert p.returncode == 0, p.stderr
    assert "cert-sha1 132" in p.stdout and "Échap" in p.stdout and "CC-BY-4.0" in p.stdout
    j = run(env, "iocs", "stats", "--json")
    data = json.loads(j.stdout)
    assert data["counts"]["kind"]["cert-sha1"] == 132 and len(data["sha256"]) == 64


def test_compile_and_match_compiled(env, files, tmp_path):
    """compile writes a file that `match --compiled` and `stats --compiled` use; a damaged one is a one-line error."""
    good, plain, _ = files
    out = tmp_path / "mine.pcm"
    p = run(env, "iocs", "compile", "--iocs", good, "--iocs", plain, "-o", out)
    assert p.returncode == 0, p.stderr
    m = run(env, "match", "--compiled", out, "www.c2.evil.example")
    assert m.stdout.splitlines() == ["www.c2.evil.example\tc2.evil.example\tdomain\tEvilSpy\thigh",
                                     "www.c2.evil.example\tevil.example\tdomain\tEvilSpy\tlow"]
    s = run(env, "iocs", "stats", "--compiled", out)
    assert "indicators: 5" in s.stdout
    out.write_bytes(out.read_bytes()[:100])
    one_line_error(run(env, "match", "--compiled", out, "x.example"), "mine.pcm")


def test_format_override(env, tmp_path):
    """--format forces a reader: a plain list read as TinyCheck JSON is a clear error."""
    f = tmp_path / "list.txt"
    f.write_text("evil.example\n")
    one_line_error(run(env, "iocs", "verify", "--format", "tinycheck", f), "list.txt", "invalid JSON")
    assert run(env, "iocs", "verify", "--format", "plain", f).returncode == 0


def test_match_skip_invalid(env, files):
    """match --skip-invalid uses the valid values of a partly broken list and warns on stderr."""
    _, _, bad = files
    p = run(env, "match", "--iocs", bad, "--skip-invalid", "www.fine.example")
    assert p.returncode == 0, p.stderr
    assert p.stdout == "www.fine.example\tfine.example\tdomain\tbad\thigh\n"
    assert "skipped 1 invalid value(s)" in p.stderr


def test_iocs_without_action_prints_help(env):
    """`pocketcheck iocs` alone shows its actions and exits 2."""
    p = run(env, "iocs")
    assert p.returncode == 2 and "import" in p.stdout and "compile" in p.stdout


def test_match_stdin_long_lines_and_no_final_newline(env):
    """An over-long junk line is skipped without matching its tail; a last name without newline still matches."""
    junk = "a" * (10 << 20) + ".1ca43.appspot.com"  # over two blocks: never a host name
    p = run(env, "match", stdin=f"x.1ca43.appspot.com\n{junk}\n1ca43.appspot.com")
    assert p.returncode == 0, p.stderr
    assert [line.split("\t")[0] for line in p.stdout.splitlines()] == ["x.1ca43.appspot.com", "1ca43.appspot.com"]
