"""Readers for the indicator formats pocketcheck accepts.

Every reader turns one file into a :class:`Parsed`: plain records
(value, kind, family, category), plus allowlist entries, heuristics data and
counts of what was deliberately skipped (Android package names, APK signing
certificates, Snort rules...). Nothing here builds a matcher; that is
:mod:`appliance.indicators`.

A reader either returns a complete result or raises
:class:`~appliance.errors.IocFormatError` naming the file, the entry or line
and the reason: a bad file never half-loads. With ``strict=False`` invalid
values are skipped instead, and counted in :attr:`Parsed.invalid` with the
first few reasons kept for the warning, never silently.

Why this module is over 500 lines: it is the reader table, one small reader
per format below, kept together so that adding a format touches one file.

Formats, detected from the content (``fmt`` overrides):

``echap-yaml``   Échap stalkerware-indicators ``ioc.yaml`` / ``watchware.yaml``
``stix2``        STIX 2.x bundles as MVT uses them
``misp``         a MISP event (with or without the ``Event`` wrapper)
``misp-csv``     the MISP CSV export
``tinycheck``    TinyCheck / SpyGuard ``{"iocs": [...]}``
``tinycheck-allowlist``  TinyCheck / SpyGuard ``whitelist.json``
``pocketcheck``  pocketcheck's own normalised JSON (what ``iocs import`` writes)
``plain``        one domain, IP, CIDR or URL per line; hosts-file lines; ``#`` comments

A plain list's clean domain lines are read in C into one buffer
(:class:`DomainBlock`, :attr:`Parsed.block`): a list of a million domains
never becomes a million Python objects. Every other line is a
:class:`Record` as in the other formats; :meth:`Parsed.all_records` yields both.
"""
from __future__ import annotations

import codecs
import csv
import io
import ipaddress
import json
import os
import re
from array import array
from collections import Counter
from dataclasses import dataclass, field
from itertools import chain
from urllib.parse import urlsplit

import yaml

from . import names
from .errors import IocFormatError

FORMATS = ("echap-yaml", "stix2", "misp", "misp-csv", "tinycheck", "tinycheck-allowlist", "pocketcheck", "plain")
KINDS = ("domain", "keyword", "ipv4", "ipv6", "cidr", "cert-sha1", "cert-sha256")

# A file larger than this is refused before it is read (a 100 MB "list" is a
# mistake or an attack on a box with 512 MB of RAM).
DEFAULT_MAX_BYTES = 50 * 1024 * 1024
# YAML limits: the Échap files nest 3 deep and hold ~20k nodes.
YAML_MAX_DEPTH = 32
YAML_MAX_NODES = 2_000_000
# How many invalid-value reasons a non-strict load keeps for its warning.
KEEP_REASONS = 5

_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_DOMAIN_RE = re.compile(rf"(?:{_LABEL}\.)+{_LABEL}")
_LABEL_RE = re.compile(_LABEL)
_HEX_RE = re.compile(r"[0-9a-f]+")
# Names a hosts file maps to itself; they are not indicators.
_HOSTS_LOCAL = frozenset({
    "localhost", "localhost.localdomain", "local", "broadcasthost", "ip6-localhost", "ip6-loopback",
    "ip6-localnet", "ip6-mcastprefix", "ip6-allnodes", "ip6-allrouters", "ip6-allhosts", "0.0.0.0",
})
# Broadest prefixes accepted as an indicator: a shorter one would flag a
# large part of the internet, which is never what a list author meant.
MIN_PREFIX = {4: 8, 6: 16}


@dataclass(slots=True)
class Record:
    """One indicator as read from a file, before severities and licences."""

    value: str
    kind: str
    family: str
    category: str
    via_url: bool = False  # the value is the host of a URL with a path


@dataclass(slots=True)
class DomainBlock:
    """The clean domain lines of a plain list as one buffer: no object per indicator.

    A list of a million domains stays this from the file to the matcher
    (:func:`appliance.indicators.assemble` keeps it columnar).

    Attributes:
        values: the normalised (ASCII, lower-case) domains, concatenated.
        offsets: uint32, ``len + 1`` entries: domain i is ``values[offsets[i]:offsets[i + 1]]``.
        family, category: shared by every domain of the block.
    """

    values: bytearray
    offsets: array
    family: str
    category: str

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def records(self):
        """Yields each domain as a :class:`Record` (for checks and tests; the bulk path never does)."""
        v, o = self.values, self.offsets
        for i in range(len(self)):
            yield Record(v[o[i]:o[i + 1]].decode("ascii"), "domain", self.family, self.category)


@dataclass
class Parsed:
    """Everything one file contributed."""

    path: str
    format: str
    records: list = field(default_factory=list)
    allow_domains: set = field(default_factory=set)
    allow_networks: set = field(default_factory=set)
    heuristics: dict = field(default_factory=dict)  # name -> set of strings
    skipped: Counter = field(default_factory=Counter)  # reason -> count
    invalid: int = 0
    invalid_reasons: list = field(default_factory=list)
    extra: dict = field(default_factory=dict)  # format-specific (pocketcheck: sources, severities)
    # Indicators found under a misspelled key and read where the meaning was
    # unambiguous: (where, key as written, key read as, values), for `iocs verify`.
    recovered: list = field(default_factory=list)
    # Plain lists: the clean domain lines, kept as one buffer (the other lines are in records).
    block: DomainBlock | None = None

    def all_records(self):
        """Yields every indicator of the file as a :class:`Record`: the block's, then the others."""
        return chain(self.block.records() if self.block is not None else (), self.records)


