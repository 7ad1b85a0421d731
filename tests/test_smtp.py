"""Sending the digest over SMTP to a real aiosmtpd server on 127.0.0.1.

Each test starts its own server on a free port; the server's handler can refuse a
recipient (4xx/5xx), drop the connection before MAIL or after DATA, or kill the sending
process, and every message it accepts is kept for the test to parse.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import email.policy
import hashlib
import html
import json
import logging
import os
import re
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from aspdigest.artifacts import BuiltDay
from aspdigest.cli import app
from aspdigest.config import Project, load_project
from aspdigest.content import load_content
from aspdigest.days import plan_days
from aspdigest.deliver.email import send_digest, send_test
from aspdigest.deliver.smtp import Reply, SmtpSession, _quoted, _wire_body, parse_smtp_url
from aspdigest.errors import UserError
from aspdigest.render import RenderContext
from aspdigest.render.email import digest
from aspdigest.render.message import ADDRESS_PLACEHOLDER, TOKEN_PLACEHOLDER
from aspdigest.render.templates import make_environment
from aspdigest.store import Store, open_project_store
from aspdigest.subscribers import import_csv, subscribers_path
from aspdigest.tokens import Keys, verify_token

KEY = "test-signing-key-0123456789"
LIST = "asp-digest.example.org"
DATE = "2024-12-02"
FAST = {"ASPDIGEST_EMAIL_RATE_PER_SECOND": "0", "ASPDIGEST_EMAIL_RETRY_BACKOFF": "0.01"}
SAMPLE = [
    "ana.example@example.org",
    "bruno.sample@example.org",
    "chloe.exemple@example.org",
    "dev.placeholder@example.org",
    "eve.test@example.org",
]
HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Sink:
    """An aiosmtpd handler that keeps messages and misbehaves on request."""

    port: int = 0
    messages: list[tuple[str, list[str], bytes]] = field(default_factory=list)
    rcpt_replies: dict[str, list[str]] = field(default_factory=dict)  # address → replies to give
    drop_at_mail: set[int] = field(default_factory=set)  # drop when MAIL comes after n messages
    drop_after_data: set[int] = field(default_factory=set)  # keep message n, then drop, no reply
    drop_in_data: dict[str, int] = field(default_factory=dict)  # address → drops after 354 left
    data_replies: dict[str, list[str]] = field(default_factory=dict)  # address → final replies
    on_message: Callable[[int], None] | None = None
    connections: int = 0
    pipelining: bool = False  # offer PIPELINING (RFC 2920), as Postfix does
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        with self.lock:
            self.connections += 1
        if self.pipelining:  # aiosmtpd reads commands in order, so it copes as it is
            return [*responses[:-1], "250-PIPELINING", responses[-1]]
        return responses

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if len(self.messages) in self.drop_at_mail:
            self.drop_at_mail.discard(len(self.messages))
            server.transport.close()
            return "421 4.3.0 going away"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        queue = self.rcpt_replies.get(address)
        if queue:
            return queue.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        refusals = [q for r in envelope.rcpt_tos if (q := self.data_replies.get(r))]
        if refusals:
            return refusals[0].pop(0)
        with self.lock:
            self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
            n = len(self.messages)
        if self.on_message is not None:
            self.on_message(n)
        if n in self.drop_after_data:
            server.transport.close()
        return "250 2.0.0 queued"

    def parsed(self) -> list[EmailMessage]:
        out = []
        for _, _, data in self.messages:
            msg = BytesParser(policy=email.policy.default).parsebytes(data)
            assert isinstance(msg, EmailMessage)
            out.append(msg)
        return out

    def recipients(self) -> list[str]:
        return [r for _, rcpts, _ in self.messages for r in rcpts]


class DroppingSMTP(SMTP):
    """aiosmtpd's SMTP, except that for the recipients in `Sink.drop_in_data` it answers
    DATA with 354 and closes the connection at once, in the middle of DATA: the 354 and
    the close leave in one TCP segment (TCP_CORK), so the client always finds the
    connection closed before it has written the final dot."""

    async def smtp_DATA(self, arg: str) -> None:
        sink = self.event_handler
        assert isinstance(sink, Sink) and self.transport is not None
        victims = [r for r in self.envelope.rcpt_tos if sink.drop_in_data.get(r)]
        if not victims:
            await super().smtp_DATA(arg)
            return
        sink.drop_in_data[victims[0]] -= 1
        sock = self.transport.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
        self.transport.write(b"354 End data with <CR><LF>.<CR><LF>\r\n")
        sock.shutdown(socket.SHUT_WR)
        self.transport.close()


class DroppingController(Controller):
    def factory(self) -> SMTP:
        return DroppingSMTP(self.handler, **self.SMTP_kwargs)


def serve(sink: Sink, **kwargs: Any) -> Controller:
    sink.port = free_port()
    controller = DroppingController(sink, hostname="127.0.0.1", port=sink.port, **kwargs)
    controller.start()
    return controller


@pytest.fixture(params=["stepwise", "pipelined"])
def sink(request: pytest.FixtureRequest) -> Iterator[Sink]:
    """Each test twice: a server without PIPELINING (aiosmtpd's own), and one offering it,
    where MAIL, RCPT and DATA go in one write and every refusal and drop must still land."""
    s = Sink(pipelining=request.param == "pipelined")
    controller = serve(s)
    yield s
    controller.stop()


def environ(sink: Sink, **extra: str) -> dict[str, str]:
    return {
        "ASPDIGEST_SMTP_URL": f"smtp://127.0.0.1:{sink.port}",
        "ASPDIGEST_UNSUBSCRIBE_KEY": KEY,
        **extra,
    }


def built_project(root: Path, **settings: str) -> Project:
    """The sample project with the first day's digest built (only the email renderer)."""
    project = load_project(root, environ={**FAST, **settings})
    content = load_content(project, "asp23")
    day = plan_days(content)[0]
    result = digest(day, RenderContext(project, content, make_environment(project)))
    path = BuiltDay(project, "asp23", day.date).eml
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(result.eml)
    return project


@pytest.fixture
def project(sample_root: Path) -> Project:
    return built_project(sample_root)


def claimed(project: Project, store: Store) -> int:
    import_csv(store, subscribers_path(project))
    d = store.ensure_delivery("asp23", plan_days(load_content(project, "asp23"))[0].date, "email")
    assert store.approve(d.id, {}, "tester") and store.claim(d.id)
    return d.id


def statuses(store: Store, delivery_id: int) -> dict[str, str]:
    return {r.address: r.status for r in store.recipients(delivery_id)}


def html_part(msg: EmailMessage) -> str:
    part = msg.get_body(("html",))
    assert part is not None
    return str(part.get_content())


def text_part(msg: EmailMessage) -> str:
    part = msg.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def test_test_copy(project: Project, sink: Sink) -> None:
    import datetime as dt

    reply = send_test(project, "asp23", dt.date(2024, 12, 2), "me@example.org", environ(sink))
    assert reply.status == "sent" and reply.code == 250
    [msg] = sink.parsed()
    assert sink.messages[0][:2] == ("digest@example.org", ["me@example.org"])
    assert msg["Subject"] == "[TEST] If the ICC collapses, the rule of law collapses | ASP23"
    assert msg["To"] == "me@example.org"
    token = str(msg["List-Unsubscribe"]).split("token=")[1].split(">")[0]
    # The team's copy unsubscribes nobody: a valid token for an id no subscriber has.
    token_id = verify_token(token, Keys(KEY.encode()), LIST, "unsubscribe")
    assert token_id is not None and "me@example.org" not in token
    assert f"token={token}" in html_part(msg) and f"token={token}" in text_part(msg)
    assert "me@example.org is subscribed" in html_part(msg)
    for placeholder in (TOKEN_PLACEHOLDER, ADDRESS_PLACEHOLDER):
        assert placeholder not in sink.messages[0][2].decode()


def test_send_command(project: Project, sink: Sink, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project.root)
    for name, value in {**environ(sink), **FAST}.items():
        monkeypatch.setenv(name, value)
    runner = CliRunner()
    result = runner.invoke(app, ["send", "asp23", DATE, "--test", "me@example.org"])
    assert (result.exit_code, result.output) == (
        0,
        "asp23 2024-12-02: test copy sent to me@example.org\n",
    )
    result = runner.invoke(app, ["send", "asp23", "2024-12-03", "--test", "me@example.org"])
    assert (result.exit_code, result.output) == (
        1,
        "out/asp23/2024-12-03/digest.eml: not built; run `aspdigest build asp23` first\n",
    )
    result = runner.invoke(app, ["send", "asp23", DATE])
    assert result.output == (
        "send: give --test ADDRESS; the digest goes to subscribers through the schedule\n"
    )
    monkeypatch.delenv("ASPDIGEST_UNSUBSCRIBE_KEY")
    result = runner.invoke(app, ["send", "asp23", DATE, "--test", "me@example.org"])
    assert result.exit_code == 1 and result.output.startswith("ASPDIGEST_UNSUBSCRIBE_KEY: not set")
    assert len(sink.messages) == 1


def test_full_send_reaches_every_subscriber_not_suppressed_once(
    project: Project, sink: Sink
) -> None:
    with open_project_store(project) as store:
        delivery_id = claimed(project, store)
        store.suppress("Eve.Test@example.org", "unsubscribed")
        seen: list[tuple[int, int, str]] = []
        report = send_digest(
            store, delivery_id, project, environ=environ(sink), progress=lambda *a: seen.append(a)
        )
        assert (report.status, report.connections, report.error) == ("sent", 1, None)
        assert report.counts == {
            "pending": 0,
            "sending": 0,
            "sent": 4,
            "failed": 0,
            "suppressed": 1,
            "unknown": 0,
        }
        assert [s[:2] for s in seen] == [(i, 5) for i in range(1, 6)]
        assert statuses(store, delivery_id)["eve.test@example.org"] == "suppressed"
        delivery = store.delivery(delivery_id)
        assert delivery is not None and delivery.receipt is not None
        assert delivery.receipt["connections"] == 1
        token_ids = store.token_ids()
    assert sink.recipients() == SAMPLE[:4]
    ids = set()
    for msg, address in zip(sink.parsed(), SAMPLE, strict=False):
        # The header survives a strict parse intact, with this recipient's own token.
        unsubscribe = str(msg["List-Unsubscribe"])
        token = unsubscribe.split("token=")[1].split(">")[0]
        assert unsubscribe == (
            f"<https://example.org/unsubscribe?token={token}>, "
            f"<mailto:unsubscribe@example.org?subject=unsubscribe%20{token}>"
        )
        assert verify_token(token, Keys(KEY.encode()), LIST, "unsubscribe") == token_ids[address]
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert msg["List-Id"] == "Women's Initiatives for Gender Justice <asp-digest.example.org>"
        assert msg["Subject"] == "If the ICC collapses, the rule of law collapses | ASP23"
        assert msg["To"].addresses[0].addr_spec == address
        assert f"{address} is subscribed" in html_part(msg)
        ids.add(str(msg["Message-ID"]))
    assert next(iter(sink.parsed()))["To"] == "Ana Example <ana.example@example.org>"
    assert sink.parsed()[2]["To"].addresses[0].display_name == "Chloé Exemple"
    assert len(ids) == 4


def test_stopped_send_resumes_without_a_second_copy(project: Project, sink: Sink) -> None:
    class Stop(Exception):
        pass

    def stop_after_two(done: int, total: int, address: str) -> None:
        if done == 2:
            raise Stop

    with open_project_store(project) as store:
        delivery_id = claimed(project, store)
        with pytest.raises(Stop):
            send_digest(store, delivery_id, project, environ=environ(sink), progress=stop_after_two)
        assert store.recipient_counts(delivery_id)["sent"] == 2
        delivery = store.delivery(delivery_id)
        assert delivery is not None and delivery.status == "claimed"
        report = send_digest(store, delivery_id, project, environ=environ(sink))
        assert report.status == "sent" and report.counts["sent"] == 5
    assert sorted(sink.recipients()) == SAMPLE


CHILD = """
import sys
from pathlib import Path
from aspdigest.config import load_project
from aspdigest.deliver.email import send_digest
from aspdigest.store import open_project_store

project = load_project(Path(sys.argv[1]))
with open_project_store(project) as store:
    send_digest(store, int(sys.argv[2]), project)
"""


def test_killed_sender_resumes_and_leaves_the_uncertain_one_for_review(
    project: Project, sink: Sink
) -> None:
    with open_project_store(project) as store:
        delivery_id = claimed(project, store)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASPDIGEST_")}
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(project.root), str(delivery_id)],
        env={**env, **environ(sink), **FAST},
    )

    def kill_on_third(n: int) -> None:
        if n == 3:  # the server has the message; the sender dies before it hears so
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()

    sink.on_message = kill_on_third
    assert proc.wait(timeout=60) == -signal.SIGKILL
    sink.on_message = None
    with open_project_store(project) as store:
        assert statuses(store, delivery_id)[SAMPLE[2]] == "sending"
        report = send_digest(store, delivery_id, project, environ=environ(sink))
        assert report.status == "unknown"
        assert report.error == (
            "1 recipient(s) may or may not have received the digest; check "
            "the SMTP server's log, then resolve them by hand"
        )
        rows = {r.address: r for r in store.recipients(delivery_id)}
    assert [rows[a].status for a in SAMPLE] == ["sent", "sent", "unknown", "sent", "sent"]
    assert rows[SAMPLE[2]].last_error == (
        "interrupted while being handed to the server; check "
        "the server's log before sending this recipient a copy"
    )
    assert sorted(sink.recipients()) == SAMPLE  # exactly one copy each


