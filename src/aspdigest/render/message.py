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

Every header is built from its parts and no header value is ever parsed for RFC 2047
encoded words: the policy decodes them while folding, which let `=0D=0A` in a day title
write a second List-Unsubscribe into every message (issue 19). Text holding "=?" is
encoded here as a whole, so a mail program shows it as written; a value with a control
character or line break raises `UnsafeHeader`; a recipient's unsafe display name is left
out (the message still goes); `from_eml` refuses any header block but the one written.
"""

from __future__ import annotations

import binascii
import collections
import datetime as dt
import email.errors
import email.policy
import email.utils
import html
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesParser
from functools import cached_property

from aspdigest.errors import Problem, UserError
from aspdigest.safetext import decode_encoded_words, line_problem, text_problem

log = logging.getLogger(__name__)

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
_NOT_IN_ADDRESS = re.compile(r'[\s<>()",;\\]|=\?')


class UnsafeHeader(ValueError):
    """A header value that would not stay one header as written: raised, never written."""

    def __init__(self, header: str, problem: str) -> None:
        super().__init__(f"{header}: {problem}")
        self.header = header
        self.problem = problem


def _check(name: str, value: str) -> None:
    problem = line_problem(value)
    if problem:
        raise UnsafeHeader(name, problem)


def _fold(name: str, value: str) -> bytes:
    """One header as the SMTP policy writes it (CRLF, encoded words for non-ASCII text).

    Only for a value without "=?": the policy parses the value it folds, and would decode
    an encoded word in it, CR LF and all, into the message (issue 19). Text that holds
    "=?" goes through `_text` or `_mailboxes`, which encode it themselves.
    """
    _check(name, value)
    if name in _VERBATIM and value.isascii() and len(name) + len(value) + 2 <= 998:
        return f"{name}: {value}\r\n".encode("ascii")
    if "=?" in value:
        raise UnsafeHeader(
            name, 'contains "=?", which a mail program would read as an encoded word'
        )
    header = SMTP_POLICY.header_store_parse(name, value)[1]
    return SMTP_POLICY.fold_binary(name, header)


MAX_LINE = 78  # RFC 5322 2.1.1: lines SHOULD be at most 78 characters, CRLF excluded
MAX_WORD = 75  # RFC 2047 2: an encoded word is at most 75 characters
_Q_LITERAL = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!*+-/")


def _q(chars: str) -> str:
    return "".join(
        "_" if b == 0x20 else chr(b) if b in _Q_LITERAL else f"={b:02X}"
        for b in chars.encode("utf-8")
    )


def _b(chars: str) -> str:
    return binascii.b2a_base64(chars.encode("utf-8"), newline=False).decode("ascii")


def encoded_words(text: str, limit: int = MAX_WORD) -> list[str]:
    """`text` as UTF-8 encoded words of at most 75 characters each, split between code
    points; Q or B, whichever is shorter for the whole text. Decoders join adjacent encoded
    words and drop the white space between them, so the text comes back as written."""
    encode, tag = (_q, "Q") if len(_q(text)) <= len(_b(text)) else (_b, "B")
    room = min(limit, MAX_WORD) - len(f"=?utf-8?{tag}??=")
    words: list[str] = []
    chunk = ""
    for char in text:
        if chunk and len(encode(chunk + char)) > room:
            # Cut after a space where there is one: some decoders (Python's, in a phrase)
            # keep the white space between two encoded words, which must then fall between
            # two words of the text, not inside one.
            cut = chunk.rfind(" ") + 1 or len(chunk)
            words.append(f"=?utf-8?{tag}?{encode(chunk[:cut])}?=")
            chunk = chunk[cut:]
        chunk += char
    if chunk:
        words.append(f"=?utf-8?{tag}?{encode(chunk)}?=")
    return words


def _plain(word: str) -> bool:
    # A word a mail program shows as it is: printable ASCII that cannot open an encoded word.
    return word.isascii() and word.isprintable() and "=?" not in word


_ATOM = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+$")


def _atom(word: str) -> bool:
    # A word a phrase (display name) may hold as it is (RFC 5322 atext).
    return bool(_ATOM.match(word)) and "=?" not in word


def _tokens(value: str, plain: Callable[[str], bool], limit: int) -> list[str]:
    """`value` as header tokens: `plain` words as they are, each run of other words with
    the spaces inside it as encoded words. Spacing that folding could not keep (leading,
    trailing or double spaces, tabs) is encoded whole, so it comes back as written."""
    if not value:
        return []
    if value != " ".join(value.split()):
        return encoded_words(value, limit)
    tokens: list[str] = []
    run: list[str] = []
    for word in [*value.split(" "), ""]:
        if word and not plain(word):
            run.append(word)
            continue
        if run:
            tokens += encoded_words(" ".join(run), limit)
            run = []
        if word:
            tokens.append(word)
    return tokens


def _room(name: str) -> int:
    # The longest encoded word that still fits on the header's first line.
    return MAX_LINE - len(name) - 2


def _layout(name: str, tokens: list[str]) -> list[str]:
    """Tokens on lines of at most 78 characters, folded at the spaces between them."""
    lines = [f"{name}:"]
    for token in tokens:
        if len(lines[-1]) + 1 + len(token) > MAX_LINE and lines[-1] != f"{name}:":
            lines.append("")
        lines[-1] += " " + token
    return lines


def unstructured(name: str, value: str) -> bytes:
    """An unstructured header (Subject) built from its words, never parsed for encoded words.

    Printable ASCII words stay as they are; each run of other words (non-ASCII, or holding
    "=?"), with the spaces inside it, becomes encoded words of at most 75 characters; lines
    are folded at spaces to at most 78 characters where the words allow.
    """
    _check(name, value)
    return ("\r\n".join(_layout(name, _tokens(value, _plain, _room(name)))) + "\r\n").encode(
        "ascii"
    )


def _urls(name: str, value: str) -> bytes:
    """`<url>, <url>` (List-Unsubscribe), folded after a comma: URLs are never encoded or
    broken (RFC 2369), and the policy's folding would make one an encoded word."""
    _check(name, value)
    if "=?" in value or not value.isascii():
        raise UnsafeHeader(name, 'a URL must be ASCII and hold no "=?"')
    return ("\r\n".join(_layout(name, value.split(" "))) + "\r\n").encode("ascii")