class _Ctx:
    """Error reporting for one file: raise (strict) or count (lenient)."""

    def __init__(self, path: str, fmt: str, strict: bool):
        self.path, self.strict = path, strict
        self.out = Parsed(path=path, format=fmt)

    def fail(self, where: str, reason: str):
        """Raises the IocFormatError for a structural problem (never skippable)."""
        raise IocFormatError(f"{self.path}: {where}: {reason}" if where else f"{self.path}: {reason}")

    def bad(self, where: str, reason: str) -> None:
        """An invalid value: an error when strict, else counted and skipped."""
        if self.strict:
            self.fail(where, reason)
        self.out.invalid += 1
        if len(self.out.invalid_reasons) < KEEP_REASONS:
            self.out.invalid_reasons.append(f"{where}: {reason}")

    def add(self, where: str, value, family: str, category: str, *, allow_url=True, kinds=None) -> None:
        """Classifies a host-like value (domain, IP, CIDR, URL) and records it."""
        if not isinstance(value, str):
            self.bad(where, f"expected a text value, got {type(value).__name__}")
            return
        try:
            kind, norm, via_url = classify(value, allow_url=allow_url)
        except ValueError as exc:
            self.bad(where, str(exc))
            return
        if kinds is not None and kind not in kinds:
            self.bad(where, f"{value!r} is a {kind}, expected {' or '.join(kinds)}")
            return
        self.out.records.append(Record(norm, kind, family, category, via_url))

    def heur(self, name: str, value: str) -> None:
        """Adds one value to a heuristics list."""
        self.out.heuristics.setdefault(name, set()).add(value)


# ---------------------------------------------------------------- values

def normalize_domain(value: str) -> str:
    """Normalises a domain indicator the way the matcher normalises names.

    A leading ``*.`` wildcard is removed (subdomains match anyway), then the
    name goes through :func:`appliance.names.check` (white space, one
    trailing dot, IDNA to punycode, case, 253 bytes); on top of that an
    indicator must be made of valid labels and have more than one.

    Args:
        value: the domain as written in the source.
    Returns:
        The normalised domain.
    Raises:
        ValueError: not a valid domain name, over 253 bytes, or a single label
            (``com`` would match every name under it).
    """
    name = names.check(value.strip().removeprefix("*."))
    if not _DOMAIN_RE.fullmatch(name):
        if "." not in name and _DOMAIN_RE.fullmatch(name + ".x"):
            raise ValueError(f"{value!r} is a single label; it would match every name under it")
        raise ValueError(f"{value!r} is not a valid domain name")
    if name.rsplit(".", 1)[1].isdigit():
        raise ValueError(f"{value!r} is not a valid domain name (numeric top-level label)")
    return name


def classify(value: str, allow_url: bool = True) -> tuple[str, str, bool]:
    """Works out what a host-like value is and normalises it.

    Args:
        value: a domain, IPv4/IPv6 address, CIDR prefix or URL.
        allow_url: take the host of a URL (else a URL is an error).
    Returns:
        ``(kind, normalised value, via_url)``; ``via_url`` is true when the
        value was a URL with a path, whose host alone may be a shared platform.
    Raises:
        ValueError: the value is none of those, or is too broad.
    """
    text = value.strip()
    if not text:
        raise ValueError("empty value")
    via_url = False
    if "://" in text:
        if not allow_url:
            raise ValueError(f"{value!r} is a URL, expected a name or address")
        try:
            parts = urlsplit(text)
            host = parts.hostname
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a valid URL ({exc})") from None
        if not host:
            raise ValueError(f"{value!r} is a URL without a host")
        via_url = parts.path not in ("", "/") or bool(parts.query)
        text = host
    if "/" in text:
        try:
            net = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise ValueError(f"{value!r} is not a valid CIDR prefix") from None
        if net.prefixlen < MIN_PREFIX[net.version]:
            raise ValueError(f"{value!r} is too broad (shorter than /{MIN_PREFIX[net.version]})")
        if net.prefixlen == net.max_prefixlen:
            return ("ipv4" if net.version == 4 else "ipv6"), str(net.network_address), via_url
        return "cidr", str(net), via_url
    if ":" in text or text.replace(".", "").isdigit():
        try:
            addr = ipaddress.ip_address(text.strip("[]"))
        except ValueError:
            raise ValueError(f"{value!r} is not a valid IP address") from None
        return ("ipv4" if addr.version == 4 else "ipv6"), str(addr), via_url
    return "domain", normalize_domain(text), via_url


