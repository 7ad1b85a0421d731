"""What stands between the internet and the subscriber service's handlers.

Part of the subscriber service (`aspdigest.serve`): `app.py` wraps its routes in
`Guard`, one plain ASGI middleware that sets the security headers on every answer (a CSP
without script, no framing, the referrer only to the service itself: a token in the
URL must not leak to another site), refuses bodies over `MAX_BODY` bytes with 413, and writes one JSON access-log line
per request with every token in the path replaced by "…" (tokens are secrets). `Csrf`
makes and checks the double-submit token of the sign-up form; `RateLimit` counts
attempts per key in a sliding window.

The rate limits live in the memory of one worker process: with several workers each counts
its own share, so the effective limit is the limit times the workers.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import secrets
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY = 16 * 1024  # the largest form the service takes is a few hundred bytes
HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        b"frame-ancestors 'none'; base-uri 'none'",
    ),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
_TOKENISH = re.compile(r"[A-Za-z0-9_\-]{40,}")
access_log = logging.getLogger("aspdigest.serve.access")


def redact_path(path: str) -> str:
    """The path as the log shows it: anything long enough to be a token is "…"."""
    return _TOKENISH.sub("…", path)


class Guard:
    def __init__(self, app: ASGIApp, clock: Callable[[], float] = time.time) -> None:
        self.app = app
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY):
            await _plain(send, 413, b"request too large\n")
            self._log(scope, 413, started)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > MAX_BODY:
                    raise _TooLarge
            return message

        async def secured(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *[h for h in message.get("headers", []) if h[0] not in dict(HEADERS)],
                    *HEADERS,
                ]
            await send(message)

        try:
            await self.app(scope, limited, secured)
        except _TooLarge:
            if not status:
                await _plain(send, 413, b"request too large\n")
            status = 413
        finally:
            self._log(scope, status or 500, started)

    def _log(self, scope: Scope, status: int, started: float) -> None:
        client = scope.get("client")
        access_log.info(
            json.dumps(
                {
                    "at": round(self.clock(), 3),
                    "client": client[0] if client else None,
                    "method": scope.get("method"),
                    "path": redact_path(scope.get("path", "")),
                    "status": status,
                    "ms": round((time.perf_counter() - started) * 1000, 1),
                },
                separators=(",", ":"),
                ensure_ascii=False,
            )
        )


class _TooLarge(Exception):
    pass


async def _plain(send: Send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                *HEADERS,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class Csrf:
    """Double-submit token: a random nonce with its HMAC, in a cookie and in the form."""

    COOKIE = "aspdigest_csrf"

    def __init__(self, key: bytes) -> None:
        self.key = hashlib.sha256(b"aspdigest-csrf\0" + key).digest()

    def make(self) -> str:
        nonce = secrets.token_urlsafe(16)
        return f"{nonce}.{self._mac(nonce)}"

    def _mac(self, nonce: str) -> str:
        return hmac.new(self.key, nonce.encode(), hashlib.sha256).hexdigest()[:32]

    def check(self, cookie: str | None, field: str | None) -> bool:
        if not cookie or not field or not hmac.compare_digest(cookie, field):
            return False
        nonce, _, mac = field.partition(".")
        return hmac.compare_digest(mac, self._mac(nonce))


class RateLimit:
    """At most `limit` attempts per key within `window` seconds."""

    def __init__(self, limit: int, window: float, clock: Callable[[], float] = time.monotonic):
        self.limit, self.window, self.clock = limit, window, clock
        self.seen: dict[str, deque[float]] = defaultdict(deque)
        self.lock = threading.Lock()

    def allow(self, key: str) -> bool:
        now = self.clock()
        with self.lock:
            times = self.seen[key]
            while times and times[0] <= now - self.window:
                times.popleft()
            if len(times) >= self.limit:
                return False
            times.append(now)
            if len(self.seen) > 100_000:  # forget idle keys rather than grow without end
                for idle in [k for k, v in self.seen.items() if not v]:
                    del self.seen[idle]
            return True
