"""render/review.py, render/reviewviews.py and preview.py: the review site and its server.

Real builds of the sample project, real SQLite stores, a real HTTP server on 127.0.0.1.
The browser checks (layout, tabs, axe, screenshots) are in test_browser.py.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from markupsafe import escape

from aspdigest.build import build
from aspdigest.config import Project, load_project
from aspdigest.errors import UserError
from aspdigest.preview import Preview, PreviewConfig, choose_token, needs_token, start
from aspdigest.render.reviewviews import _href, segments
from aspdigest.store import open_project_store

DAYS = ["2024-12-02", "2024-12-03", "2024-12-04", "2024-12-05", "2024-12-06"]
PLATFORMS = ["x", "bluesky", "mastodon", "threads", "linkedin"]


def esc(text: str) -> str:
    """Text as the autoescaping templates write it."""
    return str(escape(text))


class _Links(HTMLParser):
    """Every URL a page loads (scripts, styles, images, frames) and every link it shows."""

    def __init__(self) -> None:
        super().__init__()
        self.loads: list[str] = []
        self.links: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        self.tags.append(tag)
        if tag in ("script", "img", "iframe") and values.get("src"):
            self.loads.append(values["src"] or "")
        if tag == "link" and values.get("href"):
            self.loads.append(values["href"] or "")
        if tag == "a" and values.get("href"):
            self.links.append(values["href"] or "")


def _parse(page: str) -> _Links:
    parser = _Links()
    parser.feed(page)
    return parser


@pytest.fixture
def built(built_sample: Path) -> Path:
    return built_sample / "out" / "asp23"


def test_index_lists_every_day_with_its_subject_and_size(built: Path) -> None:
    page = (built / "index.html").read_text(encoding="utf-8")
    links = _parse(page).links
    for key in DAYS:
        assert f"{key}/index.html" in links
    day = json.loads((built / "2024-12-03" / "manifest.json").read_text())
    subject = next(a["meta"]["subject"] for a in day["artifacts"] if a["path"] == "digest.html")
    assert esc(subject) in page
    assert "KB</span> of 102 KB" in page
    assert "Approval status is live in <code>aspdigest preview asp23</code>" in page
    manifest = json.loads((built / "manifest.json").read_text())
    paths = {a["path"] for a in manifest["artifacts"]}
    assert {
        "index.html",
        "_review/review.css",
        "_review/review.js",
        *(f"{d}/index.html" for d in DAYS),
    } <= paths


def test_day_page_shows_digest_threads_cards_and_warnings(built: Path) -> None:
    folder = built / "2024-12-03"
    page = (folder / "index.html").read_text(encoding="utf-8")
    manifest = json.loads((folder / "manifest.json").read_text())
    digest = next(a for a in manifest["artifacts"] if a["path"] == "digest.html")
    assert esc(digest["meta"]["subject"]) in page
    assert esc(digest["meta"]["preheader"]) in page
    assert f"({digest['bytes']} bytes; warning from 90 KB)" in page
    assert re.search(r'<iframe src="digest.html"[^>]* width="375"', page)
    assert re.search(r'<iframe src="digest.html"[^>]* width="600"', page)
    assert esc((folder / "digest.txt").read_text(encoding="utf-8")) in page
    for platform in PLATFORMS:
        data = json.loads((folder / f"thread.{platform}.json").read_text())
        panel = page.split(f'id="thread-{platform}"', 1)[1].split('role="tabpanel"', 1)[0]
        posts = len(data["posts"]) + sum(len(q["posts"]) for q in data["quote_posts"])
        assert panel.count('<li class="post') == posts
        first = data["posts"][0]
        assert f"<strong>{first['length']}</strong> / {data['limit']} {data['unit']}" in panel
    # A Bluesky post's link facet becomes a link to the full URL it stands for.
    assert 'href="https://example.org/digest/asp23/2024-12-03/"' in page
    assert '<span class="seg-tag">#ASP23</span>' in page
    cards = [a for a in manifest["artifacts"] if a["path"].startswith("cards/")]
    assert len(cards) == 12
    for card in cards:
        assert f'<img src="{card["path"]}" alt="{esc(card["alt"])}"' in page
    assert "Square, 1080×1080" in page and "Preview, 1200×630" in page
    for warning in manifest["warnings"]:
        assert f"<li>{esc(warning)}</li>" in page
    assert "post-over" not in page and "Over the limit" not in page


def test_static_site_loads_nothing_from_a_network_and_has_no_buttons(built: Path) -> None:
    for page_path in [built / "index.html", *(built / d / "index.html" for d in DAYS)]:
        page = page_path.read_text(encoding="utf-8")
        parsed = _parse(page)
        assert parsed.loads, page_path
        for url in parsed.loads:
            if url.startswith("data:"):
                continue
            assert "://" not in url and not url.startswith("//"), url
            assert (page_path.parent / url).resolve().is_file(), url
        for url in parsed.links:
            if "://" not in url:
                assert (page_path.parent / url.split("#")[0]).resolve().exists(), url
        # the only buttons are the platform tabs; approving needs `aspdigest preview`
        assert all('role="tab"' in b for b in re.findall(r"<button[^>]*>", page))
        assert "<form" not in page and "Approve" not in page
        assert '<meta name="aspdigest-mode" content="static">' in page


def test_review_pages_are_byte_identical_across_builds(sample_project: Project) -> None:
    out = sample_project.output_dir / "asp23"
    build(sample_project, "asp23")
    first = {p: (out / p).read_bytes() for p in ["index.html", "2024-12-02/index.html"]}
    build(sample_project, "asp23", force=True)
    assert {p: (out / p).read_bytes() for p in first} == first


def test_hostile_record_fields_are_escaped(sample_root: Path) -> None:
    record = sample_root / "content/asp23/2024-12-04/afghanistan.md"
    record.write_text(
        """---
