"""The capture core side by side with tshark and pyshark on one large capture (make bench).

Prints packets/s, CPU seconds, peak memory and the ratios; writes them to
build/bench/capture.txt as well, for the closing notes.
"""
import os
import subprocess
import sys
import time

import bigcap
import pytest

pytestmark = pytest.mark.bench

FIELDS = ["frame.number", "ip.src", "ipv6.src", "dns.qry.name", "dns.resp.name", "dns.a", "dns.aaaa",
          "tls.handshake.extensions_server_name", "http.host", "tls.handshake.certificate"]
REPORT = []


def _measure(argv, stdout=subprocess.DEVNULL):
    """Runs argv; returns (wall s, CPU s, peak RSS MB) of that process alone."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=stdout, stderr=subprocess.DEVNULL)
    _, status, ru = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    assert os.waitstatus_to_exitcode(status) == 0, argv
    return wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024


def _line(text):
    REPORT.append(text)
    os.makedirs(bigcap.CACHE, exist_ok=True)
    (bigcap.CACHE / "capture.txt").write_text("\n".join(REPORT) + "\n")
    print(text, file=sys.__stdout__)


@pytest.fixture(scope="module")
def big():
    path = bigcap.big_capture(200_000_000)
    return path, bigcap.packet_count(path)


def test_core_reader(benchmark, big):
    """The C core alone (file -> events in Python batches), timed by pytest-benchmark."""
    from appliance.native import Reader

    path, npkts = big

    def run():
        n = 0
        with Reader.open_file(str(path)) as r:
            for batch in r.batches():
                n += len(batch)
        return n

    events = benchmark.pedantic(run, rounds=3, iterations=1)
    mean = benchmark.stats.stats.mean
    benchmark.extra_info.update(packets=npkts, events=events, packets_per_s=npkts / mean)
    _line(f"core reader: {npkts} packets, {events} events, {npkts / mean:,.0f} packets/s")


def test_extract_vs_tshark_vs_pyshark(big):
    """`pocketcheck extract` vs `tshark -T fields` vs pyshark on the same capture: packets/s, ratio, memory."""
    path, npkts = big
    ours = _measure([sys.executable, "-m", "appliance", "extract", "--format", "tsv", str(path)])
    theirs = _measure(["tshark", "-n", "-r", str(path), "-T", "fields", *[a for f in FIELDS for a in ("-e", f)]])
    # pyshark is far slower: time it on the first 5,000 packets and scale.
    small = bigcap.CACHE / "first5000.pcap"
    subprocess.run(["editcap", "-r", str(path), str(small), "1-5000"], check=True, timeout=120)
    code = ("import pyshark,sys\n"
            "c=pyshark.FileCapture(sys.argv[1], keep_packets=False)\n"
            "n=sum(1 for _ in c)\nc.close()\n")
    py = _measure([sys.executable, "-c", code, str(small)])
    _line(f"extract (ours): {npkts / ours[0]:,.0f} packets/s wall, {npkts / ours[1]:,.0f} packets/s CPU, "
          f"peak {ours[2]:.1f} MB")
    _line(f"tshark -T fields: {npkts / theirs[0]:,.0f} packets/s wall, {npkts / theirs[1]:,.0f} packets/s CPU, "
          f"peak {theirs[2]:.1f} MB")
    _line(f"pyshark (5,000 packets): {5000 / py[0]:,.0f} packets/s wall, peak {py[2]:.1f} MB")
    _line(f"ratio ours/tshark (CPU): {theirs[1] / ours[1]:.1f}x; ours/pyshark (wall): "
          f"{(npkts / ours[0]) / (5000 / py[0]):.0f}x")


def test_memory_bounded_on_1gb():
    """Peak memory of `pocketcheck extract` on a 1 GB capture stays under 64 MB."""
    path = bigcap.big_capture(1_000_000_000)
    wall, _cpu, rss = _measure([sys.executable, "-m", "appliance", "extract", "--format", "tsv", str(path)])
    npkts = bigcap.packet_count(path)
    _line(f"1 GB capture ({npkts} packets): extract peak {rss:.1f} MB, {npkts / wall:,.0f} packets/s wall")
    assert rss < 64, f"peak RSS {rss:.1f} MB"