def normalize_fingerprint(value: str) -> tuple[str, str]:
    """Normalises a certificate fingerprint (hex, optional colons, any case).

    Returns:
        ``("cert-sha1" | "cert-sha256", lowercase hex)``.
    Raises:
        ValueError: not 40 or 64 hex digits.
    """
    hexs = value.strip().replace(":", "").lower()
    if not _HEX_RE.fullmatch(hexs) or len(hexs) not in (40, 64):
        raise ValueError(f"{value!r} is not a SHA-1 or SHA-256 fingerprint (40 or 64 hex digits)")
    return ("cert-sha1" if len(hexs) == 40 else "cert-sha256"), hexs


# ---------------------------------------------------------------- reading

def read_text(path, max_bytes: int = DEFAULT_MAX_BYTES) -> str:
    """Reads a file as UTF-8 text within a size limit.

    Raises:
        IocFormatError: too large, or not UTF-8 (names the byte offset and line).
        OSError: cannot be read.
    """
    return _decode(os.fspath(path), _read_bytes(path, max_bytes))


def _read_bytes(path, max_bytes: int) -> bytes:
    """A file's bytes within a size limit (see :func:`read_text`)."""
    path = os.fspath(path)
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size > max_bytes:
            raise IocFormatError(f"{path}: file is {size / 1e6:.1f} MB, over the {max_bytes / 1e6:.0f} MB limit")
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:  # grew, or a pipe / special file
        raise IocFormatError(f"{path}: file is over the {max_bytes / 1e6:.0f} MB limit")
    return data


