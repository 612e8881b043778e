"""Signed indicator updates, brought to the box on a USB stick.

The indicator set decides what the box calls stalkerware, so whoever can
replace it can blind the box. An update is therefore accepted only when it is
signed with an Ed25519 key the box trusts: the project's release key
(``appliance/data/update-key.pub``) unless the system configuration lists
others in ``trusted_update_keys`` (a stick's own ``pocketcheck.yaml`` may not
set that key).

On the stick, at the top level:

* ``pocketcheck-iocs.json`` - a set in the pocketcheck format (as
  ``tools/build_iocs.py`` writes ``appliance/data/iocs-default.json``);
* ``pocketcheck-iocs.json.sig`` - the base64 Ed25519 signature of
  ``SIGNED_PREFIX + <the file's bytes>`` (the prefix keeps a signature made
  for anything else from ever verifying here).

An update is refused (:class:`~appliance.errors.UpdateError`, whose
``reason`` picks the screen text) when the signature is missing or does not
verify with a trusted key, the file is too big, not a regular file, not a
valid set, or not newer than the set in use (an old, genuinely signed set
must not be replayed to remove newer indicators). Nothing on the stick is
ever executed; a refused update changes nothing.

An accepted update is installed atomically under ``<data_dir>/iocs/``: a
folder per set (``sets/<sha256>/`` holding the file and its signature) and a
``current`` symlink switched with one rename. :func:`load_current` verifies
the signature again before using it and falls back to the shipped set.

Signing a release (on the release machine, never on a box)::

    python -m appliance.updates keygen --out ~/.config/pocketcheck/update-signing-key.pem
    python -m appliance.updates sign --key ~/.config/pocketcheck/update-signing-key.pem iocs.json
    # copy iocs.json as pocketcheck-iocs.json and iocs.json.sig as pocketcheck-iocs.json.sig

The project's private key is kept by the maintainers outside the repository
(mode 0600); only the public key is committed.
"""
from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import logging
import os
import pathlib
import re
import shutil
import sys
import tempfile
from importlib import resources

from .errors import IocFormatError, UpdateError, UsbError

log = logging.getLogger(__name__)

UPDATE_NAME = "pocketcheck-iocs.json"
SIG_NAME = UPDATE_NAME + ".sig"
SIGNED_PREFIX = b"pocketcheck indicator update v1\n"
MAX_UPDATE_BYTES = 32 * 1024 * 1024
MAX_SIG_BYTES = 1024
_VERSION = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:\..*?)?(?:\.r(\d+))?$")


def _refuse(reason: str, message: str) -> UpdateError:
    err = UpdateError(message)
    err.reason = reason
    return err


# ------------------------------------------------------------------- keys
def project_key_text() -> str:
    """Returns the project's public key (base64) from ``appliance/data/update-key.pub``."""
    text = resources.files("appliance").joinpath("data/update-key.pub").read_text("utf-8")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    return lines[0]


def public_key(text: str):
    """Parses one base64 raw Ed25519 public key.

    Raises:
        UpdateError: not a 32-byte key in base64.
    """
    from cryptography.hazmat.primitives.asymmetric import ed25519

    try:
        raw = base64.b64decode(text.strip(), validate=True)
        return ed25519.Ed25519PublicKey.from_public_bytes(raw)
    except (binascii.Error, ValueError) as exc:
        raise _refuse("config", "a trusted update key is not an Ed25519 public key") from exc


def trusted_keys(cfg=None) -> list:
    """The keys an update may be signed with: the configuration's, else the project's."""
    texts = list(getattr(cfg, "trusted_update_keys", ()) or ()) or [project_key_text()]
    return [public_key(t) for t in texts]


def sign(data: bytes, private_key) -> str:
    """Returns the signature file's text (base64) for an update's bytes.

    Args:
        data: the bytes of the indicator file exactly as they go on the stick.
        private_key: an ``Ed25519PrivateKey``.
    """
    return base64.b64encode(private_key.sign(SIGNED_PREFIX + data)).decode() + "\n"


