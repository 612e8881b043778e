"""The only importer of the compiled C core (``appliance._native``).

It turns C status codes into exceptions in one place (:func:`check`), builds
Python constants from the compiled ones so they cannot drift, and wraps the
capture reader so that Python receives events in batches: the C core fills
an array of ``pc_event`` and one string buffer, both owned here, and there is
no Python call per packet.
"""
from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field

from . import errors

try:
    from ._native import ffi, lib
except ImportError as exc:  # pragma: no cover - only without a build
    raise errors.NativeError(
        "the pocketcheck C core is not built; run `make venv` (or `pip install .`)"
    ) from exc

# Status code -> exception class. Anything else becomes NativeError.
_STATUS_ERRORS = {
    lib.PC_ERR_NOMEM: MemoryError,
    lib.PC_ERR_ARG: errors.NativeError,
    lib.PC_ERR_OPEN: errors.CaptureOpenError,
    lib.PC_ERR_FORMAT: errors.CaptureFormatError,
    lib.PC_ERR_TRUNCATED: errors.CaptureTruncatedError,
    lib.PC_ERR_IO: errors.CaptureOpenError,
    lib.PC_ERR_STATE: errors.NativeError,
    lib.PC_ERR_FILTER: errors.FilterError,
    lib.PC_ERR_CORRUPT: errors.CompiledFileError,
    lib.PC_ERR_LIMIT: errors.LimitError,
}


def strerror(status: int) -> str:
    """Returns the core's short English phrase for a status code."""
    return ffi.string(lib.pc_strerror(status)).decode()


def check(status: int, detail: str = "") -> int:
    """Maps a C status to an exception; returns non-negative values unchanged.

    Args:
        status: what a ``pc_*`` function returned.
        detail: a prefix for the message (what was being done, to what).
    Returns:
        ``status`` when it is not negative (a count or PC_OK).
    Raises:
        PocketcheckError: the subclass matching the code (MemoryError for PC_ERR_NOMEM).
    """
    if status >= 0:
        return status
    cls = _STATUS_ERRORS.get(status, errors.NativeError)
    msg = f"{detail}: {strerror(status)}" if detail else strerror(status)
    raise cls(msg)


# Event kinds, from the compiled constants.
KINDS = {
    lib.PC_EV_DNS_QUERY: "dns.query",
    lib.PC_EV_DNS_ANSWER: "dns.answer",
    lib.PC_EV_MDNS_QUERY: "mdns.query",
    lib.PC_EV_LLMNR_QUERY: "llmnr.query",
    lib.PC_EV_TLS_SNI: "tls.sni",
    lib.PC_EV_QUIC_SNI: "quic.sni",
    lib.PC_EV_HTTP_HOST: "http.host",
    lib.PC_EV_TLS_CERT: "tls.cert",
    lib.PC_EV_FLOW: "flow",
    lib.PC_EV_DHCP: "dhcp",
}
NAME_KINDS = frozenset(k for k in KINDS.values() if k not in ("flow", "tls.cert", "dhcp"))
_PROTOS = {6: "tcp", 17: "udp"}


@dataclass(slots=True)
class Event:
    """One thing the core saw. Strings are text; ``der`` holds a certificate's bytes.

    Fields that a kind does not use keep their defaults. ``src``/``sport``
    are the client (the flow's initiator) and ``dst``/``dport`` the server,
    whatever direction the packet travelled; ``mac`` is the client's MAC.
    """

    frame: int
    ts: float
    kind: str
    name: str = ""
    proto: str = ""
    src: str = ""
    sport: int = 0
    dst: str = ""
    dport: int = 0
    mac: str = ""
    flow_id: int = 0
    partial: bool = False
    rrtype: int = 0
    ttl: int = 0
    data: str = ""
    index: int = 0
    ja4: str = ""
    ja3: str = ""
    alpn: str = ""
    method: str = ""
    path: str = ""
    user_agent: str = ""
    der: bytes = b""
    pkts: tuple = (0, 0)
    bytes: tuple = (0, 0)
    first: float = 0.0
    last: float = 0.0
    tcp_state: int = 0
    evicted: bool = False
    file: str = ""
    extra: dict = field(default_factory=dict)


