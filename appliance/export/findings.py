"""What may leave a report folder: its indicator hits and its metadata, nothing about the person.

A report folder (``pocketcheck analyze --out``, or the box's stick) is checked
first (manifest and signature, through :func:`appliance.report.check_intact`)
and its ``report.json`` against the schema. Then only this is kept:

- for every alert of an indicator rule (``ioc.*``): the indicator value that
  hit, its family, category and source, what on the wire matched it (the
  name, the server address or the certificate fingerprint: each of them is on
  the indicator list, so it says nothing about the phone), first and last
  time, count and the rules that saw it;
- the report's metadata: box id, verdict, session times, software and
  indicator-set versions, signer fingerprint and the SHA-256 of
  ``MANIFEST.sha256`` (which names the folder's exact content).

Left out, always: heuristic alerts (their names matched nothing), every name
and address the phone used that is not an indicator hit, any address that is
not a global one (private, link-local, CGNAT, documentation...), capture file
names, the folder's path. The device (MAC and DHCP host name) comes only when
asked (``include_device``), and only for devices with an indicator hit.
Keyword indicators (a label anywhere in a name) have no exact pattern in MISP
or STIX and are left out too.
"""
from __future__ import annotations

import hashlib
import ipaddress
import json
from dataclasses import dataclass, field
from pathlib import Path

from .. import report
from ..errors import ReportIntegrityError
from ..rules import LEVELS, VERDICTS

# The indicator rules, by what each one matched; heuristics ("heur.*") never leave.
NAME_RULES = ("ioc.dns-query", "ioc.tls-sni", "ioc.quic-sni", "ioc.http-host")
IOC_RULES = (*NAME_RULES, "ioc.dns-answer", "ioc.server-ip", "ioc.cert")
# Where on the wire each rule saw the value: MISP comments and STIX descriptions say it.
SEEN_AS = {"ioc.dns-query": "DNS query", "ioc.dns-answer": "DNS answer", "ioc.tls-sni": "TLS SNI",
           "ioc.quic-sni": "QUIC SNI", "ioc.http-host": "HTTP Host", "ioc.server-ip": "server address",
           "ioc.cert": "server certificate"}
# The TLP levels both formats can say (TLP 2.0 names; see stix.py for AMBER+STRICT).
TLP_LEVELS = ("clear", "green", "amber", "red")


@dataclass(frozen=True)
class Device:
    """A phone that had an indicator hit (exported only with ``include_device``)."""

    mac: str
    hostname: str


@dataclass(frozen=True)
class Report:
    """One verified report folder's metadata: what identifies the report and the box, not the person."""

    box_id: str
    manifest_sha256: str
    signer: str
    verdict: str
    start: str | None
    end: str | None
    generated_at: str
    software_version: str
    indicators_version: str
    devices: tuple[Device, ...] = ()
    # The file of the folder manifest_sha256 is the hash of: MANIFEST.sha256,
    # or report.json for the exports the box writes into the folder itself
    # (they exist before the manifest, which then covers them).
    ref_file: str = report.MANIFEST

    @property
    def summary(self) -> str:
        """One line for the MISP report object and the STIX report: verdict, session, versions."""
        return (f"pocketcheck verdict {self.verdict} for the session {self.start or '?'} to {self.end or '?'}; "
                f"pocketcheck {self.software_version}, indicator set {self.indicators_version}")


@dataclass(frozen=True)
class Sighting:
    """One report's view of one indicator."""

    report: Report
    first: str | None
    last: str | None
    count: int
    rules: tuple[str, ...]
    matched: tuple[str, ...]


