"""DKIM test helpers: a fresh private key, the settings that turn signing on, and a verifier
that answers dkimpy's DNS lookup with the TXT record `accounts check` prints."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

dkim: Any = importlib.import_module("dkim")


def write_key(path: Path, kind: str = "rsa") -> Path:
    key: Any = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if kind == "rsa"
        else ed25519.Ed25519PrivateKey.generate()
    )
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


def dkim_env(key: Path, **extra: str) -> dict[str, str]:
    return {
        "ASPDIGEST_DKIM_KEY_FILE": str(key),
        "ASPDIGEST_EMAIL_DKIM_DOMAIN": "example.org",
        "ASPDIGEST_EMAIL_DKIM_SELECTOR": "digest2024",
        **extra,
    }


def verify(data: bytes, record: bytes) -> bool:
    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"digest2024._domainkey.example.org."
        return record

    return bool(dkim.verify(data, dnsfunc=dns))
