"""The report: report.json, report.html, the manifest, its signature, and `verify`.

A report folder holds ``report.json`` (schema in ``appliance/data/report.schema.json``),
``report.html`` (one self-contained page, in the chosen language), the
capture files under ``capture/``, ``MANIFEST.sha256`` (``sha256sum -c``
format, over every other file) and ``MANIFEST.sha256.sig`` (an Ed25519
signature of the manifest by the box's key, with the public key).

With ``encrypt_to`` the folder instead holds ``report.tar.age``: the whole
signed folder above as a tar archive, encrypted with age (X25519) to one or
more organisation public keys, plus its own manifest and signature so that
its integrity can be checked without decrypting it.

All user-facing text comes from the catalogues in ``appliance/locale/``.
"""
from __future__ import annotations

import base64
import datetime as _dt
import functools
import hashlib
import io
import json
import os
import re
import shutil
import socket
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import jinja2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from . import __version__
from .analysis import LEVELS, RULES, iso
from .config import AGE_RECIPIENT
from .errors import CommandError, PocketcheckError, ReportIntegrityError

SCHEMA_VERSION = "1.0"
LANGUAGES = ("en", "fr")
MANIFEST = "MANIFEST.sha256"
SIGNATURE = "MANIFEST.sha256.sig"
KEY_FILE = "report-signing.key"
_PKG = Path(__file__).resolve().parent
SCHEMA_PATH = _PKG / "data" / "report.schema.json"


# ---- catalogue ---------------------------------------------------------------
@functools.cache
def catalogue(lang: str) -> dict:
    """Returns the message catalogue of a language.

    Args:
        lang: a code from LANGUAGES.
    Returns:
        The parsed ``appliance/locale/<lang>.json``.
    Raises:
        PocketcheckError: no catalogue for that language.
    """
    if lang not in LANGUAGES:
        raise PocketcheckError(f"no report language {lang!r} (available: {', '.join(LANGUAGES)})")
    return json.loads((_PKG / "locale" / f"{lang}.json").read_text(encoding="utf-8"))


