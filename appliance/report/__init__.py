"""The report: report.json, report.html, the manifest, its signature, and their check.

A report folder holds ``report.json`` (schema in ``appliance/data/report.schema.json``),
``report.html`` (one self-contained page, in the chosen language), the
capture files under ``capture/``, ``MANIFEST.sha256`` (``sha256sum -c``
format, over every other file) and ``MANIFEST.sha256.sig`` (an Ed25519
signature of the manifest by the box's key, with the public key).

With ``encrypt_to`` the folder instead holds ``report.tar.age``: the whole
signed folder above as a tar archive, encrypted with age (X25519) to one or
more organisation public keys, plus its own manifest and signature so that
its integrity can be checked without decrypting it.

The rooms: :mod:`.build` (the document and the folder), :mod:`.html` (the
catalogues, report.html, the terminal summary), :mod:`.seal` (keys,
manifest, signature, age), :mod:`.verify` (checking a folder). This module
only re-exports their public names, so callers say ``report.build(...)`` and
``report.verify(...)``; those two functions deliberately take the place of
their submodules' names on the package.
"""
from __future__ import annotations

from ..text import LANGUAGES, catalogue
from .build import SCHEMA_PATH, SCHEMA_VERSION, build, schema, validate, write
from .html import groups, render_html, text_summary, timeline
from .seal import (
    KEY_FILE,
    MANIFEST,
    SIGNATURE,
    decrypt_archive,
    default_key_dir,
    fingerprint,
    load_or_create_key,
    public_raw,
    write_manifest,
)
from .verify import Verification, check_intact, verify

__all__ = [
    "KEY_FILE", "LANGUAGES", "MANIFEST", "SCHEMA_PATH", "SCHEMA_VERSION", "SIGNATURE", "Verification",
    "build", "catalogue", "check_intact", "decrypt_archive", "default_key_dir", "fingerprint", "groups",
    "load_or_create_key", "public_raw", "render_html", "schema", "text_summary", "timeline", "validate",
    "verify", "write", "write_manifest",
]