def verify(data: bytes, sig_text: bytes | str | None, keys) -> None:
    """Checks an update's signature against the trusted keys.

    Raises:
        UpdateError: reason ``unsigned`` (no or unreadable signature) or
            ``signature`` (it verifies with no trusted key: tampered, or
            signed by someone else).
    """
    from cryptography.exceptions import InvalidSignature

    if sig_text is None:
        raise _refuse("unsigned", "the update has no signature")
    if isinstance(sig_text, bytes):
        sig_text = sig_text.decode("ascii", "replace")
    try:
        sig = base64.b64decode(sig_text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _refuse("unsigned", "the update's signature file is not a signature") from exc
    if len(sig) != 64:
        raise _refuse("unsigned", "the update's signature file is not a signature")
    for key in keys:
        try:
            key.verify(sig, SIGNED_PREFIX + data)
            return
        except InvalidSignature:
            continue
    raise _refuse("signature", "the update is not signed by a trusted key (changed or from someone else)")


# ----------------------------------------------------------------- versions
def version_key(version: str) -> tuple | None:
    """Orders set versions like ``2026-06-21.a04c5c1.r1``: (date, release); None when unparseable."""
    m = _VERSION.match(version or "")
    if not m:
        return None
    return (m.group(1), int(m.group(2) or 0))


def _doc_version(data: bytes) -> str:
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:
        raise _refuse("invalid", "the update is not an indicator set (not JSON)") from exc
    if not isinstance(doc, dict) or doc.get("format") != "pocketcheck-iocs":
        raise _refuse("invalid", "the update is not a pocketcheck indicator set")
    version = doc.get("set_version")
    if not isinstance(version, str) or version_key(version) is None:
        raise _refuse("invalid", "the update has no valid set_version")
    return version


# ------------------------------------------------------------------ storage
def _root(cfg) -> pathlib.Path:
    return pathlib.Path(cfg.data_dir) / "iocs"


def installed(cfg) -> pathlib.Path | None:
    """The folder of the installed update (file + signature), or None."""
    cur = _root(cfg) / "current"
    return cur.resolve() if cur.is_symlink() and cur.resolve().is_dir() else None


_MEMO: dict = {}


def _load_set(path: pathlib.Path, digest: str):
    from . import indicators as ind

    iset = _MEMO.get(digest)
    if iset is None:
        iset = ind.load([str(path)], fmt="pocketcheck")
        _MEMO.clear()
        _MEMO[digest] = iset
    return iset


def load_current(cfg=None):
    """The indicator set in use: the installed signed update when valid, else the shipped set.

    The installed files are verified again (signature and content): a damaged
    or altered SD card falls back to the shipped set with a log line rather
    than using unverified indicators.

    Returns:
        An ``IndicatorSet``.
    """
    from . import indicators as ind

    folder = installed(cfg) if cfg is not None else None
    if folder is not None:
        try:
            data = (folder / UPDATE_NAME).read_bytes()
            verify(data, (folder / SIG_NAME).read_bytes(), trusted_keys(cfg))
            return _load_set(folder / UPDATE_NAME, hashlib.sha256(data).hexdigest())
        except (UpdateError, IocFormatError, OSError) as exc:
            log.warning("installed indicator update not used: %s", exc)
    return ind.load_default()


def current_version(cfg=None) -> str:
    """The version label of the set in use."""
    return load_current(cfg).version


def install(cfg, data: bytes, sig_text: bytes | str) -> str:
    """Verifies an update and makes it the set in use.

    Args:
        cfg: the configuration (``data_dir``, ``trusted_update_keys``).
        data: the indicator file's bytes.
        sig_text: the signature file's content.
    Returns:
        The new set's version.
    Raises:
        UpdateError: refused (see the module docstring); nothing changed.
        OSError: the box's storage failed; nothing changed.
    """
    from . import indicators as ind

    if len(data) > MAX_UPDATE_BYTES:
        raise _refuse("invalid", "the update is too big")
    verify(data, sig_text, trusted_keys(cfg))
    version = _doc_version(data)
    new_key, cur = version_key(version), current_version(cfg)
    cur_key = version_key(cur)
    if cur_key is not None and new_key <= cur_key:
        raise _refuse("older", f"the update ({version}) is not newer than the indicators in use ({cur})")
    root = _root(cfg)
    sets = root / "sets"
    sets.mkdir(parents=True, exist_ok=True)
    for d in (root, sets):
        os.chmod(d, 0o700)  # indicators in use are the service's alone
    digest = hashlib.sha256(data).hexdigest()
    final = sets / digest[:32]
    stage = pathlib.Path(tempfile.mkdtemp(prefix=".stage-", dir=sets))
    try:
        for name, content in ((UPDATE_NAME, data), (SIG_NAME, sig_text.encode() if isinstance(sig_text, str)
                                                    else sig_text)):
            fd = os.open(stage / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with open(fd, "wb") as fh:
                fh.write(content)
                fh.flush()
                os.fsync(fh.fileno())
        try:
            iset = ind.load([str(stage / UPDATE_NAME)], fmt="pocketcheck")
        except IocFormatError as exc:
            raise _refuse("invalid", f"the update is not a valid indicator set: {exc}") from exc
        if final.exists():
            shutil.rmtree(final)
        os.rename(stage, final)
        _fsync_dir(sets)
        link = root / ".current-new"
        if link.is_symlink() or link.exists():
            link.unlink()
        os.symlink(os.path.join("sets", final.name), link)
        os.replace(link, root / "current")  # the switch: one atomic rename
        _fsync_dir(root)
    finally:
        if stage.exists():
            shutil.rmtree(stage, ignore_errors=True)
    for old in sets.iterdir():
        if old != final and not old.name.startswith("."):
            shutil.rmtree(old, ignore_errors=True)
    _MEMO.clear()
    _MEMO[digest] = iset
    log.info("indicator update %s installed", version)
    return version


def _fsync_dir(path: pathlib.Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def from_stick(cfg, stick) -> str | None:
    """Applies the update a stick carries, if it carries one.

    Args:
        cfg: the configuration.
        stick: a ``usb.MountedStick`` or ``usb.MtoolsStick``.
    Returns:
        The installed version, or None when the stick has no update.
    Raises:
        UpdateError: the update was refused (``reason`` says why); the set in use is unchanged.
    """
    read = getattr(stick, "read_bytes", None)
    if read is None:
        return None
    try:
        data = read(UPDATE_NAME, MAX_UPDATE_BYTES)
        if data is None:
            return None
        sig = read(SIG_NAME, MAX_SIG_BYTES)
    except UsbError as exc:
        raise _refuse("unreadable", f"the update on the stick cannot be used: {exc}") from exc
    return install(cfg, data, sig)


# ---------------------------------------------------------------- release tool
def main(argv: list[str] | None = None) -> int:
    """``python -m appliance.updates keygen|sign|verify`` (the release side)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    p = argparse.ArgumentParser(prog="python -m appliance.updates", description="sign indicator updates")
    sub = p.add_subparsers(dest="cmd", required=True)
    k = sub.add_parser("keygen", help="make a signing key pair (private PEM, mode 0600; public key printed)")
    k.add_argument("--out", required=True)
    s = sub.add_parser("sign", help="write FILE.sig")
    s.add_argument("--key", required=True)
    s.add_argument("file")
    v = sub.add_parser("verify", help="check FILE.sig against a public key (default: the project's)")
    v.add_argument("--pub", default=None)
    v.add_argument("file")
    args = p.parse_args(argv)
    if args.cmd == "keygen":
        key = ed25519.Ed25519PrivateKey.generate()
        fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with open(fd, "wb") as fh:
            fh.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
        raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        print(base64.b64encode(raw).decode())
        return 0
    data = pathlib.Path(args.file).read_bytes()
    if args.cmd == "sign":
        key = serialization.load_pem_private_key(pathlib.Path(args.key).read_bytes(), password=None)
        pathlib.Path(args.file + ".sig").write_text(sign(data, key))
        return 0
    keys = [public_key(args.pub)] if args.pub else trusted_keys(None)
    try:
        verify(data, pathlib.Path(args.file + ".sig").read_bytes(), keys)
    except UpdateError as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 1
    print("signature good")
    return 0


if __name__ == "__main__":
    sys.exit(main())
