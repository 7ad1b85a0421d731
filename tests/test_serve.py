"""The subscriber service under uvicorn: one-click unsubscribe from a real digest, the
unsubscribe page, forged links, the hardening around it."""

from __future__ import annotations

import contextlib
import datetime as dt
import email.policy
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import httpx
import pytest

from aspdigest.config import Project, load_project
from aspdigest.deliver.email import send_digest
from aspdigest.store import Store, open_project_store
from aspdigest.subscribers import import_csv, subscribers_path
from support.delivery_helpers import KEY, built_copy, environment, free_port, smtp_sink, wait_for

DAY1, DAY2 = dt.date(2024, 12, 2), dt.date(2024, 12, 3)
SECURITY = {
    "content-security-policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "x-content-type-options": "nosniff",
}


@contextmanager
def service(root: Path, env: dict[str, str], port: int, *args: str) -> Iterator[str]:
    """`aspdigest serve` as a process, until the block ends; yields its base URL."""
    log = root / "serve.log"
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "aspdigest",
                "serve",
                "asp23",
                "--port",
                str(port),
                "--project",
                str(root),
                *args,
            ],
            cwd=root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=err,
        )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        assert line == f"serving subscribers on http://127.0.0.1:{port}/\n", log.read_text()
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: _up(base), 20, "the service to answer")
        yield base
    finally:
        proc.terminate()
        proc.wait(10)


def _up(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz").status_code == 200
    except httpx.TransportError:
        return False


def send_day(project: Project, store: Store, date: dt.date, env: dict[str, str]) -> int:
    """Queue, approve, claim and send one day's digest as the runner would."""
    d = store.ensure_delivery("asp23", date, "email")
    assert store.approve(d.id, {}, "tester") and store.claim(d.id)
    report = send_digest(store, d.id, project, environ=env)
    assert report.status == "sent", report
    return d.id


def parse(data: bytes) -> EmailMessage:
    msg = BytesParser(policy=email.policy.default).parsebytes(data)
    assert isinstance(msg, EmailMessage)
    return msg


def one_click_url(msg: EmailMessage) -> str:
    [url] = [u for u in re.findall(r"<([^<>]+)>", str(msg["List-Unsubscribe"])) if "://" in u]
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    return url


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[Path, Project, dict[str, str], object, int]]:
    root = built_copy(tmp_path)
    port = free_port()
    with smtp_sink() as (sink, smtp_port):
        env = environment(
            smtp_port,
            ASPDIGEST_EMAIL_UNSUBSCRIBE_URL=f"http://127.0.0.1:{port}/unsubscribe/{{token}}",
        )
        # The digest was built with the URL the team points at the service.
        subprocess.run(
            [sys.executable, "-m", "aspdigest", "build", "asp23", "--project", str(root)],
            env=env,
            check=True,
            capture_output=True,
        )
        project = load_project(root, environ=env)
        with open_project_store(project) as store:
            import_csv(store, subscribers_path(project))
        yield root, project, env, sink, port


