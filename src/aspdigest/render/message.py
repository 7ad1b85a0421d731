"""The digest as an RFC 5322 message: built once, personalised per recipient.

Shared by the render stage (which writes `digest.eml` with placeholder recipient parts)
and the deliver stage (which reads that approved `digest.eml` back and swaps in each
recipient's address and signed unsubscribe token). `Letter` is the frozen,
recipient-independent message; `Letter.message(...)` returns the bytes to hand to SMTP;
`Letter.from_eml(data)` reads a built `digest.eml`.

Why not the email package's defaults: the default policy folds a long List-Unsubscribe
URL into an encoded word, which breaks it (RFC 2369 wants the URL intact), and
`set_content` picks a random MIME boundary and encodes quoted-printable in pure Python.
So headers go through `SMTP_POLICY` (CRLF, lines up to 998 octets), bodies are encoded
once with the C `binascii.b2a_qp`, and the boundary is fixed: quoted-printable text
can never contain "==", so a boundary starting with "==" cannot clash with a body.
"""

from __future__ import annotations

import binascii
import datetime as dt
import email.policy
import email.utils
import html
import re
from dataclasses import dataclass
from email.message import EmailMessage
from email.parser import BytesParser
from functools import cached_property

SMTP_POLICY = email.policy.SMTP.clone(max_line_length=998)
BOUNDARY = "==aspdigest-alternative=="
# What the built artifacts carry where each recipient's own details go at send time.
TOKEN_PLACEHOLDER = "aspdigest-unsubscribe-token"
ADDRESS_PLACEHOLDER = "subscriber@example.invalid"
UNDISCLOSED = "undisclosed-recipients:;"
_PHRASE_RE = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~ -]+$")


def list_id_header(name: str, list_id: str) -> str:
    """`Name <list.id>` (RFC 2919), quoting the name when it holds special characters."""
    if _PHRASE_RE.match(name):
        return f"{name} <{list_id}>"
    escaped = name.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}" <{list_id}>'


# Headers whose ASCII values the policy would write unchanged (unless over 998 octets).
_VERBATIM = frozenset({"Date", "Message-ID", "List-Unsubscribe"})


def _fold(name: str, value: str) -> bytes:
    """One header as the SMTP policy writes it (CRLF, encoded words for non-ASCII text)."""
    if (
        name in _VERBATIM
        and value.isascii()
        and len(name) + len(value) + 2 <= 998
        and "\r" not in value
        and "\n" not in value
    ):
        return f"{name}: {value}\r\n".encode("ascii")
    header = SMTP_POLICY.header_store_parse(name, value)[1]
    return SMTP_POLICY.fold_binary(name, header)


def _part_head(subtype: str) -> bytes:
    return (
        f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    ).encode("ascii")


def _qp(text: str) -> bytes:
    # The C encoder; the email package's own is pure Python and the slowest step of a send.
    return binascii.b2a_qp(text.encode("utf-8"), istext=True).replace(b"\n", b"\r\n")


@dataclass(frozen=True)
class Letter:
    """One digest as a message template: the recipient's parts are placeholders."""

    from_: str
    subject: str
    html: str
    text: str
    list_id: str  # the full header value, `Name <list.id>`
    unsubscribe_url: str
    unsubscribe_mailto: str | None = None
    reply_to: str | None = None
    archive_url: str | None = None
    language: str | None = None

    def list_unsubscribe(self, token: str) -> str:
        urls = [self.unsubscribe_url]
        if self.unsubscribe_mailto:
            urls.append(self.unsubscribe_mailto)
        return ", ".join(f"<{u.replace(TOKEN_PLACEHOLDER, token)}>" for u in urls)

    @cached_property
    def _fixed(self) -> dict[str, bytes]:
        # The headers that are the same for every recipient, folded once.
        lines = {
            "From": _fold("From", self.from_),
            "Subject": _fold("Subject", self.subject),
            "List-Id": _fold("List-Id", self.list_id),
        }
        if self.reply_to:
            lines["Reply-To"] = _fold("Reply-To", self.reply_to)
        if self.archive_url:
            lines["List-Archive"] = _fold("List-Archive", f"<{self.archive_url}>")
        if self.language:
            lines["Content-Language"] = _fold("Content-Language", self.language)
        return lines

    def message(
        self,
        *,
        date: dt.datetime,
        message_id: str,
        to: str = UNDISCLOSED,
        address: str = ADDRESS_PLACEHOLDER,
        token: str = TOKEN_PLACEHOLDER,
        subject_prefix: str = "",
    ) -> bytes:
        """The complete message for one recipient (or, with the defaults, the artifact)."""
        fixed = self._fixed
        subject = (
            _fold("Subject", subject_prefix + self.subject) if subject_prefix else fixed["Subject"]
        )
        head = b"".join(
            (
                fixed["From"],
                fixed.get("Reply-To", b""),
                _fold("To", to),
                subject,
                _fold("Date", email.utils.format_datetime(date)),
                _fold("Message-ID", message_id),
                fixed["List-Id"],
                _fold("List-Unsubscribe", self.list_unsubscribe(token)),
                b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n",
                fixed.get("List-Archive", b""),
                fixed.get("Content-Language", b""),
                b"MIME-Version: 1.0\r\n",
                f'Content-Type: multipart/alternative; boundary="{BOUNDARY}"\r\n'.encode(),
            )
        )
        text = self.text.replace(TOKEN_PLACEHOLDER, token).replace(ADDRESS_PLACEHOLDER, address)
        body = self.html.replace(TOKEN_PLACEHOLDER, token).replace(
            ADDRESS_PLACEHOLDER, html.escape(address)
        )
        delimiter = f"--{BOUNDARY}".encode()
        return b"".join(
            (
                head,
                b"\r\n",
                delimiter,
                b"\r\n",
                _part_head("plain"),
                _qp(text),
                b"\r\n",
                delimiter,
                b"\r\n",
                _part_head("html"),
                _qp(body),
                b"\r\n",
                delimiter,
                b"--\r\n",
            )
        )

    @classmethod
    def from_eml(cls, data: bytes) -> Letter:
        """Read a `digest.eml` the email renderer wrote back into a Letter."""
        msg = BytesParser(policy=SMTP_POLICY).parsebytes(data)
        assert isinstance(msg, EmailMessage)
        parts: dict[str, str] = {}
        for part in msg.iter_parts():
            assert isinstance(part, EmailMessage)
            parts[part.get_content_subtype()] = str(part.get_content())
        # get_content() of a text part ends lines with the policy's CRLF; ours use LF.
        text = parts["plain"].replace("\r\n", "\n")
        body = parts["html"].replace("\r\n", "\n")
        urls = re.findall(r"<([^<>]+)>", str(msg["List-Unsubscribe"]))
        mailto = next((u for u in urls if u.startswith("mailto:")), None)
        https = next(u for u in urls if not u.startswith("mailto:"))
        archive = re.findall(r"<([^<>]+)>", str(msg.get("List-Archive", "")))
        return cls(
            from_=str(msg["From"]),
            subject=str(msg["Subject"]),
            html=body,
            text=text,
            list_id=str(msg["List-Id"]),
            unsubscribe_url=https,
            unsubscribe_mailto=mailto,
            reply_to=str(msg["Reply-To"]) if msg["Reply-To"] else None,
            archive_url=archive[0] if archive else None,
            language=str(msg["Content-Language"]) if msg["Content-Language"] else None,
        )