@dataclass
class Finding:
    """One indicator that hit, with a sighting per report that saw it."""

    kind: str          # domain, ipv4, ipv6, cidr, cert-sha1, cert-sha256
    value: str
    families: tuple[str, ...]  # as the indicator sets name them (several when the reports' sets differ)
    category: str
    source: str
    level: str
    sightings: list[Sighting] = field(default_factory=list)

    @property
    def family(self) -> str:
        """The families as one text, as the IOC readers join them ("A, B")."""
        return ", ".join(self.families)

    @property
    def first(self) -> str | None:
        """The earliest time any report saw it."""
        return min((s.first for s in self.sightings if s.first), default=None)

    @property
    def last(self) -> str | None:
        """The latest time any report saw it."""
        return max((s.last for s in self.sightings if s.last), default=None)

    @property
    def rules(self) -> tuple[str, ...]:
        """Every rule that saw it, in the order of :data:`IOC_RULES`."""
        seen = {r for s in self.sightings for r in s.rules}
        return tuple(r for r in IOC_RULES if r in seen)

    @property
    def seen_as(self) -> str:
        """Where on the wire it was seen, in protocol words ("DNS query, TLS SNI")."""
        return ", ".join(SEEN_AS[r] for r in self.rules)

    @property
    def matched(self) -> tuple[str, ...]:
        """Every value on the wire that matched it (names, addresses, fingerprints)."""
        return tuple(sorted({m for s in self.sightings for m in s.matched}))


@dataclass
class Export:
    """What several report folders may share: their metadata and their indicator hits."""

    reports: list[Report]
    findings: list[Finding]

    @property
    def verdict(self) -> str:
        """The worst verdict of the reports."""
        return max((r.verdict for r in self.reports), key=VERDICTS.index, default="green")

    @property
    def families(self) -> list[str]:
        """The stalkerware families of the findings, sorted, without the unnamed one."""
        return sorted({name for f in self.findings for name in f.families})


def check_tlp(tlp: str) -> None:
    """Raises ValueError unless ``tlp`` is one of :data:`TLP_LEVELS`."""
    if tlp not in TLP_LEVELS:
        raise ValueError(f"unknown TLP level {tlp!r} (one of {', '.join(TLP_LEVELS)})")


def is_public(value: str) -> bool:
    """True for a global address or network: one that may be shared (not private, link-local, CGNAT...).

    Args:
        value: an IPv4/IPv6 address or CIDR network.
    Returns:
        False for anything else, unparsable values included.
    """
    try:
        return ipaddress.ip_network(value, strict=False).is_global
    except ValueError:
        return False


def _kind(rule: str, value: str) -> str | None:
    # The alert carries the indicator's value, not its kind: it is told from
    # the rule (a certificate) or from the value's shape (names, addresses).
    if rule == "ioc.cert":
        return {40: "cert-sha1", 64: "cert-sha256"}.get(len(value))
    try:
        net = ipaddress.ip_network(value, strict=False)
    except ValueError:
        return "domain" if "." in value else None  # no dot: a keyword indicator
    if "/" in value:
        return "cidr"
    return f"ipv{net.version}"