def test_one_click_from_a_received_digest_suppresses_exactly_that_reader(setup: tuple) -> None:
    root, project, env, sink, port = setup
    with service(root, env, port) as base, open_project_store(project) as store:
        send_day(project, store, DAY1, env)
        received = {rcpts[0]: parse(data) for rcpts, data in sink.messages}
        everyone = sorted(received)
        reader = everyone[0]
        url = one_click_url(received[reader])
        assert url.startswith(f"{base}/unsubscribe/")
        assert reader.split("@")[0] not in url  # the token is opaque
        # Exactly as a mail provider posts it (RFC 8058): no cookie, no CSRF token.
        answer = httpx.post(
            url,
            content=b"List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert answer.status_code == 200
        assert "set-cookie" not in answer.headers
        assert [(s.address, s.reason) for s in store.suppressions()] == [(reader, "unsubscribed")]
        # Idempotent: a second post (providers retry) changes nothing and still says 200.
        again = httpx.post(url, data={"List-Unsubscribe": "One-Click"})
        assert again.status_code == 200 and len(store.suppressions()) == 1
        # The next digest skips that reader only.
        before = len(sink.messages)
        day2 = send_day(project, store, DAY2, env)
        assert sorted(r[0] for r, _ in sink.messages[before:]) == everyone[1:]
        assert {r.address: r.status for r in store.recipients(day2)}[reader] == "suppressed"


def test_get_changes_nothing_and_forged_tokens_are_refused(setup: tuple) -> None:
    root, project, env, sink, port = setup
    with service(root, env, port) as base, open_project_store(project) as store:
        send_day(project, store, DAY1, env)
        rcpts, data = sink.messages[0]
        url = one_click_url(parse(data))
        # Mail scanners fetch every link: a GET shows the page and changes nothing.
        for _ in range(3):
            page = httpx.get(url)
            assert page.status_code == 200
        assert store.suppressions() == []
        assert "Stop receiving Gender Justice Digest at" in page.text
        assert rcpts[0] in page.text and 'method="post"' in page.text
        assert 'name="List-Unsubscribe" value="One-Click"' in page.text
        for name, value in SECURITY.items():
            assert page.headers[name] == value
        token = url.rsplit("/", 1)[1]
        flipped = token[:10] + ("A" if token[10] != "A" else "B") + token[11:]
        for bad in (token[:-3], flipped, "x" * len(token), token + "A"):
            for method in ("GET", "POST"):
                answer = httpx.request(
                    method, f"{base}/unsubscribe/{bad}", data={"List-Unsubscribe": "One-Click"}
                )
                assert answer.status_code == 400, (method, bad)
                assert "This link does not work" in answer.text
        assert store.suppressions() == []
        # A body over the limit is refused before any handler reads it.
        big = httpx.post(url, content=b"List-Unsubscribe=One-Click&x=" + b"a" * 20_000)
        assert big.status_code == 413 and store.suppressions() == []
    log = (root / "serve.log").read_text()
    assert token not in log and '"path":"/unsubscribe/…"' in log


def test_key_problems_stop_the_service_with_one_line(tmp_path: Path) -> None:
    root = built_copy(tmp_path)
    env = environment(ASPDIGEST_UNSUBSCRIBE_KEY=" " * 16)
    result = subprocess.run(
        [sys.executable, "-m", "aspdigest", "serve", "--port", "0", "--project", str(root)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (result.returncode, result.stderr) == (
        1,
        "ASPDIGEST_UNSUBSCRIBE_KEY: holds spaces or line breaks; make one with "
        'python3 -c "import secrets; print(secrets.token_urlsafe(32))"\n',
    )
    assert os.path.exists(root)


def test_sign_up_confirm_digest_unsubscribe_resubscribe_in_chromium(
    setup: tuple, tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    from aspdigest.deliver.dkim import signer
    from support.dkim_helpers import dkim_env, verify, write_key

    root, project, env, sink, port = setup
    env = {**env, **dkim_env(write_key(tmp_path / "dkim.pem"))}
    project = load_project(root, environ=env)
    dkim_signer = signer(project, env)
    assert dkim_signer is not None
    record = dkim_signer.txt_record().split('TXT "')[1].rstrip('"').encode()
    reader = "new.reader@example.org"

    def mails_to(address: str) -> list[EmailMessage]:
        return [parse(d) for r, d in sink.messages if r == [address]]

    def confirmations() -> list[bytes]:
        return [d for r, d in sink.messages if r == [reader] and b"Auto-Submitted" in d]

    def confirm_link(n: int) -> str:
        wait_for(lambda: len(confirmations()) >= n, 10, f"confirmation mail {n}")
        raw = confirmations()[n - 1]
        mail = parse(raw)
        assert verify(raw, record)  # the service's mail is DKIM-signed too
        assert mail["Subject"] == "Confirmez votre abonnement à Gender Justice Digest"
        body = mail.get_content()
        [link] = re.findall(r"http://\S+/confirm/\S+", body)
        return str(link)

    with (
        service(root, env, port) as base,
        open_project_store(project) as store,
        sync_playwright() as p,
    ):
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True)
        page = browser.new_page()
        page.goto(f"{base}/subscribe")
        page.fill("#email", reader)
        page.fill("#name", "Nouvelle Lectrice")
        page.select_option("#language", "fr")
        page.click("button[type=submit]")
        assert page.locator("h1").inner_text() == "Check your inbox"
        person = store.subscriber(address=reader)
        assert person is not None and (person.status, person.source) == ("pending", "form")
        assert person.subscribed_at is not None and person.confirmed_at is None
        link = confirm_link(1)
        # The link opens a page with a button; opening it confirms nothing yet.
        page.goto(link)
        assert page.locator("h1").inner_text() == "Confirmez votre abonnement"
        assert page.locator("html").get_attribute("lang") == "fr"
        assert store.subscriber(address=reader).status == "pending"  # type: ignore[union-attr]
        page.click("button[type=submit]")
        assert page.locator("h1").inner_text() == "Vous êtes abonné·e"
        person = store.subscriber(address=reader)
        assert person is not None and person.status == "active" and person.confirmed_at
        # A real queued digest reaches the new reader; its one-click link unsubscribes them.
        send_day(project, store, DAY1, env)
        [digest] = [m for m in mails_to(reader) if "Confirmez" not in str(m["Subject"])]
        url = one_click_url(digest)
        assert httpx.post(url, data={"List-Unsubscribe": "One-Click"}).status_code == 200
        assert store.suppression(reader).reason == "unsubscribed"  # type: ignore[union-attr]
        # The page the link opens now says so, in French, and offers to subscribe again.
        page.goto(url)
        assert page.locator("h1").inner_text() == "Vous êtes désinscrit·e"
        page.click("button[type=submit]")
        assert page.locator("h1").inner_text() == "Check your inbox"
        page.goto(confirm_link(2))
        page.click("button[type=submit]")
        assert page.locator("h1").inner_text() == "Vous êtes abonné·e"
        assert store.suppression(reader) is None
        # No enumeration: a known address and a complained one get the same answer as a new
        # one; the complained one gets no mail and stays suppressed.
        store.suppress("angry@example.org", "complained")
        answers = []
        for address in (reader, "angry@example.org", "fresh@example.org"):
            page.goto(f"{base}/subscribe")
            page.fill("#email", address)
            page.click("button[type=submit]")
            answers.append(page.locator("main").inner_text())
        assert answers[0] == answers[1] == answers[2]
        wait_for(lambda: mails_to("fresh@example.org"), 10, "the fresh address's mail")
        assert mails_to("angry@example.org") == []
        assert store.suppression("angry@example.org").reason == "complained"  # type: ignore[union-attr]
        assert len(mails_to(reader)) == 3  # an active reader is not mailed again
        browser.close()
        # Form posts without the CSRF cookie, or from another site, are refused.
        bare = httpx.post(f"{base}/subscribe", data={"email": "x@example.org", "csrf": "a.b"})
        assert bare.status_code == 403
        with httpx.Client(base_url=base) as client:
            form = client.get("/subscribe")
            [csrf] = re.findall(r'name="csrf" value="([^"]+)"', form.text)
            cross = client.post(
                "/subscribe",
                data={"email": "x@example.org", "csrf": csrf},
                headers={"Origin": "https://evil.example"},
            )
            assert cross.status_code == 403
            # Per client: at most 20 form posts in ten minutes (the browser used 5).
            codes = [
                client.post(
                    "/subscribe", data={"email": f"r{i}@example.org", "csrf": csrf}
                ).status_code
                for i in range(16)
            ]
            assert codes == [200] * 15 + [429]
    assert store.subscriber(address="x@example.org") is None


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_200_concurrent_one_click_posts_to_one_worker(tmp_path: Path, backend: str) -> None:
    import asyncio
    import time

    from aspdigest.tokens import make_token
    from support.delivery_helpers import postgres_schema, write_subscribers

    root = built_copy(tmp_path)
    addresses = write_subscribers(root / "subscribers.csv", 200)
    port = free_port()
    with contextlib.ExitStack() as stack:
        extra = {}
        if backend == "postgresql":
            extra["ASPDIGEST_STATE_URL"] = stack.enter_context(postgres_schema("serve"))
        env = environment(
            ASPDIGEST_EMAIL_UNSUBSCRIBE_URL=f"http://127.0.0.1:{port}/unsubscribe/{{token}}",
            **extra,
        )
        project = load_project(root, environ=env)
        store = stack.enter_context(open_project_store(project))
        import_csv(store, subscribers_path(project))
        ids = store.token_ids()
        urls = [
            f"http://127.0.0.1:{port}/unsubscribe/"
            + make_token(ids[a], KEY.encode(), project.settings.email.list_id, "unsubscribe")
            for a in addresses
        ]
        stack.enter_context(service(root, env, port))

        async def post_all() -> list[tuple[int, float]]:
            limits = httpx.Limits(max_connections=200)
            async with httpx.AsyncClient(limits=limits, timeout=60) as client:

                async def one(url: str) -> tuple[int, float]:
                    started = time.perf_counter()
                    answer = await client.post(url, data={"List-Unsubscribe": "One-Click"})
                    return answer.status_code, time.perf_counter() - started

                return await asyncio.gather(*(one(u) for u in urls))

        results = asyncio.run(post_all())
        assert [code for code, _ in results] == [200] * 200
        assert sorted(s.address for s in store.suppressions()) == sorted(addresses)
    times = sorted(t for _, t in results)
    print(
        f"\n{backend}: 200 concurrent one-click POSTs, 0 errors; "
        f"p50 {times[99] * 1000:.0f} ms, p99 {times[197] * 1000:.0f} ms"
    )