def _text(name: str, value: str) -> bytes:
    """An unstructured header (Subject) whose value is never read for encoded words."""
    return unstructured(name, value)


def _named(name: str, mailboxes: list[tuple[str, str]]) -> bytes:
    """`phrase <address>, …` built from its parts, each phrase as encoded words."""
    tokens: list[str] = []
    for phrase, address in mailboxes:
        _check(name, phrase)
        if not address or _NOT_IN_ADDRESS.search(address):
            raise UnsafeHeader(name, f'"{address}" is not an address')
        if tokens:
            tokens[-1] += ","
        tokens += [*_tokens(phrase, _atom, _room(name)), f"<{address}>"]
    if not tokens:
        raise UnsafeHeader(name, "holds no address")
    return ("\r\n".join(_layout(name, tokens)) + "\r\n").encode("ascii")


def _mailboxes(name: str, value: str) -> bytes:
    """From, Reply-To, List-Id: `Name <address>` as configured; a name holding "=?" is
    taken apart (the legacy parser does not decode) and built by `_named`."""
    _check(name, value)
    if "=?" not in value and value.isascii():
        return _fold(name, value)
    return _named(name, email.utils.getaddresses([value]))


_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_SIMPLE_NAME = re.compile(rf"(?!.*=\?){_ATEXT}+(?: {_ATEXT}+)*\Z")
_SIMPLE_ADDRESS = re.compile(
    rf"(?!.*=\?){_ATEXT}+(?:\.{_ATEXT}+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\Z"
)


def recipient_header(address: str, name: str | None) -> bytes:
    """The To header for one recipient; an unsafe display name is left out, never the send.

    Names come from the store, where a row written before names were checked (or by
    another program) may still hold a line break or an encoded word that decodes to one.
    """
    if name:
        problem = text_problem(name, single_line=True)
        if problem:
            log.warning("%s: display name left out of the To header: %s", address, problem)
            name = None
    if not name:
        return _fold("To", address)
    if _SIMPLE_NAME.match(name) and _SIMPLE_ADDRESS.match(address) and len(name + address) < 990:
        # What the policy writes for these anyway, without parsing the header back (the
        # slowest step of a send; tests/test_email_render.py checks they agree).
        return f"To: {name} <{address}>\r\n".encode("ascii")
    _check("To", address)
    if "=?" in name or "=?" in address or not name.isascii():
        return _named("To", [(name, address)])
    try:
        value = str(Address(display_name=name, addr_spec=address))
    except (ValueError, IndexError, email.errors.HeaderParseError):
        raise UnsafeHeader("To", f'"{address}" is not an address') from None
    return _fold("To", value)