def open_report(directory: str | Path, include_device: bool = False) -> tuple[Report, list[Finding]]:
    """Verifies one report folder and reads what may leave it.

    Args:
        directory: a report folder as ``pocketcheck analyze --out`` writes it.
        include_device: also keep the MAC and DHCP name of the devices with a hit.
    Returns:
        (the report's metadata, its findings: one per indicator, sorted by kind and value).
    Raises:
        ReportIntegrityError: the folder is not intact, holds only an encrypted
            archive, or its report.json does not match the schema.
        PocketcheckError: ``directory`` is not a directory.
    """
    root = Path(directory)
    signer = report.check_intact(root)
    if not (root / "report.json").is_file():
        raise ReportIntegrityError(f"{root}: no report.json (an encrypted report: decrypt it first)")
    try:
        doc = json.loads((root / "report.json").read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ReportIntegrityError(f"{root}: report.json is not JSON ({exc})") from None
    try:
        report.validate(doc)
    except ReportIntegrityError as exc:
        raise ReportIntegrityError(f"{root}: {exc}") from None
    return from_document(doc, signer, hashlib.sha256((root / report.MANIFEST).read_bytes()).hexdigest(),
                         include_device=include_device)


def from_document(doc: dict, signer: str, ref_sha256: str, *, ref_file: str = report.MANIFEST,
                  include_device: bool = False) -> tuple[Report, list[Finding]]:
    """Reads what may leave one report document (already checked by the caller).

    The box uses this to add its exports to a report folder before the
    folder's manifest exists; the exports then name the SHA-256 of
    ``report.json`` (``ref_file``), which the manifest in turn covers.

    Args:
        doc: a report document that validates against the schema.
        signer: the fingerprint of the key that signs (or signed) the report.
        ref_sha256: the SHA-256 of ``ref_file`` in the report folder.
        ref_file: the file of the folder ``ref_sha256`` is the hash of.
        include_device: also keep the MAC and DHCP name of the devices with a hit.
    Returns:
        (the report's metadata, its findings: one per indicator, sorted by kind and value).
    """
    session = doc["session"]
    by_value: dict[tuple[str, str], list[dict]] = {}
    for a in doc["alerts"]:
        kind = _kind(a["rule"], a.get("indicator", "")) if a["rule"] in IOC_RULES and a.get("indicator") else None
        if kind is None or (kind in ("ipv4", "ipv6", "cidr") and not is_public(a["indicator"])):
            continue
        by_value.setdefault((kind, a["indicator"]), []).append(a)
    macs = {a["device"] for alerts in by_value.values() for a in alerts if a["device"]}
    devices = tuple(Device(d["mac"], d["hostname"] or "") for d in doc["devices"] if d["mac"] in macs)
    meta = Report(
        box_id=session["box_id"], signer=signer,
        manifest_sha256=ref_sha256, ref_file=ref_file,
        verdict=doc["verdict"], start=session["start"], end=session["end"], generated_at=session["generated_at"],
        software_version=session["software_version"], indicators_version=session["indicators"]["version"],
        devices=devices if include_device else ())
    findings = []
    for kind, value in sorted(by_value):
        alerts = by_value[kind, value]
        top = max(alerts, key=lambda a: LEVELS.index(a["level"]))
        matched = set()
        for a in alerts:
            m = (a.get("detail") or {}).get("matched") or value
            # What matched is an indicator hit by construction; an address is
            # still checked, so that no private one leaves even through a CIDR.
            if kind in ("domain", "cert-sha1", "cert-sha256") or is_public(m):
                matched.add(m)
        firsts = [a["first"] for a in alerts if a["first"]]
        lasts = [a["last"] for a in alerts if a["last"]]
        family = top.get("family", "")
        f = Finding(kind, value, (family,) if family else (), top.get("category", ""), top.get("source", ""),
                    top["level"])
        f.sightings.append(Sighting(meta, min(firsts, default=None), max(lasts, default=None),
                                    sum(a["count"] for a in alerts),
                                    tuple(r for r in IOC_RULES if any(a["rule"] == r for a in alerts)),
                                    tuple(sorted(matched))))
        findings.append(f)
    return meta, findings


def collect(directories, include_device: bool = False) -> Export:
    """Verifies every report folder, then merges their findings (one per indicator value).

    Args:
        directories: report folders; every one is checked before anything is returned.
        include_device: keep the MAC and DHCP name of the devices with a hit.
    Returns:
        An :class:`Export`, findings sorted by kind and value.
    Raises:
        ReportIntegrityError: a folder is not intact or not a pocketcheck report
            (the message names it); the same report given twice.
        PocketcheckError: a path is not a directory.
    """
    reports, merged = [], {}
    for d in directories:
        meta, findings = open_report(d, include_device)
        if any(r.manifest_sha256 == meta.manifest_sha256 for r in reports):
            raise ReportIntegrityError(f"{d}: the same report was given twice")
        reports.append(meta)
        for f in findings:
            have = merged.setdefault((f.kind, f.value), f)
            if have is not f:
                have.sightings.extend(f.sightings)
                have.families = tuple(sorted({*have.families, *f.families}))
                have.level = max(have.level, f.level, key=LEVELS.index)
    return Export(reports, [merged[k] for k in sorted(merged)])
