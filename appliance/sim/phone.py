"""Simulated phones: a namespace with ``wlan0`` on the radio bridge, and the traffic it makes.

:class:`SimPhone` is the test's handle on one phone (join, start traffic,
scan, read its log). :func:`run_traffic` is the phone process itself
(``python -m appliance.sim phone``): real DNS queries, TLS connections
(python ssl, with the server name), HTTP requests and QUIC Initials through
the hotspot's real NAT.
"""
from __future__ import annotations

import http.client
import logging
import os
import random
import re
import secrets
import socket
import ssl
import struct
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from .. import hotspot, system
from ..errors import CommandError, HotspotError
from . import netns, packets, scan

if TYPE_CHECKING:  # only for annotations: hotspot.py imports this module
    from .hotspot import SimulatedHotspot

log = logging.getLogger(__name__)

# Names an ordinary phone reaches in a few minutes (none is an indicator).
CLEAN_NAMES = (
    "www.google.com", "www.youtube.com", "i.instagram.com", "www.wikipedia.org", "www.bbc.co.uk",
    "play.googleapis.com", "www.gstatic.com", "api.spotify.com", "www.apple.com", "weather.com",
)
CLEAN_QUIC_NAMES = ("www.youtube.com", "www.google.com")
CLEAN_HTTP_NAMES = ("connectivitycheck.gstatic.com",)

# What each phone's operating system asks when it joins a network, and the
# only answer it accepts (written from the vendors' behaviour, independently
# of the box's appliance/data/connectivity.yaml, which the tests check
# against these): Android's NetworkMonitor wants a 204 with an empty body
# from generate_204; iOS wants the "Success" page from hotspot-detect.html.
CONNECTIVITY_CHECKS = {
    "android": ("connectivitycheck.gstatic.com", "/generate_204", 204, b""),
    "iphone": ("captive.apple.com", "/hotspot-detect.html", 200,
               b"<HTML><HEAD><TITLE>Success</TITLE></HEAD><BODY>Success</BODY></HTML>"),
}
USER_AGENTS = {
    "android": "Dalvik/2.1.0 (Linux; U; Android 13)",
    "iphone": "CaptiveNetworkSupport-443.40.2 wispr",
}


def stalkerware_names(count: int = 3, seed: int | None = None) -> list[str]:
    """Picks stalkerware C2 names from the shipped indicator set.

    Falls back to the upstream stalkerware hosts list beside the work tree
    when the shipped set cannot be loaded (it is the same source).

    Args:
        count: how many names.
        seed: makes the choice repeatable.
    Returns:
        Domain names that the indicator set lists as stalkerware C2 (high severity).
    Raises:
        HotspotError: no indicator list can be found.
    """
    names: list[str] = []
    try:
        # Imported here, inside the try: a tree whose core is not built still has the upstream list.
        from .. import indicators

        names = [i.value for i in indicators.load_default().indicators()
                 if i.kind == "domain" and i.category == "stalkerware-c2" and i.severity == "high"]
    except Exception as exc:  # noqa: BLE001 - any failure of the shipped set: use the upstream list
        log.warning("shipped indicators unavailable (%s); using the upstream hosts list", exc)
    if not names:
        shared = Path(os.environ.get("POCKETCHECK_SHARED", netns.ROOT.parent / "shared"))
        hosts = shared / "iocs-upstream" / "stalkerware-indicators" / "generated" / "hosts"
        try:
            names = hosts.read_text(encoding="utf-8").split()
        except OSError as exc:
            raise HotspotError(f"no stalkerware indicator names found ({hosts}): {exc.strerror}") from None
    # Names a phone could really look up (not wildcards or bare addresses).
    names = sorted({n for n in names if re.fullmatch(r"[a-z0-9-]+(\.[a-z0-9-]+)+", n) and not n[-1].isdigit()})
    rng = random.Random(seed)
    return rng.sample(names, min(count, len(names)))


