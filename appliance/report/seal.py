"""Sealing a report folder: the box's signing key, the manifest, its signature, age.

``MANIFEST.sha256`` (``sha256sum -c`` format) lists every other file of a
report folder; ``MANIFEST.sha256.sig`` is an Ed25519 signature of it by the
box's key, with the public key. ``report.tar.age`` is the whole signed
folder as a tar archive encrypted with age (X25519) to organisation keys.
"""
from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import tarfile
import tempfile
from pathlib import Path, PurePosixPath

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .. import system
from ..config import AGE_RECIPIENT
from ..digest import file_sha256
from ..errors import CommandError, PocketcheckError, ReportIntegrityError

MANIFEST = "MANIFEST.sha256"
SIGNATURE = "MANIFEST.sha256.sig"
KEY_FILE = "report-signing.key"


# ---- keys and signatures ----------------------------------------------------------
def default_key_dir() -> Path:
    """Where the box keeps its signing key when no directory is given.

    ``$POCKETCHECK_KEY_DIR``, else ``keys/`` under the data directory
    (``$POCKETCHECK_DATA_DIR``, ``/var/lib/pocketcheck`` when writable, else
    ``~/.local/share/pocketcheck``).
    """
    if os.environ.get("POCKETCHECK_KEY_DIR"):
        return Path(os.environ["POCKETCHECK_KEY_DIR"])
    data = os.environ.get("POCKETCHECK_DATA_DIR")
    if not data:
        data = "/var/lib/pocketcheck"
        if not os.access(data, os.W_OK):
            data = os.path.join(os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share"),
                                "pocketcheck")
    return Path(data) / "keys"


def load_or_create_key(key_dir: str | Path | None = None) -> Ed25519PrivateKey:
    """Returns the box's Ed25519 signing key, creating it on first use.

    The key is a PKCS#8 PEM file, mode 0600, in a directory of mode 0700.

    Args:
        key_dir: the key directory (default: :func:`default_key_dir`).
    Returns:
        The private key.
    Raises:
        PocketcheckError: the key file exists but is not an Ed25519 key, or is
            readable by others.
        OSError: the directory cannot be created or written.
    """
    d = Path(key_dir) if key_dir else default_key_dir()
    path = d / KEY_FILE
    if path.exists():
        if path.stat().st_mode & 0o077:
            raise PocketcheckError(f"{path}: signing key is readable by other users (expected mode 0600)")
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except ValueError:
            raise PocketcheckError(f"{path}: not a valid signing key") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise PocketcheckError(f"{path}: signing key is not Ed25519")
        return key
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    # O_EXCL: two sessions starting at once must not both write a key.
    tmp = d / f".{KEY_FILE}.{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
        f.flush()
        os.fsync(f.fileno())
    try:
        os.link(tmp, path)
    except FileExistsError:
        os.unlink(tmp)
        return load_or_create_key(d)
    os.unlink(tmp)
    return key