# ---- report.json -------------------------------------------------------------
def build(result, files, indicators, box_id: str | None = None, generated_at: str | None = None,
          extra_warnings=()) -> dict:
    """Builds the report document (what report.json holds).

    Args:
        result: an ``analysis.Result``.
        files: the ``analysis.CaptureFile`` list of the session.
        indicators: the IndicatorSet used (for its version, hash and counts).
        box_id: this box's identifier (default: the host name).
        generated_at: ISO 8601 time of the report (default: now), fixed in tests.
        extra_warnings: warning codes to add (e.g. "interrupted").
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
    import jsonschema

    try:
        jsonschema.validate(doc, schema())
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(top)"
        raise ReportIntegrityError(f"report.json does not match its schema at {where}: {exc.message}") from None


# ---- presentation helpers ------------------------------------------------------
def _when(s: str | None, unknown: str) -> str:
    if not s:
        return unknown
    return s.replace("T", " ").split(".")[0].rstrip("Z") + " UTC"


def _duration(seconds: float, cat: dict) -> str:
    if seconds >= 60:
        return cat["labels"]["minutes"].format(n=round(seconds / 60))
    return cat["labels"]["seconds"].format(n=round(seconds))


def _ts(s: str | None) -> float | None:
    if not s:
        return None
    return _dt.datetime.fromisoformat(s).timestamp()


def timeline(doc: dict, width: int = 880, row: int = 26, label_w: int = 260) -> dict | None:
    """Lays out the contacts with flagged hosts as an SVG timeline.

    One row per host (name or address) that has an alert of level moderate or
    high, or any indicator hit; one mark per recorded contact time.

    Returns:
        None when there is nothing to draw, else a dict with the geometry
        (rows, ticks, width, height) for the template.
    """
    start, end = _ts(doc["session"]["start"]), _ts(doc["session"]["end"])
    if start is None or end is None:
        return None
    span = max(end - start, 1.0)
    hosts: dict[str, dict] = {}
    for a in doc["alerts"]:
        if a["level"] == "low" and not a.get("indicator"):
            continue
        host = a.get("name") or a.get("ip") or "?"
        h = hosts.setdefault(host, {"label": host, "level": a["level"], "times": set()})
        if LEVELS.index(a["level"]) > LEVELS.index(h["level"]):
            h["level"] = a["level"]
        for t in a["evidence"].get("times") or [a["first"]]:
            if t:
                h["times"].add(_ts(t))
    if not hosts:
        return None
    plot_w = width - label_w - 40
    rows = []
    for i, host in enumerate(sorted(hosts.values(), key=lambda h: (-LEVELS.index(h["level"]), h["label"]))[:25]):
        y = 30 + i * row
        xs = sorted({round(label_w + (t - start) / span * plot_w, 1) for t in host["times"]})
        label = host["label"] if len(host["label"]) <= 34 else "…" + host["label"][-33:]
        rows.append({"y": y, "label": label, "level": host["level"], "xs": xs})
    ticks = []
    for k in range(5):
        t = start + span * k / 4
        ticks.append({"x": round(label_w + plot_w * k / 4, 1),
                      "text": _dt.datetime.fromtimestamp(t, _dt.UTC).strftime("%H:%M:%S")})
    return {"width": width, "height": 30 + len(rows) * row + 30, "rows": rows, "ticks": ticks,
            "x0": label_w, "x1": label_w + plot_w, "axis_y": 30 + len(rows) * row}


def groups(doc: dict) -> list[dict]:
    """Groups alerts by device and host for the plain-language part of the page.

    One group per (device, host): its level is the highest of its alerts, its
    rules are listed most serious first, without repeats.
    """
    out: dict[tuple, dict] = {}
    for a in doc["alerts"]:
        host = a.get("name") or a.get("ip") or ""
        g = out.setdefault((a["device"] or a["device_ip"] or "", host), {
            "host": host, "ips": [], "device": a["device"] or a["device_ip"] or "", "level": a["level"],
            "rules": [], "families": [], "first": a["first"], "last": a["last"], "count": 0})
        if LEVELS.index(a["level"]) > LEVELS.index(g["level"]):
            g["level"] = a["level"]
        if a["rule"] not in g["rules"]:
            g["rules"].append(a["rule"])
        if a.get("family") and a["family"] not in g["families"]:
            g["families"].append(a["family"])
        if a.get("ip") and a["ip"] != host and a["ip"] not in g["ips"]:
            g["ips"].append(a["ip"])
        g["first"] = min(x for x in (g["first"], a["first"]) if x) if (g["first"] or a["first"]) else None
        g["last"] = max(x for x in (g["last"], a["last"]) if x) if (g["last"] or a["last"]) else None
        g["count"] = max(g["count"], a["count"])
    level_of = {a["rule"]: a["level"] for a in doc["alerts"]}
    for g in out.values():
        g["rules"].sort(key=lambda r: -LEVELS.index(level_of[r]))
    return sorted(out.values(), key=lambda g: (-LEVELS.index(g["level"]), g["device"], g["first"] or "", g["host"]))


@functools.cache
def _env() -> jinja2.Environment:
    # Autoescape is on for every template: names come from hostile traffic.
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(_PKG / "templates")),
                              autoescape=True,
                              trim_blocks=True, lstrip_blocks=True)


def render_html(doc: dict, lang: str = "en") -> str:
    """Renders report.html for a report document.

    Args:
        doc: a report document from :func:`build`.
        lang: the language of the page.
    Returns:
        One self-contained HTML page (no external assets).
    """
    cat = catalogue(lang)
    unknown = cat["labels"]["unknown"]
    return _env().get_template("report.html.j2").render(
        doc=doc, t=cat, lang=lang, rules=RULES, timeline=timeline(doc), groups=groups(doc),
        when=lambda s: _when(s, unknown), duration=lambda s: _duration(s, cat),
        version=doc["session"]["software_version"])


def text_summary(doc: dict, lang: str = "en") -> str:
    """Returns the verdicts and alerts as plain text for the terminal.

    Args:
        doc: a report document.
        lang: the language.
    Returns:
        Several lines, ending with a newline.
    """
    cat = catalogue(lang)
    unknown = cat["labels"]["unknown"]
    lines = [cat["cli"]["verdict"].format(word=cat["verdict"][doc["verdict"]]["word"]),
             cat["verdict"][doc["verdict"]]["headline"]]
    for w in doc["session"]["warnings"]:
        if w in cat["warnings"]:
            lines.append("! " + cat["warnings"][w])
    for d in doc["devices"]:
        lines.append("")
        lines.append(cat["cli"]["device"].format(
            mac=d["mac"] or unknown, ip=d["ip"] or unknown,
            hostname=f", {d['hostname']}" if d.get("hostname") else "", word=cat["device_verdict"][d["verdict"]]))
        mine = [a for a in doc["alerts"] if a["device"] == d["mac"] and (d["mac"] or a["device_ip"] in d["ips"])]
        for a in mine:
            host = a.get("name") or a.get("ip") or unknown
            if a.get("name") and a.get("ip"):
                host = f"{a['name']} [{a['ip']}]"
            if a.get("family"):
                host += f" ({a['family']})"
            lines.append(cat["cli"]["alert"].format(
                level=cat["levels"][a["level"]], title=cat["rules"][a["rule"]]["title"], host=host,
                count=a["count"], first=_when(a["first"], unknown), last=_when(a["last"], unknown)))
        if not mine:
            lines.append(cat["cli"]["no_alerts"])
    return "\n".join(lines) + "\n"


# ---- keys and signatures -------------------------------------------------------
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


def _parse_signature(text: str) -> tuple[bytes, bytes]:
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
_SAFE = re.compile(r"^[A-Za-z0-9._/+-][A-Za-z0-9._/+ -]*$")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _listing(root: Path) -> list[str]:
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
    lines = [f"{_sha256(root / rel)}  {rel}\n" for rel in _listing(root)]
    manifest = "".join(lines).encode()
    (root / MANIFEST).write_bytes(manifest)
    (root / SIGNATURE).write_text(_signature_text(key, manifest))


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
        pub, sig = _parse_signature((root / SIGNATURE).read_text(encoding="utf-8", errors="replace"))
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
        if not m or not _SAFE.match(m.group(2)) or ".." in m.group(2).split("/") or m.group(2).startswith("/"):
            return bad(f"{MANIFEST} line {n} is malformed", fp)
        listed[m.group(2)] = m.group(1)
    present = set(_listing(root))
    for rel, digest in sorted(listed.items()):
        if rel not in present:
            return bad(f"{rel} is missing", fp)
        if _sha256(root / rel) != digest:
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


# ---- writing a report folder -----------------------------------------------------
def _capture_names(files) -> list[str]:
    names, used = [], set()
    for i, f in enumerate(files):
        base = re.sub(r"[^A-Za-z0-9._+-]", "_", Path(f.path).name) or f"capture-{i}.pcap"
        name = base if base not in used else f"{i + 1}-{base}"
        used.add(name)
        names.append(f"capture/{name}")
    return names


def write(out_dir: str | Path, doc: dict, files=(), lang: str = "en", key_dir=None, encrypt_to=()) -> Path:
    """Writes a complete, signed report folder.

    Args:
        out_dir: the folder to create (it must not exist, or be empty).
        doc: the report document from :func:`build` (its signing key is filled in).
        files: the session's CaptureFile list; the captures are copied in.
        lang: the language of report.html.
        key_dir: the box's key directory (default: :func:`default_key_dir`).
        encrypt_to: age recipients (``age1...``); when given, only an encrypted
            archive of the report is left in the folder.
    Returns:
        The folder's path.
    Raises:
        PocketcheckError: the folder is not empty, or a recipient is invalid.
        OSError: writing failed.
    """
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise PocketcheckError(f"{out}: report folder exists and is not empty")
    recipients = _recipients(encrypt_to) if encrypt_to else None
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
        write_manifest(stage, key)
        if recipients is not None:
            archive = _encrypt_folder(stage, recipients)
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


# ---- encryption ------------------------------------------------------------------
# age (https://age-encryption.org), through Debian's `age` program: the same
# on the box (armel/arm64) and on an office computer, no compiled Python module.
_AGE_RECIPIENT = re.compile(AGE_RECIPIENT)
_AGE_TIMEOUT = 300.0


def _age(args: list[str], data: bytes | None, what: str) -> bytes:
    from . import system

    if system.which("age") is None:
        raise PocketcheckError(f"{what}: the 'age' program is not installed (Debian package age)")
    try:
        return system.run(["age", *args], input=data, text=False, timeout=_AGE_TIMEOUT).stdout
    except CommandError as exc:
        raise PocketcheckError(f"{what}: {exc}") from None


def _recipients(values) -> list[str]:
    out = []
    for v in values:
        v = str(v).strip()
        if not _AGE_RECIPIENT.fullmatch(v):
            raise PocketcheckError(f"not an age public key (age1...): {v!r}")
        out.append(v)
    return out


def _encrypt_folder(root: Path, recipients: list[str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for rel in _listing(root) + [MANIFEST, SIGNATURE]:
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


# ---- the `verify` command ----------------------------------------------------------
def register(subparsers) -> None:
    """Adds ``pocketcheck verify`` to the CLI.

    Args:
        subparsers: the CLI's sub-parser collection.
    """
    p = subparsers.add_parser("verify", help="check that a report folder is intact and who signed it",
                              description="Exit 0 when intact, 1 when not, 2 on bad input.")
    p.add_argument("directory", metavar="DIR")
    p.add_argument("--lang", choices=LANGUAGES, default="en")
    p.set_defaults(func=_cmd_verify)


def _cmd_verify(args) -> int:
    v = verify(args.directory)
    cat = catalogue(args.lang)
    if v.intact:
        print(cat["cli"]["intact"].format(fingerprint=v.fingerprint))
        return 0
    line = cat["cli"]["not_intact"].format(reason=v.reason)
    if v.fingerprint:
        line += f" (key {v.fingerprint})"
    print(line)
    return 1