# ------------------------------------------------------------ the phone process
def resolve(name: str, server: str, timeout: float = 3.0, tries: int = 2) -> str | None:
    """Asks ``server`` for the A record of ``name`` over UDP; None when there is none."""
    for _ in range(tries):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(timeout)
            q = packets.dns_query(name, qid=secrets.randbelow(65536))
            s.sendto(q, (server, 53))
            try:
                data, _ = s.recvfrom(4096)
            except TimeoutError:
                continue
            try:
                qid, _, _, answers = packets.dns_parse(data)
            except (ValueError, struct.error):
                continue
            if qid == struct.unpack("!H", q[:2])[0]:
                return answers[0] if answers else None
    return None


def _tls_get(ip: str, name: str, port: int = 443, timeout: float = 5.0) -> bool:
    ctx = ssl.create_default_context()
    # The fake internet's certificate is our own; the phone's trust is not the point.
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((ip, port), timeout=timeout) as raw, \
                ctx.wrap_socket(raw, server_hostname=name) as tls:
            tls.sendall(f"GET / HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n".encode())
            tls.recv(1024)
        return True
    except (OSError, ssl.SSLError):
        return False


def http_fetch(ip: str, name: str, path: str = "/", port: int = 80, body: bytes | None = None,
               timeout: float = 5.0, agent: str = USER_AGENTS["android"]) -> tuple[int, bytes] | None:
    """One HTTP request with Python's http.client; returns (status, body) or None when it failed.

    Args:
        ip: the server's address (from the phone's own DNS lookup).
        name: the Host header.
        path: the request target.
        port: the TCP port.
        body: a POST body (None: a GET).
        timeout: seconds for connect and each read.
        agent: the User-Agent header.
    """
    conn = http.client.HTTPConnection(ip, port, timeout=timeout)
    try:
        conn.request("POST" if body else "GET", path, body=body, headers={"Host": name, "User-Agent": agent})
        resp = conn.getresponse()
        return resp.status, resp.read(65536)
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def _http_get(ip: str, name: str, path: str = "/", port: int = 80, body: bytes | None = None,
              timeout: float = 5.0) -> bool:
    return http_fetch(ip, name, path, port, body, timeout) is not None


def connectivity_check(os_name: str, dns: str) -> bool:
    """Runs the phone's operating-system connectivity check, as the phone does on joining.

    Args:
        os_name: "android" or "iphone" (a key of CONNECTIVITY_CHECKS).
        dns: the resolver the phone got from DHCP.
    Returns:
        True only when the answer is exactly the one the phone expects
        (status and whole body): then the phone keeps the network.
    """
    host, path, status, body = CONNECTIVITY_CHECKS[os_name]
    ip = resolve(host, dns)
    if ip is None:
        return False
    got = http_fetch(ip, host, path, agent=USER_AGENTS[os_name])
    return got == (status, body)


def _quic(ip: str, name: str, port: int = 443) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.sendto(packets.quic_initial(name), (ip, port))
            return True
        except OSError:
            return False


