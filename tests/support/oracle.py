"""tshark as an independent oracle for the capture core.

``tshark_names(path)`` runs ``tshark -T fields`` once over a capture and
returns what Wireshark's dissectors see, in the same (kind, value) shape as
``core_names(path)`` gives for pocketcheck's C core. Tests compare the two.
"""
from __future__ import annotations

import hashlib
import re
import subprocess

FIELDS = (
    "frame.number", "udp.srcport", "udp.dstport", "tcp.srcport", "tcp.dstport",
    "dns.flags.response", "dns.count.queries", "dns.count.answers", "dns.count.auth_rr", "dns.count.add_rr",
    "dns.qry.name", "dns.resp.name", "dns.resp.type", "dns.a", "dns.aaaa", "dns.cname",
    "tls.handshake.type", "tls.handshake.extensions_server_name", "tls.handshake.certificate",
    "http.request", "http.host", "quic.long.packet_type", "tls.handshake.ja3",
)
_SEP = "\x1f"  # tshark's aggregator: a byte no name in the corpus contains (mDNS names hold spaces)
# tshark's placeholders for names it could not decode; the core reports no name for those.
_TSHARK_PLACEHOLDERS = ("<Name too long>", "<Unknown extended label>")


def _host(value: str) -> str:
    """Host header without the port, as the core reports it."""
    if value.startswith("["):
        return value[1:value.index("]")] if "]" in value else value[1:]
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def tshark_names(path) -> set[tuple[str, str]]:
    """Returns {(kind, value)} for a capture, as tshark dissects it.

    kinds: dns.query (question names of DNS queries on port 53), dns.response-question
    (the question a DNS response echoes),
    mdns.query, llmnr.query (question names of queries), dns.answer
    ("owner=data" of A, AAAA and CNAME records of the answer section),
    tls.sni, quic.sni, http.host, tls.cert (SHA-256 of each DER certificate),
    ja3 (the JA3 hash of each TLS-over-TCP ClientHello).
    """
    out = subprocess.run(
        ["tshark", "-n", "-r", str(path), "-T", "fields", "-E", "separator=\t", "-E", "occurrence=a",
         "-E", f"aggregator={_SEP}", *[a for f in FIELDS for a in ("-e", f)]],
        capture_output=True, text=True, timeout=300, errors="backslashreplace", check=False,
    )
    found: set[tuple[str, str]] = set()
    for line in out.stdout.splitlines():
        row = dict(zip(FIELDS, line.split("\t")))
        get = lambda k, row=row: [v for v in row.get(k, "").split(_SEP) if v != ""]
        ports = set(get("udp.srcport") + get("udp.dstport"))
        qnames = [_tshark_name(n) for n in get("dns.qry.name") if n not in _TSHARK_PLACEHOLDERS]
        if qnames:
            if "5353" in ports:
                if "0" in get("dns.flags.response"):
                    found.update(("mdns.query", n) for n in qnames)
            elif "5355" in ports:
                if "0" in get("dns.flags.response"):
                    found.update(("llmnr.query", n) for n in qnames)
            else:
                found.update(_questions(get))
                found.update(_answers(get))
        hs_types = get("tls.handshake.type")
        if "1" in hs_types:
            kind = "quic.sni" if get("quic.long.packet_type") else "tls.sni"
            found.update((kind, n) for n in get("tls.handshake.extensions_server_name"))
            if kind == "tls.sni":
                found.update(("ja3", h) for h in get("tls.handshake.ja3"))
        for cert in get("tls.handshake.certificate"):
            der = bytes.fromhex(cert.replace(":", ""))
            found.add(("tls.cert", hashlib.sha256(der).hexdigest()))
        if get("http.request") and get("http.host"):
            found.update(("http.host", _host(h)) for h in get("http.host"))
    return found


def _tshark_name(name: str) -> str:
    """tshark writes the root as "<Root>"; the core as "."."""
    return "." if name == "<Root>" else name


