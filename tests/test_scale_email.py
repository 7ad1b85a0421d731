"""A digest to 50,000 subscribers over parallel SMTP connections, progress in PostgreSQL.

A real aiosmtpd sink on 127.0.0.1 (counting recipients only, so 50,000 messages do not sit
in memory) and a fresh PostgreSQL schema. A child process sends with `email.connections`
parallel connections and is killed with SIGKILL midway; `send_digest` in this process then
resumes. Every subscriber has exactly one copy, or at most one with the recipient marked
`unknown` (it was in the server's hands when the sender died). Parallel workers on SQLite
are checked too, on a small list. PostgreSQL must be reachable: fails, never skips.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from aspdigest.artifacts import BuiltDay
from aspdigest.config import Project, load_project
from aspdigest.content import load_content
from aspdigest.days import plan_days
from aspdigest.deliver import emailprocs
from aspdigest.deliver.email import SendReport, send_digest
from aspdigest.render import RenderContext
from aspdigest.render.email import digest
from aspdigest.render.templates import make_environment
from aspdigest.store import Store, open_project_store
from aspdigest.store.schema import subscribers
from support.delivery_helpers import postgres_schema

KEY = "test-signing-key-0123456789"
PEOPLE = 50_000
CONNECTIONS = 4
KILL_AT = 20_000


class CountingSink:
    def __init__(self) -> None:
        self.copies: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.count = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.copies.update(envelope.rcpt_tos)
            self.count += 1
        return "250 2.0.0 queued"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    with postgres_schema("scale") as url:
        yield url


@pytest.fixture
def sink() -> Iterator[tuple[CountingSink, int]]:

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    handler = CountingSink()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


def _environ(port: int, url: str, connections: int) -> dict[str, str]:
    return {
        "ASPDIGEST_SMTP_URL": f"smtp://127.0.0.1:{port}",
        "ASPDIGEST_UNSUBSCRIBE_KEY": KEY,
        "ASPDIGEST_EMAIL_RATE_PER_SECOND": "0",
        "ASPDIGEST_EMAIL_RETRY_BACKOFF": "0.01",
        "ASPDIGEST_EMAIL_CONNECTIONS": str(connections),
        "ASPDIGEST_STATE_URL": url,
    }


def _built(root: Path, environ: dict[str, str]) -> Project:
    """The sample with the first day's digest built (only the email renderer)."""
    project = load_project(root, environ=environ)
    content = load_content(project, "asp23")
    day = plan_days(content)[0]
    result = digest(day, RenderContext(project, content, make_environment(project)))
    path = BuiltDay(project, "asp23", day.date).eml
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(result.eml)
    return project


def _claimed(project: Project, store: Store, people: int) -> int:
    rows = [
        {
            "address": f"reader{i:05d}@example.org",
            "name": f"Reader {i}",
            "language": "en",
            "imported_at": store.clock(),
        }
        for i in range(people)
    ]
    with store.engine.begin() as c:  # a plain bulk insert: the import itself is tested elsewhere
        c.execute(subscribers.insert(), rows)
    d = store.ensure_delivery("asp23", plan_days(load_content(project, "asp23"))[0].date, "email")
    assert store.approve(d.id, {}, "tester") and store.claim(d.id)
    return d.id


def _send_counting(
    store: Store, delivery_id: int, project: Project, env: dict[str, str]
) -> tuple[SendReport, list[int]]:
    """send_digest, with every progress count it reported."""
    seen: list[int] = []
    report = send_digest(
        store, delivery_id, project, environ=env, progress=lambda done, _t, _a: seen.append(done)
    )
    return report, seen


CHILD = """
import sys
from pathlib import Path
from aspdigest.config import load_project
from aspdigest.deliver import emailprocs
from aspdigest.deliver.email import SendReport, send_digest
from aspdigest.store import open_project_store

project = load_project(Path(sys.argv[1]))
with open_project_store(project) as store:
    send_digest(store, int(sys.argv[2]), project)
"""


