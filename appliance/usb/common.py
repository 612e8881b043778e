"""What both kinds of stick share: plain names, typed errors, and the check of a copy read back."""
from __future__ import annotations

import pathlib

from .. import report
from ..digest import file_sha256
from ..errors import ReportIntegrityError, UsbError

FOLDER = "pocketcheck"
MAX_TEXT = 64 * 1024  # a settings file on a stick; anything bigger is refused
MOUNT_OPTIONS = "nodev,nosuid,noexec,noatime"
# mtools refuses unusual geometries unless told not to check (tiny test images).
MTOOLS_ENV = {"MTOOLS_SKIP_CHECK": "1", "MTOOLS_NO_VFAT": "0"}


def check_plain_name(name: str) -> None:
    """Refuses names that are not one plain path component (no '/', '..', NUL)."""
    if not name or name in (".", "..") or "/" in name or "\0" in name:
        raise usb_error("unreadable", f"not a plain file name: {name!r:.60}")


def utf8(name: str, raw: bytes | None) -> str | None:
    if raw is None:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise usb_error("unreadable", f"{name} on the stick is not UTF-8 text") from exc


def usb_error(kind: str, message: str) -> UsbError:
    """Returns a UsbError with its kind attribute set (full, readonly, pulled, mismatch, unreadable)."""
    err = UsbError(message)
    err.kind = kind
    return err


def files(folder: pathlib.Path) -> list[pathlib.Path]:
    """Returns the files under folder, relative, sorted (folders first by path)."""
    return sorted(p.relative_to(folder) for p in folder.rglob("*") if p.is_file())


def read_manifest(folder: pathlib.Path) -> dict[str, str]:
    """Reads MANIFEST.sha256 ('<hex>  <name>' lines) if the folder has one."""
    path = folder / "MANIFEST.sha256"
    out = {}
    if not path.is_file():
        return out
    for line in path.read_text("utf-8", errors="replace").splitlines():
        digest, _, name = line.partition("  ")
        if digest and name:
            out[name.lstrip("*")] = digest.strip().lower()
    return out


def verify_copy(source: pathlib.Path, copy: pathlib.Path) -> None:
    """Checks that `copy` (read back from a stick) is exactly `source`.

    Args:
        source: the report folder on the box.
        copy: the same folder as read back from the stick.

    Raises:
        UsbError(kind="mismatch"): a file is missing, extra or different, or
            disagrees with MANIFEST.sha256, or report.verify rejects the copy.
    """
    want = files(source)
    got = files(copy)
    if want != got:
        missing = sorted(set(map(str, want)) - set(map(str, got)))
        raise usb_error("mismatch", f"files missing on the stick: {', '.join(missing) or 'unexpected extra files'}")
    manifest = read_manifest(source)
    for rel in want:
        a, b = file_sha256(source / rel), file_sha256(copy / rel)
        if a != b:
            raise usb_error("mismatch", f"{rel} differs on the stick")
        m = manifest.get(rel.as_posix())
        if m is not None and m != b:
            raise usb_error("mismatch", f"{rel} does not match the manifest")
    # only signed report folders (report.write) are checked with report.verify
    if (source / report.SIGNATURE).is_file():
        try:
            res = report.verify(str(copy))
        except ReportIntegrityError as exc:
            raise usb_error("mismatch", f"the copy on the stick does not verify: {exc}") from exc
        if not res.intact:
            raise usb_error("mismatch", f"the copy on the stick does not verify: {res.reason}")
