"""Analysis throughput on a large capture, and peak memory that does not grow with the capture.

The capture is the shared Ethernet captures concatenated many times
(mergecap -a, cached in build/bench). Measured: packets/s and MB/s of the whole
path (C core -> events -> Analyzer -> Result) with the shipped indicator set,
next to tshark extracting the same kinds of names from the same file; and
the peak RSS (VmHWM) of a fresh process analysing a 16 MB and a 64 MB
capture: the difference must stay small, since the engine's state is bounded.

Run with ``make bench``.
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import bigcap
import pytest

from appliance import indicators
from appliance.analysis import analyze_files

pytestmark = pytest.mark.bench
ROOT = Path(__file__).resolve().parents[2]
MB = 1 << 20


@pytest.fixture(scope="module")
def big():
    """A capture of at least 64 MB and its packet count."""
    path = bigcap.big_capture(64 * MB)
    return path, bigcap.packet_count(path)


def test_analyze_throughput(benchmark, big):
    """Whole-file analysis speed, with tshark's field extraction on the same file as a reference."""
    path, packets = big
    iset = indicators.load_default()
    result = benchmark.pedantic(lambda: analyze_files([path], iset), rounds=3, iterations=1)[0]
    secs = benchmark.stats.stats.min
    size = path.stat().st_size
    t0 = time.perf_counter()
    subprocess.run(["tshark", "-r", str(path), "-T", "fields", "-e", "dns.qry.name",
                    "-e", "tls.handshake.extensions_server_name", "-e", "http.host"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=1800)
    tshark = time.perf_counter() - t0
    benchmark.extra_info.update(packets=packets, mbytes=round(size / MB, 1), packets_per_s=round(packets / secs),
                                mb_per_s=round(size / MB / secs, 1), tshark_s=round(tshark, 2),
                                events=result.events, alerts=len(result.alerts))
    print(f"\nanalyze: {packets} packets, {size / MB:.1f} MB in {secs:.2f} s = {packets / secs:,.0f} packets/s, "
          f"{size / MB / secs:.1f} MB/s; tshark fields on the same file: {tshark:.2f} s "
          f"({tshark / secs:.1f}x our time); {result.events} events, {len(result.alerts)} alerts")
    assert result.events > 0


_PEAK = """
import sys
from appliance import indicators
from appliance.analysis import analyze_files
iset = indicators.load_default()
result, _ = analyze_files([sys.argv[1]], iset)
hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]
print(hwm, result.events)
"""


def _peak_kib(path: Path) -> tuple[int, int]:
    out = subprocess.run([sys.executable, "-c", _PEAK, str(path)], capture_output=True, text=True, check=True,
                         cwd=ROOT, timeout=1800).stdout.split()
    return int(out[0]), int(out[1])


def test_peak_memory_bounded(benchmark, big):
    """Peak RSS analysing 64 MB is within 48 MB of analysing 16 MB (state does not grow with the capture)."""
    small = bigcap.big_capture(16 * MB)
    (hwm_small, ev_small), (hwm_big, ev_big) = benchmark.pedantic(
        lambda: (_peak_kib(small), _peak_kib(big[0])), rounds=1, iterations=1)
    benchmark.extra_info.update(peak_rss_mib_16mb=round(hwm_small / 1024), peak_rss_mib_64mb=round(hwm_big / 1024))
    print(f"\npeak RSS: {hwm_small / 1024:.0f} MiB for {small.stat().st_size / MB:.0f} MB ({ev_small} events), "
          f"{hwm_big / 1024:.0f} MiB for {big[0].stat().st_size / MB:.0f} MB ({ev_big} events)")
    assert ev_big > 2 * ev_small
    assert hwm_big - hwm_small < 48 * 1024