def public_raw(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    """The 32 raw bytes of an Ed25519 public key."""
    pub = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def fingerprint(public: bytes) -> str:
    """A key's fingerprint as OpenSSH shows them: ``SHA256:`` + unpadded base64."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(public).digest()).decode().rstrip("=")


def _signature_text(key: Ed25519PrivateKey, manifest: bytes) -> str:
    pub = public_raw(key)
    return ("pocketcheck-signature 1\nalgorithm ed25519\n"
            f"public-key {base64.b64encode(pub).decode()}\n"
            f"fingerprint {fingerprint(pub)}\n"
            f"signature {base64.b64encode(key.sign(manifest)).decode()}\n")


def parse_signature(text: str) -> tuple[bytes, bytes]:
    """Reads a MANIFEST.sha256.sig file.

    Args:
        text: the file's text.
    Returns:
        (32-byte public key, 64-byte signature).
    Raises:
        ReportIntegrityError: not a pocketcheck signature, damaged, or not in
            its canonical form.
    """
    fields = {}
    for line in text.splitlines():
        k, _, v = line.partition(" ")
        fields[k] = v.strip()
    if fields.get("pocketcheck-signature") != "1" or fields.get("algorithm") != "ed25519":
        raise ReportIntegrityError(f"{SIGNATURE} is not a pocketcheck signature")
    try:
        pub = base64.b64decode(fields["public-key"], validate=True)
        sig = base64.b64decode(fields["signature"], validate=True)
    except (KeyError, ValueError):
        raise ReportIntegrityError(f"{SIGNATURE} is damaged") from None
    if len(pub) != 32 or len(sig) != 64:
        raise ReportIntegrityError(f"{SIGNATURE} is damaged")
    # Only the canonical form is accepted, so no line of the file (the
    # fingerprint included) can be changed without failing verification.
    canonical = ("pocketcheck-signature 1\nalgorithm ed25519\n"
                 f"public-key {base64.b64encode(pub).decode()}\n"
                 f"fingerprint {fingerprint(pub)}\n"
                 f"signature {base64.b64encode(sig).decode()}\n")
    if text != canonical:
        raise ReportIntegrityError(f"{SIGNATURE} has been modified")
    return pub, sig


# ---- manifest ------------------------------------------------------------------
# The file names a manifest may list: no control characters, no leading space.
SAFE_NAME = re.compile(r"^[A-Za-z0-9._/+-][A-Za-z0-9._/+ -]*$")


def listing(root: Path) -> list[str]:
    """Returns every file under ``root`` but the manifest and its signature, as sorted POSIX paths."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for fn in sorted(filenames):
            rel = (Path(dirpath) / fn).relative_to(root).as_posix()
            if rel not in (MANIFEST, SIGNATURE):
                out.append(rel)
    return sorted(out)


def write_manifest(root: Path, key: Ed25519PrivateKey) -> None:
    """Writes MANIFEST.sha256 over every file under ``root`` and signs it."""
    lines = [f"{file_sha256(root / rel)}  {rel}\n" for rel in listing(root)]
    manifest = "".join(lines).encode()
    (root / MANIFEST).write_bytes(manifest)
    (root / SIGNATURE).write_text(_signature_text(key, manifest))


# ---- encryption ------------------------------------------------------------------
# age (https://age-encryption.org), through Debian's `age` program: the same
# on the box (armel/arm64) and on an office computer, no compiled Python module.
_AGE_RECIPIENT = re.compile(AGE_RECIPIENT)
_AGE_TIMEOUT = 300.0


def _age(args: list[str], data: bytes | None, what: str) -> bytes:
    if system.which("age") is None:
        raise PocketcheckError(f"{what}: the 'age' program is not installed (Debian package age)")
    try:
        return system.run(["age", *args], input=data, text=False, timeout=_AGE_TIMEOUT).stdout
    except CommandError as exc:
        raise PocketcheckError(f"{what}: {exc}") from None


def check_recipients(values) -> list[str]:
    """Checks age recipients before anything is written.

    Args:
        values: public keys (``age1...``).
    Returns:
        The keys, stripped.
    Raises:
        PocketcheckError: one is not an age public key.
    """
    out = []
    for v in values:
        v = str(v).strip()
        if not _AGE_RECIPIENT.fullmatch(v):
            raise PocketcheckError(f"not an age public key (age1...): {v!r}")
        out.append(v)
    return out


def encrypt_folder(root: Path, recipients: list[str]) -> bytes:
    """Returns a signed report folder as a tar archive encrypted with age.

    Args:
        root: the folder (with its manifest and signature).
        recipients: checked age public keys (:func:`check_recipients`).
    Returns:
        The ``report.tar.age`` bytes; entries are under ``report/``, owned by 0.
    Raises:
        PocketcheckError: no ``age`` program, or age failed.
    """
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for rel in listing(root) + [MANIFEST, SIGNATURE]:
            info = tar.gettarinfo(str(root / rel), arcname=f"report/{rel}")
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            with open(root / rel, "rb") as fh:
                tar.addfile(info, fh)
    args = [a for r in recipients for a in ("-r", r)]
    return _age(args, buf.getvalue(), "cannot encrypt the report")


def decrypt_archive(path: str | Path, identity: str, into: str | Path) -> Path:
    """Decrypts a ``report.tar.age`` with an organisation's age identity.

    Args:
        path: the encrypted archive.
        identity: the ``AGE-SECRET-KEY-1...`` string.
        into: a folder to extract into (gets a ``report/`` sub-folder).
    Returns:
        The extracted report folder.
    Raises:
        PocketcheckError: wrong key, damaged archive, or no ``age`` program.
    """
    with tempfile.TemporaryDirectory(prefix="pc-age-") as tmp:
        key = Path(tmp) / "identity"
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(identity.strip() + "\n")
        plain = _age(["-d", "-i", str(key), str(path)], None, f"{path}: cannot decrypt")
    try:
        with tarfile.open(fileobj=io.BytesIO(plain)) as tar:
            # A report archive holds plain files and folders under report/:
            # anything else is refused before a byte is written.
            for m in tar.getmembers():
                parts = PurePosixPath(m.name).parts
                if m.name.startswith("/") or ".." in parts or not (m.isfile() or m.isdir()):
                    raise PocketcheckError(f"{path}: the archive holds an unsafe entry {m.name!r}")
            if hasattr(tarfile, "data_filter"):
                tar.extractall(into, filter="data")
            else:  # Python < 3.11.4 (Debian bookworm's 3.11.2): no filters; the checks above stand in
                tar.extractall(into)
    except tarfile.TarError as exc:
        raise PocketcheckError(f"{path}: damaged archive: {exc}") from None
    return Path(into) / "report"
