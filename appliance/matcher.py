"""The indicator matcher: a thin wrapper over the C matcher (``pc_matcher.h``).

C holds the tables and integer ids; Python owns every buffer and the
matcher's lifetime (``ffi.gc``). Names, addresses and fingerprints go to C
in batches (one byte buffer plus an offsets array), never one call per name.
The compiled file is mapped read-only by :meth:`Matcher.load`; metadata
records are read from the mapping only when asked for.
"""
from __future__ import annotations

import ipaddress
import os
import re
from array import array
from collections.abc import Iterable, Sequence
from itertools import accumulate

from . import errors
from .names import normalize
from .native import check, ffi, lib

__all__ = ["Matcher"]

_HITS_START = 1 << 14


def _pack(items: Sequence[bytes]) -> tuple[bytes, array]:
    """Concatenates byte strings and returns (buffer, uint32 offsets with n+1 entries)."""
    offs = array("I", [0])
    total = 0
    for b in items:
        total += len(b)
        offs.append(total)
    return b"".join(items), offs


def _hits_to_pairs(hits, n: int) -> list[tuple[int, int]]:
    flat = memoryview(ffi.buffer(hits, n * 8)).cast("I")
    return list(zip(flat[0::2], flat[1::2]))


def _ip_bytes(value) -> tuple[bytes, int]:
    """Returns (16 address bytes, version) for an ip_address-like value."""
    packed = value.packed
    return packed.ljust(16, b"\0"), value.version


