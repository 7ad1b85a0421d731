"""The preview server's HTTP side: which requests it answers and how, for `preview.py`.

Beside the CLI at the end of the flow: `preview.start` builds a `Site` (the project, its
latest build, the approval call) and serves it with `PreviewServer`, whose `Handler` checks
every request first (loopback Host, the token when bound elsewhere, a bounded body with a
valid Content-Length) and then serves the built pages, the live status JSON, the review
assets or the approval POST. It takes a `Site` and returns HTTP responses; it holds no state
of its own.
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import mimetypes
import socket
from collections.abc import Mapping
from http import HTTPStatus
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from aspdigest.errors import UserError
from aspdigest.preview import (
    ASSETS,
    COOKIE,
    LOOPBACK,
    MAX_BODY,
    STATIC_MARK,
    TEXT_TYPES,
    Site,
)


class PreviewServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, site: Site) -> None:
        self.site = site
        host = site.config.host
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__((host, site.config.port), Handler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])


class Handler(BaseHTTPRequestHandler):
    server: PreviewServer
    server_version = "aspdigest-preview"
    sys_version = ""
    timeout = 30  # seconds of silence before a connection is dropped (a body that never comes)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # pages poll every second; the terminal shows rebuilds, not requests

    # -- checks -------------------------------------------------------------------------------

    def _allowed_host(self) -> bool:
        if self.server.site.config.token is not None:
            return True
        host = (self.headers.get("Host") or "").lower()
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        return name.strip("[]") in LOOPBACK

    def _token_ok(self, query: Mapping[str, list[str]]) -> bool | str:
        """True if the request carries the token; the token itself when given in the URL."""
        token = self.server.site.config.token
        if token is None:
            return True
        cookies = SimpleCookie(self.headers.get("Cookie") or "")
        if COOKIE in cookies and hmac.compare_digest(cookies[COOKIE].value, token):
            return True
        auth = self.headers.get("Authorization") or ""
        if auth.startswith("Bearer ") and hmac.compare_digest(auth[7:], token):
            return True
        given = query.get("token", [""])[0]
        if given and hmac.compare_digest(given, token):
            return given
        return False

    def _guard(self) -> bool:
        if not self._allowed_host():
            self._send(HTTPStatus.MISDIRECTED_REQUEST, b"unexpected Host header\n", "text/plain")
            return False
        parts = urlsplit(self.path)
        ok = self._token_ok(parse_qs(parts.query))
        if ok is False:
            self._send(
                HTTPStatus.UNAUTHORIZED,
                (
                    b"This preview needs its token: open the URL that `aspdigest preview` printed, "
                    b"or add ?token=... (ASPDIGEST_PREVIEW_TOKEN).\n"
                ),
                "text/plain",
            )
            return False
        if isinstance(ok, str):  # keep the token out of history and logs: cookie, then redirect
            self.send_response(HTTPStatus.SEE_OTHER)
            self.send_header("Set-Cookie", f"{COOKIE}={ok}; HttpOnly; SameSite=Strict; Path=/")
            self.send_header("Location", quote(parts.path) or "/")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return False
        return True

    # -- responses ----------------------------------------------------------------------------

    def _send(self, status: HTTPStatus, body: bytes, content_type: str, head: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _json(self, status: HTTPStatus, data: Any) -> None:
        self._send(
            status,
            json.dumps(data, ensure_ascii=False).encode("utf-8"),
            "application/json; charset=utf-8",
        )

    def do_HEAD(self) -> None:
        self.do_GET(head=True)

    def do_GET(self, head: bool = False) -> None:
        if not self._guard():
            return
        site = self.server.site
        path = unquote(urlsplit(self.path).path)
        if path == "/_version":
            with site.lock:
                self._json(HTTPStatus.OK, {"version": site.version, "ok": not site.errors})
            return
        if path == "/_status.json":
            self._status(parse_qs(urlsplit(self.path).query).get("date", [""])[0])
            return
        with site.lock:
            self._file(path, head)

    def _status(self, raw: str) -> None:
        try:
            date = dt.date.fromisoformat(raw) if raw else None
        except ValueError:
            self._json(
                HTTPStatus.BAD_REQUEST,
                {"errors": [f'date: expected a date like 2024-12-02, got "{raw}"']},
            )
            return
        self._json(HTTPStatus.OK, self.server.site.live_status(date))

    def _file(self, path: str, head: bool) -> None:
        site = self.server.site
        folder = site.event_dir
        if path.endswith("/"):
            path += "index.html"
        is_page = path.endswith("/index.html") or path == "/index.html"
        if site.errors and (is_page or folder is None or not folder.is_dir()):
            self._send(HTTPStatus.OK, site.error_page(), "text/html; charset=utf-8", head)
            return
        target = _inside(folder, path) if folder is not None else None
        if target is not None and target.is_dir():
            self.send_response(HTTPStatus.MOVED_PERMANENTLY)
            self.send_header("Location", quote(path) + "/")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if target is None or not target.is_file():
            if path in ASSETS:
                body = site.asset(path)
                if body is not None:
                    self._send(HTTPStatus.OK, body, _type(path), head)
                    return
            self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")
            return
        body = target.read_bytes()
        if target.suffix == ".html" and STATIC_MARK in body:
            body = body.replace(
                STATIC_MARK,
                (
                    f'<meta name="aspdigest-mode" content="served" data-version="{site.version}" '
                    f'data-csrf="{site.csrf}">'
                ).encode(),
                1,
            )
        self._send(HTTPStatus.OK, body, _type(path), head)

    def _body_length(self) -> int | None:
        """The request body's length, or None after answering a request whose length is bad.

        Checked before anything is read: int() alone lets "-1" through (and rfile.read(-1)
        reads until the client hangs up) and raises on "abc" with no answer at all.
        """
        values = self.headers.get_all("Content-Length") or []
        problem: tuple[HTTPStatus, str] | None = None
        if self.headers.get("Transfer-Encoding"):
            problem = (
                HTTPStatus.LENGTH_REQUIRED,
                "send the form with a Content-Length, not chunked",
            )
        elif not values:
            problem = (HTTPStatus.LENGTH_REQUIRED, "Content-Length is missing")
        elif len(set(v.strip() for v in values)) > 1:
            problem = (HTTPStatus.BAD_REQUEST, "conflicting Content-Length headers")
        else:
            given = values[0].strip()
            if not (given.isascii() and given.isdigit()):
                shown = given[:20].encode("ascii", "backslashreplace").decode()
                problem = (
                    HTTPStatus.BAD_REQUEST,
                    f'Content-Length must be a whole number of bytes, got "{shown}"',
                )
            elif int(given) > MAX_BODY:
                problem = (
                    HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                    f"request too large: {int(given)} bytes; at most {MAX_BODY}",
                )
            else:
                return int(given)
        # The body (if any) is left unread, so this connection cannot carry another request.
        self.close_connection = True
        self._json(problem[0], {"errors": [problem[1]]})
        return None

    def do_POST(self) -> None:
        if not self._guard():
            return
        if urlsplit(self.path).path != "/approve":
            self._json(HTTPStatus.NOT_FOUND, {"errors": ["not found"]})
            return
        site = self.server.site
        origin = self.headers.get("Origin")
        host = self.headers.get("Host") or ""
        if origin and urlsplit(origin).netloc != host:
            self._json(HTTPStatus.FORBIDDEN, {"errors": ["cross-site request refused"]})
            return
        length = self._body_length()
        if length is None:
            return
        try:
            raw = self.rfile.read(length).decode("utf-8", "replace")
        except TimeoutError:
            self.close_connection = True
            self._json(HTTPStatus.REQUEST_TIMEOUT, {"errors": ["the request body never arrived"]})
            return
        fields = {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}
        if not hmac.compare_digest(fields.get("csrf", ""), site.csrf):
            self._json(
                HTTPStatus.FORBIDDEN,
                {"errors": ["this form is not from the page the preview served; reload the page"]},
            )
            return
        try:
            result = site.approve(fields)
        except UserError as exc:
            self._json(HTTPStatus.CONFLICT, {"errors": exc.lines()})
            return
        self._json(HTTPStatus.OK, result)


def _inside(folder: Path, path: str) -> Path | None:
    """The file a URL path names under folder, or None if it would leave the folder."""
    relative = path.lstrip("/")
    if "\x00" in relative:
        return None
    root = folder.resolve()
    target = (root / relative).resolve()
    if target != root and root not in target.parents:
        return None
    return target


def _type(path: str) -> str:
    suffix = Path(path).suffix.lower()
    kind = TEXT_TYPES.get(suffix) or mimetypes.guess_type(path)[0] or "application/octet-stream"
    return (
        f"{kind}; charset=utf-8"
        if kind.startswith("text/") or kind.endswith(("json", "xml"))
        else kind
    )
