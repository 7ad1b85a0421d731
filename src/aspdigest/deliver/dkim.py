"""DKIM: the signature every message carries when a team has set it up.

Deliver stage, the last step before SMTP: `signer(project, environ)` reads the private key
named by ASPDIGEST_DKIM_KEY_FILE and the settings `email.dkim_domain` and
`email.dkim_selector`, and returns a `Signer` whose `sign(data)` puts a DKIM-Signature
(rsa-sha256, relaxed/relaxed;
RSA only: Gmail and most receivers do not check Ed25519 signatures yet) in front of the message bytes; when none of
the three is set it returns None and messages go unsigned. Digests, test sends and the
subscriber service's confirmation mails all go through `sign`, so what one signs the others
sign the same way. `txt_record(...)` is the DNS record `accounts check` tells a team to
publish.

The signed headers are fixed (the ones Gmail and Yahoo check, plus the list headers of RFC
2369/8058) and each is signed once more than aspdigest writes it, so nobody on the way can
add a second From or List-Unsubscribe without breaking the signature.
"""

from __future__ import annotations

import base64
import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from aspdigest.config import Project, secret
from aspdigest.errors import UserError

KEY_VARIABLE = "ASPDIGEST_DKIM_KEY_FILE"
SIGNED_HEADERS = (
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
)


@dataclass(frozen=True)
class Signer:
    domain: str
    selector: str
    key: bytes = field(repr=False)  # the PEM private key
    algorithm: str = "rsa-sha256"

    def sign(self, data: bytes) -> bytes:
        """The message with its DKIM-Signature header first."""
        # Each twice: the second signs the absence of another copy (DKIM reads from the
        # bottom, so one added above ours would otherwise go unnoticed).
        include = [h.encode() for h in SIGNED_HEADERS for _ in range(2)]
        # Imported when first used (dkimpy brings dnspython: 30 ms of every send without
        # DKIM); by name, as dkimpy ships no type information.
        dkim = importlib.import_module("dkim")
        signature: bytes = dkim.sign(
            data,
            self.selector.encode(),
            self.domain.encode(),
            self.key,
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=include,
            signature_algorithm=self.algorithm.encode(),
        )
        # dkimpy folds with LF; the rest of the message uses CRLF.
        return signature.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n") + data

    def txt_record(self) -> str:
        return txt_record(self.selector, self.domain, self.key)


def _public(key_pem: bytes) -> tuple[str, bytes]:
    private = serialization.load_pem_private_key(key_pem, password=None)
    if isinstance(private, rsa.RSAPrivateKey):
        der = private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return "rsa", der
    raise ValueError("not an RSA key")


def txt_record(selector: str, domain: str, key_pem: bytes) -> str:
    """`<selector>._domainkey.<domain>. TXT "v=DKIM1; k=…; p=…"` for the key."""
    kind, public = _public(key_pem)
    return (
        f'{selector}._domainkey.{domain}. TXT "v=DKIM1; k={kind}; '
        f'p={base64.b64encode(public).decode()}"'
    )


def signer(project: Project, environ: Mapping[str, str] | None = None) -> Signer | None:
    """The project's signer, None when DKIM is not set up, or a UserError naming what is
    missing or wrong when it is set up only in part."""
    settings = project.settings.email
    path = secret(KEY_VARIABLE, environ)
    domain, selector = settings.dkim_domain, settings.dkim_selector
    if path is None and domain is None and selector is None:
        return None
    missing = [
        what
        for what, value in (
            (KEY_VARIABLE, path),
            ("email.dkim_domain", domain),
            ("email.dkim_selector", selector),
        )
        if not value
    ]
    if missing:
        raise UserError(f"DKIM: {', '.join(missing)} not set; DKIM needs all three")
    assert path is not None and domain is not None and selector is not None
    try:
        key = Path(path).read_bytes()
    except OSError as exc:
        raise UserError(f"{KEY_VARIABLE}: {path}: {exc.strerror or 'cannot be read'}") from None
    try:
        _, public = _public(key)
    except (ValueError, TypeError):
        raise UserError(
            f"{KEY_VARIABLE}: {path}: not a PEM RSA private key without a passphrase"
        ) from None
    if len(public) < 250:  # the DER of a 2048-bit key's public half is 294 bytes
        raise UserError(f"{KEY_VARIABLE}: {path}: RSA keys under 2048 bits are refused")
    return Signer(domain, selector, key)


def sign(message: bytes, dkim_signer: Signer | None) -> bytes:
    """The bytes to hand to SMTP: signed when DKIM is set up."""
    return dkim_signer.sign(message) if dkim_signer is not None else message
