"""End to end: `pocketcheck match` against the same job done with pyahocorasick.

The job: read 100k generated domain indicators (a plain list, or the same
list compiled by ``pocketcheck iocs compile``), read 1M names from standard
input (1% hits: indicators and their subdomains; 1% look-alikes that must
not hit; the rest random names), print one line per hit. The reference is
the small pyahocorasick script below (patterns "." + indicator, a hit when
the match ends at the end of "." + name); both must print the same hits.
CPU time (user + system) and peak RSS of each child process are compared,
side by side, ratio printed. Issue 11's target is 5x less CPU than the
reference: asserted for ``match --iocs LIST`` (7.0x when the columnar path
landed); ``match --compiled`` keeps the floor the bench had (3x). (tshark
has no part in this job: it matches no indicator lists.)

The 1M-indicator footprint is :func:`test_match_cli_1m_footprint`: compile
(best of three, asserted against issue 11's <= 3 s CPU and <= 200 MB peak;
1.3 s and 166 MB when the columnar path landed, 9.5 s and 1.27 GB before)
and match RSS against the 64 MB target.

Run with ``make bench``; the numbers are printed and kept in the benchmark's
extra_info.
"""
from __future__ import annotations

import json
import os
import pathlib
import random
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.bench

ROOT = pathlib.Path(__file__).resolve().parents[2]
N_IND, N_NAMES = 100_000, 1_000_000
TLDS = ["com", "net", "org", "io", "app", "info", "xyz", "de", "fr"]

REFERENCE = '''\
import sys
import ahocorasick

A = ahocorasick.Automaton()
with open(sys.argv[1], encoding="utf-8") as fh:
    for line in fh:
        d = line.strip().lower().rstrip(".")
        if d and not d.startswith("#"):
            A.add_word("." + d, d)
A.make_automaton()
out = []
for line in sys.stdin:
    name = line.strip()
    key = "." + name.lower().rstrip(".")
    end = len(key) - 1
    if end > 0:
        for pos, d in A.iter(key):
            if pos == end:
                out.append(f"{name}\\t{d}\\n")
sys.stdout.write("".join(out))
'''


def _label(rnd: random.Random) -> str:
    return "".join(rnd.choices("abcdefghijklmnopqrstuvwxyz0123456789", k=rnd.randint(4, 12)))


@pytest.fixture(scope="module", autouse=True)
def _bytecode():
    """Compiles the package's bytecode once, as an install does (pip, the SD image).

    With PYTHONDONTWRITEBYTECODE set (as on the development machine) every
    run of ``pocketcheck`` would otherwise compile its modules again: about
    0.1 s of CPU that an installed box never spends.
    """
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "appliance")], check=True, timeout=300)


def _write_job(d: pathlib.Path, n_ind: int, seed: int) -> pathlib.Path:
    """Writes n_ind generated indicators, N_NAMES names and the reference script into d (deterministic)."""
    rnd = random.Random(seed)
    inds: dict = {}
    while len(inds) < n_ind:
        dom = f"{_label(rnd)}.{rnd.choice(TLDS)}"
        if rnd.random() < 0.2:
            dom = f"{_label(rnd)}.{dom}"
        inds[dom] = None
    doms = list(inds)
    names = []
    for _ in range(N_NAMES):
        r = rnd.random()
        if r < 0.005:
            names.append(rnd.choice(doms))
        elif r < 0.01:
            names.append(f"{_label(rnd)}.{rnd.choice(doms)}")
        elif r < 0.02:
            names.append(rnd.choice(("x", "not-")) + rnd.choice(doms))  # look-alikes: no hit
        else:
            names.append(f"{_label(rnd)}.{_label(rnd)}.{rnd.choice(TLDS)}")
    (d / "iocs.txt").write_text("\n".join(doms) + "\n")
    (d / "names.txt").write_text("\n".join(names) + "\n")
    (d / "reference.py").write_text(REFERENCE)
    return d


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    """The generated 100k-indicator list, the names, and the reference script."""
    return _write_job(tmp_path_factory.mktemp("matchcli"), N_IND, 2026)


# Runs argv (stdin and stdout files) in a fresh wrapper process, so that
# RUSAGE_CHILDREN there is this one child's CPU and peak RSS alone.
_WRAPPER = """
import json, resource, subprocess, sys
with open(sys.argv[1], "rb") as fh, open(sys.argv[2], "wb") as out:
    rc = subprocess.run(sys.argv[3:], stdin=fh, stdout=out, check=False).returncode
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps([rc, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024]))
"""


