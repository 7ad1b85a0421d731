"""SMTP transport: one reused connection that reports, per message, what the server did.

Deliver stage. `smtp_target(environ)` reads ASPDIGEST_SMTP_URL (smtp://user@host:port
with STARTTLS whenever the server offers it, smtps:// for implicit TLS) and the password
(ASPDIGEST_SMTP_PASSWORD, or inside the URL) into a frozen `SmtpTarget`, whose `safe`
form is the only one any message ever shows. `SmtpSession.send(sender, recipient, data)`
returns a frozen `Reply`: sent, temporary (4xx), permanent (5xx), retry (the connection
dropped before the server could have accepted the message, so sending again is safe) or
unknown (it dropped while we waited for the final reply: the message may have arrived).

Why the steps of smtplib's `sendmail` are taken one by one: only then do we know whether
a dropped connection happened before or after the end of the message, which decides
between resending and asking a person.
"""

from __future__ import annotations

import ipaddress
import re
import select
import smtplib
import socket
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import unquote, urlsplit

from aspdigest.config import secret
from aspdigest.errors import UserError

URL_VARIABLE = "ASPDIGEST_SMTP_URL"
PASSWORD_VARIABLE = "ASPDIGEST_SMTP_PASSWORD"
DEFAULT_PORTS = {"smtp": 587, "smtps": 465}

Status = Literal["sent", "temporary", "permanent", "retry", "unknown"]


@dataclass(frozen=True)
class SmtpTarget:
    scheme: str
    host: str
    port: int
    user: str | None
    password: str | None = field(default=None, repr=False)

    @property
    def safe(self) -> str:
        """The URL as messages may show it: never with the password."""
        user = f"{self.user}@" if self.user else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{user}{host}:{self.port}"


@dataclass(frozen=True)
class Reply:
    status: Status
    code: int | None = None
    text: str = ""

    def describe(self) -> str:
        return f"{self.code} {self.text}".strip() if self.code else self.text


class SmtpUnavailable(UserError):
    """The server could not be reached (or logged in to) after every retry."""


def parse_smtp_url(url: str, password: str | None = None) -> SmtpTarget:
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    shown = f"{scheme}://{parts.hostname or ''}" if parts.hostname else "the value"
    if scheme not in DEFAULT_PORTS:
        raise UserError(
            f"{URL_VARIABLE}: expected smtp://user@host:port (STARTTLS) or "
            f"smtps://user@host:port (TLS), got {shown}"
        )
    if not parts.hostname:
        raise UserError(f"{URL_VARIABLE}: no host name in {scheme}://…")
    try:
        port = parts.port or DEFAULT_PORTS[scheme]
    except ValueError:
        raise UserError(f"{URL_VARIABLE}: the port is not a number") from None
    user = unquote(parts.username) if parts.username else None
    in_url = unquote(parts.password) if parts.password else None
    return SmtpTarget(scheme, parts.hostname, port, user, password or in_url)


def smtp_target(environ: Mapping[str, str] | None = None) -> SmtpTarget:
    url = secret(URL_VARIABLE, environ)
    if url is None:
        raise UserError(
            f"{URL_VARIABLE}: not set; set it to smtp://user@host:587 (STARTTLS) "
            f"or smtps://user@host:465, and the password in {PASSWORD_VARIABLE}"
        )
    return parse_smtp_url(url, secret(PASSWORD_VARIABLE, environ))


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _classify(code: int, text: bytes | str) -> Reply:
    message = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    message = " ".join(message.split())
    if 200 <= code < 300:
        return Reply("sent", code, message)
    if code == 421:  # the server is closing the connection: nothing was accepted
        return Reply("retry", code, message)
    if 400 <= code < 500:
        return Reply("temporary", code, message)
    return Reply("permanent", code, message)


