"""Packet floods fed through a feed reader, in a child process that reports its memory.

Run as ``python tests/support/hostile/flood.py KIND COUNT [--analyze] [--evil NAME]``;
prints one JSON object: RSS before and after (kB, from /proc/self/status),
peak RSS (VmHWM), the reader's counters and what came out.

Kinds:
  flows  COUNT distinct UDP flows (a DNS query each, from distinct ports and addresses)
  names  COUNT distinct names queried over a few flows (many names, few flows)
  syn    COUNT SYNs from distinct addresses/ports to one server (half-open flood)
  ooo    COUNT TCP flows each holding an out-of-order 1 KiB segment (stream memory)

With --evil NAME the phone first starts a TLS connection to NAME whose
ClientHello never completes (only its first segment is sent), so the SNI can
only come out when the flood evicts that flow.
"""
from __future__ import annotations

import json
import struct
import sys

from appliance.native import Reader
from appliance.sim.packets import client_hello, dns_query, tls_record, up_tcp

DRAIN_EVERY = 512


def rss_kb(field: str = "VmRSS") -> int:
    """The process's resident set (or VmHWM, its peak) in kB."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _eth_ip_udp_template():
    # Headers are packed here rather than with appliance.sim.packets: millions of frames, addresses
    # as integers, IP checksum 0 (the core does not verify it), at a fraction of the cost per frame.
    eth = bytes.fromhex("02005e000001" "020000000005" "0800")
    return eth


def flood_frames(kind: str, count: int):
    """Yields (ts, frame) for a flood of the given kind."""
    eth = _eth_ip_udp_template()
    t0 = 1_800_000_000.0
    if kind in ("flows", "names"):
        for i in range(count):
            if kind == "flows":
                src = 0x0A000000 | (i >> 14)          # 10.x.y.z: a new address every 16384 ports
                sport = 1024 + (i & 0x3FFF)
                name = f"f{i}.flood.example"
            else:
                src, sport = 0x0A170005, 40000 + (i % 8)  # one phone, 8 flows
                name = f"n{i}.names.example"
            q = dns_query(name, i & 0xFFFF)
            udp = struct.pack("!HHHH", sport, 53, 8 + len(q), 0) + q
            ip = struct.pack("!BBHHHBBHII", 0x45, 0, 20 + len(udp), i & 0xFFFF, 0, 64, 17, 0, src, 0x0A170001)
            yield t0 + i * 1e-4, eth + ip + udp
    elif kind == "syn":
        for i in range(count):
            src = 0xC6120000 | (i >> 14)
            tcp = struct.pack("!HHIIBBHHH", 1024 + (i & 0x3FFF), 443, (i * 7919) & 0xFFFFFFFF, 0, 0x50, 0x02, 65535, 0, 0)
            ip = struct.pack("!BBHHHBBHII", 0x45, 0, 40, i & 0xFFFF, 0, 64, 6, 0, src, 0xC6336407)
            yield t0 + i * 1e-5, eth + ip + tcp
    elif kind == "ooo":
        junk = b"\xAA" * 1024
        for i in range(count):
            src = 0x0A000000 | (i >> 14)
            sport = 1024 + (i & 0x3FFF)
            for flags, seq, data in ((0x02, 1000, b""), (0x18, 1001 + 5000, junk)):
                tcp = struct.pack("!HHIIBBHHH", sport, 443, seq, 0, 0x50, flags, 65535, 0, 0) + data
                ip = struct.pack("!BBHHHBBHII", 0x45, 0, 20 + len(tcp), i & 0xFFFF, 0, 64, 6, 0, src, 0xC6336407)
                yield t0 + i * 1e-4, eth + ip + tcp
    else:
        raise SystemExit(f"unknown flood kind {kind}")


def evil_prefix(name: str):
    """A TLS connection to ``name`` whose ClientHello is cut after its first segment (SNI inside it)."""
    rec = tls_record(client_hello(name))
    t = 1_799_999_990.0
    server = "203.0.113.66"
    return [(t, up_tcp(51000, 443, 1000, 0, "S", dst=server)),
            (t + 0.01, up_tcp(51000, 443, 1001, 1, "A", dst=server)),
            (t + 0.02, up_tcp(51000, 443, 1001, 1, "PA", rec[:180], dst=server))]


def main(argv) -> int:
    kind, count = argv[0], int(argv[1])
    analyze = "--analyze" in argv
    evil = argv[argv.index("--evil") + 1] if "--evil" in argv else None
    analyzer = None
    if analyze:
        from appliance.analysis import Analyzer

        analyzer = Analyzer()
    import gc

    gc.collect()
    before = rss_kb()
    out = {"kind": kind, "count": count, "events": 0, "evil_events": [], "flow_events": 0, "evicted": 0}
    r = Reader.open_feed()

    def take(batch):
        out["events"] += len(batch)
        for ev in batch:
            if ev.kind == "flow":
                out["flow_events"] += 1
                out["evicted"] += ev.evicted
            elif evil and ev.name == evil:
                out["evil_events"].append({"kind": ev.kind, "partial": ev.partial, "frame": ev.frame})
        if analyzer is not None:
            analyzer.feed(batch)

    for ts, fr in evil_prefix(evil) if evil else ():  # the unfinished evil hello first, then the flood
        r.feed(1, ts, fr)
    for n, (ts, fr) in enumerate(flood_frames(kind, count), 1):
        r.feed(1, ts, fr)
        if n % DRAIN_EVERY == 0:
            while True:
                b = r.next_batch()
                if not b:
                    break
                take(b)
    r.finish()
    for b in r.batches():
        take(b)
    after = rss_kb()
    out.update(rss_before_kb=before, rss_after_kb=after, rss_peak_kb=rss_kb("VmHWM"), stats=r.stats(),
               status=r.status)
    if analyzer is not None:
        res = analyzer.result()
        out.update(verdict=res.verdict, alerts=len(res.alerts), warnings=res.warnings,
                   alert_names=sorted({a.name for a in res.alerts if a.name})[:20])
    r.close()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