def _text(buf, s) -> str:
    return bytes(buf[s.off:s.off + s.len]).decode("utf-8", "backslashreplace") if s.len else ""


def _addr(ipver: int, raw) -> str:
    if ipver == 4:
        return socket.inet_ntop(socket.AF_INET, bytes(raw[0:4]))
    if ipver == 6:
        return socket.inet_ntop(socket.AF_INET6, bytes(raw[0:16]))
    return ""


def _event(c, buf, file: str) -> Event:
    kind = KINDS.get(c.kind, f"unknown.{c.kind}")
    ev = Event(
        frame=c.frame,
        ts=c.ts_ns / 1e9,
        kind=kind,
        name=_text(buf, c.name),
        proto=_PROTOS.get(c.proto, ""),
        src=_addr(c.ipver, c.src),
        sport=c.sport,
        dst=_addr(c.ipver, c.dst),
        dport=c.dport,
        mac=":".join(f"{b:02x}" for b in bytes(c.mac)) if c.has_mac else "",
        flow_id=c.flow_id,
        partial=bool(c.flags & lib.PC_EVF_PARTIAL),
        file=file,
    )
    if kind in ("dns.answer", "dns.query", "mdns.query", "llmnr.query"):
        ev.rrtype, ev.ttl, ev.data = c.rrtype, c.ttl, _text(buf, c.data)
    elif kind in ("tls.sni", "quic.sni"):
        ev.ja4, ev.ja3, ev.alpn = _text(buf, c.s1), _text(buf, c.s2), _text(buf, c.s3)
    elif kind == "http.host":
        ev.path, ev.method, ev.user_agent = _text(buf, c.data), _text(buf, c.s1), _text(buf, c.s2)
    elif kind == "tls.cert":
        ev.der, ev.index = bytes(buf[c.data.off:c.data.off + c.data.len]), c.index
    elif kind == "dhcp":
        ev.data = _text(buf, c.data)
    elif kind == "flow":
        ev.pkts, ev.bytes = (c.pkts[0], c.pkts[1]), (c.bytes[0], c.bytes[1])
        ev.first, ev.last = c.first_ns / 1e9, c.last_ns / 1e9
        ev.tcp_state, ev.evicted = c.tcp_state, bool(c.flags & lib.PC_EVF_EVICTED)
    return ev


def limits(**overrides) -> "ffi.CData":
    """Returns a ``pc_limits`` with the core's defaults and the given fields changed."""
    lim = ffi.new("pc_limits *")
    lib.pc_limits_default(lim)
    for key, value in overrides.items():
        setattr(lim, key, value)
    return lim


