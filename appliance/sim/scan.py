"""A port scanner, run inside a simulated phone's namespace (``python -m appliance.sim scan``).

* tcp: the ports that complete a handshake;
* udp: the ports that send any datagram back to a DNS query (closed and
  filtered ports both stay silent or send ICMP, which is not an answer).

Sockets are opened non-blocking in batches, so a host that drops
everything costs one timeout per batch rather than one per port.
"""
from __future__ import annotations

import resource
import selectors
import socket
import time

from . import packets

# What a UDP port is asked: a DNS query (the only UDP service the box may answer).
PROBE = packets.dns_query("example.com", qid=0x5CA1)
_SPARE_FDS = 64  # descriptors left for everything else the process opens


def parse_ports(text: str) -> list[int]:
    """The ports of a list like "1-1024,5222-5223,8080".

    Raises:
        ValueError: a part is not a number or a range.
    """
    out = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out += range(int(lo), int(hi or lo) + 1)
    return out


def _raise_fd_limit(want: int) -> int:
    # A batch holds one socket per port: ask for enough descriptors, as far as the hard limit allows.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    new = min(hard, max(soft, want + _SPARE_FDS))
    resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    return new - _SPARE_FDS


def scan(host: str, ports, kind: str = "tcp", batch: int = 256, timeout: float = 1.0) -> list[int]:
    """Scans ``ports`` of ``host``.

    Args:
        host: the IPv4 address scanned.
        ports: the port numbers.
        kind: "tcp" (a connect scan) or "udp" (a DNS query to each port).
        batch: how many sockets are open at once.
        timeout: how long each batch waits for answers.
    Returns:
        The ports that answered, sorted.
    Raises:
        ValueError: ``kind`` is neither "tcp" nor "udp".
    """
    if kind not in ("tcp", "udp"):
        raise ValueError(f"unknown scan kind {kind!r} (tcp or udp)")
    ports = sorted(set(ports))
    batch = max(1, min(batch, _raise_fd_limit(batch)))
    found = []
    for i in range(0, len(ports), batch):
        sel = selectors.DefaultSelector()
        socks = []
        for port in ports[i:i + batch]:
            if kind == "tcp":
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.setblocking(False)
                s.connect_ex((host, port))
                sel.register(s, selectors.EVENT_WRITE, port)
            else:
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.setblocking(False)
                s.connect((host, port))
                try:
                    s.send(PROBE)
                except OSError:
                    s.close()
                    continue
                sel.register(s, selectors.EVENT_READ, port)
            socks.append(s)
        deadline = time.monotonic() + timeout
        pending = len(socks)
        while pending and time.monotonic() < deadline:
            for key, _ in sel.select(max(0.0, deadline - time.monotonic())):
                sel.unregister(key.fileobj)
                pending -= 1
                if kind == "tcp":
                    if key.fileobj.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                        found.append(key.data)
                else:
                    try:
                        if key.fileobj.recv(4096):
                            found.append(key.data)
                    except OSError:
                        pass  # ICMP port unreachable: closed, not an answer
        for s in socks:
            s.close()
        sel.close()
    return sorted(found)
