"""Indicator updates for the tests: a newer copy of the shipped set, signed with a throwaway key."""
from __future__ import annotations

import base64
import json

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from appliance import indicators, updates

NEW_C2 = "update-only-c2.example.net"


def keypair():
    """A throwaway Ed25519 key and its public key as ``trusted_update_keys`` wants it (base64)."""
    key = ed25519.Ed25519PrivateKey.generate()
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return key, base64.b64encode(raw).decode()


def update_bytes(version: str = "2099-01-01.test.r1", extra_domain: str = NEW_C2) -> bytes:
    """The shipped set with one more stalkerware domain and a new version label."""
    doc = json.loads(indicators.DEFAULT_FILE.read_text("utf-8"))
    doc["set_version"] = version
    doc["indicators"].append([extra_domain, "domain", "TestFamily", "stalkerware-c2", "high", 0])
    return json.dumps(doc).encode()


def signed(key, data: bytes) -> tuple[bytes, bytes]:
    """(file bytes, signature file bytes)."""
    return data, updates.sign(data, key).encode()
