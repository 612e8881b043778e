"""Memory regression: ``pocketcheck match --compiled`` with a 1 M-indicator set stays small.

A Pi Zero W has 512 MB for everything. The compiled set is built through the
real save path (:meth:`IndicatorSet.save_compiled`: the C tables plus the
metadata records), then ``pocketcheck match`` runs in a child process over
1 M names on standard input and its peak RSS (``ru_maxrss``, which counts
the mapped file's resident pages too) is read by a small wrapper process, so
the test's own memory and the building are not counted.

The bound is generous (96 MB; ``make bench`` shows the figure against the
64 MB target): format 1 of the compiled file, which validated every index
through the mapping and so made the whole file resident, peaked at 179 MB
on this job.
"""
from __future__ import annotations

import json
import random
import subprocess
import sys

import pytest
from paths import ROOT

from appliance.indicators import IndicatorSet, Source
from appliance.matcher import Matcher

N_IND, N_NAMES = 1_000_000, 1_000_000
RSS_BOUND_MB = 96
_ALPHA = b"abcdefghijklmnopqrstuvwxyz0123456789"
_TABLE = bytes(_ALPHA[i % 36] for i in range(256))

# Runs argv with stdin from a file, output discarded, and prints the child's peak RSS in KiB.
_WRAPPER = """
import resource, subprocess, sys
with open(sys.argv[1], "rb") as fh, open(sys.argv[2], "wb") as out:
    rc = subprocess.run(sys.argv[3:], stdin=fh, stdout=out, check=False).returncode
print(rc, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def _labels(rnd: random.Random, n: int, lo: int = 5, hi: int = 12) -> list[str]:
    raw = rnd.randbytes(n * hi).translate(_TABLE).decode()
    lens = rnd.choices(range(lo, hi + 1), k=n)
    return [raw[hi * i:hi * i + lens[i]] for i in range(n)]


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    """A compiled 1 M-domain set, 1 M names (1% hits), and the expected hits."""
    d = tmp_path_factory.mktemp("matchmem")
    rnd = random.Random(11)
    labs = _labels(rnd, N_IND)
    doms = list(dict.fromkeys(f"{lab}.{('com', 'net', 'org', 'io')[i % 4]}" for i, lab in enumerate(labs)))
    groups = [[[v, "domain", f"family-{i % 7}", "stalkerware-c2", "high", 0]] for i, v in enumerate(doms)]
    matcher = Matcher.build(domains=[(v.encode(), i) for i, v in enumerate(doms, 1)])
    iset = IndicatorSet(matcher=matcher, groups=groups, n_groups=len(groups), sources=[Source("generated")],
                        heuristics={}, version="memtest", sha256="0" * 64,
                        counts={"total": len(groups), "invalid_skipped": 0})
    iset.save_compiled(d / "big.pcm")
    nlabs = _labels(rnd, 2 * N_NAMES, 4, 10)
    names, want = [], 0
    for i in range(N_NAMES):
        if i % 100 == 0:
            names.append(f"{nlabs[i]}.{doms[(i * 7919) % len(doms)]}")
            want += 1
        else:
            names.append(f"{nlabs[i]}.{nlabs[N_NAMES + i]}.example")
    (d / "names.txt").write_text("\n".join(names) + "\n")
    return d, want


def test_match_compiled_1m_peak_rss(job):
    """Matching 1 M names against a 1 M-indicator compiled set peaks below 96 MB RSS and finds every planted hit."""
    d, want = job
    argv = [str(ROOT / ".venv/bin/pocketcheck"), "match", "--compiled", str(d / "big.pcm")]
    out = subprocess.run([sys.executable, "-c", _WRAPPER, str(d / "names.txt"), str(d / "hits.txt"), *argv],
                         capture_output=True, text=True, timeout=300, check=True)
    rc, maxrss_kb = map(int, out.stdout.split())
    assert rc == 0, out.stderr
    lines = (d / "hits.txt").read_text().splitlines()
    assert len(lines) == want
    name, value, kind, family, severity = lines[0].split("\t")
    assert name.endswith("." + value) and kind == "domain" and family.startswith("family-") and severity == "high"
    peak_mb = maxrss_kb / 1024
    print(json.dumps({"indicators": N_IND, "names": N_NAMES, "peak_rss_mb": round(peak_mb, 1)}))
    assert peak_mb <= RSS_BOUND_MB, f"peak RSS {peak_mb:.1f} MB > {RSS_BOUND_MB} MB"
