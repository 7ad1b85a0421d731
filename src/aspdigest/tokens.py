"""Signed, opaque tokens for the links a subscriber follows: unsubscribe, confirm, resubscribe.

Beside the store in the flow: `deliver.email` puts an `unsubscribe` token in each digest's
List-Unsubscribe link (and a `bounce` token in a VERP return path), the subscriber service (`aspdigest.serve`) makes `confirm` tokens for
its sign-up mails and checks every token it is handed. A token never carries the address:
it is the subscriber's random id (`Subscriber.token_id`, 16 bytes) and an expiry, with an
HMAC-SHA256 over those, the purpose and the list id, all in one base64url string of 50
characters. `keys(environ)` reads ASPDIGEST_UNSUBSCRIBE_KEY (signs) and
ASPDIGEST_UNSUBSCRIBE_KEY_OLD (still accepted, so a team can rotate keys without breaking
the links in digests already sent), refusing keys with less than 128 bits.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import re
import secrets
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field

from aspdigest.config import secret
from aspdigest.errors import UserError

KEY_VARIABLE = "ASPDIGEST_UNSUBSCRIBE_KEY"
OLD_KEY_VARIABLE = "ASPDIGEST_UNSUBSCRIBE_KEY_OLD"
MIN_KEY_BITS = 128
VERSION = 1
ID_BYTES = 16
MAC_BYTES = 16
_LAYOUT = struct.Struct(f">B{ID_BYTES}sI")  # version, subscriber id, expiry (0: never)
TOKEN_LENGTH = math.ceil((_LAYOUT.size + MAC_BYTES) * 4 / 3)
PURPOSES = ("unsubscribe", "confirm", "bounce")
_MAKE_KEY = 'python3 -c "import secrets; print(secrets.token_urlsafe(32))"'
_REPEATED = re.compile(r"^(.+?)\1+$", re.DOTALL)


def new_id() -> str:
    """A fresh subscriber id, as the store keeps it (32 hex digits)."""
    return secrets.token_hex(ID_BYTES)


def key_bits(value: str) -> float:
    """A generous estimate of the randomness in a key: its length times the bits of the
    smallest usual alphabet (hex, base64, printable) its characters come from."""
    if re.fullmatch(r"[0-9a-fA-F]+", value):
        per = 4.0
    elif re.fullmatch(r"[A-Za-z0-9_\-+/=]+", value):
        per = 6.0
    else:
        per = math.log2(95)
    return len(value) * per


def check_key(variable: str, value: str) -> bytes:
    """The key's bytes, or a UserError of one line saying why it is too weak."""
    fix = f"; make one with {_MAKE_KEY}"
    if value != value.strip() or any(ch.isspace() for ch in value):
        raise UserError(f"{variable}: holds spaces or line breaks{fix}")
    if _REPEATED.match(value) or len(set(value)) < 8:
        raise UserError(f"{variable}: made of repeated characters{fix}")
    if key_bits(value) < MIN_KEY_BITS:
        raise UserError(f"{variable}: too short, under {MIN_KEY_BITS} bits{fix}")
    return value.encode("utf-8")


@dataclass(frozen=True)
class Keys:
    """The key that signs new tokens, then any older one that is still accepted."""

    current: bytes = field(repr=False)
    old: bytes | None = field(default=None, repr=False)

    @property
    def accepted(self) -> tuple[bytes, ...]:
        return (self.current,) if self.old is None else (self.current, self.old)


def keys(environ: Mapping[str, str] | None = None) -> Keys:
    value = secret(KEY_VARIABLE, environ)
    if value is None:
        raise UserError(
            f"{KEY_VARIABLE}: not set; real sends sign each recipient's unsubscribe "
            f"link with it; make one with {_MAKE_KEY}"
        )
    old = secret(OLD_KEY_VARIABLE, environ)
    return Keys(
        check_key(KEY_VARIABLE, value),
        check_key(OLD_KEY_VARIABLE, old) if old is not None else None,
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _mac(key: bytes, purpose: str, list_id: str, body: bytes) -> bytes:
    message = b"aspdigest-token\0" + purpose.encode() + b"\0" + list_id.encode() + b"\0" + body
    return hmac.new(key, message, hashlib.sha256).digest()[:MAC_BYTES]


def make_token(token_id: str, key: bytes, list_id: str, purpose: str, expires: int = 0) -> str:
    """The token for subscriber `token_id` (hex) and `purpose`; `expires` is a Unix time
    after which it is refused (0: never, as an unsubscribe link must keep working)."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown token purpose {purpose!r}")
    body = _LAYOUT.pack(VERSION, bytes.fromhex(token_id), expires)
    return _b64(body + _mac(key, purpose, list_id, body))


def verify_token(
    token: str, keys: Keys, list_id: str, purpose: str, now: float | None = None
) -> str | None:
    """The subscriber id (hex) a token was made for, or None when it is forged, truncated,
    made for another purpose or list, or expired at `now` (a Unix time)."""
    if len(token) != TOKEN_LENGTH or not re.fullmatch(r"[A-Za-z0-9_\-]+", token):
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        return None
    body, given = raw[: _LAYOUT.size], raw[_LAYOUT.size :]
    version, token_id, expires = _LAYOUT.unpack(body)
    if version != VERSION:
        return None
    if not any(hmac.compare_digest(given, _mac(k, purpose, list_id, body)) for k in keys.accepted):
        return None
    if expires and (now is None or now > expires):
        return None
    return bytes(token_id).hex()