def _part_head(subtype: str) -> bytes:
    return (
        f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    ).encode("ascii")


def _qp(text: str) -> bytes:
    # The C encoder; the email package's own is pure Python and the slowest step of a send.
    return binascii.b2a_qp(text.encode("utf-8"), istext=True).replace(b"\n", b"\r\n")


_PLACEHOLDERS = re.compile(f"({re.escape(TOKEN_PLACEHOLDER)}|{re.escape(ADDRESS_PLACEHOLDER)})")
_SOFT_BREAK = b"=\r\n"
# Encoded once: bytes as they are; (placeholder, what follows its value) per recipient.
Pieces = tuple[bytes | tuple[str, bytes], ...]


def _qp_pieces(text: str) -> Pieces:
    """`text` quoted-printable encoded once, in the pieces between its placeholders, for
    `_personal_qp` to join with each recipient's encoded address and token. A placeholder
    stands between soft line breaks, so what surrounds it need not be encoded again per
    recipient (the HTML is one 17,000-character line): the decoded text is the same as
    encoding the whole, and no line is over 76 characters (tests/test_email_render.py)."""
    pieces: list[bytes | tuple[str, bytes]] = []
    run: list[str] = []  # lines without a placeholder, encoded together
    lines = text.split("\n")  # not splitlines(): b2a_qp breaks lines at LF only
    for line in [*(f"{line}\n" for line in lines[:-1]), *lines[-1:]]:
        if not _PLACEHOLDERS.search(line):
            run.append(line)
            continue
        if run:
            pieces.append(_qp("".join(run)))
            run = []
        parts = [(n % 2 == 1, p) for n, p in enumerate(_PLACEHOLDERS.split(line)) if p]
        for n, (placeholder, part) in enumerate(parts):
            after = _SOFT_BREAK if n + 1 < len(parts) else b""
            pieces.append((part, after) if placeholder else _qp(part) + after)
    if run:
        pieces.append(_qp("".join(run)))
    return tuple(pieces)


