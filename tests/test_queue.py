"""queue/actions.py and queue/approval.py on real SQLite files over a really built sample project."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from icalendar import Calendar
from typer.testing import CliRunner

from aspdigest.build import build
from aspdigest.cli import app
from aspdigest.cli.schedule import ROW_HEADERS
from aspdigest.config import Project
from aspdigest.deliver import publication_for
from aspdigest.deliver.handoff import HandoffPublisher
from aspdigest.errors import UserError
from aspdigest.queue import actions as queue
from aspdigest.queue import plan
from aspdigest.queue.approval import approve, status
from aspdigest.queue.schedule import local_text
from aspdigest.queue.serve import deliver_now
from aspdigest.store import Delivery, Store, open_project_store, open_store
from aspdigest.store.lock import RunnerBusy, RunnerLock
from support.delivery_helpers import (
    DAY,
    built_copy,
    environment,
    postgres_schema,
    project,
    smtp_sink,
)
from support.store_helpers import mark_recipient_sending

BEFORE = dt.datetime(2024, 12, 1, 12, 0, tzinfo=dt.UTC)  # the Sunday before the conference
cli = CliRunner()


class Clock:
    def __init__(self, now: dt.datetime = BEFORE) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return built_copy(tmp_path)


@pytest.fixture(params=["sqlite", "postgresql"])
def state_url(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str | None]:
    """Each queue test on the project's SQLite file and on a fresh PostgreSQL schema (also
    for the CLI and any process started, through ASPDIGEST_STATE_URL); PostgreSQL being
    unreachable fails the test rather than skipping it."""
    if request.param == "sqlite":
        yield None
        return
    with postgres_schema("queue") as url:
        monkeypatch.setenv("ASPDIGEST_STATE_URL", url)
        yield url


@pytest.fixture
def proj(root: Path, state_url: str | None) -> Project:
    return project(root, **({"ASPDIGEST_STATE_URL": state_url} if state_url else {}))


@pytest.fixture
def store(proj: Project) -> Iterator[Store]:
    with open_project_store(proj, clock=Clock()) as s:
        yield s


def find(store: Store, channel: str, platform: str = "", date: dt.date = DAY) -> Delivery:
    return next(
        d
        for d in store.deliveries("asp23")
        if d.date == date and d.channel == channel and d.platform == platform
    )


def planned(proj: Project, store: Store) -> plan.PlanResult:
    return plan.plan(proj, "asp23", store)


# -- plan -----------------------------------------------------------------------------------------


def test_plan_is_idempotent(proj: Project, store: Store) -> None:
    first = planned(proj, store)
    assert first.count("created") == 50  # five days; no quote posts on 2024-12-04
    before = {(d.id, d.date, d.channel, d.platform, d.send_at) for d in store.deliveries()}
    again = planned(proj, store)
    assert {c.action for c in again.changes} == {"unchanged"}
    with open_project_store(proj) as fresh:
        third = plan.plan(proj, "asp23", fresh)
        assert {c.action for c in third.changes} == {"unchanged"}
    after = {(d.id, d.date, d.channel, d.platform, d.send_at) for d in store.deliveries()}
    assert after == before and len(after) == 50
    digest = find(store, "digest")
    assert digest.send_at == dt.datetime(2024, 12, 3, 6, 30, tzinfo=dt.UTC)
    assert digest.grace_seconds == 90 * 60 and digest.missed == "hold"
    assert store.queue("asp23") is not None


def test_racing_planners_create_each_delivery_once(proj: Project) -> None:
    errors: list[BaseException] = []

    def plan_once() -> None:
        try:
            with open_project_store(proj) as s:
                plan.plan(proj, "asp23", s)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=plan_once) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with open_project_store(proj) as s:
        keys = [(d.date, d.channel, d.platform) for d in s.deliveries()]
    assert len(keys) == len(set(keys)) == 50


def _edit_schedule(root: Path, old: str, new: str) -> None:
    path = root / "schedules/asp23.toml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_replanning_never_moves_what_was_sent_and_a_moved_time_drops_approval(
    root: Path, proj: Project, store: Store
) -> None:
    planned(proj, store)
    approve(proj, store, "asp23", DAY, by="ana")
    digest = find(store, "digest")
    assert store.claim(digest.id) and store.mark_sent(digest.id)
    _edit_schedule(root, 'time = "07:30"', 'time = "08:15"')
    _edit_schedule(root, 'time = "12:00"', 'time = "12:30"')
    result = planned(proj, store)
    actions = {(c.channel, c.platform): c for c in result.changes if c.date == DAY}
    assert actions[("digest", "")].action == "kept"
    sent = find(store, "digest")
    assert sent.status == "sent" and sent.send_at == digest.send_at
    thread = find(store, "thread", "x")
    assert actions[("thread", "x")].action == "unapproved"
    assert thread.status == "planned" and thread.approved is None and thread.approved_by is None
    assert thread.last_error == (
        "approval dropped: send time moved from Tue 2024-12-03 12:00 CET "
        "to Tue 2024-12-03 12:30 CET"
    )
    assert thread.send_at == dt.datetime(2024, 12, 3, 11, 30, tzinfo=dt.UTC)
    assert find(store, "quotes", "x").status == "approved"  # its time did not move
    assert [h.status for h in store.history(thread.id)] == ["planned", "approved", "planned"]
    # Not yet approved days just move.
    later = find(store, "thread", "x", dt.date(2024, 12, 3))
    assert later.status == "planned"
    assert later.send_at == dt.datetime(2024, 12, 4, 11, 30, tzinfo=dt.UTC)


def test_a_changed_artifact_after_approval_drops_approval(
    root: Path, proj: Project, store: Store
) -> None:
    planned(proj, store)
    approve(proj, store, "asp23", DAY, channel="thread", platform="x", by="ana")
    record = root / "content/asp23/2024-12-02/opening.md"
    text = record.read_text()
    record.write_text(text.replace("summary: ", "summary: Updated. ", 1))
    build(proj, "asp23", only=DAY)
    result = planned(proj, store)
    change = next(
        c for c in result.changes if c.channel == "thread" and c.platform == "x" and c.date == DAY
    )
    assert change.action == "unapproved"
    assert change.note.startswith("changed since approval: ") and "thread.x.json" in change.note
    assert find(store, "thread", "x").status == "planned"


def test_a_hand_made_reschedule_survives_replanning(proj: Project, store: Store) -> None:
    planned(proj, store)
    d = find(store, "digest")
    moved = queue.reschedule(proj, store, d.id, "09:45", by="ana")
    assert moved.send_at == dt.datetime(2024, 12, 3, 8, 45, tzinfo=dt.UTC)
    planned(proj, store)
    assert find(store, "digest").send_at == moved.send_at


def test_a_channel_dropped_from_the_schedule_is_skipped(
    root: Path, proj: Project, store: Store
) -> None:
    planned(proj, store)
    path = root / "schedules/asp23.toml"
    text = path.read_text()
    path.write_text(text[: text.index("[quotes]")] + text[text.index("# The last day") :])
    result = planned(proj, store)
    assert result.count("removed") == 20
    quotes = find(store, "quotes", "x")
    assert quotes.status == "skipped"
    assert quotes.last_error is None  # the reason is in the log, not an error
    assert store.history(quotes.id)[-1].note == (
        "no longer wanted by schedules/asp23.toml or not in the build"
    )


def test_approval_not_required_is_approved_by_planning(
    root: Path, proj: Project, store: Store
) -> None:
    _edit_schedule(root, "approval = true ", "approval = false")
    planned(proj, store)
    digest = find(store, "digest")
    assert digest.status == "approved"
    assert digest.approved_by == "schedule (approval not required)"
    assert find(store, "thread", "x").status == "planned"


def test_plan_needs_a_build(sample_project: Project) -> None:
    with open_project_store(sample_project) as s, pytest.raises(UserError) as caught:
        plan.plan(sample_project, "asp23", s)
    assert caught.value.lines() == ["out/asp23: not built; run `aspdigest build asp23` first"]


# -- approve ------------------------------------------------------------------------------------


def test_approve_records_the_built_hashes_and_who(proj: Project, store: Store) -> None:
    planned(proj, store)
    done = approve(proj, store, "asp23", DAY, channel="digest", by="Ana Example")
    assert len(done) == 1 and done[0].channel == "digest" and done[0].platform == ""
    manifest = json.loads((proj.output_dir / "asp23/2024-12-02/manifest.json").read_text())
    built = {a["path"]: a["sha256"] for a in manifest["artifacts"]}
    assert done[0].hashes == {n: built[n] for n in ("digest.eml", "digest.html", "digest.txt")}
    d = find(store, "digest")
    assert d.status == "approved" and d.approved == done[0].hashes
    assert d.approved_by == "Ana Example" and d.approved_at is not None
    rows = {r.id: r for r in status(store, "asp23")}
    assert rows[d.id].approved == done[0].hashes
    assert rows[d.id].send_at_local is not None
    assert rows[d.id].send_at_local.strftime("%H:%M %Z") == "07:30 CET"
    whole_day = approve(proj, store, "asp23", DAY, by="bo")
    assert len(whole_day) == 11
    assert approve(proj, store, "asp23", DAY, platform="email", by="bo")[0].channel == "digest"


def _approve_error(proj: Project, store: Store, **kwargs: object) -> list[str]:
    with pytest.raises(UserError) as caught:
        approve(
            proj,
            store,
            "asp23",
            kwargs.pop("date", DAY),
            by=str(kwargs.pop("by", "ana")),  # type: ignore[arg-type]
            **kwargs,
        )  # type: ignore[arg-type]
    return caught.value.lines()


def test_approve_errors(proj: Project, store: Store, root: Path) -> None:
    assert _approve_error(proj, store) == [
        "asp23 2024-12-02: no delivery planned; run `aspdigest schedule plan asp23` first"
    ]
    planned(proj, store)
    assert _approve_error(proj, store, channel="thread", platform="facebook") == [
        "asp23 2024-12-02: no thread facebook delivery planned; run `aspdigest schedule plan "
        "asp23` first"
    ]
    assert _approve_error(proj, store, channel="email") == [
        '--channel: expected one of digest, thread, quotes, got "email"'
    ]
    assert _approve_error(proj, store, channel="digest", platform="x") == [
        '--platform: the digest goes by email, not "x"'
    ]
    assert _approve_error(proj, store, by=" ") == [
        "--by: give the approver's name (or set ASPDIGEST_APPROVER)"
    ]
    assert _approve_error(proj, store, date=dt.date(2024, 12, 9)) == [
        "out/asp23/2024-12-09/manifest.json: not built; run `aspdigest build asp23` first"
    ]
    digest = find(store, "digest")
    approve(proj, store, "asp23", DAY, channel="digest", by="ana")
    assert store.claim(digest.id) and store.mark_sent(digest.id)
    (lines,) = [_approve_error(proj, store, channel="digest")]
    assert lines[0].startswith(f"delivery {digest.id} (2024-12-02 digest): already sent (")
    assert lines[0].endswith("); nothing to approve")
    (root / "out/asp23/2024-12-02/thread.x.txt").write_text("edited by hand\n")
    assert _approve_error(proj, store, channel="thread", platform="x") == [
        "out/asp23/2024-12-02/thread.x.txt: changed or missing since the build; run "
        "`aspdigest build asp23` again"
    ]


def test_approve_without_a_build(sample_project: Project) -> None:
    with open_project_store(sample_project) as store:
        assert _approve_error(sample_project, store) == [
            "out/asp23/2024-12-02/manifest.json: not built; run `aspdigest build asp23` first"
        ]


def test_a_file_changed_after_approval_is_held_at_send_time(
    root: Path, proj: Project, store: Store
) -> None:
    planned(proj, store)
    approve(proj, store, "asp23", DAY, by="ana")
    (root / "out/asp23/2024-12-02/thread.x.txt").write_text("edited after approval\n")
    (root / "out/asp23/2024-12-02/digest.eml").write_bytes(b"Subject: not what was approved\n")
    with open_project_store(proj) as live, smtp_sink() as (sink, port):
        live.import_subscribers([("ana@example.org", "Ana", "en")])
        for d in (find(live, "thread", "x"), find(live, "digest")):
            live.update_delivery(d.id, expect="approved", send_at=live.clock())
            assert deliver_now(proj, live, d.id, environ=environment(port))
        thread, digest = find(live, "thread", "x"), find(live, "digest")
        assert sink.count() == 0
    assert thread.status == "held" and digest.status == "held"
    assert thread.last_error == (
        "not sent: out/asp23/2024-12-02/thread.x.txt changed since it was approved by ana; "
        "approve the new build (`aspdigest approve asp23 2024-12-02 --channel thread`), then "
        f"`aspdigest schedule send-now {thread.id}`"
    )
    assert not (root / "outbox/asp23/2024-12-02/x").exists()
    with pytest.raises(UserError) as caught:
        queue.send_now(proj, store, thread.id, by="ana")
    assert caught.value.lines() == [
        f"delivery {thread.id} (2024-12-02 thread x): out/asp23/2024-12-02/thread.x.txt changed "
        "since it was approved; approve the new build with `aspdigest approve asp23 2024-12-02 "
        "--channel thread`"
    ]


# -- steering single deliveries -------------------------------------------------------------------


def _error(action: object) -> str:
    with pytest.raises(UserError) as caught:
        action()  # type: ignore[operator]
    (line,) = caught.value.lines()
    return line


def test_skip_reschedule_send_now_retry(proj: Project, store: Store) -> None:
    planned(proj, store)
    d = find(store, "digest")
    assert _error(lambda: queue.send_now(proj, store, d.id, by="ana")) == (
        f"delivery {d.id} (2024-12-02 digest): cannot send now: it is not approved; approve it "
        "first with `aspdigest approve asp23 2024-12-02 --channel digest` (only approved/held "
        "can)"
    )
    assert queue.skip(proj, store, d.id, by="ana").status == "skipped"
    assert _error(lambda: queue.skip(proj, store, d.id, by="ana")) == (
        f"delivery {d.id} (2024-12-02 digest): cannot skip: it is skipped (only "
        "planned/approved/held/failed can)"
    )
    back = queue.reschedule(proj, store, d.id, "2024-12-03 07:45", by="ana")
    assert back.status == "planned" and back.last_error is None
    assert back.send_at == dt.datetime(2024, 12, 3, 6, 45, tzinfo=dt.UTC)
    assert _error(lambda: queue.reschedule(proj, store, d.id, "25:00", by="ana")) == (
        'TIME: expected HH:MM or "YYYY-MM-DD HH:MM" (local time in Europe/Amsterdam), got "25:00"'
    )
    assert _error(lambda: queue.reschedule(proj, store, d.id, "2024-11-30 09:00", by="ana")) == (
        f"TIME: Sat 2024-11-30 09:00 CET is in the past; use `aspdigest schedule send-now "
        f"{d.id}` to send it now"
    )
    assert _error(lambda: queue.retry(proj, store, d.id, by="ana")) == (
        f"delivery {d.id} (2024-12-02 digest): cannot retry: it is not approved; approve it "
        "first with `aspdigest approve asp23 2024-12-02 --channel digest` (only failed/held "
        "can)"
    )
    approve(proj, store, "asp23", DAY, channel="digest", by="ana")
    now = queue.send_now(proj, store, d.id, by="ana")
    assert now.status == "approved" and now.send_at == BEFORE
    assert store.claim(d.id) and store.mark_failed(d.id, "server away")
    again = queue.retry(proj, store, d.id, by="bo")
    assert again.status == "approved" and again.last_error is None
    assert store.history(d.id)[-1].note == "retry after: server away"
    assert store.history(d.id)[-1].actor == "bo"
    assert _error(lambda: queue.get(store, 999)) == (
        "delivery 999: no such delivery; `aspdigest schedule list` shows the ids"
    )


def test_resolve_an_unknown_delivery(proj: Project, store: Store) -> None:
    planned(proj, store)
    approve(proj, store, "asp23", DAY, channel="digest", by="ana")
    d = find(store, "digest")
    assert _error(lambda: queue.resolve(proj, store, d.id, sent=True, by="ana")) == (
        f"delivery {d.id} (2024-12-02 digest): is approved, not unknown; only a delivery in "
        "doubt is resolved"
    )
    store.add_recipients(d.id, [("a@example.org", None), ("b@example.org", None)])
    a, b = store.recipients(d.id)
    assert store.claim(d.id)
    assert mark_recipient_sending(store, a.id) and store.mark_recipient_sent(a.id)
    assert mark_recipient_sending(store, b.id) and store.mark_recipient_unknown(b.id, "dropped")
    assert store.mark_unknown(d.id, "1 recipient in doubt")
    not_sent = queue.resolve(proj, store, d.id, sent=False, by="ana")
    assert not_sent.status == "failed"
    assert not_sent.last_error == (
        f"resolved as not sent by ana; `aspdigest schedule retry "
        f"{d.id}` sends it (1 recipient(s) left)"
    )
    assert store.recipient_counts(d.id)["pending"] == 1
    assert queue.retry(proj, store, d.id, by="ana").status == "approved"
    assert store.claim(d.id)
    assert mark_recipient_sending(store, b.id) and store.mark_recipient_unknown(b.id, "again")
    assert store.mark_unknown(d.id, "in doubt")
    sent = queue.resolve(proj, store, d.id, sent=True, by="bo")
    assert sent.status == "sent" and store.recipient_counts(d.id)["sent"] == 2


def test_pause_and_resume_ask_about_overdue_deliveries(proj: Project, store: Store) -> None:
    planned(proj, store)
    approve(proj, store, "asp23", DAY, by="ana")
    queue.pause(store, "asp23", by="ana")
    queue_row = store.queue("asp23")
    assert queue_row is not None and queue_row.paused_by == "ana"
    assert isinstance(store.clock, Clock)
    store.clock.now = dt.datetime(2024, 12, 3, 11, 30, tzinfo=dt.UTC)  # digest and threads due
    with pytest.raises(queue.OverdueDecision) as caught:
        queue.resume(proj, store, "asp23", choice=None, by="ana")
    digest = find(store, "digest")
    assert caught.value.lines() == [
        f"6 delivery(ies) came due while paused: {digest.id} (digest Tue 2024-12-03 07:30 CET), "
        + ", ".join(
            f"{find(store, 'thread', p).id} (thread Tue 2024-12-03 12:00 CET)"
            for p in ("bluesky", "linkedin", "mastodon", "threads")
        )
        + " and 1 more; say what to do with --overdue send|skip|reschedule --at TIME"
    ]
    assert _error(lambda: queue.resume(proj, store, "asp23", choice="reschedule", by="ana")) == (
        "--at: give the time to move the overdue deliveries to (HH:MM)"
    )
    late = queue.resume(proj, store, "asp23", choice="reschedule", at="13:00", by="ana")
    assert {d.send_at for d in late} == {dt.datetime(2024, 12, 3, 12, 0, tzinfo=dt.UTC)}
    queue_row = store.queue("asp23")
    assert queue_row is not None and queue_row.paused_at is None
    queue.pause(store, "asp23", by="ana")
    store.clock.now = dt.datetime(2024, 12, 3, 12, 30, tzinfo=dt.UTC)
    sent = queue.resume(proj, store, "asp23", choice="send", by="ana")
    assert {d.send_at for d in sent} == {store.clock.now}
    queue.pause(store, "asp23", by="ana")
    store.clock.now = dt.datetime(2024, 12, 3, 15, 30, tzinfo=dt.UTC)
    skipped = queue.resume(proj, store, "asp23", choice="skip", by="ana")
    assert {d.status for d in skipped} == {"skipped"} and len(skipped) == 11


def test_ics_has_stable_uids(proj: Project, store: Store, tmp_path: Path) -> None:
    planned(proj, store)
    data = queue.ics(store, "asp23", {"asp23": "Assembly 23"})
    cal = Calendar.from_ical(data)
    events = [c for c in cal.walk() if c.name == "VEVENT"]
    assert len(events) == 50
    first = next(e for e in events if str(e["uid"]) == "asp23-2024-12-02-digest@aspdigest")
    assert first.decoded("dtstart") == dt.datetime(2024, 12, 3, 6, 30, tzinfo=dt.UTC)
    # the event's name, not its id, as calendars show it
    assert str(first["summary"]) == "Assembly 23: digest for 2024-12-02 [planned]"
    assert str(cal["x-wr-calname"]) == "Assembly 23 delivery queue"
    with open_store(f"sqlite:///{tmp_path / 'other.sqlite'}") as other:
        plan.plan(proj, "asp23", other)
        uids = {
            str(c["uid"])
            for c in Calendar.from_ical(queue.ics(other, "asp23")).walk()
            if c.name == "VEVENT"
        }
    assert uids == {str(e["uid"]) for e in events}


def test_status_report(proj: Project, store: Store) -> None:
    planned(proj, store)
    approve(proj, store, "asp23", DAY, by="ana")
    d = find(store, "thread", "x")
    assert store.claim(d.id) and store.mark_unknown(d.id, "in doubt")
    rep = queue.report(store, "asp23", running=False)
    assert rep.counts == {"approved": 10, "planned": 39, "unknown": 1}
    assert rep.upcoming[0].channel == "digest"
    assert [r.id for r in rep.attention if r.status == "unknown"] == [d.id]
    assert not any(r.date > dt.date(2024, 12, 3) for r in rep.attention)


def test_an_old_store_is_migrated_keeping_its_deliveries(tmp_path: Path) -> None:
    from alembic import command
    from alembic.config import Config

    from aspdigest.store import MIGRATIONS

    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    engine = sa.create_engine(url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as c:
        config.attributes["connection"] = c
        command.upgrade(config, "0001")
        c.execute(
            sa.text(
                "INSERT INTO deliveries (event, date, channel, platform, status, attempts, artifacts,"
                " created_at, updated_at) VALUES ('asp23', '2024-12-02', 'digest', '', 'planned', 0,"
                " '{}', '2024-11-30 12:00:00', '2024-11-30 12:00:00')"
            )
        )
        c.execute(
            sa.text(
                "INSERT INTO subscribers (address, imported_at) VALUES"
                " ('ana@example.org', '2024-11-30 12:00:00'), ('bo@example.org', '2024-11-30 12:00:00')"
            )
        )
    engine.dispose()
    with open_store(url) as s:
        (d,) = s.deliveries()
        assert d.channel == "digest" and d.schedule_at is None and d.grace_seconds is None
        with s.engine.connect() as c:
            assert c.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == "0005"
        assert s.social_posts(d.id) == {}  # 0003's table is there, empty
        # 0005 gave each subscriber its own random token id; imported ones are active.
        people = s.subscribers()
        assert [(p.address, p.status) for p in people] == [
            ("ana@example.org", "active"),
            ("bo@example.org", "active"),
        ]
        assert len({p.token_id for p in people}) == 2
        assert all(len(p.token_id) == 32 for p in people)


# -- the handoff publisher and the runner lock ------------------------------------------------------


def test_handoff_writes_ready_to_post_files_and_emails_the_team(root: Path, store: Store) -> None:
    config = root / "aspdigest.toml"
    config.write_text(config.read_text() + '\n[delivery]\nhandoff_to = ["comms@example.org"]\n')
    proj = project(root)
    plan.plan(proj, "asp23", store)
    thread, quotes = find(store, "thread", "x"), find(store, "quotes", "x")
    with smtp_sink() as (sink, port):
        publisher = HandoffPublisher(proj, environment(port))
        receipt = publisher.publish(publication_for(proj, thread))
        publisher.publish(publication_for(proj, quotes))
        again = publisher.publish(publication_for(proj, thread))  # a retry replaces the folder
    folder = root / "outbox/asp23/2024-12-02/x/thread"
    assert receipt == {
        "publisher": "handoff",
        "folder": "outbox/asp23/2024-12-02/x/thread",
        "files": again["files"],
        "emailed": ["comms@example.org"],
    }
    built = json.loads((root / "out/asp23/2024-12-02/thread.x.json").read_text())
    texts = [p["text"] for p in built["posts"]]
    assert [(folder / f"{i:02d}.txt").read_text() for i in range(1, len(texts) + 1)] == texts
    images = sorted(folder.glob("*.png"))
    assert images and all((folder / f"{p.stem}.alt.txt").read_text() for p in images)
    assert (
        json.loads((folder / "posts.json").read_text())["groups"][0]["posts"][0]["text"] == texts[0]
    )
    quote = root / "outbox/asp23/2024-12-02/x/quotes/quote-1/01.txt"
    assert quote.read_text() == built["quote_posts"][0]["posts"][0]["text"]
    assert sink.copies() == {"comms@example.org": 3}
    assert sink.subjects()[0] == "Ready to post: asp23 2024-12-02 thread for X"


def test_runner_lock_on_sqlite_and_postgresql(store: Store) -> None:
    postgres = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    for s in (store, open_store(postgres)):
        first = RunnerLock(s, "the store")
        first.acquire()
        try:
            second = RunnerLock(s, "the store")
            with pytest.raises(RunnerBusy) as caught:
                second.acquire()
            assert caught.value.lines()[0].startswith(
                "the store: another `aspdigest run` is already serving this store"
            )
            assert second.held_elsewhere() is not None
        finally:
            first.release()
        assert RunnerLock(s, "the store").held_elsewhere() is None
    RunnerLock(store, "x").acquire()  # released by the OS when this handle goes away


# -- the CLI ------------------------------------------------------------------------------------


def test_cli_plan_approve_list_status(root: Path) -> None:
    args = ["--project", str(root)]
    result = cli.invoke(app, ["schedule", "plan", "asp23", *args])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[:2] == [
        "asp23: 50 deliveries (50 created)",
        "id\tday\tlocal time\tutc\tchannel\tplatform\tstatus\twhat happens",
    ]
    # the real clock is long past December 2024: every delivery is shown as missed
    assert (
        "1\t2024-12-02\tTue 2024-12-03 07:30 CET\t2024-12-03 06:30Z\tdigest\temail\tplanned"
        "\tmissed: due Tue 2024-12-03 07:30 CET, never approved"
    ) in result.stdout.splitlines()
    result = cli.invoke(
        app,
        ["approve", "asp23", "2024-12-02", "--channel", "digest", *args],
        env={"ASPDIGEST_APPROVER": "Ana Example"},
    )
    assert result.exit_code == 0, result.output
    assert (
        result.stdout == "delivery 1 (2024-12-02 digest email): approved by Ana Example, "
        "3 file(s)\n"
    )
    result = cli.invoke(
        app, ["schedule", "list", "--day", "2024-12-02", "--status", "approved", "--json", *args]
    )
    (row,) = json.loads(result.stdout)
    assert row == {
        "id": 1,
        "date": "2024-12-02",
        "channel": "digest",
        "platform": "email",
        "status": "approved",
        "send_at_local": "2024-12-03T07:30:00+01:00",
        "send_at_utc": "2024-12-03T06:30:00Z",
        "approved_by": "Ana Example",
        "last_error": None,
        "posted": 0,
        "changed_since_approval": False,
    }
    result = cli.invoke(app, ["schedule", "resolve", "1", *args])
    assert result.exit_code == 1 and result.stderr == "resolve: say --sent or --not-sent\n"
    result = cli.invoke(app, ["schedule", "skip", "1", "--by", "bo", *args])
    assert (
        result.stdout == "delivery 1 (2024-12-02 digest): skipped, Tue 2024-12-03 07:30 CET "
        "(skipped)\n"
    )
    result = cli.invoke(app, ["schedule", "list", "--day", "2024-12-09", *args])
    assert result.exit_code == 0 and result.stdout == "\t".join(ROW_HEADERS) + "\n"
    assert result.stderr == "no deliveries\n"
    result = cli.invoke(app, ["status", "--json", *args])
    data = json.loads(result.stdout)
    assert data["running"] is False and data["counts"] == {"planned": 49, "skipped": 1}
    result = cli.invoke(app, ["schedule", "pause", *args], env={"ASPDIGEST_APPROVER": "cy"})
    assert (
        result.stdout == "asp23: paused (by cy); `aspdigest schedule resume asp23` lets it go on\n"
    )
    result = cli.invoke(app, ["schedule", "resume", *args])
    assert result.exit_code == 0 and result.stdout == "asp23: resumed\n"
    out = root / "queue.ics"
    result = cli.invoke(app, ["schedule", "ics", "-o", str(out), *args])
    assert result.exit_code == 0 and out.read_bytes().startswith(b"BEGIN:VCALENDAR")
    result = cli.invoke(app, ["schedule", "send-now", "77", *args])
    assert result.exit_code == 1
    assert (
        result.stderr == "delivery 77: no such delivery; `aspdigest schedule list` shows the ids\n"
    )


def test_plan_across_the_october_clock_change_stores_the_right_utc(tmp_path: Path) -> None:
    root = tmp_path / "dst"
    (root / "schedules").mkdir(parents=True)
    shutil.copy(Path(__file__).resolve().parents[1] / "aspdigest.toml", root / "aspdigest.toml")
    event = root / "content/dst"
    event.mkdir(parents=True)
    (event / "event.toml").write_text(
        'id = "dst"\nname = "Across the clock change"\nshort_name = "DST24"\npublisher = "T"\n'
        'timezone = "Europe/Amsterdam"\nstart = 2024-10-26\nend = 2024-10-28\n'
    )
    for day in ("2024-10-26", "2024-10-27", "2024-10-28"):
        (event / day).mkdir()
        (event / day / f"talk-{day[-2:]}.md").write_text(
            "---\ntitle: A talk\nkind: session\nsummary: Someone spoke about time.\n---\nBody.\n"
        )
    (root / "schedules/dst.toml").write_text('[digest]\ntime = "07:30"\n')
    proj = project(root)
    build(proj, "dst")
    with open_project_store(proj) as s:
        plan.plan(proj, "dst", s)
        got = {d.date.isoformat(): d.send_at for d in s.deliveries("dst")}
        rows = queue.listing(s, "dst")
    assert got == {
        "2024-10-26": dt.datetime(2024, 10, 26, 5, 30, tzinfo=dt.UTC),
        "2024-10-27": dt.datetime(2024, 10, 27, 6, 30, tzinfo=dt.UTC),
        "2024-10-28": dt.datetime(2024, 10, 28, 6, 30, tzinfo=dt.UTC),
    }
    assert [local_text(r.send_at_utc, r.send_at_local.tzinfo) for r in rows if r.send_at_local] == [
        "Sat 2024-10-26 07:30 CEST",
        "Sun 2024-10-27 07:30 CET",
        "Mon 2024-10-28 07:30 CET",
    ]


def test_cli_resume_without_a_terminal_lists_the_overdue_and_asks_for_a_choice(root: Path) -> None:
    args = ["--project", str(root)]
    assert cli.invoke(app, ["schedule", "plan", *args]).exit_code == 0
    assert (
        cli.invoke(
            app, ["approve", "asp23", "2024-12-02", "--channel", "digest", "--by", "ana", *args]
        ).exit_code
        == 0
    )
    assert cli.invoke(app, ["schedule", "pause", *args]).exit_code == 0
    result = cli.invoke(app, ["schedule", "resume", *args])
    assert result.exit_code == 1
    assert result.stderr == (
        "1 delivery(ies) came due while paused: 1 (digest Tue 2024-12-03 "
        "07:30 CET); say what to do with --overdue send|skip|reschedule "
        "--at TIME\n"
    )
    result = cli.invoke(app, ["schedule", "resume", "--overdue", "skip", *args])
    assert result.exit_code == 0 and result.stdout == "asp23: resumed; 1 overdue: skip\n"
