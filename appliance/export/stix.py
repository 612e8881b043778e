"""Findings as one STIX 2.1 bundle.

Per family a ``malware`` object (``is_family``, type spyware); per indicator
that hit an ``indicator`` with a STIX pattern (``[domain-name:value = '…']``,
``[ipv4-addr:value = '…']``, ``[x509-certificate:hashes.'SHA-256' = '…']``)
and an ``indicates`` relationship to its family; per report and indicator an
``observed-data`` of what matched on the wire and a ``sighting`` of the
indicator, sighted by the box (an ``identity`` of class ``system``); per
report a ``report`` object naming the verdict, with the SHA-256 of its
``MANIFEST.sha256`` as an external reference. With ``include_device``, the
phones' MAC addresses as ``mac-addr`` observations and a ``note`` with their
DHCP names. Every object carries the TLP marking.

Identifiers are uuid5 of each object's content (cyber observables use the
namespace and contributing properties of STIX 2.1 §2.9), and every time is
taken from the reports, so the same reports export the same bundle. The
malware / indicator / ``indicates`` shape is the one MVT's ``check-iocs`` and
pocketcheck's own STIX reader (``appliance.iocs_formats``) read.
"""
from __future__ import annotations

import datetime as _dt
import ipaddress
import json
import uuid

from ..report import MANIFEST
from .findings import Export, Finding, check_tlp

NAMESPACE = uuid.UUID("b3c5d7e9-1a2b-5c3d-8e4f-5a6b7c8d9e0f")  # pocketcheck's STIX exports
SCO_NAMESPACE = uuid.UUID("00abedb4-aa42-466c-9c01-fed23315a9b7")  # fixed by STIX 2.1 for observables
# STIX 2.1 predefines the TLP 1.0 marking definitions only (§7.2.1.4); TLP 2.0's
# CLEAR is the old WHITE renamed. AMBER+STRICT has no predefined marking, so
# it is not offered (an extension few readers know would be worse).
TLP_MARKINGS = {
    "clear": ("613f2e26-407d-48c7-9eca-b8e91df99dc9", "white"),
    "green": ("34098fce-860f-48ae-8e50-ebd3cc5e41da", "green"),
    "amber": ("f88d31f6-486f-44da-b317-01333bde0b82", "amber"),
    "red": ("5e57c739-391a-4eb3-b6be-7d15ca92d5ed", "red"),
}
# The external reference naming the folder a report came from (see findings.Report.ref_file).
_REF_SAYS = {MANIFEST: {"source_name": "pocketcheck-manifest",
                        "description": "SHA-256 of the report folder's MANIFEST.sha256 "
                                       "(names every file of the signed report)"},
             "report.json": {"source_name": "pocketcheck-report-json",
                             "description": "SHA-256 of the report folder's report.json "
                                            "(listed in its signed MANIFEST.sha256)"}}
_HASH = {"cert-sha1": "SHA-1", "cert-sha256": "SHA-256"}