class Matcher:
    """A prepared (or loaded) set of domain, keyword, IP and fingerprint indicators."""

    def __init__(self, handle, loaded: bool = False):
        self._h = ffi.gc(handle, lib.pc_matcher_free)
        self._hits = ffi.new("pc_hit[]", _HITS_START)
        self._cap = _HITS_START
        self.loaded = loaded
        self._meta = ffi.new("uint8_t[]", 4096)  # grown when a metadata record is larger
        self.rejected = 0  # names rejected by the last match_names / match_names_bytes call

    # ---- building -------------------------------------------------------
    @classmethod
    def build(cls, domains: Iterable = (), keywords: Iterable = (), ips: Iterable = (),
              hashes: Iterable = (), domain_block: tuple | None = None) -> Matcher:
        """Builds and prepares a matcher.

        Args:
            domains: (normalised domain str, id) pairs; the domain and its
                subdomains hit.
            keywords: (str, id) pairs; hit anywhere in a name.
            ips: (ipaddress.ip_address or ip_network, id) pairs.
            hashes: (SHA-1 or SHA-256 digest bytes, id) pairs.
            domain_block: more domains, already packed (a big set's fast
                path): ``(ASCII bytes, uint32 offsets with n+1 entries,
                uint32 ids, the n values for error messages)``.
        Returns:
            A prepared Matcher.
        Raises:
            IocFormatError: an indicator is not valid (the message says which).
            LimitError: the keyword automaton would be too large.
        """
        out = ffi.new("pc_matcher **")
        check(lib.pc_matcher_new(out), "new matcher")
        self = cls(out[0])
        if domain_block is not None:
            buf, offs, ids, values = domain_block
            self._add_packed(lib.pc_matcher_add_domains, buf, offs, ids, values, "domain")
        self._add_strings(lib.pc_matcher_add_domains, domains, "domain")
        self._add_strings(lib.pc_matcher_add_keywords, keywords, "keyword")
        self._add_ips(ips)
        self._add_hashes(hashes)
        self._call(lib.pc_matcher_prepare(self._h), "prepare matcher")
        return self

    def _call(self, status: int, what: str) -> int:
        if status < 0 and status != lib.PC_ERR_NOMEM:
            detail = ffi.string(lib.pc_matcher_error(self._h)).decode("utf-8", "replace")
            if detail:
                what = f"{what}: {detail}"
        return check(status, what)

    def _add_strings(self, fn, pairs: Iterable, kind: str) -> None:
        pairs = list(pairs)
        if not pairs:
            return
        values = [v for v, _ in pairs]
        try:
            ids = array("I", [i for _, i in pairs])
        except (TypeError, OverflowError) as exc:
            raise errors.IocFormatError(f"{kind} indicators: ids must be integers 0..2**32-1 ({exc})") from None
        joined = "".join(values) if all(type(v) is str for v in values) else None
        if (joined is not None and joined.isascii()) or all(type(v) is bytes for v in values):
            # The common cases, kept to a few passes over the whole set: C folds
            # ASCII case, drops a trailing dot and checks the labels itself.
            buf = joined.encode("ascii") if joined is not None else b"".join(values)
            offs = array("I", [0])
            offs.extend(accumulate(map(len, values)))
        else:
            strs = []
            for value in values:
                if isinstance(value, str):
                    norm = normalize(value) if kind == "domain" else value.lower()
                    if norm is None:
                        raise errors.IocFormatError(f"{kind} {value!r}: not a valid host name")
                    value = norm.encode("utf-8")
                strs.append(bytes(value))
            buf, offs = _pack(strs)
        self._add_packed(fn, buf, offs, ids, values, kind)

    def _add_packed(self, fn, buf, offs, ids, values, kind: str) -> None:
        """One C call adding len(values) patterns ``buf[offs[i]:offs[i+1]]`` with ``ids[i]``."""
        if len(ids) != len(values) or len(offs) != len(values) + 1:
            raise errors.IocFormatError(f"{kind} indicators: {len(values)} values, {len(ids)} ids, "
                                        f"{len(offs)} offsets")
        if not values:
            return
        st = fn(self._h, buf, ffi.from_buffer("uint32_t[]", offs), ffi.from_buffer("uint32_t[]", ids), len(values))
        if st == lib.PC_ERR_ARG:
            detail = ffi.string(lib.pc_matcher_error(self._h)).decode("utf-8", "replace")
            bad = re.match(rf"{kind} (\d+):", detail)
            which = f" {values[int(bad.group(1))]!r}" if bad and int(bad.group(1)) < len(values) else ""
            raise errors.IocFormatError(f"{kind}{which}: {detail.split(': ', 1)[-1]}")
        self._call(st, f"add {kind}s")

    def _add_ips(self, pairs: Iterable) -> None:
        addrs, vers, plens, ids = bytearray(), bytearray(), bytearray(), array("I")
        for value, ident in pairs:
            if isinstance(value, str):
                try:
                    value = ipaddress.ip_network(value, strict=False)
                except ValueError as exc:
                    raise errors.IocFormatError(f"address {value!r}: {exc}") from None
            if isinstance(value, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
                raw, ver = _ip_bytes(value.network_address)
                plen = value.prefixlen
            elif isinstance(value, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
                raw, ver = _ip_bytes(value)
                plen = value.max_prefixlen
            else:
                raise errors.IocFormatError(f"address {value!r}: not an IP address or network")
            addrs += raw
            vers.append(ver)
            plens.append(plen)
            ids.append(ident)
        if ids:
            self._call(lib.pc_matcher_add_ips(self._h, ffi.from_buffer(addrs), ffi.from_buffer(vers),
                                              ffi.from_buffer(plens), ffi.from_buffer("uint32_t[]", ids),
                                              len(ids)), "add addresses")

    def _add_hashes(self, pairs: Iterable) -> None:
        digests, ids = [], array("I")
        for value, ident in pairs:
            value = bytes(value)
            if len(value) not in (20, 32):
                raise errors.IocFormatError(
                    f"fingerprint {value.hex()}: {len(value)} bytes, expected 20 (SHA-1) or 32 (SHA-256)")
            digests.append(value)
            ids.append(ident)
        if digests:
            buf, offs = _pack(digests)
            self._call(lib.pc_matcher_add_hashes(self._h, buf, ffi.from_buffer("uint32_t[]", offs),
                                                 ffi.from_buffer("uint32_t[]", ids), len(ids)), "add fingerprints")

    # ---- matching -------------------------------------------------------
    def _drain(self, call, n: int) -> list[tuple[int, int]]:
        """Runs a resumable batch call until every item is done; grows the hit array when needed."""
        nxt = ffi.new("size_t *", 0)
        result: list[tuple[int, int]] = []
        while nxt[0] < n:
            st = call(nxt)
            if st == lib.PC_ERR_LIMIT:
                self._cap *= 4
                self._hits = ffi.new("pc_hit[]", self._cap)
                continue
            st = self._call(st, "match")
            if st:
                result.extend(_hits_to_pairs(self._hits, st))
        return result

    def match_names_bytes(self, buf, offsets) -> list[tuple[int, int]]:
        """Matches already-normalised names laid out in one buffer (the fast path).

        Args:
            buf: bytes-like; name i is ``buf[offsets[i]:offsets[i+1]]``. ASCII
                case and one trailing dot are handled in C; non-ASCII names
                must already be punycode (see :func:`appliance.names.normalize`).
            offsets: a uint32 buffer (e.g. ``array('I')``) of n+1 offsets.
        Returns:
            (index, indicator id) pairs, by index; per name the most specific
            domain first, then keywords. :attr:`rejected` is set to the number
            of names that could not be host names.
        Raises:
            NativeError: offsets are inconsistent.
        """
        coffs = ffi.from_buffer("uint32_t[]", offsets)
        n = len(coffs) - 1
        if n <= 0:
            self.rejected = 0
            return []
        cbuf = ffi.from_buffer(buf)
        rej = ffi.new("uint64_t *", 0)
        out = self._drain(lambda nxt: lib.pc_matcher_match_names(
            self._h, cbuf, coffs, n, nxt, self._hits, self._cap, rej), n)
        self.rejected = rej[0]
        return out

    def match_lines(self, block) -> list[tuple[int, int]]:
        """Matches the lines of a block of already-normalised names (the bulk path of ``pocketcheck match``).

        No per-name Python work: C walks the lines itself.

        Args:
            block: bytes-like, names separated by ``\n`` (a last line without
                one counts; nothing else is stripped: ASCII case and one
                trailing dot are handled in C, and non-ASCII names must
                already be punycode). At most 4 GiB.
        Returns:
            (byte offset of the line's start, indicator id) pairs, in line
            order; per line the most specific domain first, then keywords.
            :attr:`rejected` is set to the number of lines that could not be
            host names (empty lines included).
        Raises:
            NativeError: the block is larger than 4 GiB.
        """
        n = len(block)
        if not n:
            self.rejected = 0
            return []
        cbuf = ffi.from_buffer(block)
        rej = ffi.new("uint64_t *", 0)
        out = self._drain(lambda nxt: lib.pc_matcher_match_lines(
            self._h, cbuf, n, nxt, self._hits, self._cap, rej), n)
        self.rejected = rej[0]
        return out

    def match_names(self, names: Sequence[str]) -> list[tuple[int, int]]:
        """Matches host names against the domain and keyword indicators.

        Args:
            names: host names as seen (any case, trailing dot, Unicode or punycode).
        Returns:
            (index into names, indicator id) pairs; for each name the most
            specific domain first, then keywords. Names that cannot be host
            names match nothing (:attr:`rejected` counts them).
        """
        joined = "".join(names)
        if joined.isascii():
            # The common case: one encode, offsets from the lengths (ASCII: 1 byte per character).
            offs = array("I", [0])
            offs.extend(accumulate(map(len, names)))
            return self.match_names_bytes(joined.encode("ascii"), offs)
        enc = []
        for name in names:
            if name.isascii():
                enc.append(name.encode("ascii"))
            else:
                # A name normalize() refuses goes in empty: C rejects and counts it.
                norm = normalize(name)
                enc.append(norm.encode("ascii") if norm is not None else b"")
        buf, offs = _pack(enc)
        return self.match_names_bytes(buf, offs)

    def match_ips(self, ips: Sequence) -> list[tuple[int, int]]:
        """Matches addresses against the IP indicators.

        Args:
            ips: addresses as text (any IPv4/IPv6 spelling) or ipaddress objects;
                text that is not an address matches nothing.
        Returns:
            (index, indicator id) pairs; per address the longest prefix first.
        """
        addrs, vers = bytearray(), bytearray()
        for value in ips:
            try:
                addr = value if not isinstance(value, str) else ipaddress.ip_address(value.split("%", 1)[0])
                raw, ver = _ip_bytes(addr)
            except (ValueError, AttributeError):
                raw, ver = bytes(16), 0
            addrs += raw
            vers.append(ver)
        n = len(vers)
        if not n:
            return []
        ca, cv = ffi.from_buffer(addrs), ffi.from_buffer(vers)
        return self._drain(lambda nxt: lib.pc_matcher_match_ips(self._h, ca, cv, n, nxt, self._hits, self._cap), n)

    def match_hashes(self, digests: Sequence[bytes]) -> list[tuple[int, int]]:
        """Matches certificate fingerprints (20-byte SHA-1 or 32-byte SHA-256).

        Args:
            digests: raw digest bytes; other lengths match nothing.
        Returns:
            (index, indicator id) pairs.
        """
        if not digests:
            return []
        buf, offs = _pack([bytes(d) for d in digests])
        cbuf, coffs, n = ffi.from_buffer(buf), ffi.from_buffer("uint32_t[]", offs), len(digests)
        return self._drain(lambda nxt: lib.pc_matcher_match_hashes(
            self._h, cbuf, coffs, n, nxt, self._hits, self._cap), n)

    # ---- the compiled file ----------------------------------------------
    def save(self, path, metadata: Sequence[bytes] = ()) -> None:
        """Writes the compiled matcher with a metadata section (record i = id i).

        Args:
            path: where to write (atomically, through ``path.tmp``).
            metadata: opaque byte records, read back with :meth:`metadata`;
                or, already packed, ``(bytes, array('Q') of n+1 offsets)``.
        Raises:
            OSError: the file cannot be written.
        """
        if isinstance(metadata, tuple) and len(metadata) == 2 and isinstance(metadata[1], array):
            blob, offs = metadata  # already packed: (bytes, uint64 offsets with n+1 entries)
            records = range(len(offs) - 1)
        else:
            records = [bytes(r) for r in metadata]
            blob = b"".join(records)
            offs = array("Q", [0])
            offs.extend(accumulate(map(len, records)))
        err = ffi.new("char[]", 512)
        st = lib.pc_matcher_save(self._h, os.fsencode(path), ffi.from_buffer(blob) if blob else ffi.NULL,
                                 ffi.from_buffer("uint64_t[]", offs), len(records), err, 512)
        if st == lib.PC_ERR_IO:
            raise OSError(f"cannot write {os.fspath(path)}: {ffi.string(err).decode('utf-8', 'replace')}")
        check(st, f"save {os.fspath(path)}: {ffi.string(err).decode('utf-8', 'replace')}")

    @classmethod
    def load(cls, path) -> Matcher:
        """Maps a compiled matcher file read-only (no rebuilding).

        Args:
            path: a file written by :meth:`save`.
        Returns:
            A prepared Matcher backed by the mapping.
        Raises:
            CompiledFileError: the file is missing, damaged, truncated or of
                another format version (the message says which).
        """
        out = ffi.new("pc_matcher **")
        err = ffi.new("char[]", 512)
        st = lib.pc_matcher_load(out, os.fsencode(path), err, 512)
        if st < 0:
            reason = ffi.string(err).decode("utf-8", "replace")
            if st == lib.PC_ERR_NOMEM:
                raise MemoryError(f"loading {os.fspath(path)}: out of memory")
            raise errors.CompiledFileError(f"compiled indicators {os.fspath(path)}: {reason}")
        return cls(out[0], loaded=True)

    def metadata(self, id: int) -> bytes:
        """Returns metadata record ``id`` of a loaded matcher, read from its file on demand.

        The record is copied with ``pread`` from the file that was mapped
        (not through the mapping), so a few thousand hits over a million
        records do not make those pages resident in this process.

        Raises:
            KeyError: there is no such record.
            CompiledFileError: the record's index entry is damaged.
            NativeError: the matcher was built, not loaded.
        """
        if not 0 <= id < 1 << 32:
            raise KeyError(id)
        size = ffi.new("size_t *")
        while True:
            st = lib.pc_matcher_metadata_copy(self._h, id, self._meta, len(self._meta), size)
            if st != lib.PC_ERR_LIMIT:
                break
            self._meta = ffi.new("uint8_t[]", size[0])
        if st == lib.PC_ERR_ARG:
            raise KeyError(id)
        if st == lib.PC_ERR_CORRUPT:
            raise errors.CompiledFileError(f"compiled indicators: metadata record {id} is damaged")
        check(st, "metadata (only loaded matchers have it)")
        return bytes(ffi.buffer(self._meta, size[0]))

    def stats(self) -> dict:
        """Counts of each kind of indicator and the bytes of the tables."""
        st = ffi.new("pc_matcher_stats *")
        lib.pc_matcher_stats_get(self._h, st)
        return {name: getattr(st, name) for name, _ in ffi.typeof("pc_matcher_stats").fields}

    def close(self) -> None:
        """Frees the C matcher (and unmaps its file) now rather than at garbage collection."""
        if self._h is not None:
            lib.pc_matcher_free(ffi.gc(self._h, None))
            self._h = None