def test_temporary_failure_is_retried_with_backoff(sample_root: Path, sink: Sink) -> None:
    project = built_project(sample_root, ASPDIGEST_EMAIL_RETRY_BACKOFF="0.5")
    sink.rcpt_replies[SAMPLE[1]] = ["451 4.7.1 greylisted, try again"] * 2
    with open_project_store(project) as store:
        delivery_id = claimed(project, store)
        started = time.monotonic()
        report = send_digest(store, delivery_id, project, environ=environ(sink))
        elapsed = time.monotonic() - started
        rows = {r.address: r for r in store.recipients(delivery_id)}
    assert elapsed >= 1.5  # waited 0.5 s, then 1 s
    assert report.status == "sent" and report.counts["sent"] == 5
    assert rows[SAMPLE[1]].attempts == 3 and rows[SAMPLE[1]].status == "sent"
    # The greylisted recipient waited its turn while the others went out.
    assert sink.recipients() == [SAMPLE[0], *SAMPLE[2:], SAMPLE[1]]


def test_temporary_failure_gives_up_after_max_attempts(sample_root: Path, sink: Sink) -> None:
    project = built_project(sample_root, ASPDIGEST_EMAIL_MAX_ATTEMPTS="3")
    sink.rcpt_replies[SAMPLE[0]] = ["452 4.2.2 mailbox full"] * 5
    with open_project_store(project) as store:
        delivery_id = claimed(project, store)
        report = send_digest(store, delivery_id, project, environ=environ(sink))
        [row] = [r for r in store.recipients(delivery_id) if r.address == SAMPLE[0]]
    assert (row.status, row.attempts) == ("failed", 3)
    assert row.last_error == "452 4.2.2 mailbox full (gave up after 3 attempts)"
    assert report.status == "sent" and sorted(sink.recipients()) == SAMPLE[1:]