def run_traffic(kind: str, dns: str, rounds: int = 2, interval: float = 2.0, names: list[str] | None = None,
                seed: int | None = None, log_path: str | None = None, os_name: str = "") -> int:
    """The phone process: real DNS, TLS, HTTP and QUIC from inside a phone namespace.

    Args:
        kind: "clean" (popular sites at irregular times) or "stalkerware"
            (C2 check-ins at a steady pace, and one ordinary site per round).
        dns: the resolver the phone got from DHCP.
        rounds: how many rounds of visits.
        interval: the pause between rounds, in seconds.
        names: the C2 names (default: picked from the indicator set).
        seed: makes the order and pauses repeatable.
        log_path: where "tls NAME ok" lines go (default stdout).
        os_name: "android" or "iphone": first run that system's connectivity
            check and, as a real phone does, keep the network only when it
            succeeds (log "network kept"); otherwise log "network left" and
            send nothing more (its traffic would go over mobile data). ""
            skips the check.
    Returns:
        0 (the exit code).
    """
    out = open(log_path, "a", encoding="utf-8") if log_path else sys.stdout  # noqa: SIM115
    rng = random.Random(seed)

    def note(what: str, name: str, ok: bool) -> None:
        out.write(f"{what} {name} {'ok' if ok else 'fail'}\n")
        out.flush()

    if os_name:
        ok = connectivity_check(os_name, dns)
        note("check", CONNECTIVITY_CHECKS[os_name][0], ok)
        out.write("network kept\n" if ok else "network left\n")
        out.flush()
        if not ok:
            if out is not sys.stdout:
                out.close()
            return 0

    def visit(name: str, how: str) -> None:
        ip = resolve(name, dns)
        note("dns", name, ip is not None)
        if ip is None:
            return
        if how == "tls":
            note("tls", name, _tls_get(ip, name))
        elif how == "http":
            path = "/generate_204" if name in CLEAN_HTTP_NAMES else "/api/checkin"
            body = None if name in CLEAN_HTTP_NAMES else b'{"id":"%d","battery":81}' % rng.randrange(10**6)
            note("http", name, _http_get(ip, name, path, body=body))
        elif how == "quic":
            note("quic", name, _quic(ip, name))

    if kind == "clean":
        plan = [(n, "http") for n in CLEAN_HTTP_NAMES] + [(n, "tls") for n in CLEAN_NAMES] + \
            [(n, "quic") for n in CLEAN_QUIC_NAMES]
        for r in range(rounds):
            rng.shuffle(plan)
            for name, how in plan:
                visit(name, how)
                time.sleep(rng.uniform(0.0, 0.2))
            if r + 1 < rounds:
                time.sleep(interval * rng.uniform(0.5, 1.5))
    else:
        c2 = names or stalkerware_names(3, seed)
        # A stalkerware app checks in with its servers at a steady pace.
        for r in range(rounds):
            for i, name in enumerate(c2):
                visit(name, ("tls", "http", "quic")[i % 3])
            visit(CLEAN_NAMES[r % len(CLEAN_NAMES)], "tls")
            if r + 1 < rounds:
                time.sleep(interval)
    if out is not sys.stdout:
        out.close()
    return 0