@pytest.mark.slow
def test_50000_subscribers_over_parallel_connections_killed_and_resumed(
    sample_root: Path, postgres_url: str, sink: tuple[CountingSink, int], artifacts_dir: Path
) -> None:
    handler, port = sink
    env = _environ(port, postgres_url, CONNECTIONS)
    project = _built(sample_root, env)
    with open_project_store(project) as store:
        delivery_id = _claimed(project, store, PEOPLE)
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("ASPDIGEST_")}
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(project.root), str(delivery_id)], env={**child_env, **env}
    )
    deadline = time.monotonic() + 400
    while handler.count < KILL_AT and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.kill()
    assert proc.wait(30) == -signal.SIGKILL
    first_part = time.monotonic() - started
    sent_before = handler.count
    # Its helper process (deliver.emailprocs) stops with it: at most the messages it had
    # in flight still arrive, then nothing.
    settled, stable = handler.count, False
    for _ in range(10):  # a busy machine may take a moment over the last one in flight
        time.sleep(1.0)
        stable, settled = handler.count == settled, handler.count
        if stable:
            break
    assert stable and settled - sent_before <= CONNECTIONS
    resumed_at = time.monotonic()
    # The resume runs in a process of its own too: the sink here should not share a GIL.
    resume = subprocess.run(
        [sys.executable, "-c", CHILD, str(project.root), str(delivery_id)],
        env={**child_env, **env},
        timeout=900,
    )
    assert resume.returncode == 0
    resume_part = time.monotonic() - resumed_at
    with open_project_store(project) as store:
        final = store.delivery(delivery_id)
        counts = store.recipient_counts(delivery_id)
        recipients = {r.address: r.status for r in store.recipients(delivery_id)}
    assert final is not None
    copies = handler.copies
    duplicates = sum(n - 1 for n in copies.values() if n > 1)
    missing = [a for a, s in recipients.items() if copies[a] == 0 and s != "unknown"]
    figures = {
        "subscribers": PEOPLE,
        "connections": CONNECTIONS,
        "killed_after": sent_before,
        "first_run_s": round(first_part, 1),
        "resume_s": round(resume_part, 1),
        "messages_per_second": round(handler.count / (first_part + resume_part), 1),
        "unknown": counts["unknown"],
        "duplicates": duplicates,
        "status": final.status,
    }
    (artifacts_dir / "scale-email.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures))
    assert KILL_AT <= sent_before < PEOPLE  # it really was interrupted midway
    assert len(recipients) == PEOPLE and sum(counts.values()) == PEOPLE
    assert duplicates == 0 and not missing
    assert counts["sent"] + counts["unknown"] == PEOPLE
    assert counts["unknown"] <= CONNECTIONS  # at most the messages in flight
    assert all(copies[a] == 1 for a, s in recipients.items() if s == "sent")
    assert final.status == ("unknown" if counts["unknown"] else "sent")


def test_parallel_connections_on_sqlite_send_each_recipient_once(
    sample_root: Path, sink: tuple[CountingSink, int], tmp_path: Path
) -> None:
    handler, port = sink
    env = _environ(port, f"sqlite:///{tmp_path / 'state.sqlite'}", 3)
    project = _built(sample_root, env)
    with open_project_store(project) as store:
        delivery_id = _claimed(project, store, 300)
        store.suppress("reader00007@example.org", "unsubscribed")
        report, seen = _send_counting(store, delivery_id, project, env)
    assert (report.status, report.connections) == ("sent", 3)
    assert report.counts["sent"] == 299 and report.counts["suppressed"] == 1
    assert seen == list(range(1, 301))
    assert sorted(handler.copies.values()) == [1] * 299
    assert "reader00007@example.org" not in handler.copies


class SlowSink(CountingSink):
    """Takes 5 ms over each message (others go on meanwhile), as a real server might."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(0.005)
        return await super().handle_DATA(server, session, envelope)


def test_a_long_list_over_several_connections_is_shared_with_a_helper_process(
    sample_root: Path, tmp_path: Path
) -> None:
    """Without a rate limit, four connections to 2,000 people on a 2-core machine: a
    helper process takes spans of the list as soon as it is up (deliver.emailprocs), and
    still each person gets one copy; progress counts the helper's share too."""
    people = 2_000
    assert len(emailprocs.shares(4, 0, people)) == min(4, os.cpu_count() or 1)
    handler = SlowSink()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        env = _environ(port, f"sqlite:///{tmp_path / 'state.sqlite'}", 4)
        project = _built(sample_root, env)
        with open_project_store(project) as store:
            delivery_id = _claimed(project, store, people)
            store.suppress("reader01501@example.org", "unsubscribed")  # late in the list
            report, seen = _send_counting(store, delivery_id, project, env)
            warm = [p.pid for p in emailprocs._IDLE]
            # The next digest (the next day's) finds the helper up and waiting.
            content = load_content(project, "asp23")
            day2 = plan_days(content)[1]
            eml = BuiltDay(project, "asp23", day2.date).eml
            eml.parent.mkdir(parents=True, exist_ok=True)
            eml.write_bytes(
                digest(day2, RenderContext(project, content, make_environment(project))).eml
            )
            second = store.ensure_delivery("asp23", day2.date, "email")
            assert store.approve(second.id, {}, "tester") and store.claim(second.id)
            again = send_digest(store, second.id, project, environ=env)
    finally:
        controller.stop()
    # Four connections made: two of them by the helper, which had recipients to send to.
    assert (report.status, report.connections) == ("sent", 4)
    assert report.counts["sent"] == people - 1 and report.counts["suppressed"] == 1
    assert seen[-1] == people and seen == sorted(seen)
    assert "reader01501@example.org" not in handler.copies
    assert len(warm) == len(emailprocs.shares(4, 0, people)) - 1
    assert (again.status, again.connections, again.counts["sent"]) == ("sent", 4, people - 1)
    assert [p.pid for p in emailprocs._IDLE] == warm  # the same helper, used again
    assert sorted(handler.copies.values()) == [2] * (people - 1)  # once per digest
