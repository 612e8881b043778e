"""Building a report: the report.json document and the signed report folder.

A report folder holds ``report.json`` (schema in ``appliance/data/report.schema.json``),
``report.html`` (:mod:`.html`), the capture files under ``capture/``, and the
manifest and signature (:mod:`.seal`). With ``encrypt_to`` it holds
``report.tar.age`` instead, with its own manifest and signature.
"""
from __future__ import annotations

import base64
import datetime as _dt
import functools
import json
import os
import re
import shutil
import socket
import tempfile
from pathlib import Path

from .. import __version__
from ..errors import PocketcheckError, ReportIntegrityError
from ..rules import iso
from .html import render_html
from .seal import check_recipients, encrypt_folder, fingerprint, load_or_create_key, public_raw, write_manifest

SCHEMA_VERSION = "1.1"
SCHEMA_PATH = Path(__file__).resolve().parent.parent / "data" / "report.schema.json"


# ---- report.json -------------------------------------------------------------
def build(result, files, indicators, box_id: str | None = None, generated_at: str | None = None,
          extra_warnings=(), uplink: bool | None = None) -> dict:
    """Builds the report document (what report.json holds).

    Args:
        result: an ``analysis.Result``.
        files: the ``analysis.CaptureFile`` list of the session.
        indicators: the IndicatorSet used (for its version, hash and counts).
        box_id: this box's identifier (default: the host name).
        generated_at: ISO 8601 time of the report (default: now), fixed in tests.
        extra_warnings: warning codes to add (e.g. "interrupted").
        uplink: whether the hotspot had an uplink, when the caller knows it
            (the box); None keeps what the analysis inferred from the traffic.
    Returns:
        A JSON-ready dict that validates against the schema.
    """
    stats: dict = {}
    for f in files:
        for k, v in f.stats.items():
            stats[k] = stats.get(k, 0) + v
    if generated_at is None:
        generated_at = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    counts = getattr(indicators, "counts", {}) or {}
    warnings = list(result.warnings) + [w for w in extra_warnings if w not in result.warnings]
    alerts = [a.to_dict() for a in result.alerts]
    coverage = json.loads(json.dumps(result.coverage))
    if uplink is not None:
        coverage["uplink"] = bool(uplink)
    return {
        "schema_version": SCHEMA_VERSION,
        "verdict": result.verdict,
        "session": {
            "start": iso(result.start), "end": iso(result.end), "duration_s": round(result.duration, 3),
            "box_id": box_id or os.environ.get("POCKETCHECK_BOX_ID") or socket.gethostname(),
            "software_version": __version__, "generated_at": generated_at,
            "indicators": {"version": str(getattr(indicators, "version", "")),
                           "sha256": str(getattr(indicators, "sha256", "")),
                           "counts": json.loads(json.dumps(dict(counts)))},
            "configuration": result.thresholds.to_dict(),
            "capture": {"files": [f.to_dict() for f in files], "events": result.events, "stats": stats},
            "warnings": warnings,
        },
        "coverage": coverage,
        "devices": [d.to_dict(result.alerts) for d in result.devices],
        "alerts": alerts,
    }


@functools.cache
def schema() -> dict:
    """Returns the report JSON Schema shipped with the package."""
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def validate(doc: dict) -> None:
    """Checks a report document against the schema.

    Raises:
        ReportIntegrityError: the document does not validate (message says where).
    """
    import jsonschema  # late: ~70 ms to import on a PC, far more on a Pi Zero; only writing a report pays it


    try:
        jsonschema.validate(doc, schema())
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(top)"
        raise ReportIntegrityError(f"report.json does not match its schema at {where}: {exc.message}") from None


# ---- writing a report folder -----------------------------------------------------
def _capture_names(files) -> list[str]:
    names, used = [], set()
    for i, f in enumerate(files):
        base = re.sub(r"[^A-Za-z0-9._+-]", "_", Path(f.path).name) or f"capture-{i}.pcap"
        name = base if base not in used else f"{i + 1}-{base}"
        used.add(name)
        names.append(f"capture/{name}")
    return names


def write(out_dir: str | Path, doc: dict, files=(), lang: str = "en", key_dir=None, encrypt_to=(),
          extra=None) -> Path:
    """Writes a complete, signed report folder.

    Args:
        out_dir: the folder to create (it must not exist, or be empty).
        doc: the report document from :func:`build` (its signing key is filled in).
        files: the session's CaptureFile list; the captures are copied in.
        lang: the language of report.html.
        key_dir: the box's key directory (default: :func:`default_key_dir`).
        encrypt_to: age recipients (``age1...``); when given, only an encrypted
            archive of the report is left in the folder.
        extra: called with the staged folder (report.json in place, no manifest yet); returns more
            files ({name: bytes}) to add, which the manifest and signature then cover.
    Returns:
        The folder's path.
    Raises:
        PocketcheckError: the folder is not empty, or a recipient is invalid.
        OSError: writing failed.
    """
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise PocketcheckError(f"{out}: report folder exists and is not empty")
    recipients = check_recipients(encrypt_to) if encrypt_to else None
    key = load_or_create_key(key_dir)
    pub = public_raw(key)
    doc["session"]["signing_key"] = {"algorithm": "ed25519", "public_key": base64.b64encode(pub).decode(),
                                     "fingerprint": fingerprint(pub)}
    validate(doc)
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".report-", dir=out.parent))
    try:
        # Names come from hostile traffic: a lone surrogate must not stop the report.
        (stage / "report.json").write_bytes((json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
                                            .encode("utf-8", "backslashreplace"))
        (stage / "report.html").write_bytes(render_html(doc, lang).encode("utf-8", "xmlcharrefreplace"))
        for f, rel in zip(files, _capture_names(files), strict=True):
            (stage / rel).parent.mkdir(exist_ok=True)
            shutil.copyfile(f.path, stage / rel)
        for name, data in (extra(stage) if extra is not None else {}).items():
            (stage / name).write_bytes(data)
        write_manifest(stage, key)
        if recipients is not None:
            archive = encrypt_folder(stage, recipients)
            sealed = Path(tempfile.mkdtemp(prefix=".sealed-", dir=out.parent))
            (sealed / "report.tar.age").write_bytes(archive)
            write_manifest(sealed, key)
            shutil.rmtree(stage)
            stage = sealed
        for p in stage.rglob("*"):
            if p.is_file():
                with open(p, "rb") as fh:
                    os.fsync(fh.fileno())
        if out.exists():
            out.rmdir()
        os.rename(stage, out)
        os.chmod(out, 0o700)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return out