def test_permanent_failure_is_recorded_and_the_rest_are_sent(project: Project, sink: Sink) -> None:
    sink.rcpt_replies[SAMPLE[2]] = ["550 5.1.1 no such user"]
    with open_project_store(project) as store:
        delivery_id = claimed(project, store)
        report = send_digest(store, delivery_id, project, environ=environ(sink))
        rows = {r.address: r for r in store.recipients(delivery_id)}
    assert (rows[SAMPLE[2]].status, rows[SAMPLE[2]].last_error, rows[SAMPLE[2]].attempts) == (
        "failed",
        "550 5.1.1 no such user",
        1,
    )
    assert report.status == "sent" and report.counts["failed"] == 1
    assert sink.recipients() == [a for a in SAMPLE if a != SAMPLE[2]]


def test_every_recipient_refused_fails_the_delivery(project: Project, sink: Sink) -> None:
    for address in SAMPLE:
        sink.rcpt_replies[address] = ["554 5.7.1 relay denied"]
    with open_project_store(project) as store:
        delivery_id = claimed(project, store)
        report = send_digest(store, delivery_id, project, environ=environ(sink))
    assert (report.status, report.error) == ("failed", "every recipient failed (5)")


def test_dropped_connection_reconnects_and_resumes(project: Project, sink: Sink) -> None:
    sink.drop_at_mail = {2}
    with open_project_store(project) as store:
        delivery_id = claimed(project, store)
        report = send_digest(store, delivery_id, project, environ=environ(sink))
    assert (report.status, report.connections) == ("sent", 2)
    assert sink.recipients() == SAMPLE and sink.connections == 2


