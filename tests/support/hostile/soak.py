"""Steady traffic from several phones over hours of capture time, generated packet by packet.

Each phone resolves a name through the box (DNS query + answer) and opens a
TLS connection with that name in its ClientHello (SYN, SYN-ACK, ACK, hello,
FIN both ways). Clean phones visit ordinary sites at irregular times; a
stalkerware phone also checks in with its C2 names every ``checkin`` seconds.
Packets come out in time order as (ts, frame) for a feed reader.
"""
from __future__ import annotations

import heapq
import random
import zlib

from appliance.sim.packets import BOX_IP, BOX_MAC, client_hello, dns_query, dns_reply, eth, ipv4, tcp, tls_record, udp
from appliance.sim.phone import CLEAN_NAMES as CLEAN


def _server_ip(name: str) -> str:
    h = zlib.crc32(name.encode()) % 64000
    return f"198.19.{h // 254}.{h % 254 + 1}"


class Phone:
    """One phone: its MAC/IP, what it visits and how often."""

    def __init__(self, index: int, c2: list[str] | None, rng: random.Random, mean_gap: float = 20.0,
                 checkin: float = 60.0):
        self.mac = f"02:00:00:00:10:{index:02x}"
        self.ip = f"10.23.0.{10 + index}"
        self.c2 = c2 or []
        self.rng = rng
        self.mean_gap = mean_gap
        self.checkin = checkin
        self.port = 20000 + index * 1000
        self.hellos: dict[str, bytes] = {}

    def _port(self) -> int:
        self.port = 20000 + (self.port - 20000 + 1) % 40000
        return self.port

    def visit(self, t: float, name: str):
        """The packets of one DNS lookup + TLS connection to name, from time t."""
        mac, ip = self.mac, self.ip
        server = _server_ip(name)
        q = dns_query(name, self.rng.randrange(65536))
        sp = self._port()
        out = [(t, eth(ipv4(ip, BOX_IP, 17, udp(sp, 53, q)), src=mac, dst=BOX_MAC)),
               (t + 0.02, eth(ipv4(BOX_IP, ip, 17, udp(53, sp, dns_reply(q, server, ttl=300))), src=BOX_MAC, dst=mac))]
        hello = self.hellos.get(name)
        if hello is None:
            hello = self.hellos[name] = tls_record(client_hello(name))
        cp = self._port()
        up = lambda flags, seq, ack, data=b"": eth(ipv4(ip, server, 6, tcp(cp, 443, seq, ack, flags, data)),
                                                   src=mac, dst=BOX_MAC)
        down = lambda flags, seq, ack: eth(ipv4(server, ip, 6, tcp(443, cp, seq, ack, flags)),
                                           src=BOX_MAC, dst=mac)
        n = len(hello)
        out += [(t + 0.05, up("S", 100, 0)), (t + 0.08, down("SA", 900, 101)), (t + 0.09, up("A", 101, 901)),
                (t + 0.10, up("PA", 101, 901, hello)), (t + 0.13, down("A", 901, 101 + n)),
                (t + 2.0, up("FA", 101 + n, 901)), (t + 2.03, down("FA", 901, 102 + n)),
                (t + 2.05, up("A", 102 + n, 902))]
        return out

    def schedule(self, t0: float, t1: float):
        """Yields (t, name) visits between t0 and t1 in time order."""
        events = []
        t = t0 + self.rng.uniform(0, self.mean_gap)
        while t < t1:
            events.append((t, self.rng.choice(CLEAN)))
            t += self.rng.expovariate(1 / self.mean_gap)
        for k, name in enumerate(self.c2):
            t = t0 + 5 + k * 2.0
            while t < t1:
                events.append((t, name))
                t += self.checkin
        events.sort()
        return events


def packets(phones: list[Phone], t0: float, hours: float):
    """Yields (ts, frame) for every phone's traffic over ``hours``, in time order."""
    heap: list = []
    for i, ph in enumerate(phones):
        for t, name in ph.schedule(t0, t0 + hours * 3600):
            heapq.heappush(heap, (t, i, name))
    pending: list = []
    seq = 0
    while heap or pending:
        # emit packets of visits started so far, in time order, before starting later visits
        next_visit = heap[0][0] if heap else float("inf")
        while pending and pending[0][0] <= next_visit:
            ts, _, fr = heapq.heappop(pending)
            yield ts, fr
        if heap:
            t, i, name = heapq.heappop(heap)
            for ts, fr in phones[i].visit(t, name):
                seq += 1
                heapq.heappush(pending, (ts, seq, fr))