def _decode(path: str, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise IocFormatError(f"{path}: line {line}: not UTF-8 text (bad byte at offset {exc.start})") from None


_MISP_CSV_HEAD = ["uuid", "event_id", "category", "type", "value", "comment", "to_ids", "date"]


def detect(text: str) -> str:
    """Names the format of a file from its content (see the module docstring)."""
    head = text.lstrip()
    if head.startswith(("{", "[")):
        try:
            doc = json.loads(text)
        except ValueError:
            return "json?"
        if isinstance(doc, dict):
            if doc.get("format") == "pocketcheck-iocs":
                return "pocketcheck"
            if "iocs" in doc:
                return "tinycheck"
            if "elements" in doc:
                return "tinycheck-allowlist"
            if doc.get("type") == "bundle" or "objects" in doc:
                return "stix2"
            if "Event" in doc or "response" in doc or "Attribute" in doc or "Object" in doc:
                return "misp"
        if isinstance(doc, list) and doc and isinstance(doc[0], dict) and "Event" in doc[0]:
            return "misp"
        return "json?"
    # The first line that is neither blank nor a comment decides; lines are
    # cut one at a time (a list of every line of a big list is ~70 B each).
    pos = 0
    while pos < len(text):
        end = text.find("\n", pos)
        end = len(text) if end < 0 else end
        s, pos = text[pos:end].strip(), end + 1
        if not s or s.startswith("#"):
            continue
        if s.replace(" ", "").lower().split(",")[:8] == _MISP_CSV_HEAD:
            return "misp-csv"
        if s.startswith(("- ", "---", "%YAML")) or s == "-":
            return "echap-yaml"
        return "plain"
    return "plain"


def parse_file(path, fmt: str | None = None, strict: bool = True, max_bytes: int = DEFAULT_MAX_BYTES) -> Parsed:
    """Reads one indicator file completely, or raises.

    Args:
        path: the file.
        fmt: one of :data:`FORMATS`; None detects it from the content.
        strict: an invalid value is an error (True) or skipped and counted.
        max_bytes: size limit.
    Returns:
        The :class:`Parsed` content.
    Raises:
        IocFormatError: unknown format, malformed file, invalid value (strict),
            too large, not UTF-8; the message names file, entry/line and reason.
        OSError: the file cannot be read.
    """
    path = os.fspath(path)
    data = _read_bytes(path, max_bytes)
    text = _decode(path, data)  # also the UTF-8 check of the bulk path below
    if fmt is None:
        fmt = detect(text)
        if fmt == "json?":
            _json(path, text)  # a JSON syntax error is the better message
            raise IocFormatError(f"{path}: JSON, but not a format pocketcheck knows "
                                 "(TinyCheck, STIX 2, MISP or pocketcheck)")
    if fmt not in FORMATS:
        raise IocFormatError(f"{path}: unknown format {fmt!r} (one of {', '.join(FORMATS)})")
    ctx = _Ctx(path, fmt, strict)
    if fmt == "plain":  # a big list is read from its bytes, never held as lines of text
        del text
        _read_plain(ctx, data)
    else:
        _READERS[fmt](ctx, text)
    return ctx.out


def _json(path: str, text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise IocFormatError(f"{path}: line {exc.lineno}: invalid JSON ({exc.msg})") from None
    except RecursionError:
        raise IocFormatError(f"{path}: JSON nested too deeply") from None


# ---------------------------------------------------------------- YAML

class _LimitedSafeLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses aliases and bounds nesting and node count.

    Aliases are what "billion laughs" bombs are made of, and no indicator
    file needs them; refusing them outright is simpler than counting
    expansions.
    """

    def __init__(self, stream):
        super().__init__(stream)
        self._depth = 0
        self._nodes = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.YAMLError(f"line {event.start_mark.line + 1}: YAML aliases (*{event.anchor}) are not allowed")
        self._nodes += 1
        if self._nodes > YAML_MAX_NODES:
            raise yaml.YAMLError(f"more than {YAML_MAX_NODES} YAML nodes")
        self._depth += 1
        try:
            if self._depth > YAML_MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise yaml.YAMLError(f"line {mark.line + 1}: nested deeper than {YAML_MAX_DEPTH} levels")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def safe_yaml(path: str, text: str):
    """Parses YAML safely (plain data only; no aliases; bounded); errors name the line.

    Raises:
        IocFormatError: invalid YAML, an alias, too deep or too many nodes.
    """
    try:
        # the reader checks the characters when it is made: a control byte fails here already
        loader = _LimitedSafeLoader(text)
    except yaml.YAMLError as exc:
        raise IocFormatError(f"{path}: invalid YAML ({' '.join(str(exc).split())})") from None
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}: " if mark else ""
        raise IocFormatError(f"{path}: {where}invalid YAML ({exc.problem or exc.context})") from None
    except yaml.YAMLError as exc:
        raise IocFormatError(f"{path}: {' '.join(str(exc).split())}") from None
    except RecursionError:
        raise IocFormatError(f"{path}: YAML nested too deeply") from None
    finally:
        loader.dispose()


def _str_list(ctx: _Ctx, where: str, value) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        ctx.fail(where, f"expected a list, got {type(value).__name__}")
    return value


# Keys of an Échap family that are not network indicators (counted, skipped).
_ECHAP_OFFLINE = {
    "packages": "android-package", "certificates": "apk-signing-certificate", "ios_bundles": "ios-bundle",
    "certificate_cname_re": "apk-certificate-cname", "certificate_organizations": "apk-certificate-organization",
}
_ECHAP_KEYS = {"name", "names", "type", "websites", "distribution", "c2"} | set(_ECHAP_OFFLINE)


# Misspellings of an Échap key whose meaning is unambiguous: read as the key
# they stand for, and reported by `iocs verify` (upstream's own generators
# skip them, so those indicators never reach its published lists: MobiStealth
# and Ahmyth wrote `c2: ip:`). A key that could mean two things (a bare
# `hosts:` could be C2 or a website) stays an error.
_ECHAP_FAMILY_ALIASES = {"website": "websites", "distributions": "distribution", "package": "packages",
                         "certificate": "certificates", "ios_bundle": "ios_bundles"}
_ECHAP_C2_ALIASES = {"ip": "ips", "ipv4": "ips", "ipv6": "ips", "addresses": "ips", "domain": "domains"}


def _dealias(ctx: _Ctx, where: str, mapping: dict, known: set, aliases: dict, prefix: str) -> dict:
    """Returns ``mapping`` with its misspelled keys read as the keys they stand for (each noted).

    Raises:
        IocFormatError: a key that is neither known nor an unambiguous misspelling.
    """
    out: dict = {}
    for key, value in mapping.items():
        key = str(key)
        if key in known:
            target = key
        elif key in aliases:
            target = aliases[key]
            value = _str_list(ctx, f"{where} {prefix}{key}", value)
            ctx.out.recovered.append((where, prefix + key, prefix + target, [str(v) for v in value]))
        else:
            ctx.fail(where, f"unknown key {key!r}" + (f" ({', '.join(sorted(known))})" if prefix else ""))
        if isinstance(out.get(target), list) and isinstance(value, list):
            value = out[target] + value   # `ips:` and `ip:` both given: read both
        out[target] = value
    return out


def _read_echap(ctx: _Ctx, text: str) -> None:
    doc = safe_yaml(ctx.path, text)
    if not isinstance(doc, list):
        ctx.fail("", f"expected a YAML list of app families, got {type(doc).__name__}")
    for i, fam in enumerate(doc, 1):
        if not isinstance(fam, dict):
            ctx.fail(f"entry {i}", f"expected a mapping, got {type(fam).__name__}")
        name = fam.get("name")
        if not isinstance(name, str) or not name.strip():
            ctx.fail(f"entry {i}", "missing or invalid 'name'")
        where = f"entry {i} ({name})"
        fam = _dealias(ctx, where, fam, _ECHAP_KEYS, _ECHAP_FAMILY_ALIASES, "")
        kind = fam.get("type", "stalkerware")
        if kind not in ("stalkerware", "watchware"):
            ctx.fail(where, f"unknown type {kind!r} (stalkerware or watchware)")
        watch = kind == "watchware"
        c2 = fam.get("c2") or {}
        if not isinstance(c2, dict):
            ctx.fail(f"{where} c2", f"expected a mapping, got {type(c2).__name__}")
        c2 = _dealias(ctx, f"{where} c2", c2, {"domains", "ips"}, _ECHAP_C2_ALIASES, "c2.")
        c2cat = "watchware" if watch else "stalkerware-c2"
        for v in _str_list(ctx, f"{where} c2.domains", c2.get("domains")):
            ctx.add(f"{where} c2.domains", v, name, c2cat, kinds=("domain",))
        for v in _str_list(ctx, f"{where} c2.ips", c2.get("ips")):
            ctx.add(f"{where} c2.ips", v, name, c2cat, kinds=("ipv4", "ipv6", "cidr"))
        for v in _str_list(ctx, f"{where} websites", fam.get("websites")):
            ctx.add(f"{where} websites", v, name, "watchware" if watch else "vendor-website")
        for v in _str_list(ctx, f"{where} distribution", fam.get("distribution")):
            ctx.add(f"{where} distribution", v, name, "watchware" if watch else "distribution")
        for key, reason in _ECHAP_OFFLINE.items():
            val = fam.get(key)
            if val:
                ctx.out.skipped[reason] += len(val) if isinstance(val, list) else 1
        ctx.out.extra.setdefault("families", []).append(name)


def several_families(parsed: Parsed) -> list[tuple[str, str, list[str]]]:
    """The values one file lists under more than one family, each once with all of them.

    Args:
        parsed: a parsed file.
    Returns:
        (kind, value, sorted families) for each value named by two families
        or more, sorted by value (hosts of URLs with a path are left out).
    """
    families: dict[tuple[str, str], set] = {}
    for r in parsed.records:
        # Two URLs on one host (two projects on github.com) are two entries, not one name listed twice.
        if r.family and not r.via_url:
            families.setdefault((r.kind, r.value), set()).add(r.family)
    return sorted(((k, v, sorted(f)) for (k, v), f in families.items() if len(f) > 1), key=lambda x: (x[1], x[0]))


# ---------------------------------------------------------------- TinyCheck / SpyGuard

# TinyCheck/SpyGuard tag -> pocketcheck category.
TINYCHECK_TAGS = {
    "stalkerware": "stalkerware-c2", "pegasus": "spyware", "apt": "spyware", "spyware": "spyware",
    "cybercrime": "spyware", "tracker": "tracker", "suspect": "suspicious", "suspicious": "suspicious",
    "dual": "dual-use",
}


def _read_tinycheck(ctx: _Ctx, text: str) -> None:
    doc = _json(ctx.path, text)
    iocs = doc.get("iocs") if isinstance(doc, dict) else None
    if not isinstance(iocs, list):
        ctx.fail("", "expected {\"iocs\": [...]}")
    for i, ioc in enumerate(iocs, 1):
        where = f"iocs[{i}]"
        if not isinstance(ioc, dict):
            ctx.fail(where, f"expected an object, got {type(ioc).__name__}")
        typ, tag, value = ioc.get("type"), ioc.get("tag", ""), ioc.get("value")
        if not isinstance(typ, str) or not isinstance(value, str) or not isinstance(tag, str):
            ctx.fail(where, "'type', 'tag' and 'value' must be text")
        where = f"iocs[{i}] ({typ} {value[:60]!r})"
        cat = TINYCHECK_TAGS.get(tag, tag or "suspicious")
        if typ == "snort":
            ctx.out.skipped["snort-rule"] += 1
        elif tag == "doh" and typ == "domain":
            _heur_domain(ctx, where, "doh_names", value)
        elif tag == "doh" and typ in ("ip4addr", "ip6addr"):
            try:
                ctx.heur("doh_ips", str(ipaddress.ip_address(value.strip())))
            except ValueError as exc:
                ctx.bad(where, str(exc))
        elif typ == "domain":
            ctx.add(where, value, "", cat)
        elif typ in ("ip4addr", "ip6addr"):
            ctx.add(where, value, "", cat, allow_url=False, kinds=("ipv4",) if typ == "ip4addr" else ("ipv6",))
        elif typ == "cidr":
            ctx.add(where, value, "", cat, allow_url=False, kinds=("cidr", "ipv4", "ipv6"))
        elif typ == "sha1cert":
            try:
                kind, hexs = normalize_fingerprint(value)
            except ValueError as exc:
                ctx.bad(where, str(exc))
                continue
            if kind != "cert-sha1":
                ctx.bad(where, "sha1cert must be 40 hex digits")
                continue
            ctx.out.records.append(Record(hexs, kind, "", cat))
        elif typ == "freedns":
            _heur_domain(ctx, where, "dyndns_suffixes", value)
        elif typ == "ns":
            _heur_domain(ctx, where, "suspect_nameservers", value)
        elif typ == "tld":
            tld = value.strip().lstrip(".").lower()
            if not _LABEL_RE.fullmatch(tld) or tld.isdigit():
                ctx.bad(where, f"{value!r} is not a top-level domain")
            else:
                ctx.heur("rare_tlds", tld)
        else:
            ctx.fail(where, f"unknown type {typ!r}")


def _heur_domain(ctx: _Ctx, where: str, name: str, value: str) -> None:
    try:
        ctx.heur(name, normalize_domain(value))
    except ValueError as exc:
        ctx.bad(where, str(exc))


def _read_tinycheck_allowlist(ctx: _Ctx, text: str) -> None:
    doc = _json(ctx.path, text)
    elements = doc.get("elements") if isinstance(doc, dict) else None
    if not isinstance(elements, list):
        ctx.fail("", "expected {\"elements\": [...]}")
    # TinyCheck's `to_delete` lists entries its updater removes from the allowlist.
    drop = {str(e.get("element", "")).strip() for e in doc.get("to_delete") or [] if isinstance(e, dict)}
    for i, el in enumerate(elements, 1):
        if not isinstance(el, dict) or not isinstance(el.get("element"), str):
            ctx.fail(f"elements[{i}]", "expected {\"type\": ..., \"element\": text}")
        typ, value = el.get("type"), el["element"].strip()
        where = f"elements[{i}] ({typ} {value[:60]!r})"
        if value in drop:
            ctx.out.skipped["allowlist-to_delete"] += 1
            continue
        try:
            if typ == "domain":
                ctx.out.allow_domains.add(normalize_domain(value))
            elif typ in ("cidr", "ip4addr", "ip6addr"):
                ctx.out.allow_networks.add(str(ipaddress.ip_network(value, strict=False)))
            else:
                ctx.fail(where, f"unknown type {typ!r}")
        except ValueError as exc:
            ctx.bad(where, str(exc))


# ---------------------------------------------------------------- STIX 2

_STIX_PATHS = {
    "domain-name:value": ("domain",), "ipv4-addr:value": ("ipv4", "cidr"), "ipv6-addr:value": ("ipv6", "cidr"),
    "url:value": ("domain", "ipv4", "ipv6"),
}
_STIX_CERT = re.compile(r"x509-certificate:hashes\.(?:'(sha-?1|sha-?256)'|(sha1|sha256))", re.IGNORECASE)


def _stix_value(raw: str) -> str | None:
    raw = raw.strip()
    if len(raw) < 2 or raw[0] != "'" or raw[-1] != "'":
        return None
    return raw[1:-1].replace("\\'", "'").replace("\\\\", "\\")


def _read_stix2(ctx: _Ctx, text: str) -> None:
    doc = _json(ctx.path, text)
    objects = doc.get("objects") if isinstance(doc, dict) else None
    if not isinstance(objects, list):
        ctx.fail("", "expected a STIX bundle with 'objects'")
    by_id = {}
    for i, obj in enumerate(objects, 1):
        if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
            ctx.fail(f"objects[{i}]", "expected an object with a 'type'")
        by_id[obj.get("id")] = obj
    families: dict = {}
    for obj in objects:
        if obj["type"] == "relationship" and obj.get("relationship_type") == "indicates":
            target = by_id.get(obj.get("target_ref"))
            if target is not None and target.get("type") == "malware" and isinstance(target.get("name"), str):
                families.setdefault(obj.get("source_ref"), set()).add(target["name"])
    for i, obj in enumerate(objects, 1):
        if obj["type"] != "indicator":
            continue
        oid = obj.get("id", f"objects[{i}]")
        where = f"indicator {oid}"
        pattern = obj.get("pattern")
        if obj.get("pattern_type", "stix") != "stix":
            ctx.out.skipped[f"pattern_type {obj.get('pattern_type')}"] += 1
            continue
        if not isinstance(pattern, str):
            ctx.fail(where, "missing 'pattern'")
        body = pattern.strip()
        if not (body.startswith("[") and body.endswith("]")):
            ctx.bad(where, f"pattern {pattern[:80]!r} is not [path = 'value']")
            continue
        body = body[1:-1]
        if " AND " in body or " OR " in body or "] " in body:
            ctx.out.skipped["compound STIX pattern"] += 1
            continue
        # Split on the first '=' only: URLs carry '=' in their query strings.
        lhs, sep, rhs = body.partition("=")
        lhs = lhs.strip()
        value = _stix_value(rhs) if sep else None
        if value is None:
            ctx.bad(where, f"pattern {pattern[:80]!r} is not [path = 'value']")
            continue
        family = ", ".join(sorted(families.get(oid, ()))) or (obj.get("name") or "")
        if lhs in _STIX_PATHS:
            ctx.add(where, value, family, "spyware", kinds=_STIX_PATHS[lhs])
        elif _STIX_CERT.fullmatch(lhs):
            try:
                kind, hexs = normalize_fingerprint(value)
            except ValueError as exc:
                ctx.bad(where, str(exc))
                continue
            ctx.out.records.append(Record(hexs, kind, family, "spyware"))
        else:
            ctx.out.skipped[f"STIX {lhs}"] += 1


# ---------------------------------------------------------------- MISP

_MISP_HOST = {"domain", "hostname", "url", "uri", "ip-dst", "ip-src", "domain|ip", "hostname|port",
              "ip-dst|port", "ip-src|port"}
_MISP_CERT = {"x509-fingerprint-sha1": "cert-sha1", "x509-fingerprint-sha256": "cert-sha256"}


def _misp_attr(ctx: _Ctx, where: str, attr, family: str) -> None:
    if not isinstance(attr, dict):
        ctx.fail(where, f"expected an attribute object, got {type(attr).__name__}")
    typ, value = attr.get("type"), attr.get("value")
    if not isinstance(typ, str) or not isinstance(value, str):
        ctx.fail(where, "attribute 'type' and 'value' must be text")
    where = f"{where} ({typ} {value[:60]!r})"
    to_ids = attr.get("to_ids", True)
    if to_ids in (False, 0, "0", "false", "False"):
        ctx.out.skipped["misp to_ids=false"] += 1
        return
    if typ in _MISP_CERT:
        try:
            kind, hexs = normalize_fingerprint(value)
        except ValueError as exc:
            ctx.bad(where, str(exc))
            return
        if kind != _MISP_CERT[typ]:
            ctx.bad(where, f"{typ} of the wrong length")
            return
        ctx.out.records.append(Record(hexs, kind, family, "spyware"))
    elif typ in _MISP_HOST:
        parts = value.split("|")
        if typ in ("domain|ip",):
            values = parts
        else:
            values = [parts[0]]  # drop the |port
        for v in values:
            if v.strip():
                ctx.add(where, v, family, "spyware")
    else:
        ctx.out.skipped[f"misp {typ}"] += 1


def _misp_event(ctx: _Ctx, event, where: str) -> None:
    if not isinstance(event, dict):
        ctx.fail(where, f"expected a MISP event object, got {type(event).__name__}")
    if "Event" in event:
        event = event["Event"]
        if not isinstance(event, dict):
            ctx.fail(where, "'Event' must be an object")
    info = event.get("info") if isinstance(event.get("info"), str) else ""
    for i, attr in enumerate(_str_list(ctx, f"{where} Attribute", event.get("Attribute")), 1):
        _misp_attr(ctx, f"{where} Attribute[{i}]", attr, info)
    # Objects are merged by their `name` attribute (the app): upstream's
    # incremental generator split one app over many objects.
    groups: dict = {}
    for i, obj in enumerate(_str_list(ctx, f"{where} Object", event.get("Object")), 1):
        if not isinstance(obj, dict):
            ctx.fail(f"{where} Object[{i}]", f"expected an object, got {type(obj).__name__}")
        attrs = _str_list(ctx, f"{where} Object[{i}] Attribute", obj.get("Attribute"))
        name = next((a.get("value") for a in attrs if isinstance(a, dict) and a.get("object_relation") == "name"
                     and isinstance(a.get("value"), str)), None)
        groups.setdefault(name, []).append((i, attrs))
    for name, members in groups.items():
        family = name or info
        for i, attrs in members:
            for j, attr in enumerate(attrs, 1):
                if isinstance(attr, dict) and attr.get("object_relation") == "name" and attr.get("type") == "text":
                    continue
                if isinstance(attr, dict) and attr.get("object_relation") == "certificate":
                    # android-app `certificate` is the APK signing certificate,
                    # never seen on the network.
                    ctx.out.skipped["apk-signing-certificate"] += 1
                    continue
                _misp_attr(ctx, f"{where} Object[{i}] Attribute[{j}]", attr, family)
    if groups:
        ctx.out.extra["families"] = sorted(n for n in groups if n)


def _read_misp(ctx: _Ctx, text: str) -> None:
    doc = _json(ctx.path, text)
    if isinstance(doc, dict) and isinstance(doc.get("response"), list):
        doc = doc["response"]
    if isinstance(doc, list):
        for i, ev in enumerate(doc, 1):
            _misp_event(ctx, ev, f"event {i}")
    else:
        _misp_event(ctx, doc, "event")


def _read_misp_csv(ctx: _Ctx, text: str) -> None:
    reader = csv.reader(io.StringIO(text))
    header = None
    for row in reader:
        line = reader.line_num
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        if header is None:
            header = [c.strip().lower() for c in row]
            if header[:8] != _MISP_CSV_HEAD:
                ctx.fail("line 1", f"expected the MISP CSV header {','.join(_MISP_CSV_HEAD)}")
            continue
        if len(row) < 8:
            ctx.fail(f"line {line}", f"expected at least 8 columns, got {len(row)}")
        rec = dict(zip(_MISP_CSV_HEAD, row))
        family = rec["comment"].strip() or f"MISP event {rec['event_id'].strip()}"
        _misp_attr(ctx, f"line {line}", {"type": rec["type"].strip(), "value": rec["value"],
                                         "to_ids": rec["to_ids"].strip()}, family)


# ---------------------------------------------------------------- plain lists

def _read_plain(ctx: _Ctx, data: bytes) -> None:
    """Reads a plain list: clean domain lines in C into one buffer, every other line here.

    The C scan (``pc_domain_lines``) stops at each line that is not a clean
    domain (a comment, a hosts-file line, an address, a URL, a bad value...);
    that line is read by :func:`_plain_line` and the scan goes on after it.
    """
    from .matcher import DomainLines  # the C core; imported here so the other readers work without it

    family = os.path.splitext(os.path.basename(ctx.path))[0]
    lines = DomainLines(data)
    end = len(data)
    pos = last = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    lineno = 1
    while True:
        pos = lines.read(pos)
        if pos >= end:
            break
        stop = data.find(b"\n", pos)
        stop = end if stop < 0 else stop
        lineno += data.count(b"\n", last, pos)
        last = pos
        for k, line in enumerate(data[pos:stop].decode("utf-8").splitlines()):
            _plain_line(ctx, line, lineno + k, family)
        if stop >= end:  # that was the last line, without a newline
            break
        pos = stop + 1
    values, offsets = lines.finish()
    if len(offsets) > 1:
        ctx.out.block = DomainBlock(values, offsets, family, "listed")


def _plain_line(ctx: _Ctx, line: str, n: int, family: str) -> None:
    """One line of a plain list that is not a clean domain (``n``: its line number)."""
    hashpos = line.find("#")
    if hashpos == 0 or (hashpos > 0 and line[hashpos - 1] in " \t"):
        line = line[:hashpos]
    tokens = line.split()
    if not tokens:
        return
    where = f"line {n}"
    if len(tokens) > 1:
        try:
            ipaddress.ip_address(tokens[0])
        except ValueError:
            ctx.bad(where, f"expected one name, IP or CIDR per line, got {line.strip()[:80]!r}")
            return
        # A hosts-file line: the address is the sinkhole, the names are the list.
        for tok in tokens[1:]:
            if tok.lower() in _HOSTS_LOCAL:
                ctx.out.skipped["hosts-file local name"] += 1
            else:
                ctx.add(where, tok, family, "listed", allow_url=False, kinds=("domain",))
        return
    if tokens[0].lower() in _HOSTS_LOCAL:
        ctx.out.skipped["hosts-file local name"] += 1
        return
    ctx.add(where, tokens[0], family, "listed")


# ---------------------------------------------------------------- pocketcheck's own

def _read_pocketcheck(ctx: _Ctx, text: str) -> None:
    doc = _json(ctx.path, text)
    if not isinstance(doc, dict) or doc.get("format") != "pocketcheck-iocs":
        ctx.fail("", "not a pocketcheck indicator file")
    if doc.get("version") != 1:
        ctx.fail("", f"format version {doc.get('version')!r}; this pocketcheck reads version 1")
    sources = doc.get("sources")
    if not isinstance(sources, list) or not all(isinstance(s, dict) and isinstance(s.get("id"), str)
                                                for s in sources):
        ctx.fail("sources", "expected a list of {\"id\": ...}")
    ctx.out.extra["sources"] = sources
    ctx.out.extra["set_version"] = doc.get("set_version")
    for i, item in enumerate(_str_list(ctx, "indicators", doc.get("indicators")), 1):
        where = f"indicators[{i}]"
        if (not isinstance(item, list) or len(item) != 6 or not all(isinstance(x, str) for x in item[:5])
                or not isinstance(item[5], int) or not 0 <= item[5] < len(sources)):
            ctx.fail(where, "expected [value, kind, family, category, severity, source index]")
        value, kind, family, category, severity, src = item
        if kind == "keyword":
            if not value or value != value.lower():
                ctx.bad(where, f"invalid keyword {value!r}")
                continue
            norm = value
        elif kind in ("cert-sha1", "cert-sha256"):
            try:
                k2, norm = normalize_fingerprint(value)
            except ValueError as exc:
                ctx.bad(where, str(exc))
                continue
            if k2 != kind:
                ctx.bad(where, f"{kind} of the wrong length")
                continue
        elif kind in KINDS:
            try:
                k2, norm, _ = classify(value, allow_url=False)
            except ValueError as exc:
                ctx.bad(where, str(exc))
                continue
            if k2 != kind:
                ctx.bad(where, f"{value!r} is a {k2}, not a {kind}")
                continue
        else:
            ctx.fail(where, f"unknown kind {kind!r}")
        if severity not in ("high", "moderate", "low"):
            ctx.fail(where, f"unknown severity {severity!r}")
        rec = Record(norm, kind, family, category)
        ctx.out.records.append(rec)
        ctx.out.extra.setdefault("severities", []).append(severity)
        ctx.out.extra.setdefault("source_index", []).append(src)
    allow = doc.get("allowlist") or {}
    if not isinstance(allow, dict):
        ctx.fail("allowlist", "expected an object")
    for v in _str_list(ctx, "allowlist.domains", allow.get("domains")):
        try:
            ctx.out.allow_domains.add(normalize_domain(v))
        except (ValueError, AttributeError) as exc:
            ctx.bad("allowlist.domains", str(exc))
    for v in _str_list(ctx, "allowlist.networks", allow.get("networks")):
        try:
            ctx.out.allow_networks.add(str(ipaddress.ip_network(v, strict=False)))
        except (ValueError, TypeError) as exc:
            ctx.bad("allowlist.networks", str(exc))
    heur = doc.get("heuristics") or {}
    if not isinstance(heur, dict):
        ctx.fail("heuristics", "expected an object")
    for name, values in heur.items():
        for v in _str_list(ctx, f"heuristics.{name}", values):
            if not isinstance(v, str):
                ctx.fail(f"heuristics.{name}", "values must be text")
            ctx.heur(name, v)
    for reason, count in (doc.get("skipped") or {}).items():
        if isinstance(count, int):
            ctx.out.skipped[reason] += count


_READERS = {
    "echap-yaml": _read_echap, "stix2": _read_stix2, "misp": _read_misp, "misp-csv": _read_misp_csv,
    "tinycheck": _read_tinycheck, "tinycheck-allowlist": _read_tinycheck_allowlist,
    "pocketcheck": _read_pocketcheck,  # "plain" reads bytes: parse_file calls _read_plain itself
}