def test_drop_while_waiting_for_the_final_reply_is_unknown_not_resent(
    project: Project, sink: Sink
) -> None:
    sink.drop_after_data = {3}
    with open_project_store(project) as store:
        delivery_id = claimed(project, store)
        report = send_digest(store, delivery_id, project, environ=environ(sink))
        rows = {r.address: r for r in store.recipients(delivery_id)}
    assert report.status == "unknown" and report.connections == 2
    assert rows[SAMPLE[2]].status == "unknown"
    assert rows[SAMPLE[2]].last_error is not None
    assert rows[SAMPLE[2]].last_error.startswith("connection lost")
    assert {a: r.status for a, r in rows.items() if a != SAMPLE[2]} == dict.fromkeys(
        SAMPLE[:2] + SAMPLE[3:], "sent"
    )  # nobody else is in doubt
    assert sink.recipients() == SAMPLE  # the server did take it, exactly once


def test_drop_in_the_middle_of_data_is_retried_and_each_copy_arrives_once(
    project: Project, sink: Sink
) -> None:
    # Two recipients' first tries are cut after 354, before the final dot: the server
    # cannot have taken them, so they are sent again, not left in doubt.
    sink.drop_in_data = {SAMPLE[1]: 1, SAMPLE[3]: 2}
    with open_project_store(project) as store:
        delivery_id = claimed(project, store)
        report = send_digest(store, delivery_id, project, environ=environ(sink))
        rows = {r.address: r for r in store.recipients(delivery_id)}
    assert (report.status, report.counts["sent"], report.counts["unknown"]) == ("sent", 5, 0)
    assert {a: (r.status, r.attempts) for a, r in rows.items()} == {
        SAMPLE[0]: ("sent", 1),
        SAMPLE[1]: ("sent", 2),
        SAMPLE[2]: ("sent", 1),
        SAMPLE[3]: ("sent", 3),
        SAMPLE[4]: ("sent", 1),
    }
    assert sorted(sink.recipients()) == SAMPLE  # exactly one copy each
    assert report.connections == 4 and sink.drop_in_data == {SAMPLE[1]: 0, SAMPLE[3]: 0}


def test_final_reply_550_fails_that_recipient_only(project: Project, sink: Sink) -> None:
    sink.data_replies[SAMPLE[1]] = ["550 5.7.1 message refused for this mailbox"]
    with open_project_store(project) as store:
        delivery_id = claimed(project, store)
        report = send_digest(store, delivery_id, project, environ=environ(sink))
        rows = {r.address: r for r in store.recipients(delivery_id)}
    assert report.status == "sent" and report.connections == 1
    assert {a: r.status for a, r in rows.items()} == {
        a: "failed" if a == SAMPLE[1] else "sent" for a in SAMPLE
    }
    assert rows[SAMPLE[1]].last_error == "550 5.7.1 message refused for this mailbox"
    assert sink.recipients() == [a for a in SAMPLE if a != SAMPLE[1]]


def test_rate_limit_spaces_the_messages(sample_root: Path, sink: Sink) -> None:
    project = built_project(sample_root, ASPDIGEST_EMAIL_RATE_PER_SECOND="20")
    with open_project_store(project) as store:
        delivery_id = claimed(project, store)
        started = time.monotonic()
        send_digest(store, delivery_id, project, environ=environ(sink))
        elapsed = time.monotonic() - started
    assert len(sink.messages) == 5 and elapsed >= 0.2  # four gaps of 1/20 s


def test_unreachable_server_fails_the_delivery_and_keeps_the_rest_pending(project: Project) -> None:
    with open_project_store(project) as store:
        delivery_id = claimed(project, store)
        port = free_port()
        env = {**environ(Sink()), "ASPDIGEST_SMTP_URL": f"smtp://digest:pw123@127.0.0.1:{port}"}
        report = send_digest(store, delivery_id, project, environ=env)
        assert report.status == "failed"
        assert report.error is not None
        assert report.error.startswith(
            f"smtp://digest@127.0.0.1:{port}: cannot connect after 3 attempts: "
        )
        assert "pw123" not in report.error
        assert store.recipient_counts(delivery_id)["pending"] == 5