title: "<script>alert('title')</script>"
kind: side-event
order: 2
summary: "\\"><img src=x onerror=alert(1)> and </pre><h1>big</h1>"
organisers: ["<b>bold</b> & co"]
speakers:
  - name: "</textarea><svg onload=alert(2)>"
    role: "<iframe src=javascript:alert(3)>"
quotes:
  - text: "We said: <script>alert(4)</script> & meant it."
    by: "</textarea><svg onload=alert(2)>"
links:
  - title: "<a href=javascript:alert(5)>x</a>"
    url: "https://example.org/?q=%22%3E%3Cscript%3Ealert(6)%3C/script%3E"
---
Body with <script>alert(7)</script> in it.
""",
        encoding="utf-8",
    )
    project = load_project(sample_root, environ={})
    build(project, "asp23")
    out = project.output_dir / "asp23"
    for page_path in (out / "index.html", out / "2024-12-04" / "index.html"):
        page = page_path.read_text(encoding="utf-8")
        for raw in (
            "<script>alert",
            "<img src=x",
            "<svg onload",
            "<iframe src=javascript",
            "</textarea>",
            "<h1>big</h1>",
            "<b>bold</b>",
            "<a href=javascript",
            '"><script',
        ):
            assert raw not in page, (page_path, raw)
        parsed = _parse(page)
        assert not [u for u in parsed.links + parsed.loads if "javascript" in u.lower()]
    day = (out / "2024-12-04" / "index.html").read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(&#39;title&#39;)&lt;/script&gt;" in day
    assert "&lt;svg onload=alert(2)&gt;" in day
    # the quote's card alt text, escaped inside the attribute and shown in full
    assert "We said: &lt;script&gt;alert(4)&lt;/script&gt; &amp; meant it." in day
    assert len(_parse(day).tags) > 100  # the hostile text did not end the document early


def test_links_in_posts_are_only_ever_http() -> None:
    assert _href("javascript:alert(1)") is None
    assert _href("data:text/html,x") is None
    assert _href("example.org/x") == "https://example.org/x"
    assert _href("http://example.org") == "http://example.org"


def test_segments_follow_bluesky_byte_facets_and_platform_entities() -> None:
    text = "Café “ICC” #ASP23 example.org/digest/… end"
    data = text.encode("utf-8")
    tag = data.index(b"#ASP23")
    link = data.index(b"example.org")
    facets = [
        {"type": "tag", "byteStart": tag, "byteEnd": tag + 6, "tag": "ASP23"},
        {
            "type": "link",
            "byteStart": link,
            "byteEnd": link + len("example.org/digest/…".encode()),
            "uri": "https://example.org/digest/asp23/2024-12-03/",
        },
    ]
    segs = segments("bluesky", text, facets)
    assert "".join(s.text for s in segs) == text
    assert [(s.kind, s.text, s.href) for s in segs if s.kind != "text"] == [
        ("tag", "#ASP23", None),
        ("link", "example.org/digest/…", "https://example.org/digest/asp23/2024-12-03/"),
    ]
    segs = segments("x", "See https://example.org/a and @IntlCrimCourt #GenderJustice.")
    assert [(s.kind, s.text) for s in segs if s.kind != "text"] == [
        ("link", "https://example.org/a"),
        ("mention", "@IntlCrimCourt"),
        ("tag", "#GenderJustice"),
    ]
    segs = segments("mastodon", "Hi @user@example.social see https://example.org/x")
    assert [(s.kind, s.text) for s in segs if s.kind != "text"] == [
        ("mention", "@user@example.social"),
        ("link", "https://example.org/x"),
    ]


# -- approval status ---------------------------------------------------------------------------


def _plan(project: Project) -> None:
    from aspdigest.queue.plan import plan

    with open_project_store(project) as store:
        plan(project, "asp23", store)


def _live(url: str, date: str | None = None) -> dict[str, Any]:
    status, headers, body = _request(url + "_status.json" + (f"?date={date}" if date else ""))
    assert status == 200 and headers["Content-Type"] == "application/json; charset=utf-8"
    assert headers["Cache-Control"] == "no-store"
    data: dict[str, Any] = json.loads(body)
    return data


def test_no_store_shows_no_status_and_creates_no_store(served: tuple[str, Path, Preview]) -> None:
    url, root, _ = served
    assert _live(url)["state"] == "none"
    assert _live(url, "2024-12-02")["message"] == (
        "No state store yet: nothing has been planned or approved."
    )
    assert not (root / ".aspdigest").exists()
    status, _, body = _request(url + "_status.json?date=Monday")
    assert status == 400 and json.loads(body) == {
        "errors": ['date: expected a date like 2024-12-02, got "Monday"']
    }


def test_live_status_and_approved_hashes_from_the_store(
    served: tuple[str, Path, Preview],
) -> None:
    from aspdigest.queue.approval import approve

    url, root, preview = served
    project = load_project(root, environ={})
    _plan(project)
    live = _live(url, "2024-12-02")
    assert live["state"] == "ok" and live["timezone"] == "Europe/Amsterdam"
    assert [d["status"] for d in live["deliveries"]] == ["planned"] * 11  # digest, 5 × 2
    assert live["deliveries"][0]["label"] == "Email digest"
    assert live["deliveries"][0]["send_at"] == "Tue 3 Dec, 07:30"  # the next morning
    assert live["deliveries"][1]["label"] == "X thread"
    assert {d["date"] for d in live["deliveries"]} == {"2024-12-02"}
    assert live["planned"] == 50 and live["approved"] == 0
    assert live["days"]["2024-12-03"] == {"planned": 11, "approved": 0}

    with open_project_store(project) as store:
        approve(
            project, store, "asp23", dt.date(2024, 12, 2), channel="digest", by="Ana <Reviewer>"
        )
    digest = _live(url, "2024-12-02")["deliveries"][0]
    assert digest["status"] == "approved" and digest["approved_by"] == "Ana <Reviewer>"
    assert digest["approved_at"] and not digest["changed"]
    approved = next(
        s for s in _status(project) if s.date == dt.date(2024, 12, 2) and s.channel == "digest"
    )
    assert approved.approved and digest["approved"] == dict(sorted(approved.approved.items()))
    # The day page carries the hashes of its build, for review.js to compare with these.
    page = _request(url + "2024-12-02/")[2].decode()
    built = json.loads(re.search(r"data-built='([^']*)'", page)[1])  # type: ignore[index]
    assert all(built[path] == sha for path, sha in digest["approved"].items())
    assert _live(url)["approved"] == 1

    # The content changes after approval: the status says so, and counts it no more.
    record = root / "content/asp23/2024-12-02/opening.md"
    record.write_text(record.read_text().replace("\n---\n", "\n---\nA new first line.\n\n", 1))
    preview.site.rebuild("test")
    live = _live(url, "2024-12-02")
    assert live["deliveries"][0]["changed"] and live["approved"] == 0
    assert live["days"]["2024-12-02"] == {"planned": 11, "approved": 0}


def test_an_unreachable_store_is_reported_not_fatal(sample_root: Path) -> None:
    config = sample_root / "aspdigest.toml"
    config.write_text(
        config.read_text() + '\n[state]\nurl = "postgresql://u:hunter2@127.0.0.1:9/x"\n'
    )
    result = build(load_project(sample_root, environ={}), "asp23")
    assert not any("state store" in w for w in result.warnings)  # the build never reads it
    preview = start(
        PreviewConfig(root=sample_root, event="asp23", port=0, watch=False),
        log=lambda _line: None,
    )
    try:
        live = _live(preview.url, "2024-12-02")
    finally:
        preview.stop()
    assert live["state"] == "error"
    assert live["message"].startswith("The state store could not be read: state store ")
    assert "hunter2" not in json.dumps(live)


# -- the preview server ------------------------------------------------------------------------


def test_a_token_is_needed_off_loopback() -> None:
    assert not needs_token("127.0.0.1") and not needs_token("localhost")
    assert not needs_token("::1")
    assert needs_token("0.0.0.0") and needs_token("192.168.1.5")
    assert needs_token("127.0.0.1", force=True)
    assert choose_token("127.0.0.1", False, {}) == (None, False)
    assert choose_token("0.0.0.0", False, {"ASPDIGEST_PREVIEW_TOKEN": "s3cret"}) == (
        "s3cret",
        False,
    )
    token, generated = choose_token("0.0.0.0", False, {})
    assert generated and token and len(token) >= 24


def _request(
    url: str, *, data: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    req = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with opener.open(req, timeout=30) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


@pytest.fixture
def served(sample_root: Path) -> Iterator[tuple[str, Path, Preview]]:
    preview = start(
        PreviewConfig(root=sample_root, event="asp23", port=0, watch=False, by="Test Reviewer"),
        log=lambda _line: None,
    )
    try:
        yield preview.url, sample_root, preview
    finally:
        preview.stop()


def _meta(page: str) -> dict[str, str]:
    m = re.search(
        r'<meta name="aspdigest-mode" content="served" data-version="([^"]+)" '
        r'data-csrf="([^"]+)">',
        page,
    )
    assert m, "not a served page"
    return {"version": m[1], "csrf": m[2]}


def test_preview_serves_the_site_in_served_mode(served: tuple[str, Path, Preview]) -> None:
    url, _, _ = served
    status, headers, body = _request(url)
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    assert headers["Cache-Control"] == "no-store"
    meta = _meta(body.decode())
    status, _, body = _request(url + "_version")
    assert json.loads(body) == {"version": meta["version"], "ok": True}
    status, headers, _ = _request(url + "2024-12-02")
    assert status == 301 and headers["Location"] == "/2024-12-02/"
    status, _, body = _request(url + "2024-12-02/")
    assert status == 200 and b"Email digest" in body
    assert _request(url + "2024-12-02/digest.html")[0] == 200
    assert _request(url + "_review/review.js")[1]["Content-Type"].startswith("text/javascript")
    assert _request(url + "..%2f..%2faspdigest.toml")[0] == 404
    assert _request(url + "%2e%2e/%2e%2e/aspdigest.toml")[0] == 404


def test_preview_refuses_foreign_hosts_forms_and_stale_pages(
    served: tuple[str, Path, Preview],
) -> None:
    url, root, _ = served
    # DNS rebinding: a page on another name that resolves to 127.0.0.1
    assert _request(url, headers={"Host": "evil.example"})[0] == 421
    meta = _meta(_request(url)[2].decode())
    form = {"date": "2024-12-02", "channel": "digest", "platform": ""}

    def post(fields: dict[str, str], **headers: str) -> tuple[int, dict[str, object]]:
        data = urllib.parse.urlencode(fields).encode()
        status, _, body = _request(url + "approve", data=data, headers=headers)
        return status, json.loads(body)

    assert post({**form, **meta, "csrf": "guess"})[0] == 403
    assert post({**form, **meta}, Origin="https://evil.example")[0] == 403
    status, body = post({**form, **meta, "version": "old"})
    assert status == 409 and body["errors"] == [
        "the drafts changed since this page loaded; it reloads now, then approve again"
    ]
    # nothing planned yet: the same lines `aspdigest approve` prints come back
    from aspdigest.queue.approval import approve

    proj = load_project(root, environ={})
    with pytest.raises(UserError) as refused, open_project_store(proj) as store:
        approve(proj, store, "asp23", dt.date(2024, 12, 2), channel="digest", by="x")
    status, body = post({**form, **meta})
    assert status == 409 and body["errors"] == refused.value.lines()
    assert "aspdigest schedule plan asp23" in body["errors"][0]


def test_preview_approve_records_the_approval(served: tuple[str, Path, Preview]) -> None:

    url, root, _ = served
    project = load_project(root, environ={})
    _plan(project)
    meta = _meta(_request(url)[2].decode())
    data = urllib.parse.urlencode(
        {"date": "2024-12-03", "channel": "thread", "platform": "x", **meta}
    ).encode()
    code, _, body = _request(url + "approve", data=data)
    assert code == 200, body
    assert json.loads(body)["message"] == "Approved 1 delivery."
    rows = [s for s in _status(project) if s.date == dt.date(2024, 12, 3)]
    assert {
        (s.channel, s.platform, s.status, s.approved_by) for s in rows if s.status != "planned"
    } == {("thread", "x", "approved", "Test Reviewer")}
    # nothing under out/ changed, so nothing was rebuilt; the live status shows the approval
    page = _request(url + "2024-12-03/index.html")[2].decode()
    assert _meta(page)["version"] == meta["version"]
    assert "data-status" not in page
    x = next(d for d in _live(url, "2024-12-03")["deliveries"] if d["platform"] == "x")
    assert (x["status"], x["approved_by"], x["changed"]) == ("approved", "Test Reviewer", False)


def test_preview_shows_the_cli_lines_when_the_build_fails(
    served: tuple[str, Path, Preview],
) -> None:
    url, root, preview = served
    record = root / "content/asp23/2024-12-03/kit-general-debate.md"
    good = record.read_text()
    record.write_text(good.replace("order: 1", "order: 1\ntime: 6:30\nkind2: x"))
    cli = subprocess.run(
        [sys.executable, "-m", "aspdigest", "build", "asp23", "-C", str(root)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = cli.stderr.splitlines()
    assert cli.returncode == 1 and len(lines) == 2, cli.stderr
    assert lines[0] == (
        'content/asp23/2024-12-03/kit-general-debate.md: time: expected "HH:MM" '
        "in quotes, got the number 390"
    )
    preview.site.rebuild("test")  # what the watcher does on a change
    assert json.loads(_request(url + "_version")[2])["ok"] is False
    for page_url in (url, url + "2024-12-03/index.html", url + "2024-12-05/"):
        status, _, body = _request(page_url)
        page = body.decode()
        assert status == 200 and "The drafts could not be rebuilt" in page
        assert re.findall(r"<li>(.*?)</li>", page) == [esc(line) for line in lines]
        assert "Email digest" not in page  # not the stale drafts
    record.write_text(good)
    preview.site.rebuild("test")
    assert "Email digest" in _request(url + "2024-12-03/index.html")[2].decode()


def test_preview_with_a_token_needs_it_on_every_request(sample_root: Path) -> None:
    preview = start(
        PreviewConfig(root=sample_root, event="asp23", port=0, watch=False, token="s3cret-token"),
        log=lambda _line: None,
    )
    try:
        url = preview.url
        assert _request(url)[0] == 401
        assert _request(url + "_version")[0] == 401
        assert _request(url + "?token=wrong")[0] == 401
        status, headers, _ = _request(url + "2024-12-02/?token=s3cret-token")
        assert status == 303 and headers["Location"] == "/2024-12-02/"
        assert headers["Set-Cookie"] == (
            "aspdigest_preview=s3cret-token; HttpOnly; SameSite=Strict; Path=/"
        )
        assert _request(url, headers={"Cookie": "aspdigest_preview=s3cret-token"})[0] == 200
        assert _request(url, headers={"Authorization": "Bearer s3cret-token"})[0] == 200
        assert _request(url, headers={"Cookie": "aspdigest_preview=nope"})[0] == 401
    finally:
        preview.stop()


def test_preview_cli_refuses_a_busy_port(sample_root: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        cli = subprocess.run(
            [
                sys.executable,
                "-m",
                "aspdigest",
                "preview",
                "asp23",
                "-C",
                str(sample_root),
                "--port",
                str(port),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert cli.returncode == 1
    assert cli.stderr.splitlines()[-1] == (
        f"--port {port}: cannot listen on 127.0.0.1: Address already in use"
    )


def _raw_post(url: str, headers: str, body: bytes = b"") -> tuple[int, dict[str, object], float]:
    """POST /approve over a bare socket, with headers exactly as given; the answer and how long
    it took. The socket stays open after sending, as a client that lies about its body would."""
    import socket
    import time

    parts = urllib.parse.urlsplit(url)
    started = time.monotonic()
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(
            f"POST /approve HTTP/1.1\r\nHost: {parts.netloc}\r\n{headers}\r\n".encode("latin-1")
            + body
        )
        answer = b""
        while chunk := sock.recv(65536):  # the server closes after a refused body
            answer += chunk
    head, _, payload = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(payload), time.monotonic() - started


def test_preview_checks_content_length_before_reading(served: tuple[str, Path, Preview]) -> None:
    url, _, _ = served
    form = "Content-Type: application/x-www-form-urlencoded\r\n"
    # -1 used to pass the size check, then rfile.read(-1) read until the client gave up
    status, body, took = _raw_post(url, form + "Content-Length: -1\r\n")
    assert (status, body) == (
        400,
        {"errors": ['Content-Length must be a whole number of bytes, got "-1"']},
    )
    assert took < 5
    # a traceback and no answer at all before
    status, body, _ = _raw_post(url, form + "Content-Length: abc\r\n", b"abc")
    assert (status, body) == (
        400,
        {"errors": ['Content-Length must be a whole number of bytes, got "abc"']},
    )
    for odd in ("+5", "5_0", "\u00b2"):  # int() takes the first two; "²".isdigit() is true
        assert _raw_post(url, form + f"Content-Length: {odd}\r\n", b"csrf=")[0] == 400
    status, body, took = _raw_post(url, form + "Content-Length: 400000000\r\n")
    assert (status, body) == (
        413,
        {"errors": ["request too large: 400000000 bytes; at most 10000"]},
    )
    assert took < 5
    status, body, _ = _raw_post(url, form)
    assert (status, body) == (411, {"errors": ["Content-Length is missing"]})
    status, body, _ = _raw_post(url, form + "Content-Length: 3\r\nContent-Length: 4\r\n", b"a=bc")
    assert (status, body) == (400, {"errors": ["conflicting Content-Length headers"]})
    # a well-formed form still reaches the approval checks
    status, body, _ = _raw_post(url, form + "Content-Length: 6\r\n", b"csrf=x")
    assert status == 403


def _review_bytes(tmp_path: Path, days: int) -> tuple[int, Path]:
    """Total bytes of the review pages of the demo event stretched to ``days`` days."""
    import shutil

    root = tmp_path / f"days-{days}"
    shutil.copytree(Path(__file__).parent / "fixtures/project", root)
    event = root / "content/demo/event.toml"
    end = dt.date(2025, 3, 10) + dt.timedelta(days=days - 1)
    event.write_text(event.read_text().replace("end = 2025-03-12", f"end = {end}\nmax_days = 60"))
    build(load_project(root, environ={}), "demo")
    out = root / "out/demo"
    pages = [out / "index.html", *out.glob("*/index.html")]
    assert len(pages) == days + 1
    return sum(p.stat().st_size for p in pages), out


def test_review_pages_grow_linearly_with_the_days(tmp_path: Path) -> None:
    # Every page's header used to name every day: 30 → 60 days made the site 3.2 times larger.
    small, _ = _review_bytes(tmp_path, 30)
    large, out = _review_bytes(tmp_path, 60)
    assert large / small < 2.2, (small, large)
    page = (out / "2025-04-08/index.html").read_text()  # day 30 of 60
    links = _parse(page).links
    named = sorted({link for link in links if link.startswith("../2025-")})
    assert len(named) == 7 and "../2025-04-07/index.html" in named  # its week, around it
    assert "../2025-04-09/index.html" in named and "../index.html" in links
    index = _parse((out / "index.html").read_text()).links
    days = [link for link in index if link.startswith("2025-")]
    assert len(days) == 60 and len(set(days)) == 60  # every day, once


def _status(project: Project) -> list[Any]:
    from aspdigest.queue.approval import status

    with open_project_store(project) as store:
        return status(store, "asp23")


def test_a_bluesky_post_shows_the_link_card_it_is_sent_with(built: Path) -> None:
    # What a reviewer approves is what is sent: the card's title, description and image.
    page = (built / "2024-12-02" / "index.html").read_text(encoding="utf-8")
    data = json.loads((built / "2024-12-02" / "thread.bluesky.json").read_text(encoding="utf-8"))
    card = data["posts"][-1]["embed"]
    assert card["thumb"] == "cards/opening-1.preview.png"
    assert (
        f'<p class="link-card">Link card: <strong>{esc(card["title"])}</strong> — '
        f'{esc(card["description"])} (<a href="cards/opening-1.preview.png">image</a>)</p>'
    ) in page
    assert page.count('<p class="link-card">') == sum(1 for p in data["posts"] if "embed" in p)
