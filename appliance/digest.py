"""The one file hasher: the capture files in report.json, the manifest and the stick copy check.

Its own small module so that the analysis (which must not load the report
package's jinja2 and cryptography at start-up) and the report share it.
"""
from __future__ import annotations

import hashlib
from pathlib import Path


def file_sha256(path: Path) -> str:
    """Returns the SHA-256 hex digest of a file (read in blocks, never whole)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
