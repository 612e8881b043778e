"""Checking a report folder: complete, unmodified, and signed by the key it names."""
from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ..digest import file_sha256
from ..errors import PocketcheckError, ReportIntegrityError
from .seal import MANIFEST, SAFE_NAME, SIGNATURE, fingerprint, listing, parse_signature


@dataclass
class Verification:
    """The outcome of checking a report folder."""

    intact: bool
    reason: str
    fingerprint: str
    files: int


def verify(directory: str | Path) -> Verification:
    """Checks that a report folder is complete, unmodified and signed.

    Every file listed in the manifest must exist with its hash, no other file
    may be present, the signature must verify with the public key it carries,
    and that key must be the one report.json names (when there is one).

    Args:
        directory: the report folder.
    Returns:
        A Verification (intact or not, with one line saying why not, and the
        signer's key fingerprint when the signature could be read).
    Raises:
        PocketcheckError: ``directory`` is not a directory.
    """
    root = Path(directory)
    if not root.is_dir():
        raise PocketcheckError(f"{root}: not a report folder (no such directory)")

    def bad(reason, fp=""):
        return Verification(False, reason, fp, 0)

    if not (root / MANIFEST).is_file():
        return bad(f"{MANIFEST} is missing")
    if not (root / SIGNATURE).is_file():
        return bad(f"{SIGNATURE} is missing")
    manifest = (root / MANIFEST).read_bytes()
    try:
        pub, sig = parse_signature((root / SIGNATURE).read_text(encoding="utf-8", errors="replace"))
    except ReportIntegrityError as exc:
        return bad(str(exc))
    fp = fingerprint(pub)
    try:
        Ed25519PublicKey.from_public_bytes(pub).verify(sig, manifest)
    except InvalidSignature:
        return bad(f"the signature does not match {MANIFEST}", fp)
    listed = {}
    for n, line in enumerate(manifest.decode("utf-8", "replace").splitlines(), 1):
        m = re.fullmatch(r"([0-9a-f]{64})  (.+)", line)
        if not m or not SAFE_NAME.match(m.group(2)) or ".." in m.group(2).split("/") or m.group(2).startswith("/"):
            return bad(f"{MANIFEST} line {n} is malformed", fp)
        listed[m.group(2)] = m.group(1)
    present = set(listing(root))
    for rel, digest in sorted(listed.items()):
        if rel not in present:
            return bad(f"{rel} is missing", fp)
        if file_sha256(root / rel) != digest:
            return bad(f"{rel} has been modified", fp)
    extra = sorted(present - set(listed))
    if extra:
        return bad(f"{extra[0]} is not part of the report", fp)
    if "report.json" in listed:
        try:
            key = json.loads((root / "report.json").read_text(encoding="utf-8"))["session"]["signing_key"]
            named = base64.b64decode(key["public_key"])
        except (ValueError, KeyError, TypeError):
            return bad("report.json does not name its signing key", fp)
        if named != pub:
            return bad("report.json names another signing key than the signature's", fp)
    return Verification(True, "", fp, len(listed))


def check_intact(directory: str | Path) -> str:
    """Like :func:`verify` but raises when the folder is not intact.

    Returns:
        The signer's key fingerprint.
    Raises:
        ReportIntegrityError: the folder is not intact (the message says why).
    """
    v = verify(directory)
    if not v.intact:
        raise ReportIntegrityError(f"{directory}: {v.reason}")
    return v.fingerprint