def _peer_spoke(sock: socket.socket) -> bool:
    """Whether anything came from the server since our last read: its close (EOF or a
    reset) or an early reply. During DATA the server says nothing until the final dot, so
    either means it gave up on the message. Looks without waiting."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    if not readable:
        return False
    timeout = sock.gettimeout()
    sock.settimeout(0.0)
    try:
        if isinstance(sock, ssl.SSLSocket):
            # No peeking through TLS; a byte taken from an early reply does not matter, as
            # the connection is dropped whenever anything real arrived.
            sock.recv(1)
        else:
            sock.recv(1, socket.MSG_PEEK)
        return True  # data or EOF (b"")
    except (ssl.SSLWantReadError, BlockingIOError):
        return False  # only TLS bookkeeping (e.g. a session ticket) was waiting
    except OSError:
        return True  # reset
    finally:
        sock.settimeout(timeout)


def _wire_body(data: bytes, *, crlf: bool = False) -> bytes:
    """The message as DATA carries it: CRLF lines and leading dots doubled; the final
    ".\r\n" is `SmtpSession.end`'s. `crlf`: the caller vouches that every line already ends
    in CRLF (no lone CR or LF), and the check is skipped."""
    if not crlf:
        pairs = data.count(b"\r\n")
        if data.count(b"\n") != pairs or data.count(b"\r") != pairs:
            data = re.sub(rb"\r\n|\r|\n", b"\r\n", data)
    # (Counting is ten times cheaper than the substitution, which was a tenth of a send's
    # time; for a 27 KB digest it is still 40 of the 60 µs this takes, hence `crlf`.)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    if data.startswith(b"."):
        data = b"." + data
    return data.replace(b"\r\n.", b"\r\n..")


_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+\Z")


def _quoted(address: str) -> str:
    """`<address>` as smtplib's `quoteaddr` writes it, without its address parser (a
    tenth of a message's time) for the plain addresses a subscriber list holds."""
    return f"<{address}>" if _PLAIN_ADDRESS.match(address) else smtplib.quoteaddr(address)