def _measure(argv, stdin_path, env=None) -> tuple[float, float, str]:
    """Runs a command with stdin from a file; returns (CPU seconds, peak RSS MB, stdout)."""
    out_path = pathlib.Path(str(stdin_path) + f".out{os.getpid()}")
    proc = subprocess.run([sys.executable, "-c", _WRAPPER, str(stdin_path), str(out_path), *argv],
                          capture_output=True, text=True, timeout=900, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    rc, cpu, rss = json.loads(proc.stdout)
    assert rc == 0, proc.stderr
    text = out_path.read_text()
    out_path.unlink()
    return cpu, rss, text


def _cpu_run(argv, stdin_path, env=None) -> tuple[float, str]:
    """Runs a command with stdin from a file; returns (child CPU seconds, stdout)."""
    cpu, _, text = _measure(argv, stdin_path, env)
    return cpu, text


def _side_by_side(benchmark, job, ours_argv, env, label, n_ind=N_IND, iocs="iocs.txt", names="names.txt"):
    """Runs ours and the reference interleaved (best of three), checks the hits agree, prints both; returns the ratio."""
    ref_argv = [sys.executable, str(job / "reference.py"), str(job / iocs)]
    ours, ref = [], []
    for _ in range(3):  # interleaved, best of three: the machine is shared
        cpu, rss, ours_out = _measure(ours_argv, job / names, env)
        ours.append((cpu, rss))
        cpu, rss, ref_out = _measure(ref_argv, job / names)
        ref.append((cpu, rss))
    ours_hits = sorted(tuple(line.split("\t")[:2]) for line in ours_out.splitlines())
    ref_hits = sorted(tuple(line.split("\t")) for line in ref_out.splitlines())
    assert ours_hits == ref_hits
    assert 0.005 * N_NAMES < len(ours_hits) < 0.05 * N_NAMES
    # pytest-benchmark records one more run of ours for its table.
    benchmark.pedantic(_cpu_run, args=(ours_argv, job / names, env), rounds=1, iterations=1)
    ours_cpu, ref_cpu = min(c for c, _ in ours), min(c for c, _ in ref)
    ours_rss, ref_rss = min(r for _, r in ours), min(r for _, r in ref)
    ratio = ref_cpu / ours_cpu
    benchmark.extra_info.update({"indicators": n_ind, "names": N_NAMES, "hits": len(ours_hits),
                                 "pocketcheck_cpu_s": round(ours_cpu, 3), "pyahocorasick_cpu_s": round(ref_cpu, 3),
                                 "cpu_ratio": round(ratio, 2), "pocketcheck_peak_rss_mb": round(ours_rss, 1),
                                 "pyahocorasick_peak_rss_mb": round(ref_rss, 1)})
    print(f"\n{label}, {n_ind} indicators x {N_NAMES} names, {len(ours_hits)} hits: "
          f"pocketcheck {ours_cpu:.2f} s CPU {ours_rss:.0f} MB peak | pyahocorasick script {ref_cpu:.2f} s CPU "
          f"{ref_rss:.0f} MB peak | CPU ratio {ratio:.1f}x (issue 11 target >= 5x: {'met' if ratio >= 5 else 'NOT met'})")
    return ratio


def test_match_cli_vs_pyahocorasick(benchmark, job, tmp_path):
    """pocketcheck match --iocs (the plain list) finds the same hits as the pyahocorasick script with >= 5x less CPU."""
    env = dict(os.environ, POCKETCHECK_CACHE=str(tmp_path / "cache"))
    argv = [str(ROOT / ".venv/bin/pocketcheck"), "match", "--iocs", str(job / "iocs.txt")]
    assert _side_by_side(benchmark, job, argv, env, "match --iocs LIST") >= 5.0


def test_match_cli_compiled_vs_pyahocorasick(benchmark, job, tmp_path):
    """pocketcheck match --compiled (the same list, compiled once) finds the same hits with >= 3x less CPU."""
    env = dict(os.environ, POCKETCHECK_CACHE=str(tmp_path / "cache"))
    compiled = tmp_path / "iocs.pcm"
    subprocess.run([str(ROOT / ".venv/bin/pocketcheck"), "iocs", "compile", "--iocs", str(job / "iocs.txt"),
                    "-o", str(compiled)], check=True, capture_output=True, timeout=600, env=env)
    argv = [str(ROOT / ".venv/bin/pocketcheck"), "match", "--compiled", str(compiled)]
    assert _side_by_side(benchmark, job, argv, env, "match --compiled") >= 3.0


@pytest.fixture(scope="module")
def job_1m(tmp_path_factory):
    """1M generated indicators (a plain list) and 1M names, made as :func:`job` makes them."""
    return _write_job(tmp_path_factory.mktemp("matchcli1m"), 1_000_000, 2027)


def test_match_cli_1m_footprint(benchmark, job_1m, tmp_path):
    """1M indicators: compile in <= 3 s CPU and <= 200 MB peak (best of 3); match --compiled over 1M names peaks <= 64 MB."""
    env = dict(os.environ, POCKETCHECK_CACHE=str(tmp_path / "cache"))
    compiled = tmp_path / "iocs.pcm"
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    compile_argv = [str(ROOT / ".venv/bin/pocketcheck"), "iocs", "compile", "--iocs", str(job_1m / "iocs.txt"),
                    "-o", str(compiled)]
    runs = []
    for _ in range(3):  # best of three: the machine is shared
        t = time.perf_counter()
        cpu, rss, _ = _measure(compile_argv, empty, env)
        runs.append((cpu, rss, time.perf_counter() - t))
    comp_cpu, comp_rss, comp_wall = (min(r[i] for r in runs) for i in range(3))
    print(f"\niocs compile, 1000000 indicators: {comp_wall:.2f} s wall, {comp_cpu:.2f} s CPU, {comp_rss:.0f} MB peak, "
          f"file {compiled.stat().st_size / 2**20:.1f} MB (issue 11 target <= 3 s and <= 200 MB: "
          f"{'met' if comp_cpu <= 3 and comp_rss <= 200 else 'NOT met'})")
    benchmark.extra_info.update({"compile_cpu_s": round(comp_cpu, 2), "compile_peak_rss_mb": round(comp_rss, 1),
                                 "compiled_file_mb": round(compiled.stat().st_size / 2**20, 1)})
    argv = [str(ROOT / ".venv/bin/pocketcheck"), "match", "--compiled", str(compiled)]
    _side_by_side(benchmark, job_1m, argv, env, "match --compiled, 1M-indicator set", n_ind=1_000_000)
    assert benchmark.extra_info["pocketcheck_peak_rss_mb"] <= 64, "match with 1M indicators must peak at <= 64 MB"
    assert comp_cpu <= 3.0, f"compiling 1M indicators took {comp_cpu:.2f} s CPU (issue 11: <= 3 s)"
    assert comp_rss <= 200, f"compiling 1M indicators peaked at {comp_rss:.0f} MB (issue 11: <= 200 MB)"
