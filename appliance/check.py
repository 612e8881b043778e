"""The one pipeline: capture files -> analysis -> report document -> report folder.

Both the box (after each session, :func:`analyse_with_report`) and the
``pocketcheck analyze`` command (:mod:`appliance.commands.analyze`) go through
:func:`run` and :func:`write`, so a report made on the box and one made from
the same capture at a desk come from the same code. The indicator set in use
is chosen here too (:func:`indicators_for`).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import pathlib
import shutil

from . import analysis, export, report, updates
from . import indicators as ind
from .box.session import Outcome, Session
from .box.view import reason_for
from .errors import PocketcheckError

log = logging.getLogger(__name__)

# The sharing files ``report.export`` adds to a report folder, by format.
EXPORT_FILES = {"misp": "misp-event.json", "stix": "stix-bundle.json"}
_EXPORT_BUILDERS = {"misp": export.misp_event, "stix": export.stix_bundle}


@dataclasses.dataclass
class Checked:
    """One analysed session: the analysis result, the files read and the report document."""

    result: analysis.Result
    files: list[analysis.CaptureFile]
    doc: dict


def indicators_for(cfg=None):
    """Returns the indicator set in use.

    Args:
        cfg: the configuration (its data dir may hold a signed update); None: the shipped set.

    Returns:
        An ``IndicatorSet``.
    """
    return updates.load_current(cfg) if cfg is not None else ind.load_default()


def run(paths, iocs, thresholds: analysis.Thresholds | None = None, *, extra_warnings=(), box_id: str | None = None,
        generated_at: str | None = None, uplink: bool | None = None) -> Checked:
    """Analyses capture files as one session and builds the report document.

    Args:
        paths: capture files (pcap or pcapng), analysed in order.
        iocs: the IndicatorSet.
        thresholds: heuristics thresholds (None: defaults).
        extra_warnings: warnings the box knows of (interrupted, short, restarted, storage-full).
        box_id: identifier of this box in the report.
        generated_at: fixed report time (reproducible reports).
        uplink: whether the phone had internet, when the caller knows it (None: read from the traffic).

    Returns:
        The :class:`Checked` session.

    Raises:
        CaptureOpenError, CaptureFormatError: a file cannot be read as a capture.
    """
    result, files = analysis.analyze_files(paths, iocs, thresholds)
    doc = report.build(result, files, iocs, box_id=box_id, generated_at=generated_at,
                       extra_warnings=list(extra_warnings), uplink=uplink)
    return Checked(result, files, doc)


def write(checked: Checked, out: str | os.PathLike, *, lang: str = "en", key_dir=None, encrypt_to=(),
          exports=()) -> pathlib.Path:
    """Writes the report folder of a checked session (signed manifest, optional sealed copy).

    Args:
        checked: from :func:`run`.
        out: the folder to create (it must not exist, or be empty).
        lang: language of the HTML and text report.
        key_dir: the box's signing key folder (None: the default).
        encrypt_to: age recipients for a sealed copy of the report.
        exports: sharing formats (``misp``, ``stix``) to add to the folder (:data:`EXPORT_FILES`),
            before its manifest, so that the signature covers them (and encryption hides them).

    Returns:
        The report folder.

    Raises:
        PocketcheckError, OSError: the folder cannot be written.
    """
    extra = _exports_for(checked.doc, exports) if exports else None
    return report.write(out, checked.doc, checked.files, lang=lang, key_dir=key_dir, encrypt_to=encrypt_to,
                        extra=extra)


def _exports_for(doc: dict, formats):
    """Returns report.write's ``extra`` callback writing the sharing files of ``formats``.

    The files cannot name the manifest's hash (the manifest lists them), so
    they name the SHA-256 of ``report.json``, which the manifest covers: a
    recipient can still tie them to the signed folder.
    """
    def extra(stage: pathlib.Path) -> dict[str, bytes]:
        ref = hashlib.sha256((stage / "report.json").read_bytes()).hexdigest()
        meta, findings = export.from_document(doc, doc["session"]["signing_key"]["fingerprint"], ref,
                                              ref_file="report.json")
        shared = export.Export([meta], findings)
        files = {}
        for f in dict.fromkeys(formats):
            try:
                files[EXPORT_FILES[f]] = (json.dumps(_EXPORT_BUILDERS[f](shared), indent=2, ensure_ascii=False)
                                          + "\n").encode("utf-8", "backslashreplace")
            except Exception:  # the report is the evidence: a sharing file must never cost it
                log.exception("the %s export of this report could not be made; the report is written without it", f)
        return files

    return extra


def analyse_with_report(capture: pathlib.Path, report_dir: pathlib.Path, session: Session, *, cfg=None,
                        key_dir=None, generated_at=None) -> Outcome:
    """The box's analysis of one session: the pipeline over its capture, the report in its folder.

    Args:
        capture: the pcap.
        report_dir: where the report folder is written (replaced if present).
        session: the session (interrupted, too short, restarted programs, full storage become report warnings).
        cfg: the configuration (language, minimum duration, data dir for the key and the indicator update).
        key_dir: the box's signing key folder (None: <data_dir>/keys).
        generated_at: fixed report time (tests).

    Returns:
        The Outcome.

    Raises:
        PocketcheckError, OSError: the capture cannot be read or the report written.
    """
    thresholds = analysis.Thresholds()
    if cfg is not None:
        thresholds = dataclasses.replace(thresholds, min_duration_s=float(cfg.capture.minimum_minutes * 60))
        if key_dir is None:
            key_dir = pathlib.Path(cfg.data_dir) / "keys"
    extra = []
    if session.interrupted:
        extra.append("interrupted")
    if session.too_short:
        extra.append("short")
    if session.gaps:
        extra.append("restarted")
    if session.storage_full:
        extra.append("storage-full")
    iocs = indicators_for(cfg)  # a signed update when one is installed
    # An offline hotspot is known to have had no uplink; with one, it may still
    # have dropped during the session, so the traffic tells.
    uplink = False if session.offline else None
    checked = run([capture], iocs, thresholds, extra_warnings=extra, generated_at=generated_at, uplink=uplink)
    if report_dir.exists():
        shutil.rmtree(report_dir)
    lang = cfg.language if cfg is not None and cfg.language in report.LANGUAGES else "en"
    write(checked, report_dir, lang=lang, key_dir=key_dir, encrypt_to=cfg.report.encrypt_to if cfg is not None else (),
          exports=cfg.report.export if cfg is not None else ())
    result = checked.result
    conclusive = checked.doc.get("coverage", {}).get("conclusive", True)
    return Outcome(result.verdict, reason_for(result.verdict, result.alerts, lang, conclusive), len(result.alerts),
                   tuple(checked.doc["session"]["warnings"]))


def ioc_set_date(cfg=None) -> str:
    """Returns the date of the indicator set in use ('' when unknown).

    Args:
        cfg: the configuration (its data dir may hold a signed update); None: the shipped set.

    Returns:
        The first ten characters of the set's version label (its date), or ''.
    """
    try:
        version = updates.load_current(cfg).version
    except (PocketcheckError, OSError) as exc:
        log.info("indicator set date unknown: %s", exc)
        return ""
    return str(version)[:10] if version else ""
