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

__all__ = ["DomainLines", "Matcher", "iter_joined", "sort_strings"]

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


class DomainLines:
    """Reads the clean domain lines of a buffer into one values buffer and offsets (``pc_domain_lines``).

    The plain-list reader calls :meth:`read` from a byte offset; it returns
    at the first line that is not a clean domain (the reader handles that
    line itself and calls again after it) or at the end. :meth:`finish`
    hands over what was collected. No object is made per domain.
    """

    def __init__(self, data: bytes):
        self._data = data
        self._values = bytearray(len(data))  # a line is never longer stored than read
        self._offsets = array("I", bytes(4 * (data.count(b"\n") + 2)))  # one more than lines, plus off[0]
        self._cdata = ffi.from_buffer(data)
        self._cvals = ffi.from_buffer(self._values)
        self._coffs = ffi.from_buffer("uint32_t[]", self._offsets)
        self._pos, self._vlen, self._n = ffi.new("size_t *"), ffi.new("size_t *"), ffi.new("size_t *")

    def read(self, pos: int) -> int:
        """Stores the clean domain lines from byte ``pos`` on.

        Returns:
            The offset of the first line that is not a clean domain, or
            ``len(data)`` when every line was read.
        Raises:
            NativeError: ``pos`` is beyond the buffer, or the buffer is 4 GiB or more.
        """
        self._pos[0] = pos
        check(lib.pc_domain_lines(self._cdata, len(self._data), self._pos, self._cvals, self._vlen, self._coffs,
                                  len(self._offsets), self._n), "read domain lines")
        return self._pos[0]

    def finish(self) -> tuple[bytearray, array]:
        """The collected domains: (values, uint32 offsets with n+1 entries); the reader is done."""
        del self._cvals, self._coffs, self._cdata  # release the buffers so they can shrink in place
        del self._values[self._vlen[0]:]
        del self._offsets[self._n[0] + 1:]
        return self._values, self._offsets


def sort_strings(values, offsets, keys=None, dups: bool = True) -> tuple[array, array]:
    """Sorts n strings of one buffer by (key, bytes), stably, in C (``pc_strings_sort``).

    Args:
        values: bytes-like; string i is ``values[offsets[i]:offsets[i + 1]]``.
        offsets: uint32 buffer of n+1 non-decreasing offsets.
        keys: None, or a bytes-like of n small keys sorted on first (an indicator's kind).
        dups: also find the duplicates (else the second array is empty).
    Returns:
        ``(order, dups)``: the indexes in sorted order (uint32), and the
        positions p of ``order`` whose string and key equal those at p-1.
    Raises:
        NativeError: offsets decrease or do not match ``keys`` or ``values``.
    """
    n = len(offsets) - 1
    if n <= 0:
        return array("I"), array("I")
    if keys is not None and len(keys) != n:
        raise errors.NativeError(f"sort strings: {n} strings, {len(keys)} keys")
    if offsets[n] > len(values):
        raise errors.NativeError(f"sort strings: offsets beyond the {len(values)}-byte buffer")
    order, found = array("I", bytes(4 * n)), array("I", bytes(4 * n) if dups else b"")
    st = lib.pc_strings_sort(ffi.from_buffer(values), ffi.from_buffer("uint32_t[]", offsets),
                             ffi.from_buffer(keys) if keys is not None else ffi.NULL, n,
                             ffi.from_buffer("uint32_t[]", order),
                             ffi.from_buffer("uint32_t[]", found) if dups else ffi.NULL)
    st = check(st, "sort strings")
    if dups:
        del found[st:]
    return order, found


def iter_joined(values, offsets, order, chunk: int = 1 << 20):
    """Yields the strings ``values[offsets[k]:offsets[k + 1]]`` for k in ``order``, each followed by ``\n``.

    They come in pieces of up to ``chunk`` bytes (``pc_strings_join``), one
    buffer reused: each piece is valid until the next is asked for.

    Raises:
        NativeError: an order entry or offset is out of range.
    """
    n, count = len(offsets) - 1, len(order)
    if count and (n < 1 or offsets[n] > len(values)):
        raise errors.NativeError(f"join strings: {len(offsets)} offsets, {len(values)} bytes")
    out = bytearray(chunk)
    cvals, coffs, corder, cout = (ffi.from_buffer(values), ffi.from_buffer("uint32_t[]", offsets),
                                  ffi.from_buffer("uint32_t[]", order), ffi.from_buffer(out))
    nxt = ffi.new("size_t *", 0)
    with memoryview(out) as view:
        while nxt[0] < count:
            yield view[:check(lib.pc_strings_join(cvals, coffs, n, corder, count, nxt, cout, chunk), "join strings")]


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
            domain_block: more domains, already packed (a big set's bulk
                path): ``(ASCII bytes-like, uint32 offsets with n+1 entries,
                uint32 ids)``.
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
            buf, offs, ids = domain_block
            self._add_packed(lib.pc_matcher_add_domains, buf, offs, ids, "domain")
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
        self._add_packed(fn, buf, offs, ids, kind)

    def _add_packed(self, fn, buf, offs, ids, kind: str) -> None:
        """One C call adding len(ids) patterns ``buf[offs[i]:offs[i+1]]`` with ``ids[i]``."""
        n = len(ids)
        if len(offs) != n + 1 or (n and offs[n] > len(buf)):
            raise errors.IocFormatError(f"{kind} indicators: {n} ids, {len(offs)} offsets, {len(buf)} bytes")
        if not n:
            return
        st = fn(self._h, ffi.from_buffer(buf), ffi.from_buffer("uint32_t[]", offs), ffi.from_buffer("uint32_t[]", ids),
                n)
        if st == lib.PC_ERR_ARG:
            detail = ffi.string(lib.pc_matcher_error(self._h)).decode("utf-8", "replace")
            bad = re.match(rf"{kind} (\d+):", detail)
            i = int(bad.group(1)) if bad else n
            which = f" {bytes(buf[offs[i]:offs[i + 1]]).decode('utf-8', 'replace')!r}" if i < n else ""
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
