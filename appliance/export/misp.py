"""Findings as one MISP event, in the JSON that MISP imports (``{"Event": {...}}``).

One event for all the reports given: per indicator that hit, one attribute
(``domain``, ``ip-dst``, ``x509-fingerprint-sha1`` / ``-sha256``) with
first/last seen, a comment saying how it was seen and by which family, and
one MISP sighting per report that saw it (source: the box id). Per report,
a ``sha256`` attribute (the SHA-256 of its ``MANIFEST.sha256``) and one
``report`` object (MISP object template ``report``: verdict, session times,
signer) that refers to it and to the ``text`` attribute of its box id.
With ``include_device``, one ``device`` object per phone with a hit.

Tags, from the MISP taxonomies and galaxies that exist:

- ``tlp:<level>`` (the ``tlp`` taxonomy), amber unless asked otherwise;
- ``ms-caro-malware:malware-type="MonitoringTool"`` on an event with hits:
  of the malware-type taxonomies (``malware_classification``,
  ``ms-caro-malware``...), this is the one entry whose definition is
  commercial software that watches what a user does, which is what
  stalkerware is (``Spyware`` there means harvesting browsing data);
- ``misp-galaxy:stalkerware="<family>"`` per family: MISP's *Stalkerware*
  galaxy is built from Échap's stalkerware-indicators, the source the
  shipped indicator set takes its family names from, so the names line up.

UUIDs are uuid5 of the content, so the same reports always export the same
event (MISP then recognises a re-import as the same event).
"""
from __future__ import annotations

import datetime as _dt
import uuid

from ..report import MANIFEST
from .findings import Export, Finding, check_tlp

NAMESPACE = uuid.UUID("6f0f5a3c-8d2e-5b1a-9c47-3e2b7d1f4a60")  # pocketcheck's MISP exports
# MISP's distribution that matches each TLP level: red stays in this
# organisation (0), amber in this community (1), green reaches connected
# communities (2), clear everyone (3).
DISTRIBUTION = {"red": "0", "amber": "1", "green": "2", "clear": "3"}
# threat_level_id: 1 high, 2 medium, 3 low (4 is "undefined").
THREAT_LEVEL = {"red": "1", "amber": "2", "green": "3"}
MONITORING_TOOL = 'ms-caro-malware:malware-type="MonitoringTool"'
# The template uuid and version of the MISP objects used (misp-objects' definition.json).
REPORT_TEMPLATE = ("70a68471-df22-4e3f-aa1a-5a3be19f82df", "8")
DEVICE_TEMPLATE = ("0c64b41a-e583-4f4d-ac92-d484163b9e52", "10")
# What the hash a report is named by stands for (see findings.Report.ref_file).
_REF_SAYS = {MANIFEST: "it names every file of the signed report folder",
             "report.json": "the signed MANIFEST.sha256 of the report folder lists it"}
_TYPES = {"domain": "domain", "ipv4": "ip-dst", "ipv6": "ip-dst", "cidr": "ip-dst",
          "cert-sha1": "x509-fingerprint-sha1", "cert-sha256": "x509-fingerprint-sha256"}


def _uuid(*parts: str) -> str:
    return str(uuid.uuid5(NAMESPACE, "\n".join(parts)))


def _epoch(iso: str | None) -> str:
    if not iso:
        return ""
    return str(int(_dt.datetime.fromisoformat(iso).timestamp()))


def _galaxy(family: str) -> dict:
    return {"name": f'misp-galaxy:stalkerware="{family}"'}


def _attr(event_uuid: str, typ: str, value: str, category: str, comment: str, to_ids: bool,
          relation: str | None = None, **extra) -> dict:
    out = {"uuid": _uuid(event_uuid, relation or "", typ, value), "type": typ, "category": category,
           "value": value, "to_ids": to_ids, "comment": comment, "disable_correlation": not to_ids,
           "distribution": "5"}  # 5: as the event
    if relation:
        out["object_relation"] = relation
    out.update(extra)
    return out


def _comment(f: Finding) -> str:
    text = f"{f.family or 'unnamed family'} ({f.category or 'stalkerware'}, {f.level}): seen as {f.seen_as}"
    others = [m for m in f.matched if m != f.value]
    if others:
        text += f"; matched {', '.join(others)}"
    if f.source:
        text += f"; indicator source: {f.source}"
    return text


def _finding(event_uuid: str, f: Finding) -> dict:
    sightings = [{"uuid": _uuid(event_uuid, f.value, s.report.manifest_sha256), "type": "0",
                  "source": s.report.box_id, "date_sighting": _epoch(s.last or s.first)}
                 for s in f.sightings]
    extra = {"first_seen": f.first, "last_seen": f.last} if f.first else {}
    return _attr(event_uuid, _TYPES[f.kind], f.value, "Network activity", _comment(f), True,
                 Tag=[_galaxy(name) for name in f.families], Sighting=sightings, **extra)


