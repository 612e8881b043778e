"""``pocketcheck extract``: every name a capture reveals, one record per event.

Records carry ``file``, ``frame`` (1-based, as tshark numbers frames),
``ts``, ``kind``, ``name`` and the flow (``proto``, ``src``, ``sport``,
``dst``, ``dport``, ``mac``); ``dns.answer`` adds ``rrtype`` and ``data``;
``tls.cert`` adds fingerprints and subjectAltName names; TLS and QUIC events
add ``ja4``, ``ja3`` and ``alpn``; ``http.host`` adds method, path and
User-Agent.
"""
from __future__ import annotations

import json
import sys

from . import certs
from .errors import CaptureFormatError, CaptureOpenError
from .native import Reader

# Columns of the TSV output (jsonl carries every field of a record).
TSV_COLUMNS = ("file", "frame", "ts", "kind", "name", "proto", "src", "sport", "dst", "dport", "mac", "detail")


def record(ev) -> dict:
    """Turns one native Event into the output record of its kind.

    Args:
        ev: an ``appliance.native.Event``.
    Returns:
        A dict ready for JSON.
    """
    rec = {
        "file": ev.file, "frame": ev.frame, "ts": ev.ts, "kind": ev.kind, "name": ev.name,
        "proto": ev.proto, "src": ev.src, "sport": ev.sport, "dst": ev.dst, "dport": ev.dport, "mac": ev.mac,
    }
    if ev.partial:
        rec["partial"] = True
    kind = ev.kind
    if kind == "dns.answer":
        rec.update(rrtype=ev.rrtype, data=ev.data, ttl=ev.ttl)
    elif kind in ("dns.query", "dns.response-question", "mdns.query", "llmnr.query"):
        rec["rrtype"] = ev.rrtype
    elif kind in ("tls.sni", "quic.sni"):
        rec.update(ja4=ev.ja4, ja3=ev.ja3, alpn=ev.alpn)
    elif kind == "http.host":
        rec.update(method=ev.method, path=ev.path, user_agent=ev.user_agent)
    elif kind == "tls.cert":
        info = certs.parse_cached(ev.der)
        rec.update(index=ev.index, sha1=info.sha1, sha256=info.sha256, san=list(info.san),
                   subject=info.subject, issuer=info.issuer, not_before=info.not_before, not_after=info.not_after)
        if info.error:
            rec["error"] = info.error
    elif kind == "dhcp":
        rec["data"] = ev.data
    elif kind == "flow":
        rec.update(pkts=list(ev.pkts), bytes=list(ev.bytes), first=ev.first, last=ev.last,
                   tcp_state=ev.tcp_state, evicted=ev.evicted)
    return rec


def _detail(rec: dict) -> str:
    for key in ("data", "ja4", "sha256", "path"):
        if rec.get(key):
            return str(rec[key])
    return ""


# Names come from hostile traffic: no tab or newline may break a row.
_TSV_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _tsv_field(value) -> str:
    return value.translate(_TSV_ESCAPES) if type(value) is str else str(value)


def line(ev, fmt: str) -> str:
    """One output line (without its newline) for an event, in ``"jsonl"`` or ``"tsv"``."""
    rec = record(ev)
    if fmt == "jsonl":
        return json.dumps(rec, ensure_ascii=False)
    rec["detail"] = _detail(rec)
    return "\t".join(_tsv_field(rec.get(c, "")) for c in TSV_COLUMNS)


def extract_file(path: str, out, fmt: str, flows: bool, fast: bool = True) -> str | None:
    """Writes the records of one capture to ``out``.

    Args:
        path: a pcap or pcapng file.
        out: a text stream.
        fmt: ``"jsonl"`` or ``"tsv"``.
        flows: also write ``flow`` records.
        fast: let the C core format the lines (False: format every event in
            Python; the output is the same, tests compare the two).
    Returns:
        A warning line when the capture ended in damage, else None.
    Raises:
        CaptureOpenError, CaptureFormatError: the file cannot be read at all.
    """
    with Reader.open_file(path) as reader:
        if fast:
            file_field = json.dumps(path, ensure_ascii=False) if fmt == "jsonl" else _tsv_field(path)
            for chunk in reader.formatted(fmt, flows, file_field, lambda ev: line(ev, fmt) + "\n"):
                out.write(chunk)
        else:
            for batch in reader.batches():
                lines = [line(ev, fmt) for ev in batch if flows or ev.kind != "flow"]
                if lines:
                    out.write("\n".join(lines) + "\n")
        if reader.status != "eof":
            return f"{path}: capture is damaged or cut short ({reader.error}); events before the damage were written"
    return None


def run(args) -> int:
    """The ``extract`` command: exit 0, or 2 when any file could not be read at all."""
    status = 0
    out = sys.stdout
    if args.format == "tsv":
        out.write("\t".join(TSV_COLUMNS) + "\n")
    for path in args.files:
        try:
            warning = extract_file(path, out, args.format, args.flows)
        except (CaptureOpenError, CaptureFormatError) as exc:
            out.flush()
            print(f"pocketcheck: {exc}", file=sys.stderr)
            status = 2
            continue
        if warning:
            out.flush()
            print(f"pocketcheck: warning: {warning}", file=sys.stderr)
    return status


def register(sub) -> None:
    """Adds the ``extract`` sub-command."""
    p = sub.add_parser("extract", help="list every name a capture reveals (DNS, TLS, QUIC, HTTP, certificates)")
    p.add_argument("files", nargs="+", metavar="FILE", help="pcap or pcapng files")
    p.add_argument("--format", choices=("jsonl", "tsv"), default="jsonl", help="output format (default jsonl)")
    p.add_argument("--flows", action="store_true", help="also list one record per flow")
    p.set_defaults(func=run)