def test_setup_problems_fail_the_delivery_with_one_line(project: Project, sink: Sink) -> None:
    with open_project_store(project) as store:
        delivery_id = claimed(project, store)
        with pytest.raises(UserError) as err:
            send_digest(store, delivery_id, project, environ={"ASPDIGEST_UNSUBSCRIBE_KEY": KEY})
        assert str(err.value) == (
            "ASPDIGEST_SMTP_URL: not set; set it to smtp://user@host:587 (STARTTLS) or "
            "smtps://user@host:465, and the password in ASPDIGEST_SMTP_PASSWORD"
        )
        delivery = store.delivery(delivery_id)
        assert delivery is not None and delivery.status == "failed"
        assert delivery.last_error == str(err.value)
        with pytest.raises(UserError) as err:
            send_digest(store, delivery_id, project, environ=environ(sink))
        assert str(err.value) == (
            f"delivery {delivery_id}: is email and failed; send_digest "
            "sends a claimed email delivery"
        )
        other = store.ensure_delivery("asp23", delivery.date, "email", "again")
        store.approve(other.id, {"2024-12-02/digest.eml": "0" * 64}, "tester")
        store.claim(other.id)
        with pytest.raises(UserError) as err:
            send_digest(store, other.id, project, environ=environ(sink))
        assert str(err.value) == (
            "out/asp23/2024-12-02/digest.eml: changed since it was "
            "approved; approve the new build before sending"
        )
    assert sink.messages == []


def test_html_injection_arrives_escaped(sample_root: Path, sink: Sink) -> None:
    import datetime as dt

    payload = '<script>alert(1)</script>"><img src=x onerror=alert(1)>'
    (sample_root / "content/asp23/2024-12-02/injection.md").write_text(
        f"""---
title: '{payload}'
kind: statement
summary: '{payload}'
organisers: ['{payload}']
speakers:
  - name: '{payload}'
quotes:
  - text: '{payload}'
    by: '{payload}'
---
{payload}
""",
        encoding="utf-8",
    )
    project = built_project(sample_root)
    send_test(project, "asp23", dt.date(2024, 12, 2), "me@example.org", environ(sink))
    [msg] = sink.parsed()
    body = html_part(msg)
    assert "<script" not in body and "<img" not in body
    # Shown as text: title (in the "In this issue" list too), organiser, speaker, quote,
    # attribution and body.
    assert html.unescape(body).count(payload) == 7


def test_smtp_url_parsing_never_keeps_the_password_in_sight() -> None:
    target = parse_smtp_url("smtps://digest%40example.org:p%40ss@mail.example.org")
    assert (target.scheme, target.host, target.port, target.user, target.password) == (
        "smtps",
        "mail.example.org",
        465,
        "digest@example.org",
        "p@ss",
    )
    assert target.safe == "smtps://digest@example.org@mail.example.org:465"
    assert "p@ss" not in repr(target)
    assert parse_smtp_url("smtp://u@h", "from-env").password == "from-env"
    assert parse_smtp_url("smtp://h:2525").port == 2525
    for url, message in [
        (
            "http://user:secret@h",
            "ASPDIGEST_SMTP_URL: expected smtp://user@host:port (STARTTLS) "
            "or smtps://user@host:port (TLS), got http://h",
        ),
        ("smtp://", "ASPDIGEST_SMTP_URL: no host name in smtp://…"),
        ("smtp://u:secret@h:port", "ASPDIGEST_SMTP_URL: the port is not a number"),
    ]:
        with pytest.raises(UserError) as err:
            parse_smtp_url(url)
        assert str(err.value) == message


def _authenticator(
    server: Any, session: Any, envelope: Any, mechanism: str, data: Any
) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"digest", b"s3cret")
    return AuthResult(success=ok, handled=False)


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_login_and_a_refused_password_is_not_shown(project: Project) -> None:
    import datetime as dt

    sink = Sink()
    controller = serve(
        sink, authenticator=_authenticator, auth_require_tls=False, auth_required=True
    )
    try:
        env = environ(
            sink,
            ASPDIGEST_SMTP_URL=f"smtp://digest@127.0.0.1:{sink.port}",
            ASPDIGEST_SMTP_PASSWORD="s3cret",
        )
        send_test(project, "asp23", dt.date(2024, 12, 2), "me@example.org", env)
        env["ASPDIGEST_SMTP_PASSWORD"] = "wrong-horse"
        with pytest.raises(UserError) as err:
            send_test(project, "asp23", dt.date(2024, 12, 2), "me@example.org", env)
    finally:
        controller.stop()
    assert str(err.value) == (
        f"smtp://digest@127.0.0.1:{sink.port}: login refused: "
        "535 5.7.8 Authentication credentials invalid"
    )
    assert len(sink.messages) == 1