def _report_attributes(event_uuid: str, reports) -> list[dict]:
    # Top-level attributes, so that a MISP search by box or by manifest finds
    # the event; one per box (MISP refuses two attributes of the same value).
    out = []
    for box in sorted({r.box_id for r in reports}):
        out.append(_attr(event_uuid, "text", box, "Other", "pocketcheck box that made a report of this event", False))
    for r in reports:
        out.append(_attr(event_uuid, "sha256", r.manifest_sha256, "External analysis",
                         f"SHA-256 of {r.ref_file} of the report from box {r.box_id} (verdict {r.verdict}): "
                         + _REF_SAYS.get(r.ref_file, _REF_SAYS[MANIFEST]), False))
    return out


def _report_object(event_uuid: str, r, attributes: list[dict]) -> dict:
    oid = _uuid(event_uuid, "report", r.manifest_sha256)
    attrs = [_attr(oid, "text", f"pocketcheck report from box {r.box_id}", "Other", "", False, "title"),
             _attr(oid, "text", r.summary, "Other", "", False, "summary"),
             _attr(oid, "text", f"signed by the box key {r.signer}", "Other", "", False, "summary"),
             _attr(oid, "text", "pocketcheck", "Other", "", False, "type")]
    refs = [{"uuid": _uuid(oid, a["uuid"]), "object_uuid": oid, "referenced_uuid": a["uuid"],
             "relationship_type": "related-to", "comment": a["comment"]}
            for a in attributes if a["value"] in (r.box_id, r.manifest_sha256)]
    return {"uuid": oid, "name": "report", "meta-category": "misc", "template_uuid": REPORT_TEMPLATE[0],
            "template_version": REPORT_TEMPLATE[1], "description": "One pocketcheck report folder",
            "distribution": "5", "comment": f"verdict {r.verdict}", "Attribute": attrs, "ObjectReference": refs}


def _device_object(event_uuid: str, r, d) -> dict:
    oid = _uuid(event_uuid, "device", r.manifest_sha256, d.mac)
    attrs = [_attr(oid, "text", d.hostname or d.mac, "Other", "DHCP host name" if d.hostname else "", False, "name"),
             _attr(oid, "mac-address", d.mac, "Network activity", "the phone's Wi-Fi MAC address", False,
                   "MAC-address"),
             _attr(oid, "text", "phone checked by pocketcheck", "Other", "", False, "description")]
    return {"uuid": oid, "name": "device", "meta-category": "misc", "template_uuid": DEVICE_TEMPLATE[0],
            "template_version": DEVICE_TEMPLATE[1], "description": "A phone with an indicator hit",
            "distribution": "5", "comment": f"seen by box {r.box_id}", "Attribute": attrs}


def event(export: Export, tlp: str = "amber") -> dict:
    """Builds the MISP event of an export.

    Args:
        export: from :func:`appliance.export.findings.collect`.
        tlp: one of :data:`appliance.export.findings.TLP_LEVELS`.
    Returns:
        ``{"Event": {...}}``, ready for ``json.dump`` and MISP's event import.
    Raises:
        ValueError: an unknown TLP level.
    """
    check_tlp(tlp)
    eid = _uuid("event", *sorted(r.manifest_sha256 for r in export.reports))
    day = min((r.start or r.generated_at for r in export.reports), default="")[:10]
    boxes = sorted({r.box_id for r in export.reports})
    n = len(export.findings)
    info = (f"pocketcheck: {n or 'no'} stalkerware indicator{'s' if n != 1 else ''} seen"
            + (f" ({', '.join(export.families)})" if export.families else "")
            + f" in {len(export.reports)} report{'s' if len(export.reports) != 1 else ''}"
            + f" from {', '.join(boxes)}")
    tags = [{"name": f"tlp:{tlp}"}]
    if export.findings:
        tags += [{"name": MONITORING_TOOL}] + [_galaxy(name) for name in export.families]
    about = _report_attributes(eid, export.reports)
    objects = [_report_object(eid, r, about) for r in export.reports]
    objects += [_device_object(eid, r, d) for r in export.reports for d in r.devices]
    return {"Event": {
        "uuid": eid, "info": info, "date": day, "threat_level_id": THREAT_LEVEL[export.verdict],
        "analysis": "2",  # completed: the box's analysis is final
        "distribution": DISTRIBUTION[tlp], "published": False, "Tag": tags,
        "Attribute": [_finding(eid, f) for f in export.findings] + about, "Object": objects,
    }}
