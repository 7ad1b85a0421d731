"""`aspdigest bounces ingest`: DSNs, non-standard bounces and ARF complaints, from files, a
Maildir and an mbox, into the suppression list; VERP and returned originals name the exact
reader."""

from __future__ import annotations

import datetime as dt
import json
import mailbox
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from typer.testing import CliRunner

from aspdigest.bounces import ingest
from aspdigest.cli import app
from aspdigest.config import load_project
from aspdigest.deliver.email import send_digest
from aspdigest.store import open_project_store
from aspdigest.subscribers import import_csv, subscribers_path
from aspdigest.tokens import Keys
from support.delivery_helpers import KEY, built_copy, environment, free_port

SAMPLES = Path(__file__).resolve().parent / "data" / "bounces"
FILES = sorted(SAMPLES.glob("*.eml"))
runner = CliRunner()


class Envelopes:
    """Keeps each message with its envelope sender (the VERP address)."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 2.0.0 queued"


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2024, 12, 2, 18, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.mark.parametrize("form", ["files", "maildir", "mbox"])
def test_each_format_suppresses_the_right_reader(
    sample_root: Path, tmp_path: Path, form: str
) -> None:
    project = load_project(sample_root, environ={})
    if form == "files":
        paths = FILES
    elif form == "maildir":
        box = mailbox.Maildir(tmp_path / "Maildir", create=True)
        for f in FILES:
            box.add(f.read_bytes())
        paths = [tmp_path / "Maildir"]
    else:
        mbox = mailbox.mbox(tmp_path / "bounces.mbox", create=True)
        for f in FILES:
            mbox.add(f.read_bytes())
        mbox.flush()
        paths = [tmp_path / "bounces.mbox"]
    clock = Clock()
    with open_project_store(project, clock=clock) as store:
        import_csv(store, subscribers_path(project))
        report = ingest(store, project, paths, Keys(KEY.encode()))
        assert (report.messages, report.ignored, report.not_understood) == (5, 0, 0)
        assert dict(report.findings) == {"hard": 3, "soft": 1, "complaint": 1}
        assert {s.address: s.reason for s in store.suppressions()} == {
            "ana.example@example.org": "bounced",  # Postfix DSN, 5.1.1
            "chloe.exemple@example.org": "bounced",  # Exim, X-Failed-Recipients
            "dev.placeholder@example.org": "bounced",  # qmail
            "eve.test@example.org": "complained",  # Yahoo ARF
        }
        # Gmail's "delayed" (4.2.2) is soft: the third within 30 days suppresses.
        gmail = [SAMPLES / "gmail-delayed.eml"]
        clock.now += dt.timedelta(days=10)
        ingest(store, project, gmail, Keys(KEY.encode()))
        assert store.suppression("bruno.sample@example.org") is None
        clock.now += dt.timedelta(days=10)
        report = ingest(store, project, gmail, Keys(KEY.encode()))
        assert dict(report.suppressed) == {"bounced": 1}
        assert store.suppression("bruno.sample@example.org").reason == "bounced"  # type: ignore[union-attr]


def test_soft_bounces_older_than_30_days_do_not_count(sample_root: Path) -> None:
    project = load_project(sample_root, environ={})
    clock = Clock()
    gmail = [SAMPLES / "gmail-delayed.eml"]
    with open_project_store(project, clock=clock) as store:
        import_csv(store, subscribers_path(project))
        for _ in range(2):
            ingest(store, project, gmail, Keys(KEY.encode()))
        clock.now += dt.timedelta(days=31)
        ingest(store, project, gmail, Keys(KEY.encode()))
        assert store.suppression("bruno.sample@example.org") is None


def test_reports_about_strangers_are_ignored_and_the_command_says_so(
    sample_root: Path, tmp_path: Path
) -> None:
    # No subscriber imported: every report is about a stranger; nothing is suppressed.
    env = {"ASPDIGEST_UNSUBSCRIBE_KEY": KEY}
    args = ["bounces", "ingest", *map(str, FILES), "--project", str(sample_root)]
    result = runner.invoke(app, args, env=env)
    assert (result.exit_code, result.stdout) == (
        0,
        "5 messages: 0 hard bounces, 0 soft bounces, 0 complaints; suppressed 0 as bounced, "
        "0 as complained; 5 about non-subscribers ignored, 0 not understood\n",
    )
    assert (
        runner.invoke(app, ["subscribers", "import", "--project", str(sample_root)]).exit_code == 0
    )
    result = runner.invoke(app, [*args, "--json"], env=env)
    assert json.loads(result.stdout) == {
        "messages": 5,
        "hard": 3,
        "soft": 1,
        "complaints": 1,
        "suppressed": {"bounced": 3, "complained": 1},
        "ignored": 0,
        "not_understood": 0,
    }
    missing = tmp_path / "nope.eml"
    result = runner.invoke(
        app, ["bounces", "ingest", str(missing), "--project", str(sample_root)], env=env
    )
    assert (result.exit_code, result.stderr) == (1, f"{missing}: No such file or directory\n")
    (tmp_path / "notmaildir").mkdir()
    result = runner.invoke(
        app,
        ["bounces", "ingest", str(tmp_path / "notmaildir"), "--project", str(sample_root)],
        env=env,
    )
    assert (result.exit_code, result.stderr) == (
        1,
        f"{tmp_path / 'notmaildir'}: not a Maildir (no cur/, new/, tmp/)\n",
    )


def test_verp_and_the_returned_original_name_the_exact_reader(tmp_path: Path) -> None:
    root = built_copy(tmp_path)
    sink = Envelopes()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        env = environment(port, ASPDIGEST_EMAIL_RETURN_PATH="bounces+{token}@example.org")
        project = load_project(root, environ=env)
        with open_project_store(project) as store:
            import_csv(store, subscribers_path(project))
            d = store.ensure_delivery("asp23", dt.date(2024, 12, 2), "email")
            assert store.approve(d.id, {}, "tester") and store.claim(d.id)
            assert send_digest(store, d.id, project, environ=env).status == "sent"
            senders = {rcpts[0]: sender for sender, rcpts, _ in sink.messages}
            originals = {rcpts[0]: data for _, rcpts, data in sink.messages}
            for address, sender in senders.items():
                assert sender.startswith("bounces+") and sender.endswith("@example.org")
                assert address.split("@")[0] not in sender
            # A bounce in a format nobody parses, sent to the VERP address: the token is
            # enough. It names no address at all.
            verp = EmailMessage()
            verp["From"] = "postmaster@mx.example.net"
            verp["To"] = senders["chloe.exemple@example.org"]
            verp["Subject"] = "Returned mail"
            verp.set_content("Sorry, we could not deliver your message. Reason: account closed.\n")
            (tmp_path / "verp.eml").write_bytes(verp.as_bytes())
            # A complaint that only attaches the original (with its To rewritten by the
            # provider): our own List-Unsubscribe token in it names the reader.
            original = originals["bruno.sample@example.org"].replace(
                b"To: bruno.sample@example.org", b"To: redacted@provider.example"
            )
            report = (
                b"From: fbl@provider.example\r\nTo: fbl@example.org\r\nSubject: Complaint\r\n"
                b"MIME-Version: 1.0\r\n"
                b'Content-Type: multipart/report; report-type=feedback-report; boundary="b"\r\n\r\n'
                b"--b\r\nContent-Type: text/plain\r\n\r\nAn abuse report.\r\n"
                b"--b\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\n"
                b"Version: 1\r\n\r\n"
                b"--b\r\nContent-Type: message/rfc822\r\n\r\n" + original + b"\r\n--b--\r\n"
            )
            (tmp_path / "arf.eml").write_bytes(report)
            result = ingest(
                store, project, [tmp_path / "verp.eml", tmp_path / "arf.eml"], Keys(KEY.encode())
            )
            assert (result.not_understood, result.ignored) == (0, 0)
            assert {s.address: s.reason for s in store.suppressions()} == {
                "chloe.exemple@example.org": "bounced",
                "bruno.sample@example.org": "complained",
            }
    finally:
        controller.stop()