class Reader:
    """A capture file, a live interface, or packets fed by the caller.

    Iterate over :meth:`batches` (lists of :class:`Event`) or over the reader
    itself. After the input ends, :attr:`status` is ``"eof"`` or
    ``"truncated"`` and :attr:`error` says what was wrong.
    """

    BATCH = 4096
    STRBUF = 1 << 20

    def __init__(self, handle, source: str):
        self._h = ffi.gc(handle, lib.pc_reader_free)
        self.source = source
        self._ev = ffi.new("pc_event[]", self.BATCH)
        self._buf = bytearray(self.STRBUF)
        self._cbuf = ffi.from_buffer(self._buf)

    @classmethod
    def open_file(cls, path: str, **limit_overrides) -> "Reader":
        """Opens a pcap or pcapng file.

        Raises:
            CaptureOpenError: the file cannot be opened.
            CaptureFormatError: it is not a capture.
        """
        out = ffi.new("pc_reader **")
        err = ffi.new("char[]", 512)
        st = lib.pc_reader_open_file(out, os.fsencode(path), limits(**limit_overrides), err, 512)
        if st < 0:
            raise _STATUS_ERRORS.get(st, errors.NativeError)(f"{path}: {ffi.string(err).decode(errors='replace')}")
        return cls(out[0], path)

    @classmethod
    def open_live(cls, iface: str, bpf: str | None = None, dump: str | None = None, **limit_overrides) -> "Reader":
        """Captures on a live interface, optionally writing every packet to ``dump`` as pcap."""
        out = ffi.new("pc_reader **")
        err = ffi.new("char[]", 512)
        st = lib.pc_reader_open_live(
            out, iface.encode(), bpf.encode() if bpf else ffi.NULL,
            os.fsencode(dump) if dump else ffi.NULL, limits(**limit_overrides), err, 512)
        if st < 0:
            raise _STATUS_ERRORS.get(st, errors.NativeError)(f"{iface}: {ffi.string(err).decode(errors='replace')}")
        return cls(out[0], iface)

    @classmethod
    def open_feed(cls, **limit_overrides) -> "Reader":
        """A reader the caller feeds with :meth:`feed` (tests, simulations)."""
        out = ffi.new("pc_reader **")
        check(lib.pc_reader_open_feed(out, limits(**limit_overrides)), "open feed reader")
        return cls(out[0], "<feed>")

    def feed(self, linktype: int, ts: float, data: bytes, wirelen: int | None = None) -> None:
        """Decodes one packet of DLT ``linktype`` (events come out of :meth:`batches`)."""
        check(lib.pc_reader_feed(self._h, linktype, int(ts * 1e9), data, len(data),
                                 len(data) if wirelen is None else wirelen), "feed")

    def finish(self) -> None:
        """Ends a feed reader's input: open flows are flushed into events."""
        check(lib.pc_reader_finish(self._h), "finish")

    def next_batch(self, limit: int | None = None) -> list[Event]:
        """Returns the next events (an empty list: nothing more now; see :attr:`status`).

        ``limit`` caps the batch (at most BATCH): the core returns as soon as
        that many events are out, which a live capture uses to hand events
        on while packets keep coming.
        """
        cap = self.BATCH if limit is None else max(1, min(int(limit), self.BATCH))
        n = check(lib.pc_reader_next(self._h, self._ev, cap, self._cbuf, self.STRBUF), self.source)
        buf, evs, src = self._buf, self._ev, self.source
        return [_event(evs[i], buf, src) for i in range(n)]

    def batches(self):
        """Yields lists of events until the input is over (files, finished feeds)."""
        while True:
            batch = self.next_batch()
            if batch:
                yield batch
            elif self.status != "running":
                return

    def __iter__(self):
        for batch in self.batches():
            yield from batch

    def stop(self) -> None:
        """Live readers: stop reading; remaining flows are flushed by the next batches."""
        lib.pc_reader_stop(self._h)

    @property
    def status(self) -> str:
        """``"running"``, ``"eof"``, ``"truncated"`` or ``"error"``."""
        st = lib.pc_reader_status(self._h)
        return {lib.PC_OK: "running", lib.PC_EOF: "eof", lib.PC_ERR_TRUNCATED: "truncated"}.get(st, "error")

    @property
    def error(self) -> str:
        """The last problem the reader met, in one line ("" if none)."""
        return ffi.string(lib.pc_reader_error(self._h)).decode("utf-8", "replace")

    @property
    def linktype(self) -> int:
        return lib.pc_reader_linktype(self._h)

    def stats(self) -> dict:
        """The reader's counters as a dict (see ``pc_stats`` in pocketcheck.h)."""
        st = ffi.new("pc_stats *")
        lib.pc_reader_stats(self._h, st)
        return {name: getattr(st, name) for name, _ in ffi.typeof("pc_stats").fields}

    def close(self) -> None:
        """Frees the C reader now rather than at garbage collection."""
        if self._h is not None:
            h, self._h = self._h, None
            ffi.gc(h, None)  # detach the destructor (cffi returns None here, not the pointer)
            lib.pc_reader_free(h)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
