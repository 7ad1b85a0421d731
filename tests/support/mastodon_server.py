"""A local Mastodon API server for the publisher's tests, written from docs.joinmastodon.org.

Test support for `deliver.mastodon`. `running_mastodon(**options)` starts a stdlib
ThreadingHTTPServer on 127.0.0.1 (a free port, in a thread) and yields the `FakeMastodon`
behind it (tests/support/mastodon_fake.py: `.url`, `.token`, the statuses, media and every request
seen, and the faults to inject). It serves exactly what the publisher calls and the tests
read back: GET /api/v1/instance and /api/v2/instance, GET
/api/v1/accounts/verify_credentials, POST /api/v2/media (multipart; 202 with url null, then
GET /api/v1/media/:id answers 206 while processing, 200 when done), POST /api/v1/statuses
(form or JSON, with Idempotency-Key), GET /api/v1/statuses/:id, /:id/source and /:id/context,
DELETE /api/v1/statuses/:id, GET /api/v1/accounts/:id/statuses. Errors are JSON `{"error": …}` as Mastodon sends them; a 429
carries X-RateLimit-Limit/Remaining/Reset (an ISO 8601 time) and the Date header comes
from the fake's clock, so a test can fix both. A status post may be delayed (half before the
status is made, half after) or answered by closing the connection; between the halves
the fake's lock is released, so on a profile that checks the Idempotency-Key before the
save without a lock (4.3, 4.5) a resend can race the original as it does upstream.
"""

from __future__ import annotations

import email.utils
import json
import re
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from email import policy
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from support.mastodon_fake import (
    PROFILES,
    Account,
    Answer,
    FakeMastodon,
    Form,
    Pending,
    Seen,
    Status,
    error,
)

__all__ = ["PROFILES", "FakeMastodon", "Seen", "Status", "running_mastodon"]


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive, as Mastodon.py's requests.Session expects

    def setup(self) -> None:
        super().setup()
        # headers and body go out in two writes; without this each answer waits ~40 ms
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def date_time_string(self, timestamp: float | None = None) -> str:
        return email.utils.format_datetime(self.server.fake.stamp(), usegmt=True)

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def do_DELETE(self) -> None:
        self._route("DELETE")

    def _send(self, answer: Answer, headers: dict[str, str] | None = None) -> None:
        code, body, extra = answer
        data = json.dumps(body).encode("utf-8")
        self.send_response(code)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in {**(headers or {}), **extra}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _read(self) -> tuple[Form, str | None]:
        """The form (urlencoded, JSON or multipart) and the uploaded file's name, if any."""
        size = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(size) if size else b""
        kind = self.headers.get("Content-Type", "")
        if kind.startswith("application/json"):
            raw = json.loads(body or b"{}")
            return {
                k: [str(x) for x in v] if isinstance(v, list) else [str(v)]
                for k, v in raw.items()
                if v is not None
            }, None
        if not kind.startswith("multipart/form-data"):
            return parse_qs(body.decode("utf-8"), keep_blank_values=True), None
        msg = BytesParser(policy=policy.HTTP).parsebytes(
            b"Content-Type: " + kind.encode() + b"\r\n\r\n" + body
        )
        form: Form = {}
        file_name = None
        for part in msg.iter_parts():
            name = str(part.get_param("name", header="content-disposition"))
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            if part.get_filename():
                file_name = str(part.get_filename()) if name == "file" else file_name
            else:
                form.setdefault(name, []).append(payload.decode("utf-8"))
        return form, file_name

    def _route(self, method: str) -> None:
        fake = self.server.fake
        parts = urlsplit(self.path)
        path = parts.path.rstrip("/") or "/"  # Mastodon.py asks for /api/v1/instance/
        form, file_name = self._read()
        if method == "GET":
            form = {**parse_qs(parts.query), **form}
        headers = {k.lower(): v for k, v in self.headers.items()}
        with fake.lock:
            fake.seen.append(Seen(method, path, headers, form, time.monotonic()))
        if method == "GET" and (m := re.fullmatch(r"/api/v(1|2)/instance", path)):
            return self._send(fake.instance(int(m[1])))  # public: no token needed
        with fake.lock:
            who = fake.authenticate(self.headers.get("Authorization", ""))
        if not isinstance(who, Account):
            return self._send(who)
        limits = fake.limits()
        if method == "POST" and path == "/api/v1/statuses":
            return self._post_status(who, form, limits)
        with fake.lock:
            answer = self._answer(who, method, path, form, file_name)
        self._send(answer, limits)

    def _answer(
        self, who: Account, method: str, path: str, form: Form, file_name: str | None
    ) -> Answer:
        fake = self.server.fake
        if method == "DELETE":
            if m := re.fullmatch(r"/api/v1/statuses/(\d+)", path):
                return fake.delete_status(who, m[1])
            return error(404, "Record not found")
        if method == "POST":
            return (
                fake.upload(who, form, file_name)
                if path == "/api/v2/media"
                else error(404, "Record not found")
            )
        if path == "/api/v1/accounts/verify_credentials":
            return 200, fake.account_json(who, source=True), {}
        if m := re.fullmatch(r"/api/v1/media/(\w+)", path):
            return fake.get_media(who, m[1])
        if m := re.fullmatch(r"/api/v1/statuses/(\d+)", path):
            return fake.get_status(m[1])
        if m := re.fullmatch(r"/api/v1/statuses/(\d+)/source", path):
            return fake.source(who, m[1])
        if m := re.fullmatch(r"/api/v1/statuses/(\d+)/context", path):
            return fake.context(m[1])
        if m := re.fullmatch(r"/api/v1/accounts/(\w+)/statuses", path):
            return fake.account_statuses(m[1], form)
        return error(404, "Record not found")

    def _post_status(self, who: Account, form: Form, limits: dict[str, str]) -> None:
        fake = self.server.fake
        with fake.lock:
            fake.in_flight += 1
            delay = fake.status_delay() if fake.status_delay else 0.0
        try:
            # The key is checked as the request starts (4.3-4.5, upstream's order) and, on
            # 4.6, locked until the status is saved.
            with fake.lock:
                begun = fake.begin_status(who, form, self.headers.get("Idempotency-Key"))
            time.sleep(delay / 2)
            drop = False
            if isinstance(begun, Pending):
                with fake.lock:
                    answer, drop = fake.finish_status(begun)
            else:
                answer = begun
            time.sleep(delay / 2)
            if drop:  # the status is made; the client never hears so
                self.close_connection = True
                with suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)
                return
            self._send(answer, limits)
        finally:
            with fake.lock:
                fake.in_flight -= 1


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeMastodon

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client killed mid-request leaves a broken pipe behind: that is the test.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


@contextmanager
def running_mastodon(**options: Any) -> Iterator[FakeMastodon]:
    """A FakeMastodon (options: its fields, e.g. max_characters=100) served on 127.0.0.1."""
    fake = FakeMastodon(**options)
    server = _Server(("127.0.0.1", 0), _Handler)
    server.fake = fake
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
