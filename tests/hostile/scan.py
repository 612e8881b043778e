"""A full port scan, run inside the phone's network namespace.

``python tests/hostile/scan.py tcp|udp HOST [BATCH]`` prints one JSON object:

* tcp: ``open`` - every port 1-65535 that completes a handshake;
* udp: ``answered`` - every port that sent any datagram back to a DNS query
  (closed and filtered ports both stay silent or send ICMP, which is not an answer).

Sockets are opened in batches (non-blocking), so a full scan of a host that
drops everything costs one timeout per batch.
"""
from __future__ import annotations

import json
import resource
import selectors
import socket
import struct
import sys
import time

PROBE = struct.pack("!HHHHHH", 0x5ca1, 0x0100, 1, 0, 0, 0) + b"\x07example\x03com\x00\x00\x01\x00\x01"


def _raise_fd_limit(want: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    new = min(hard, max(soft, want + 64))
    resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    return new - 64


def scan(kind: str, host: str, batch: int, timeout: float = 1.5) -> list[int]:
    """Returns the ports of host that answer (TCP: handshake; UDP: any datagram back)."""
    batch = min(batch, _raise_fd_limit(batch))
    found = []
    for lo in range(1, 65536, batch):
        ports = range(lo, min(lo + batch, 65536))
        sel = selectors.DefaultSelector()
        socks = []
        for port in ports:
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


if __name__ == "__main__":
    kind, host = sys.argv[1], sys.argv[2]
    batch = int(sys.argv[3]) if len(sys.argv) > 3 else 8192
    t = time.monotonic()
    ports = scan(kind, host, batch)
    print(json.dumps({"kind": kind, "host": host, "ports": ports, "seconds": round(time.monotonic() - t, 1)}))