class SmtpSession:
    """One SMTP connection, opened on first use and reopened after a drop."""

    def __init__(
        self,
        target: SmtpTarget,
        *,
        timeout: float = 30.0,
        connect_attempts: int = 3,
        backoff: float = 1.0,
    ) -> None:
        self.target = target
        self.timeout = timeout
        self.connect_attempts = connect_attempts
        self.backoff = backoff
        self.connections = 0  # how many times we connected, for reports and tests
        self._conn: smtplib.SMTP | None = None

    def __enter__(self) -> SmtpSession:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.quit()
            except (smtplib.SMTPException, OSError):
                conn.close()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _open(self) -> smtplib.SMTP:
        t = self.target
        name = socket.gethostname() or "localhost"
        conn: smtplib.SMTP
        # A TLS context only for a connection that encrypts: loading the system's CA
        # certificates takes ~20 ms of CPU, for each connection to a local relay that
        # offers no STARTTLS as much as sending 40 messages.
        if t.scheme == "smtps":
            conn = smtplib.SMTP_SSL(
                t.host,
                t.port,
                local_hostname=name,
                timeout=self.timeout,
                context=ssl.create_default_context(),
            )
        else:
            conn = smtplib.SMTP(t.host, t.port, local_hostname=name, timeout=self.timeout)
        try:
            if conn.sock is not None:
                # The end-of-data marker goes in its own small write (see send); without
                # NODELAY, Nagle's algorithm holds it back until the server's delayed ACK.
                conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn.ehlo()
            encrypted = t.scheme == "smtps"
            if not encrypted and conn.has_extn("starttls"):
                conn.starttls(context=ssl.create_default_context())
                conn.ehlo()
                encrypted = True
            if t.user:
                peer = conn.sock.getpeername()[0] if conn.sock is not None else t.host
                if not encrypted and not _is_loopback(str(peer)):
                    raise SmtpUnavailable(
                        f"{t.safe}: the server offers no STARTTLS; refusing to "
                        "send the password unencrypted (use smtps://)"
                    )
                conn.login(t.user, t.password or "")
        except BaseException:
            conn.close()
            raise
        return conn

    def connection(self) -> smtplib.SMTP:
        if self._conn is not None:
            return self._conn
        last = ""
        for attempt in range(self.connect_attempts):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                self._conn = self._open()
                self.connections += 1
                return self._conn
            except smtplib.SMTPAuthenticationError as exc:
                raise SmtpUnavailable(
                    f"{self.target.safe}: login refused: "
                    f"{_classify(exc.smtp_code, exc.smtp_error).describe()}"
                ) from None
            except ssl.SSLError as exc:
                last = f"TLS failed: {exc.reason or exc}"
            except (smtplib.SMTPException, OSError) as exc:
                last = str(exc) or type(exc).__name__
        raise SmtpUnavailable(
            f"{self.target.safe}: cannot connect after {self.connect_attempts} attempts: {last}"
        )

    def send(self, sender: str, recipient: str, data: bytes) -> Reply:
        """Hand one message to the server and say what became of it."""
        refused = self.begin(sender, recipient, data)
        return refused if refused is not None else self.end()

    def begin(
        self, sender: str, recipient: str, data: bytes, *, crlf: bool = False
    ) -> Reply | None:
        """Everything of one message but its final dot: MAIL, RCPT, DATA (in one write when
        the server offers PIPELINING) and the message itself. None when the server now
        waits for the dot, which `end()` sends (or `abandon()` withholds); otherwise the
        Reply that stopped it, and the server cannot have taken the message.

        Split from `end` so a sender can record, durably, that the message is on its way
        right before the one write after which nobody can know whether it arrived. `crlf`:
        every line of `data` ends in CRLF already (see `_wire_body`)."""
        conn = self.connection()
        options: list[str] = []
        if not (sender + recipient).isascii():
            if not conn.has_extn("smtputf8"):
                return Reply(
                    "permanent",
                    None,
                    "the address is not ASCII and the server does not offer SMTPUTF8",
                )
            options.append("SMTPUTF8")
        try:
            if not options and conn.has_extn("pipelining"):
                refused = self._pipelined(conn, sender, recipient)
            else:
                refused = self._stepwise(conn, sender, recipient, options)
            if refused is not None:
                return refused
            sock = conn.sock
            if sock is None:
                raise smtplib.SMTPServerDisconnected("connection closed")
            # Everything but the final ".\r\n": until that is sent the server cannot have
            # taken the message, so a drop before it is safe to retry.
            sock.sendall(_wire_body(data, crlf=crlf))
            if _peer_spoke(sock):
                # A server that closed (or answered) before the end of the message has not
                # taken it; the kernel would still accept our final dot into its buffer,
                # and the drop would then look like one after the end.
                raise smtplib.SMTPServerDisconnected("closed by the server during DATA")
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            self._drop()
            return Reply("retry", None, f"connection lost: {exc or type(exc).__name__}")
        return None

    def end(self) -> Reply:
        """Send the final dot of the message `begin` left open and read the server's verdict.
        A drop from here on is `unknown`: the message may have been taken."""
        conn = self._conn
        try:
            if conn is None or conn.sock is None:
                raise smtplib.SMTPServerDisconnected("connection closed")
            conn.sock.sendall(b".\r\n")
            code, text = conn.getreply()
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            self._drop()
            return Reply("unknown", None, f"connection lost: {exc or type(exc).__name__}")
        reply = _classify(code, text)
        if reply.status == "retry":
            self._drop()
        return reply

    def abandon(self) -> None:
        """Withhold the final dot of the message `begin` left open: the connection is
        dropped (SMTP has no other way out of DATA), so the server discards the message."""
        self._drop()

    def _stepwise(
        self, conn: smtplib.SMTP, sender: str, recipient: str, options: list[str]
    ) -> Reply | None:
        code, text = conn.mail(sender, options)
        if code != 250:
            return self._refused(conn, code, text)
        code, text = conn.rcpt(recipient)
        if code not in (250, 251):
            return self._refused(conn, code, text)
        code, text = conn.docmd("data")
        if code != 354:
            return self._refused(conn, code, text)
        return None

    def _pipelined(self, conn: smtplib.SMTP, sender: str, recipient: str) -> Reply | None:
        # RFC 2920: MAIL, RCPT and DATA in one write, then their three replies in order; a
        # round trip per command is most of a small message's time on a near server.
        conn.send(f"mail FROM:{_quoted(sender)}\r\nrcpt TO:{_quoted(recipient)}\r\ndata\r\n")
        replies = [conn.getreply() for _ in range(3)]
        (mail, mail_text), (rcpt, rcpt_text), (data, data_text) = replies
        if mail == 250 and rcpt in (250, 251) and data == 354:
            return None
        code, text = next(
            (code, text)
            for code, text, ok in (
                (mail, mail_text, mail == 250),
                (rcpt, rcpt_text, rcpt in (250, 251)),
                (data, data_text, False),
            )
            if not ok
        )
        if data == 354:
            # DATA taken although MAIL or RCPT was refused (a server that should not): only
            # a dropped connection ends it without a message.
            self._drop()
            return _classify(code, text)
        return self._refused(conn, code, text)

    def _refused(self, conn: smtplib.SMTP, code: int, text: bytes) -> Reply:
        reply = _classify(code, text)
        if reply.status == "retry":
            self._drop()
            return reply
        try:
            conn.rset()
        except (smtplib.SMTPException, OSError):
            self._drop()
        return reply