def _time(iso: str) -> str:
    """A report time as STIX writes timestamps (UTC, milliseconds, Z)."""
    t = _dt.datetime.fromisoformat(iso).astimezone(_dt.UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _sdo(out: list, obj: dict) -> str:
    """Gives ``obj`` an id made from its content, appends it, returns the id."""
    body = json.dumps(obj, sort_keys=True, ensure_ascii=False)
    obj = {"type": obj["type"], "spec_version": "2.1",
           "id": f"{obj['type']}--{uuid.uuid5(NAMESPACE, body)}", **obj}
    if all(o["id"] != obj["id"] for o in out):
        out.append(obj)
    return obj["id"]


def _sco(out: list, typ: str, contributing: dict, marking: str) -> str:
    # The id of an observable is uuid5 over its contributing properties in
    # canonical JSON (RFC 8785; for these plain strings, sorted compact JSON).
    canon = json.dumps(contributing, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    oid = f"{typ}--{uuid.uuid5(SCO_NAMESPACE, canon)}"
    if all(o["id"] != oid for o in out):
        out.append({"type": typ, "spec_version": "2.1", "id": oid, **contributing, "object_marking_refs": [marking]})
    return oid


def _ip_type(value: str) -> str:
    return f"ipv{ipaddress.ip_network(value, strict=False).version}-addr"


def pattern(f: Finding) -> str:
    """The STIX pattern that matches a finding's indicator.

    Args:
        f: a finding.
    Returns:
        ``[domain-name:value = '…']``, ``[ipv4-addr:value = '…']`` (or ipv6,
        CIDRs included) or ``[x509-certificate:hashes.'SHA-1' = '…']`` / ``'SHA-256'``.
    """
    if f.kind in _HASH:
        return f"[x509-certificate:hashes.'{_HASH[f.kind]}' = {_quote(f.value)}]"
    if f.kind == "domain":
        return f"[domain-name:value = {_quote(f.value)}]"
    return f"[{_ip_type(f.value)}:value = {_quote(f.value)}]"


def _observable(out: list, f: Finding, matched: str, marking: str) -> str:
    if f.kind in _HASH:
        return _sco(out, "x509-certificate", {"hashes": {_HASH[f.kind]: matched}}, marking)
    if f.kind == "domain":
        return _sco(out, "domain-name", {"value": matched}, marking)
    return _sco(out, _ip_type(matched), {"value": matched}, marking)


def bundle(export: Export, tlp: str = "amber") -> dict:
    """Builds the STIX 2.1 bundle of an export.

    Args:
        export: from :func:`appliance.export.findings.collect`.
        tlp: one of :data:`appliance.export.findings.TLP_LEVELS`.
    Returns:
        The bundle as a JSON-ready dict.
    Raises:
        ValueError: an unknown TLP level.
    """
    check_tlp(tlp)
    mid, word = TLP_MARKINGS[tlp]
    marking = f"marking-definition--{mid}"
    sdos: list = [{"type": "marking-definition", "spec_version": "2.1", "id": marking,
                   "created": "2017-01-20T00:00:00.000Z", "definition_type": "tlp",
                   "name": f"TLP:{word.upper()}", "definition": {"tlp": word}}]
    scos: list = []
    # One time for every object this export creates: when the newest report was made.
    now = max(_time(r.generated_at) for r in export.reports)
    common = {"created": now, "modified": now, "object_marking_refs": [marking]}
    boxes = {r.box_id: _sdo(sdos, {"type": "identity", "name": r.box_id, "identity_class": "system",
                                   "description": "a pocketcheck box", **common}) for r in export.reports}
    families = {name: _sdo(sdos, {"type": "malware", "name": name, "is_family": True, "malware_types": ["spyware"],
                                  "description": "stalkerware family, as the indicator set names it", **common})
                for name in export.families}
    by_report: dict[str, list] = {r.manifest_sha256: [] for r in export.reports}
    for f in export.findings:
        ind = {"type": "indicator", "pattern": pattern(f), "pattern_type": "stix", "pattern_version": "2.1",
               "valid_from": _time(f.first) if f.first else now, "indicator_types": ["malicious-activity"],
               "description": f"{f.level} indicator, seen as {f.seen_as}"
                              + (f"; indicator source: {f.source}" if f.source else ""), **common}
        if f.families:
            ind["name"] = f.family  # pocketcheck's reader falls back to it when there is no relationship
        iid = _sdo(sdos, ind)
        for name in f.families:
            _sdo(sdos, {"type": "relationship", "relationship_type": "indicates", "source_ref": iid,
                        "target_ref": families[name], **common})
        for s in f.sightings:
            first = _time(s.first) if s.first else now
            last = _time(s.last) if s.last else first
            od = _sdo(sdos, {"type": "observed-data", "first_observed": first, "last_observed": last,
                             "number_observed": max(s.count, 1),
                             "object_refs": [_observable(scos, f, m, marking) for m in s.matched or (f.value,)],
                             "created_by_ref": boxes[s.report.box_id], **common})
            sid = _sdo(sdos, {"type": "sighting", "sighting_of_ref": iid, "observed_data_refs": [od],
                              "where_sighted_refs": [boxes[s.report.box_id]], "first_seen": first, "last_seen": last,
                              "count": max(s.count, 1), "created_by_ref": boxes[s.report.box_id], **common})
            by_report[s.report.manifest_sha256] += [od, sid]
    for r in export.reports:
        refs = [boxes[r.box_id], *by_report[r.manifest_sha256]]
        if r.devices:
            od = _sdo(sdos, {"type": "observed-data", "first_observed": _time(r.start or r.generated_at),
                             "last_observed": _time(r.end or r.generated_at), "number_observed": 1,
                             "object_refs": [_sco(scos, "mac-addr", {"value": d.mac}, marking) for d in r.devices],
                             "created_by_ref": boxes[r.box_id], **common})
            names = "; ".join(f"{d.mac}" + (f" (DHCP host name {d.hostname!r})" if d.hostname else "")
                              for d in r.devices)
            refs += [od, _sdo(sdos, {"type": "note", "abstract": "phones with an indicator hit",
                                     "content": f"Phones with an indicator hit: {names}", "object_refs": [od],
                                     "created_by_ref": boxes[r.box_id], **common})]
        _sdo(sdos, {"type": "report", "name": f"pocketcheck report from box {r.box_id}", "description": r.summary,
                    "report_types": ["observed-data"] + (["indicator"] if by_report[r.manifest_sha256] else []),
                    "published": _time(r.generated_at), "object_refs": refs, "created_by_ref": boxes[r.box_id],
                    "labels": [f"verdict:{r.verdict}"],
                    "external_references": [
                        {**_REF_SAYS.get(r.ref_file, _REF_SAYS[MANIFEST]), "hashes": {"SHA-256": r.manifest_sha256}},
                        {"source_name": "pocketcheck-signing-key", "external_id": r.signer,
                         "description": "fingerprint of the box key that signed the report"}], **common})
    objects = sdos[:1] + scos + sdos[1:]
    bid = uuid.uuid5(NAMESPACE, "\n".join(o["id"] for o in objects))
    return {"type": "bundle", "id": f"bundle--{bid}", "objects": objects}
