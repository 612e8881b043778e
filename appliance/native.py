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
import struct
from dataclasses import dataclass, field
from typing import ClassVar

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


# Event kinds: id -> name, read from the core's one table (pc_kind_name) so they cannot drift.
KINDS = {
    k: ffi.string(lib.pc_kind_name(k)).decode()
    for k in range(1, lib.PC_EV_KIND_MAX + 1)
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


def _event_struct() -> struct.Struct:
    """A struct.Struct that unpacks one ``pc_event``, built from the compiled layout so it cannot drift."""
    codes = {"uint64_t": "Q", "int64_t": "q", "uint32_t": "I", "uint16_t": "H", "uint8_t": "B"}
    fmt, pos = "<", 0
    for _, f in ffi.typeof("pc_event").fields:
        fmt += "x" * (f.offset - pos)
        t = f.type
        if t.kind == "array" and t.item.cname == "uint8_t":
            fmt += f"{t.length}s"
        elif t.kind == "array":
            fmt += codes[t.item.cname] * t.length
        elif t.kind == "struct":  # pc_str: off, len
            fmt += "II"
        else:
            fmt += codes[t.cname]
        pos = f.offset + ffi.sizeof(t)
    fmt += "x" * (ffi.sizeof("pc_event") - pos)
    assert struct.calcsize(fmt) == ffi.sizeof("pc_event")
    return struct.Struct(fmt)


_EVENT = _event_struct()
_NAME_KINDS_DNS = ("dns.answer", "dns.query", "dns.response-question", "mdns.query", "llmnr.query")


class _Converter:
    """Turns raw ``pc_event`` records into Event objects, caching address and MAC text (flows repeat them)."""

    def __init__(self):
        self._addr: dict = {}
        self._mac: dict = {}

    def addr(self, ipver: int, raw: bytes) -> str:
        key = (ipver, raw)
        text = self._addr.get(key)
        if text is None:
            if len(self._addr) > 8192:
                self._addr.clear()
            text = self._addr[key] = (
                socket.inet_ntop(socket.AF_INET, raw[:4]) if ipver == 4
                else socket.inet_ntop(socket.AF_INET6, raw) if ipver == 6 else "")
        return text

    def mac(self, raw: bytes) -> str:
        text = self._mac.get(raw)
        if text is None:
            if len(self._mac) > 1024:
                self._mac.clear()
            text = self._mac[raw] = raw.hex(":")
        return text

    def events(self, raw: bytes, buf: bytearray, file: str) -> list:
        out = []
        strs = memoryview(buf)
        for (frame, ts_ns, flow_id, first_ns, last_ns, p0, p1, b0, b1, kind_id, flags, ttl, index, tcp_state,
             rrtype, sport, dport, ipver, proto, src, dst, mac, has_mac, _reserved,
             n_off, n_len, d_off, d_len, s1_off, s1_len, s2_off, s2_len, s3_off, s3_len) in _EVENT.iter_unpack(raw):
            kind = KINDS.get(kind_id) or f"unknown.{kind_id}"
            text = lambda off, n: str(strs[off:off + n], "utf-8", "backslashreplace") if n else ""
            ev = Event(frame, ts_ns / 1e9, kind, text(n_off, n_len), _PROTOS.get(proto, ""),
                       self.addr(ipver, src), sport, self.addr(ipver, dst), dport,
                       self.mac(mac) if has_mac else "", flow_id, bool(flags & _PARTIAL), file=file)
            if kind in _NAME_KINDS_DNS:
                ev.rrtype, ev.ttl, ev.data = rrtype, ttl, text(d_off, d_len)
            elif kind == "tls.sni" or kind == "quic.sni":
                ev.ja4, ev.ja3, ev.alpn = text(s1_off, s1_len), text(s2_off, s2_len), text(s3_off, s3_len)
            elif kind == "http.host":
                ev.path, ev.method, ev.user_agent = text(d_off, d_len), text(s1_off, s1_len), text(s2_off, s2_len)
            elif kind == "tls.cert":
                ev.der, ev.index = bytes(strs[d_off:d_off + d_len]), index
            elif kind == "dhcp":
                ev.data = text(d_off, d_len)
            elif kind == "flow":
                ev.pkts, ev.bytes, ev.first, ev.last = (p0, p1), (b0, b1), first_ns / 1e9, last_ns / 1e9
                ev.tcp_state, ev.evicted = tcp_state, bool(flags & _EVICTED)
            out.append(ev)
        return out


_PARTIAL, _EVICTED = lib.PC_EVF_PARTIAL, lib.PC_EVF_EVICTED


def limits(**overrides) -> ffi.CData:
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
        self._evbuf = ffi.buffer(self._ev)
        self._conv = _Converter()

    @classmethod
    def open_file(cls, path: str, **limit_overrides) -> Reader:
        """Opens a pcap or pcapng file.

        Raises:
            CaptureOpenError: the file cannot be opened.
            CaptureFormatError: it is not a capture.
        """
        out = ffi.new("pc_reader **")
        err = ffi.new("char[]", 512)
        st = lib.pc_reader_open_file(out, os.fsencode(path), limits(**limit_overrides), err, 512)
        if st < 0:
            # The core's message already names the file.
            raise _STATUS_ERRORS.get(st, errors.NativeError)(ffi.string(err).decode(errors="replace"))
        return cls(out[0], path)

    @classmethod
    def open_live(cls, iface: str, bpf: str | None = None, dump: str | None = None, **limit_overrides) -> Reader:
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
    def open_feed(cls, **limit_overrides) -> Reader:
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
        if not n:
            return []
        return self._conv.events(self._evbuf[0:n * _EVENT.size], self._buf, self.source)

    FORMATS: ClassVar[dict[str, int]] = {"jsonl": lib.PC_FMT_JSONL, "tsv": lib.PC_FMT_TSV}
    OUTBUF = 1 << 20

    def formatted(self, fmt: str, flows: bool, file_field: str, fallback):
        """Yields text chunks of extract lines, formatted by the C core (no Python object per event).

        Args:
            fmt: ``"jsonl"`` or ``"tsv"``.
            flows: also write flow events.
            file_field: the ``file`` field, already escaped for ``fmt``.
            fallback: called with an :class:`Event` the core leaves to Python
                (certificates, non-ASCII strings); returns its line with the newline.
        """
        code, fbytes = self.FORMATS[fmt], file_field.encode("utf-8", "backslashreplace")
        out = bytearray(self.OUTBUF)
        cout, done = ffi.from_buffer(out), ffi.new("size_t *")
        while True:
            n = check(lib.pc_reader_next(self._h, self._ev, self.BATCH, self._cbuf, self.STRBUF), self.source)
            if not n:
                if self.status != "running":
                    return
                continue
            i, chunks = 0, []
            while i < n:
                size = check(lib.pc_format_events(self._ev + i, n - i, self._cbuf, code, int(flows),
                                                  fbytes, len(fbytes), cout, self.OUTBUF, done))
                chunks.append(out[:size].decode("utf-8"))
                i += done[0]
                if i < n and done[0] == 0:
                    # The core stopped at an event Python must format (or a line longer than the buffer).
                    ev = self._conv.events(self._evbuf[i * _EVENT.size:(i + 1) * _EVENT.size], self._buf,
                                           self.source)[0]
                    chunks.append(fallback(ev))
                    i += 1
            yield "".join(chunks)

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