def _personal_qp(pieces: Pieces, token: str, address: str) -> bytes:
    values = {TOKEN_PLACEHOLDER: _qp(token), ADDRESS_PLACEHOLDER: _qp(address)}
    return b"".join(
        piece if isinstance(piece, bytes) else values[piece[0]] + piece[1] for piece in pieces
    )


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
            "From": _mailboxes("From", self.from_),
            "Subject": _text("Subject", self.subject),
            "List-Id": _mailboxes("List-Id", self.list_id),
        }
        if self.reply_to:
            lines["Reply-To"] = _mailboxes("Reply-To", self.reply_to)
        if self.archive_url:
            lines["List-Archive"] = _fold("List-Archive", f"<{self.archive_url}>")
        if self.language:
            lines["Content-Language"] = _fold("Content-Language", self.language)
        return lines

    @cached_property
    def _text_pieces(self) -> Pieces:
        return _qp_pieces(self.text)

    @cached_property
    def _html_pieces(self) -> Pieces:
        return _qp_pieces(self.html)

    def message(
        self,
        *,
        date: dt.datetime,
        message_id: str,
        to: str = UNDISCLOSED,
        name: str | None = None,
        address: str = ADDRESS_PLACEHOLDER,
        token: str = TOKEN_PLACEHOLDER,
        subject_prefix: str = "",
    ) -> bytes:
        """The complete message for one recipient (or, with the defaults, the artifact).

        `to` is the recipient's address and `name` their display name, if any; every header
        is built from its parts, and a value that cannot be written safely raises
        `UnsafeHeader` (an unsafe display name is only left out, see `recipient_header`).
        """
        fixed = self._fixed
        subject = (
            _text("Subject", subject_prefix + self.subject) if subject_prefix else fixed["Subject"]
        )
        head = b"".join(
            (
                fixed["From"],
                fixed.get("Reply-To", b""),
                recipient_header(to, name),
                subject,
                _fold("Date", email.utils.format_datetime(date)),
                _fold("Message-ID", message_id),
                fixed["List-Id"],
                _urls("List-Unsubscribe", self.list_unsubscribe(token)),
                b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n",
                fixed.get("List-Archive", b""),
                fixed.get("Content-Language", b""),
                b"MIME-Version: 1.0\r\n",
                f'Content-Type: multipart/alternative; boundary="{BOUNDARY}"\r\n'.encode(),
            )
        )
        text = _personal_qp(self._text_pieces, token, address)
        body = _personal_qp(self._html_pieces, token, html.escape(address))
        delimiter = f"--{BOUNDARY}".encode()
        return b"".join(
            (
                head,
                b"\r\n",
                delimiter,
                b"\r\n",
                _part_head("plain"),
                text,
                b"\r\n",
                delimiter,
                b"\r\n",
                _part_head("html"),
                body,
                b"\r\n",
                delimiter,
                b"--\r\n",
            )
        )

    @classmethod
    def from_eml(cls, data: bytes, source: str = "digest.eml") -> Letter:
        """Read a `digest.eml` the email renderer wrote back into a Letter.

        Refused (a UserError naming each problem) unless it has exactly the headers and
        parts the renderer writes, once each, with values that fit on one header line once
        decoded: a digest built before issue 19 could carry a second List-Unsubscribe or
        an early blank line that an encoded word in a day title put there.
        """
        msg = BytesParser(policy=SMTP_POLICY).parsebytes(data)
        assert isinstance(msg, EmailMessage)
        problems = _head_problems(msg)
        parts: dict[str, str] = {}
        if msg.get_content_type() == "multipart/alternative" and msg.is_multipart():
            for part in msg.iter_parts():
                assert isinstance(part, EmailMessage)
                parts[part.get_content_type()] = str(part.get_content())
        if sorted(parts) != ["text/html", "text/plain"] or len(msg.get_payload()) != 2:
            found = ", ".join(sorted(parts)) or msg.get_content_type()
            problems.append(("body", f"expected a text/plain and a text/html part, found {found}"))
        urls = re.findall(r"<([^<>]+)>", str(msg.get("List-Unsubscribe", "")))
        https = next((u for u in urls if not u.startswith("mailto:")), None)
        if https is None and msg.get("List-Unsubscribe") is not None:
            problems.append(("List-Unsubscribe", "no https URL"))
        if problems or https is None:
            fix = "; rebuild it with `aspdigest build`"
            raise UserError([Problem(source, field, message + fix) for field, message in problems])
        # get_content() of a text part ends lines with the policy's CRLF; ours use LF.
        text = parts["text/plain"].replace("\r\n", "\n")
        body = parts["text/html"].replace("\r\n", "\n")
        mailto = next((u for u in urls if u.startswith("mailto:")), None)
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


# What `Letter.message` writes: each of these once, and nothing else.
_REQUIRED = (
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "MIME-Version",
    "Content-Type",
)
_OPTIONAL = ("Reply-To", "List-Archive", "Content-Language")
_FOLD = re.compile(r"\r?\n(?=[ \t])")


def _head_problems(msg: EmailMessage) -> list[tuple[str, str]]:
    known = {name.lower(): name for name in _REQUIRED + _OPTIONAL}
    counts = collections.Counter(name.lower() for name in msg)
    spelt = {name.lower(): name for name in reversed(msg.keys())}
    problems = []
    for lower, count in counts.items():
        if lower not in known:
            problems.append((spelt[lower], "not a header aspdigest writes"))
        elif count > 1:
            problems.append((known[lower], f"{count} headers where a digest has one"))
    problems.extend((name, "missing") for name in _REQUIRED if name.lower() not in counts)
    # Read raw (parsing an address header with a decoded CR LF in it raises ValueError).
    for name, raw in msg.raw_items():
        problem = line_problem(decode_encoded_words(_FOLD.sub("", str(raw))))
        if problem:
            problems.append((name, problem))
    return problems