def unescape(name: str) -> str:
    """Undoes the core's RFC 1035 presentation escapes (\\DDD and \\X) so names compare with tshark's raw text."""
    return re.sub(r"\\(\d{3}|.)", lambda m: chr(int(m.group(1))) if len(m.group(1)) == 3 else m.group(1), name)


def _questions(get) -> set[tuple[str, str]]:
    """Question names of the DNS messages of one frame: dns.query for queries (dns.flags.response == 0),
    dns.response-question for the question a response echoes."""
    names, out, i = get("dns.qry.name"), set(), 0
    for resp, count in zip(get("dns.flags.response"), get("dns.count.queries")):
        kind = "dns.response-question" if resp == "1" else "dns.query"
        out.update((kind, _tshark_name(n)) for n in names[i:i + int(count)] if n not in _TSHARK_PLACEHOLDERS)
        i += int(count)
    return out


def _answers(get) -> set[tuple[str, str]]:
    """A, AAAA and CNAME records of the answer sections of the DNS messages of one frame."""
    names, types = [_tshark_name(n) for n in get("dns.resp.name")], get("dns.resp.type")
    values = {"1": iter(get("dns.a")), "28": iter(get("dns.aaaa")), "5": iter(get("dns.cname"))}
    counts = zip(get("dns.count.answers"), get("dns.count.auth_rr"), get("dns.count.add_rr"))
    out, i = set(), 0
    for an, ns, ar in counts:
        for j in range(int(an) + int(ns) + int(ar)):
            if i >= len(types):
                return out
            rtype, name = types[i], names[i] if i < len(names) else ""
            value = next(values[rtype], None) if rtype in values else None
            if j < int(an) and value is not None:
                out.add(("dns.answer", f"{name}={value}"))
            i += 1
    return out


def core_names(path) -> set[tuple[str, str]]:
    """Returns {(kind, value)} for a capture as pocketcheck's C core reports it (same shape as tshark_names)."""
    from appliance.native import Reader

    found: set[tuple[str, str]] = set()
    with Reader.open_file(str(path)) as reader:
        for ev in reader:
            if ev.kind in ("dns.query", "dns.response-question", "mdns.query", "llmnr.query", "tls.sni",
                           "quic.sni", "http.host"):
                if ev.name:
                    found.add((ev.kind, unescape(ev.name)))
                if ev.kind == "tls.sni" and ev.ja3:
                    found.add(("ja3", ev.ja3))
            elif ev.kind == "dns.answer" and ev.rrtype in (1, 28, 5):
                found.add(("dns.answer", f"{unescape(ev.name)}={unescape(ev.data)}"))
            elif ev.kind == "tls.cert":
                found.add(("tls.cert", hashlib.sha256(ev.der).hexdigest()))
    return found


def tshark_frames(path) -> list[tuple[int, float, str]]:
    """Returns (frame number, frame.time_epoch, first DNS question name or "") for every frame tshark reads.

    Args:
        path: a capture file (tshark reads what it can of a damaged one).
    Returns:
        One tuple per frame, in tshark's frame order.
    """
    out = subprocess.run(
        ["tshark", "-n", "-r", str(path), "-T", "fields", "-E", "separator=\t", "-E", "occurrence=f",
         "-e", "frame.number", "-e", "frame.time_epoch", "-e", "dns.qry.name"],
        capture_output=True, text=True, timeout=300, errors="backslashreplace", check=False,
    )
    rows = []
    for line in out.stdout.splitlines():
        num, ts, name = (line.split("\t") + ["", ""])[:3]
        rows.append((int(num), float(ts or 0), name))
    return rows



def capinfos_packets(path) -> int:
    """Returns capinfos' packet count of a capture (tshark's frame count less pcapng custom blocks, which tshark 4.0
    shows as frames of their own and libpcap skips)."""
    out = subprocess.run(["capinfos", "-c", "-M", "-T", "-r", str(path)], capture_output=True, text=True, timeout=120,
                         check=True)
    return int(out.stdout.split("\t")[-1])
