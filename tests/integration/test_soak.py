"""Soak: an eight-hour session with several phones - memory and open files stay flat, verdicts stay right.

Marked ``slow`` (outside the default run): ``pytest -m slow tests/integration/test_soak.py``.
The compressed-time test feeds eight hours of capture time (several phones,
steady traffic) through a feed reader and the Analyzer, sampling RSS and open
file descriptors every simulated half hour; the real-time test runs the real
network simulation for a few minutes.
"""
import os
import random
import time

import pytest
from hostile import soak

from appliance.analysis import Analyzer
from appliance.native import Reader
from appliance.sim.hotspot import SimulatedHotspot
from appliance.sim.phone import stalkerware_names

# Allowed growth between the end of the first hour (caches warm) and the end of the session.
RSS_FLAT_KB = 24 * 1024


def _rss_kb() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.slow
def test_eight_hours_compressed():
    """Eight hours, four phones (one with stalkerware): RSS and fds flat after the first hour, right verdicts."""
    c2 = stalkerware_names(2, seed=3)
    rng = random.Random(8)
    # a visit (DNS + TLS connection) every 3 s on average per phone: ~10 packets/s in all, 300 000 visits
    phones = [soak.Phone(i, c2 if i == 3 else None, random.Random(rng.random()), mean_gap=3.0) for i in range(4)]
    t0 = 1_800_000_000.0
    analyzer = Analyzer()
    samples = []
    t_wall = time.monotonic()
    n = 0
    next_sample = t0 + 1800
    with Reader.open_feed() as r:
        for ts, fr in soak.packets(phones, t0, 8.0):
            r.feed(1, ts, fr)
            n += 1
            if n % 256 == 0:
                analyzer.feed(r.next_batch())
            if ts >= next_sample:
                while True:
                    b = r.next_batch()
                    if not b:
                        break
                    analyzer.feed(b)
                samples.append(((ts - t0) / 3600, _rss_kb(), _fds()))
                next_sample += 1800
        r.finish()
        for b in r.batches():
            analyzer.feed(b)
        stats = r.stats()
    res = analyzer.result()
    wall = time.monotonic() - t_wall
    print(f"soak: {n} packets, {stats['events']} events, {wall:.0f} s wall; samples (h, rss kB, fds): {samples}")
    assert res.duration > 7.9 * 3600
    verdicts = {d.mac: d.verdict for d in res.devices}
    assert verdicts[phones[3].mac] == "red"
    assert all(verdicts[p.mac] == "green" for p in phones[:3]), verdicts
    after_first_hour = [s for s in samples if s[0] >= 1.0]
    rss = [s[1] for s in after_first_hour]
    assert max(rss) - rss[0] < RSS_FLAT_KB, samples
    assert len({s[2] for s in samples}) == 1, samples  # no descriptor leaks
    assert stats["events_dropped"] == 0


@pytest.mark.slow
@pytest.mark.netns
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces)")
def test_real_time_minutes_with_the_simulation(tmp_path):
    """A few real minutes: three simulated phones through dnsmasq, the live capture and the Analyzer; flat memory."""
    from appliance import hotspot

    sim = SimulatedHotspot(offline=False)
    analyzer = Analyzer()
    samples = []
    try:
        sim.start(hotspot.new_ssid(), hotspot.new_passphrase())
        cap = sim.start_capture(tmp_path / "rt.pcap", analyzer.feed)
        phones = [sim.add_phone("stalkerware" if i == 0 else "clean") for i in range(3)]
        deadline = time.monotonic() + 180
        rounds = 0
        while time.monotonic() < deadline:
            for i, ph in enumerate(phones):
                ph.start_traffic(rounds=1, interval=0.5, seed=rounds * 10 + i)
            for ph in phones:
                ph.wait(timeout=120)
            rounds += 1
            samples.append((round(time.monotonic() - deadline + 180), _rss_kb(), _fds()))
        cap.stop()
    finally:
        sim.cleanup()
    res = analyzer.result()
    print(f"real-time soak: {rounds} rounds; samples (s, rss kB, fds): {samples}")
    verdicts = {d.ip: d.verdict for d in res.devices}
    assert verdicts[phones[0].ip] == "red"
    assert all(verdicts.get(p.ip, "green") != "red" for p in phones[1:]), verdicts
    rss = [s[1] for s in samples[1:]]
    assert max(rss) - rss[0] < RSS_FLAT_KB, samples
    assert max(s[2] for s in samples[1:]) - samples[1][2] <= 2, samples
