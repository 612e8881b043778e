"""X.509 server certificates seen on the wire, parsed with ``cryptography``.

The C core hands over each certificate of a TLS <= 1.2 chain as DER; this
module turns one into the facts detection and reports use. A certificate
that does not parse gives a :class:`CertInfo` with ``error`` set rather than
an exception: it came from hostile traffic.
"""
from __future__ import annotations

import datetime as _dt
import functools
import hashlib
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa


@dataclass(frozen=True)
class CertInfo:
    """What a certificate says about itself."""

    sha1: str
    sha256: str
    subject: str = ""
    issuer: str = ""
    not_before: str = ""        # ISO 8601, UTC
    not_after: str = ""
    san: tuple = field(default_factory=tuple)   # DNS names of subjectAltName
    self_signed: bool = False
    error: str = ""

    def expired_at(self, when: float) -> bool:
        """True when ``when`` (Unix seconds) is outside the validity period."""
        if not self.not_after:
            return False
        t = _dt.datetime.fromtimestamp(when, _dt.UTC)
        return not (_dt.datetime.fromisoformat(self.not_before) <= t <= _dt.datetime.fromisoformat(self.not_after))


def _signed_by_own_key(cert: x509.Certificate) -> bool:
    key = cert.public_key()
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), cert.signature_hash_algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))
        elif isinstance(key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
            key.verify(cert.signature, cert.tbs_certificate_bytes)
        else:
            return False
    except Exception:  # noqa: BLE001 - any verification failure means "not self-signed"
        return False
    return True


def _utc(cert: x509.Certificate, name: str) -> _dt.datetime:
    """A validity bound as an aware UTC datetime (``not_valid_before``/``not_valid_after``).

    cryptography >= 42 has ``*_utc``; older ones (Debian bookworm's 38, the
    SD image's) only give naive datetimes that are UTC.
    """
    value = getattr(cert, name + "_utc", None)
    if value is None:
        value = getattr(cert, name).replace(tzinfo=_dt.UTC)
    return value


def parse(der: bytes) -> CertInfo:
    """Parses one DER certificate.

    Args:
        der: the certificate bytes as sent by the server.
    Returns:
        A CertInfo; fingerprints are always filled, ``error`` says why the
        rest is empty when the DER does not parse.
    """
    sha1, sha256 = hashlib.sha1(der).hexdigest(), hashlib.sha256(der).hexdigest()
    try:
        cert = x509.load_der_x509_certificate(der)
        try:
            ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
            san = tuple(ext.value.get_values_for_type(x509.DNSName))
        except x509.ExtensionNotFound:
            san = ()
        return CertInfo(
            sha1=sha1,
            sha256=sha256,
            subject=cert.subject.rfc4514_string(),
            issuer=cert.issuer.rfc4514_string(),
            not_before=_utc(cert, "not_valid_before").isoformat(),
            not_after=_utc(cert, "not_valid_after").isoformat(),
            san=san,
            self_signed=cert.issuer == cert.subject and _signed_by_own_key(cert),
        )
    except Exception as exc:  # noqa: BLE001 - hostile input: report, never raise
        return CertInfo(sha1=sha1, sha256=sha256, error=f"unparsable certificate: {exc}")


@functools.lru_cache(maxsize=1024)
def parse_cached(der: bytes) -> CertInfo:
    """:func:`parse` with a bounded cache: servers send the same chain on every connection."""
    return parse(der)
