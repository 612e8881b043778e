"""Benchmarks of the C matcher side by side with pyahocorasick and a Python set of label suffixes.

Generated data: 10k, 100k and 1M domain indicators (a fifth of them
subdomains of others), and 1M names per set: 1% hits (the indicator itself or
a subdomain), 1% look-alikes that must not hit ("x" + indicator, indicator +
".au", indicator + "x"), the rest random host names. All three matchers must
find the same hits. Reported per size: names/s (pytest-benchmark), build
time, load time of the compiled file, and memory (RSS growth measured in a
fresh subprocess, since tracemalloc does not see C allocations).

Run with ``make bench``.
"""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from array import array

import pytest

pytestmark = pytest.mark.bench

SIZES = [10_000, 100_000, 1_000_000]
N_NAMES = 1_000_000
TLDS = ["com", "net", "org", "io", "app", "info", "xyz", "co.uk", "de", "fr"]
_ALPHA = b"abcdefghijklmnopqrstuvwxyz0123456789"
_TABLE = bytes(_ALPHA[i % 36] for i in range(256))


def _labels(rnd: random.Random, n: int) -> list[str]:
    """n random labels of 4..12 characters from [a-z0-9]."""
    raw = rnd.randbytes(n * 12).translate(_TABLE).decode()
    lens = rnd.choices(range(4, 13), k=n)
    return [raw[12 * i:12 * i + lens[i]] for i in range(n)]


def generate(n_ind: int, n_names: int = N_NAMES, seed: int = 7) -> tuple[list[str], list[str]]:
    """Returns (indicators, names) for one benchmark size, deterministically."""
    rnd = random.Random(seed + n_ind)
    labs = _labels(rnd, n_ind * 2)
    doms = [f"{labs[i]}.{TLDS[i % len(TLDS)]}" for i in range(n_ind)]
    # A fifth become subdomains of another indicator, so nested hits occur.
    for i in range(0, n_ind, 5):
        doms[i] = f"{labs[n_ind + i]}.{doms[(i + 1) % n_ind]}"
    doms = list(dict.fromkeys(doms))
    nlabs = _labels(rnd, n_names * 2)
    names = []
    for i in range(n_names):
        r = rnd.random()
        d = doms[int(r * 1e9) % len(doms)]
        if r < 0.005:
            names.append(d)
        elif r < 0.01:
            names.append(f"{nlabs[i]}.{d}")
        elif r < 0.0133:
            names.append("x" + d)
        elif r < 0.0166:
            names.append(d + ".au")
        elif r < 0.02:
            names.append(d + "x")
        else:
            names.append(f"{nlabs[i]}.{nlabs[n_names + i]}.{TLDS[i % len(TLDS)]}")
    return doms, names


# ---- the three matchers -----------------------------------------------------
def build_c(doms):
    from appliance.matcher import Matcher
    return Matcher.build(domains=[(d, i) for i, d in enumerate(doms)])


def build_aho(doms):
    import ahocorasick
    a = ahocorasick.Automaton()
    for i, d in enumerate(doms):
        a.add_word("." + d, i)
    a.make_automaton()
    return a


def build_set(doms):
    return {d: i for i, d in enumerate(doms)}


def match_aho(a, names):
    hits = []
    for idx, n in enumerate(names):
        s = "." + n
        last = len(s) - 1
        for end, ident in a.iter(s):
            if end == last:
                hits.append((idx, ident))
    return hits


def match_set(table, names):
    hits = []
    get = table.get
    for idx, n in enumerate(names):
        ident = get(n)
        if ident is not None:
            hits.append((idx, ident))
        p = n.find(".")
        while p >= 0:
            ident = get(n[p + 1:])
            if ident is not None:
                hits.append((idx, ident))
            p = n.find(".", p + 1)
    return hits


def pack(names):
    enc = [n.encode() for n in names]
    offs = array("I", [0])
    total = 0
    for e in enc:
        total += len(e)
        offs.append(total)
    return b"".join(enc), offs


# ---- fixtures ----------------------------------------------------------------
_DATA: dict = {}


def data(n_ind):
    """Indicators, names, packed names and all three built matchers for one size (cached)."""
    if n_ind not in _DATA:
        doms, names = generate(n_ind)
        t = time.perf_counter()
        c = build_c(doms)
        c_build = time.perf_counter() - t
        t = time.perf_counter()
        aho = build_aho(doms)
        aho_build = time.perf_counter() - t
        t = time.perf_counter()
        table = build_set(doms)
        set_build = time.perf_counter() - t
        _DATA.clear()  # keep one size in memory at a time
        _DATA[n_ind] = {"doms": doms, "names": names, "packed": pack(names), "c": c, "aho": aho, "set": table,
                        "build": {"c": c_build, "pyahocorasick": aho_build, "set": set_build}}
    return _DATA[n_ind]