@pytest.fixture
def certificate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ssl.SSLContext:
    """A self-signed certificate for 127.0.0.1 that the client is told to trust."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_starttls_and_implicit_tls(project: Project, certificate: ssl.SSLContext) -> None:
    import datetime as dt

    starttls = Sink()
    controllers = [
        serve(
            starttls,
            tls_context=certificate,
            require_starttls=True,
            authenticator=_authenticator,
            auth_required=True,
        )
    ]
    implicit = Sink()
    controllers.append(
        serve(
            implicit,
            ssl_context=certificate,
            authenticator=_authenticator,
            auth_required=True,
            auth_require_tls=False,
        )
    )
    try:
        for sink, scheme in ((starttls, "smtp"), (implicit, "smtps")):
            env = environ(
                sink, ASPDIGEST_SMTP_URL=f"{scheme}://digest:s3cret@127.0.0.1:{sink.port}"
            )
            send_test(project, "asp23", dt.date(2024, 12, 2), "me@example.org", env)
            assert len(sink.messages) == 1
    finally:
        for controller in controllers:
            controller.stop()


def primary_address() -> str:
    """This machine's address on its network (not loopback), as the kernel would route."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("192.0.2.1", 9))  # nothing is sent: UDP connect only picks a route
        address = str(s.getsockname()[0])
    assert not address.startswith("127."), "this test needs a network interface besides loopback"
    return address


def test_no_password_over_an_unencrypted_network_connection(project: Project) -> None:
    import datetime as dt

    sink = Sink()
    host = primary_address()
    sink.port = free_port()
    controller = Controller(sink, hostname=host, port=sink.port)
    controller.start()
    try:
        env = environ(sink, ASPDIGEST_SMTP_URL=f"smtp://digest:s3cret@{host}:{sink.port}")
        with pytest.raises(UserError) as err:
            send_test(project, "asp23", dt.date(2024, 12, 2), "me@example.org", env)
    finally:
        controller.stop()
    assert str(err.value) == (
        f"smtp://digest@{host}:{sink.port}: the server offers no "
        "STARTTLS; refusing to send the password unencrypted (use smtps://)"
    )
    assert sink.messages == []


def test_envelope_sender_is_the_return_path_when_set(sample_root: Path, sink: Sink) -> None:
    import datetime as dt

    project = built_project(sample_root, ASPDIGEST_EMAIL_RETURN_PATH="bounces@example.org")
    send_test(project, "asp23", dt.date(2024, 12, 2), "me@example.org", environ(sink))
    assert sink.messages[0][0] == "bounces@example.org"
    assert sink.parsed()[0]["From"] == "Gender Justice Digest <digest@example.org>"
    broken = built_project(sample_root, ASPDIGEST_EMAIL_RETURN_PATH="bounces")
    with pytest.raises(UserError) as err:
        send_test(broken, "asp23", dt.date(2024, 12, 2), "me@example.org", environ(sink))
    assert str(err.value) == (
        "aspdigest.toml: email.return_path: expected an address like "
        '"Digest <digest@example.org>", got "bounces"'
    )


# -- issue 19: header injection ----------------------------------------------------------------

BLANK_LINE_TITLE = "Day one =?utf-8?q?=0D=0A=0D=0AList-Unsubscribe:_<https://evil.example/u>?="