# ------------------------------------------------------------- the test's handle
class SimPhone:
    """A simulated phone in its own namespace (see :meth:`SimulatedHotspot.add_phone`)."""

    def __init__(self, sim: SimulatedHotspot, index: int, kind: str, os_name: str = ""):
        self.sim, self.index, self.kind = sim, index, kind
        self.ns = f"{sim.prefix}-phone{index}"
        self.mac = "02:" + ":".join(f"{b:02x}" for b in secrets.token_bytes(5))
        # "" runs no connectivity check (the traffic-only phone of older tests).
        self.os_name = os_name
        self.hostname = f"{os_name or ('android' if index % 2 else 'iphone')}-{secrets.token_hex(3)}"
        self.ip: str | None = None
        self.dns: str | None = None
        self.log_path = os.path.join(sim.run_dir, f"phone{index}.log")
        self._daemon: system.Daemon | None = None

    def attach(self) -> None:
        """Creates the phone's namespace and links its ``wlan0`` to the radio bridge (no address yet)."""
        s = self.sim
        netns.add(self.ns)
        port = f"ph{self.index}"
        netns.ip("link", "add", port, "netns", s.box, "type", "veth", "peer", "name", "wlan0", "netns", self.ns)
        netns.ip("-n", s.box, "link", "set", port, "master", "wlan0", "up")
        system.run(["bridge", "-n", s.box, "link", "set", "dev", port, "isolated", "on"], timeout=10)
        netns.ip("-n", self.ns, "link", "set", "wlan0", "address", self.mac, "up")

    def join(self, timeout: float = 20) -> str:
        """Links the phone to the radio bridge and takes a DHCP lease; returns its address.

        The DHCP client is busybox udhcpc with the event script the box's own
        uplink uses (:data:`hotspot.UPLINK_DHCP_SCRIPT`): it sets the address
        and default route and writes the resolvers it was given.

        Raises:
            HotspotError: no lease within the timeout.
        """
        self.attach()
        script = os.path.join(self.sim.run_dir, "udhcpc.sh")
        resolv = os.path.join(self.sim.run_dir, f"phone{self.index}.resolv")
        try:
            system.run(netns.in_ns(self.ns, "busybox", "udhcpc", "-i", "wlan0", "-n", "-q", "-f", "-t", "8",
                                   "-T", "1", "-s", script, "-x", f"hostname:{self.hostname}"),
                       timeout=timeout, env={"PC_RESOLV": resolv})
            addr = system.run(["ip", "-n", self.ns, "-4", "-o", "addr", "show", "dev", "wlan0"], timeout=10).stdout
            servers = [line.split()[1] for line in Path(resolv).read_text().splitlines()
                       if line.startswith("nameserver ")]
            self.ip = re.search(r"\binet (\d+\.\d+\.\d+\.\d+)/", addr).group(1)
        except (CommandError, OSError, AttributeError) as exc:
            raise HotspotError(f"simulated phone {self.index} got no address from the hotspot: {exc}") from None
        self.dns = servers[0] if servers else hotspot.BOX_IP
        return self.ip

    def start_traffic(self, rounds: int = 2, interval: float = 2.0, names: list[str] | None = None,
                      seed: int | None = None) -> None:
        """Starts the phone's traffic process (:func:`run_traffic`) in its namespace."""
        argv = netns.in_ns(self.ns, netns.PYTHON, "-m", "appliance.sim", "phone", "--kind", self.kind,
                           "--dns", self.dns, "--rounds", str(rounds), "--interval", str(interval),
                           "--log", self.log_path)
        if names:
            argv += ["--names", ",".join(names)]
        if seed is not None:
            argv += ["--seed", str(seed)]
        if self.os_name:
            argv += ["--os", self.os_name]
        self._daemon = system.spawn(argv, startup=0, log_path=self.log_path + ".err", env=netns.child_env())

    def wait(self, timeout: float = 120) -> int:
        """Waits (bounded) for the traffic process to finish; returns its exit code.

        Raises:
            HotspotError: it did not finish in time (it is stopped).
        """
        if self._daemon is None:
            return 0
        deadline = time.monotonic() + timeout
        while self._daemon.running():
            if time.monotonic() > deadline:
                self._daemon.stop()
                raise HotspotError(f"simulated phone {self.index} did not finish in {timeout:g} s")
            time.sleep(0.1)
        return self._daemon.poll()

    def run(self, *argv: str, timeout: float = 60) -> str:
        """Runs a program inside the phone's namespace; returns its stdout.

        Raises:
            CommandError: the program failed or timed out.
        """
        return system.run(netns.in_ns(self.ns, *argv), timeout=timeout, env=netns.child_env()).stdout

    def scan(self, host: str = hotspot.BOX_IP, ports: str = "1-1024", kind: str = "tcp", batch: int = 256,
             timeout: float = 1.0) -> list[int]:
        """Port scan from the phone (:func:`appliance.sim.scan.scan`): the ports of ``host`` that answer.

        Args:
            host: the address scanned (the box by default).
            ports: a port list such as "1-1024,8080".
            kind: "tcp" or "udp".
            batch: how many sockets are open at once.
            timeout: how long each batch waits for answers.
        Raises:
            CommandError: the scan did not finish.
        """
        # A bound for the whole run: the batches' waits, plus start-up and sockets.
        batches = -(-len(set(scan.parse_ports(ports))) // max(1, batch))
        out = self.run(netns.PYTHON, "-m", "appliance.sim", "scan", "--host", host, "--ports", ports,
                       "--kind", kind, "--batch", str(batch), "--timeout", str(timeout),
                       timeout=60 + batches * timeout)
        return [int(p) for p in out.split()]

    def log(self) -> list[str]:
        """The phone's own record of what it did ("tls NAME ok" lines)."""
        return netns.read_log(self.log_path)

    def stop(self) -> None:
        """Stops the traffic process; the namespace goes with the simulation."""
        if self._daemon is not None:
            self._daemon.stop(timeout=3)