def _info(benchmark, d, impl, n_ind):
    benchmark.extra_info.update({"indicators": n_ind, "names": N_NAMES, "build_s": round(d["build"][impl], 3)})


@pytest.mark.parametrize("n_ind", SIZES, ids=lambda n: f"{n // 1000}k")
def test_c_matcher(benchmark, n_ind):
    """The C matcher over one buffer of 1M names finds the reference hits."""
    d = data(n_ind)
    buf, offs = d["packed"]
    hits = benchmark.pedantic(d["c"].match_names_bytes, args=(buf, offs), rounds=5, iterations=1)
    _info(benchmark, d, "c", n_ind)
    benchmark.extra_info["names_per_s"] = round(N_NAMES / benchmark.stats.stats.min)
    st = d["c"].stats()
    benchmark.extra_info["tables_mb"] = round(st["memory_bytes"] / 2**20, 1)
    assert sorted(hits) == sorted(match_set(d["set"], d["names"]))
    assert len(hits) > N_NAMES // 200
    if n_ind == 1_000_000:
        assert st["memory_bytes"] <= 64 * 2**20, "the 1M-indicator tables must fit in 64 MB"
        assert d["build"]["c"] <= 3.0, "the 1M-indicator matcher must compile in 3 s"


@pytest.mark.parametrize("n_ind", SIZES, ids=lambda n: f"{n // 1000}k")
def test_c_matcher_from_list(benchmark, n_ind):
    """The C matcher from a Python list of str (encoding and packing included)."""
    d = data(n_ind)
    hits = benchmark.pedantic(d["c"].match_names, args=(d["names"],), rounds=3, iterations=1)
    _info(benchmark, d, "c", n_ind)
    assert len(hits) > N_NAMES // 200


@pytest.mark.parametrize("n_ind", SIZES, ids=lambda n: f"{n // 1000}k")
def test_pyahocorasick(benchmark, n_ind):
    """pyahocorasick with "." + indicator, a hit when the match ends at the end of "." + name."""
    d = data(n_ind)
    hits = benchmark.pedantic(match_aho, args=(d["aho"], d["names"]), rounds=2, iterations=1)
    _info(benchmark, d, "pyahocorasick", n_ind)
    assert sorted(hits) == sorted(match_set(d["set"], d["names"]))


@pytest.mark.parametrize("n_ind", SIZES, ids=lambda n: f"{n // 1000}k")
def test_python_suffix_set(benchmark, n_ind):
    """A Python dict looked up with every label suffix of each name."""
    d = data(n_ind)
    hits = benchmark.pedantic(match_set, args=(d["set"], d["names"]), rounds=2, iterations=1)
    _info(benchmark, d, "set", n_ind)
    assert len(hits) > N_NAMES // 200


def test_speedup_over_pyahocorasick(benchmark, tmp_path):
    """At 10k indicators the C matcher is at least 5x faster than pyahocorasick on the same names.

    Prints issue 11's figure (>= 20 M names/s at 10k indicators), met or NOT
    met, twice: through Python (``match_names_bytes`` on one packed buffer, what
    the box's analysis calls) and from C alone (native/bench/bench_matcher.c on
    the same names: the cost of cffi and of building the result list is the
    difference). Each is the best of 10 rounds in CPU time, with the best wall
    time beside it: on a loaded machine (two cores shared by several engineers
    here) the wall time also counts the other processes' turns, and even the
    CPU time drops with the caches they share, so the figure needs an idle
    machine; the load average is printed with it.
    """
    d = data(10_000)
    buf, offs = d["packed"]
    hits = benchmark.pedantic(d["c"].match_names_bytes, args=(buf, offs), rounds=10, iterations=1)
    c_best = benchmark.stats.stats.min
    aho_best = min(_timed(match_aho, d["aho"], d["names"]) for _ in range(2))
    py_cpu = min(_cpu_timed(d["c"].match_names_bytes, buf, offs) for _ in range(10))
    native = _native_bench(d["doms"], d["names"], tmp_path)
    py_rate, c_rate = N_NAMES / py_cpu, native["cpu_mnames_per_s"] * 1e6
    benchmark.extra_info.update({"c_names_per_s": round(N_NAMES / c_best), "c_cpu_names_per_s": round(py_rate),
                                 "native_names_per_s": round(c_rate),
                                 "aho_names_per_s": round(N_NAMES / aho_best),
                                 "speedup": round(aho_best / c_best, 1)})

    def verdict(rate):
        return "met" if rate >= 20e6 else "NOT met"

    print(f"\nbatch, 10k indicators x {N_NAMES} names (load average {os.getloadavg()[0]:.1f}; best of 10, "
          f"CPU time (wall time)): C matcher through Python {py_rate / 1e6:.1f} ({N_NAMES / c_best / 1e6:.1f}) "
          f"M names/s, C alone {c_rate / 1e6:.1f} ({native['wall_mnames_per_s']:.1f}) M names/s; "
          f"pyahocorasick {N_NAMES / aho_best / 1e6:.2f} M names/s (wall), ratio {aho_best / c_best:.1f}x (wall)\n"
          f"issue 11 (>= 20 M names/s, CPU time): through Python {verdict(py_rate)}, C alone {verdict(c_rate)}")
    assert native["names"] == N_NAMES and native["hits"] == len(hits), "the C bench matched other names"
    assert aho_best / c_best >= 5