def test_test_copy_of_a_title_that_bypassed_check_has_the_real_unsubscribe_only(
    sample_root: Path, sink: Sink, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The blank-line variant of the issue: it used to crash `send --test` with KeyError.
    project = load_project(sample_root, environ=FAST)
    content = load_content(project, "asp23")
    day = dataclasses.replace(plan_days(content)[0], title=BLANK_LINE_TITLE)
    result = digest(day, RenderContext(project, content, make_environment(project)))
    path = BuiltDay(project, "asp23", day.date).eml
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(result.eml)
    monkeypatch.chdir(project.root)
    for name, value in {**environ(sink), **FAST}.items():
        monkeypatch.setenv(name, value)
    outcome = CliRunner().invoke(app, ["send", "asp23", DATE, "--test", "me@example.org"])
    assert (outcome.exit_code, outcome.output) == (
        0,
        "asp23 2024-12-02: test copy sent to me@example.org\n",
    )
    [msg] = sink.parsed()
    [unsubscribe] = msg.get_all("List-Unsubscribe")
    token = str(unsubscribe).split("token=")[1].split(">")[0]
    assert str(unsubscribe) == (
        f"<https://example.org/unsubscribe?token={token}>, "
        f"<mailto:unsubscribe@example.org?subject=unsubscribe%20{token}>"
    )
    assert verify_token(token, Keys(KEY.encode()), LIST, "unsubscribe") is not None
    assert msg["Subject"] == f"[TEST] {BLANK_LINE_TITLE} | ASP23"
    assert "me@example.org is subscribed" in html_part(msg)


def test_an_unsafe_stored_name_is_left_out_and_everyone_gets_the_digest(
    project: Project, sink: Sink, caplog: pytest.LogCaptureFixture
) -> None:
    # A name stored before the import checked names (the issue's): it stopped the send at
    # its row, and `retry` stopped there again, so later recipients never got the digest.
    people = [
        ("ana@example.org", "Ana Example", None),
        ("carol@example.org", "=?utf-8?q?Carol=0D=0AX-Injected:_name?=", None),
        ("dan@example.org", "Dan\r\nBcc: eve@example.org", None),
    ]
    with open_project_store(project) as store:
        store.import_subscribers(people)
        d = store.ensure_delivery(
            "asp23", plan_days(load_content(project, "asp23"))[0].date, "email"
        )
        assert store.approve(d.id, {}, "tester") and store.claim(d.id)
        with caplog.at_level(logging.WARNING, logger="aspdigest.render.message"):
            report = send_digest(store, d.id, project, environ=environ(sink))
        assert (report.status, report.error, report.counts["sent"]) == ("sent", None, 3)
    assert sink.recipients() == [a for a, _, _ in people]
    assert [str(m["To"]) for m in sink.parsed()] == [
        "Ana Example <ana@example.org>",
        "carol@example.org",
        "dan@example.org",
    ]
    for msg in sink.parsed():
        assert "X-Injected" not in msg and "Bcc" not in msg
        assert len(msg.get_all("List-Unsubscribe")) == 1
    assert [r.getMessage() for r in caplog.records] == [
        "carol@example.org: display name left out of the To header: contains the encoded word "
        '"=?utf-8?q?Carol=0D=0AX-Injected:_name?=", which decodes to U+000D (CARRIAGE RETURN); '
        "write the text itself",
        "dan@example.org: display name left out of the To header: contains the control character "
        "U+000D (CARRIAGE RETURN); remove it",
    ]


def test_recipients_in_doubt_are_shown_and_resolved_one_by_one(
    project: Project, sink: Sink, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = dt.datetime(2024, 12, 2, 7, 30, tzinfo=dt.UTC)
    sink.drop_after_data = {2, 4}  # the server keeps SAMPLE[1] and SAMPLE[3], then drops
    eml = BuiltDay(project, "asp23", dt.date(2024, 12, 2)).eml
    with open_project_store(project, clock=lambda: at) as store:
        import_csv(store, subscribers_path(project))
        store.set_queue("asp23", timezone="UTC", planned_at=at)  # what `schedule plan` does
        delivery_id = store.ensure_delivery("asp23", dt.date(2024, 12, 2), "digest").id
        sha = hashlib.sha256(eml.read_bytes()).hexdigest()
        assert store.approve(delivery_id, {"digest.eml": sha}, "tester")
        assert store.claim(delivery_id)
        report = send_digest(store, delivery_id, project, environ=environ(sink))
    assert report.status == "unknown"
    monkeypatch.chdir(project.root)
    for name, value in {**environ(sink), **FAST}.items():
        monkeypatch.setenv(name, value)
    cli = CliRunner()
    label = f"delivery {delivery_id} (2024-12-02 digest)"
    shown = cli.invoke(app, ["schedule", "show", str(delivery_id)])
    assert (shown.exit_code, shown.output) == (
        0,
        f"{label}: unknown\n"
        "send at:    -\n"
        "approved:   2024-12-02 07:30Z by tester\n"
        "claimed:    2024-12-02 07:30Z\n"
        "sent:       -\n"
        "attempts:   1\n"
        "last error: 2 recipient(s) may or may not have received the digest; check the "
        "SMTP server's log, then resolve them by hand\n"
        "recipients: 3 sent, 2 unknown\n"
        "history:\n"
        "  2024-12-02 07:30Z  planned -> approved  by tester\n"
        "  2024-12-02 07:30Z  approved -> claimed  by runner\n"
        "  2024-12-02 07:30Z  claimed -> unknown  by runner: 2 recipient(s) may or may not have "
        "received the digest; check the SMTP server's log, then resolve them by hand\n"
        "in doubt: 2\n"
        f"  {SAMPLE[1]}  since 2024-12-02 07:30Z  connection lost: Connection unexpectedly "
        "closed\n"
        f"  {SAMPLE[3]}  since 2024-12-02 07:30Z  connection lost: Connection unexpectedly "
        "closed\n",
    )

    def resolve(*args: str) -> tuple[int, str]:
        result = cli.invoke(app, ["schedule", "resolve", str(delivery_id), *args, "--by", "ana"])
        return result.exit_code, result.output

    assert resolve("--recipient", "nobody@example.org", "--recipient", SAMPLE[0], "--sent") == (
        1,
        f"{label}: nobody@example.org: not a recipient of this delivery; "
        f"`aspdigest schedule show {delivery_id}` lists the ones in doubt\n"
        f"{label}: {SAMPLE[0]}: is sent, not unknown; only a recipient in doubt is resolved\n",
    )
    assert resolve("--recipient", SAMPLE[1].upper(), "--sent") == (
        0,
        f"{label}: unknown, - (1 recipient(s) resolved as sent, 1 in doubt)\n",
    )
    assert resolve("--recipient", SAMPLE[1], "--not-sent") == (
        1,
        f"{label}: {SAMPLE[1]}: is sent, not unknown; only a recipient in doubt is resolved\n",
    )
    assert resolve("--recipient", SAMPLE[3], "--not-sent") == (
        0,
        f"{label}: failed, - (1 recipient(s) resolved as not sent, 0 in doubt)\n",
    )
    view = json.loads(cli.invoke(app, ["schedule", "show", str(delivery_id), "--json"]).output)
    assert (view["status"], view["recipients"], view["in_doubt"]) == (
        "failed",
        {"sent": 4, "pending": 1},
        [],
    )
    assert view["last_error"] == (
        f"1 recipient(s) resolved as not sent; `aspdigest schedule retry {delivery_id}` "
        "sends to them"
    )
    assert [(e["previous"], e["status"], e["by"], e["note"]) for e in view["history"]][3:] == [
        ("unknown", "unknown", "ana", f"{SAMPLE[1]}: resolved as sent by ana"),
        ("unknown", "unknown", "ana", f"{SAMPLE[3]}: resolved as not sent by ana"),
        ("unknown", "failed", "ana", "recipients in doubt resolved; 1 left"),
    ]
    before = len(sink.messages)
    retried = cli.invoke(app, ["schedule", "retry", str(delivery_id), "--by", "ana"])
    assert retried.exit_code == 0, retried.output
    assert [r for _, rcpts, _ in sink.messages[before:] for r in rcpts] == [SAMPLE[3]]
    with open_project_store(project) as store:
        assert statuses(store, delivery_id) == dict.fromkeys(SAMPLE, "sent")
        d = store.delivery(delivery_id)
        assert d is not None and d.status == "sent"


def _scripted_server(
    steps: list[tuple[int, bytes]], reads: list[bytes]
) -> tuple[socket.socket, int]:
    """A one-connection SMTP server: for each step it reads that many lines (0: a message up
    to its final dot) before it sends the step's reply, and keeps what it read in `reads`.
    A client that waited for a reply between lines the server reads together would stall."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.sendall(b"220 scripted\r\n")
            buffer = b""
            for lines, reply in steps:
                end = -1
                while end < 0:
                    if lines:
                        end = -1 if buffer.count(b"\r\n") < lines else _nth_line_end(buffer, lines)
                    else:
                        end = buffer.find(b"\r\n.\r\n") + 5 if b"\r\n.\r\n" in buffer else -1
                    if end < 0:
                        chunk = conn.recv(65536)
                        if not chunk:
                            return
                        buffer += chunk
                reads.append(buffer[:end])
                buffer = buffer[end:]
                conn.sendall(reply)

    threading.Thread(target=serve, daemon=True).start()
    return listener, int(listener.getsockname()[1])


def _nth_line_end(data: bytes, n: int) -> int:
    end = 0
    for _ in range(n):
        end = data.index(b"\r\n", end) + 2
    return end


def test_with_pipelining_mail_rcpt_and_data_leave_in_one_write() -> None:
    reads: list[bytes] = []
    listener, port = _scripted_server(
        [
            (1, b"250-scripted\r\n250 PIPELINING\r\n"),
            (3, b"250 sender ok\r\n250 recipient ok\r\n354 go ahead\r\n"),
            (0, b"250 queued\r\n"),
            (1, b"221 bye\r\n"),
        ],
        reads,
    )
    target = parse_smtp_url(f"smtp://127.0.0.1:{port}")
    with listener, SmtpSession(target, timeout=5, connect_attempts=1) as session:
        assert session.begin("a@example.org", "b@example.org", b"Subject: x\r\n\r\n.hi\r\n") is None
        assert session.end() == Reply("sent", 250, "queued")
    assert reads[1] == b"mail FROM:<a@example.org>\r\nrcpt TO:<b@example.org>\r\ndata\r\n"
    assert reads[2] == b"Subject: x\r\n\r\n..hi\r\n.\r\n"  # the leading dot doubled


def test_with_pipelining_a_refused_recipient_is_reported_and_the_transaction_reset() -> None:
    reads: list[bytes] = []
    listener, port = _scripted_server(
        [
            (1, b"250-scripted\r\n250 PIPELINING\r\n"),
            (3, b"250 sender ok\r\n550 5.1.1 no such user\r\n503 5.5.1 no valid recipients\r\n"),
            (1, b"250 reset\r\n"),
            (1, b"221 bye\r\n"),
        ],
        reads,
    )
    target = parse_smtp_url(f"smtp://127.0.0.1:{port}")
    with listener, SmtpSession(target, timeout=5, connect_attempts=1) as session:
        reply = session.begin("a@example.org", "nobody@example.org", b"Subject: x\r\n\r\nhi\r\n")
        assert reply == Reply("permanent", 550, "5.1.1 no such user")
        assert session.connections == 1
    assert reads[2] == b"rset\r\n"  # the connection stays for the next recipient


@settings(max_examples=2000, deadline=None)
@given(st.lists(st.sampled_from([b"a", b".", b"\r", b"\n", b"\r\n", b"..", b"x y"]), max_size=14))
def test_the_message_on_the_wire_has_crlf_lines_and_its_leading_dots_doubled(
    parts: list[bytes],
) -> None:
    data = b"".join(parts)
    lines = re.sub(rb"\r\n|\r|\n", b"\n", data).split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    expected = b"".join(
        (b"." + line if line.startswith(b".") else line) + b"\r\n" for line in lines
    )
    assert _wire_body(data) == (expected or b"\r\n")


@settings(max_examples=1000, deadline=None)
@given(
    st.text(alphabet="abcXYZ09.!#$%&'*+/=?^_`{|}~-", max_size=12),
    st.text(alphabet="ab.-09 <>", max_size=10),
)
def test_an_address_is_quoted_as_smtplib_quotes_it(local: str, domain: str) -> None:
    address = f"{local}@{domain}"
    assert _quoted(address) == smtplib.quoteaddr(address)