def _native_bench(doms, names, tmp_path) -> dict:
    """Builds native/bench/bench_matcher (make) and runs it on these indicators and names; its JSON line."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    subprocess.run(["make", "-s", "build/bench/bench_matcher"], cwd=root, check=True, timeout=300)
    write_names(doms, names, str(tmp_path))
    out = subprocess.run([os.path.join(root, "build/bench/bench_matcher"), str(tmp_path / "domains.txt"),
                          str(tmp_path / "names.txt"), "10"], capture_output=True, text=True, timeout=300, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _timed(fn, *args):
    t = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t


def _cpu_timed(fn, *args):
    t = time.process_time()
    fn(*args)
    return time.process_time() - t


@pytest.mark.parametrize("n_ind", SIZES, ids=lambda n: f"{n // 1000}k")
def test_compile_load_memory(benchmark, n_ind, tmp_path):
    """Build time, compiled-file size, mmap load time and RSS growth of each matcher, in fresh subprocesses."""
    report = {}
    for impl in ("c", "pyahocorasick", "set"):
        out = subprocess.run([sys.executable, __file__, "rss", impl, str(n_ind), str(tmp_path)],
                             capture_output=True, text=True, timeout=900, check=True)
        report[impl] = json.loads(out.stdout.strip().splitlines()[-1])
    path = tmp_path / "c.pcm"
    from appliance.matcher import Matcher
    loaded = benchmark.pedantic(Matcher.load, args=(path,), rounds=5, iterations=1)
    assert loaded.stats()["domains"] == report["c"]["domains"]
    benchmark.extra_info.update({f"{impl}_{k}": v for impl, r in report.items() for k, v in r.items()})
    benchmark.extra_info["file_mb"] = round(os.path.getsize(path) / 2**20, 1)
    sys.stderr.write(f"\n{n_ind} indicators: {json.dumps(report)}\n")
    if n_ind == 1_000_000:
        assert report["c"]["build_s"] <= 3.0
        assert report["c"]["tables_mb"] <= 64


def _vmrss() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def _child(impl: str, n_ind: int, tmp: str) -> None:
    """Measures one matcher in this fresh process and prints a JSON line."""
    import gc
    doms, _ = generate(n_ind, n_names=0)
    gc.collect()
    base = _vmrss()
    t = time.perf_counter()
    obj = {"c": build_c, "pyahocorasick": build_aho, "set": build_set}[impl](doms)
    build_s = time.perf_counter() - t
    gc.collect()
    res = {"build_s": round(build_s, 3), "rss_mb": round((_vmrss() - base) / 2**20, 1)}
    if impl == "c":
        st = obj.stats()
        res["tables_mb"] = round(st["memory_bytes"] / 2**20, 1)
        res["domains"] = st["domains"]
        path = os.path.join(tmp, "c.pcm")
        obj.save(path)
        del obj
        gc.collect()
        from appliance.matcher import Matcher
        base2 = _vmrss()
        t = time.perf_counter()
        loaded = Matcher.load(path)
        res["load_s"] = round(time.perf_counter() - t, 4)
        loaded.match_names(["probe.example.com"])
        res["loaded_rss_mb"] = round((_vmrss() - base2) / 2**20, 1)
    print(json.dumps(res))


def write_names(doms, names, out_dir: str) -> None:
    """Writes indicators and names, one a line, for the C bench (native/bench/bench_matcher.c)."""
    os.makedirs(out_dir, exist_ok=True)
    for fname, lines in (("domains.txt", doms), ("names.txt", names)):
        with open(os.path.join(out_dir, fname), "w") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "rss":
        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
        _child(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    elif len(sys.argv) == 4 and sys.argv[1] == "dump":  # make bench-c
        write_names(*generate(int(sys.argv[2])), sys.argv[3])
