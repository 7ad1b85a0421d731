"""Issue 20, items 4 and 5: EVENT is optional in every command of a one-event project, and the
queue says what will really happen (status words, missed vs next, changed since approval,
`--skip-past`, no-subscriber warnings, export). Real SQLite store, a really built sample and
a fixed clock (the store's `clock`), never the machine's."""

from __future__ import annotations

import csv
import datetime as dt
import io
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from icalendar import Calendar
from typer.testing import CliRunner

from aspdigest.cli import app
from aspdigest.cli.schedule import ROW_HEADERS
from aspdigest.config import Project
from aspdigest.export import export
from aspdigest.queue import actions as queue
from aspdigest.queue import plan
from aspdigest.queue.approval import approve
from aspdigest.queue.telling import CHANGED, NO_SUBSCRIBERS, queue_words, status_text
from aspdigest.store import Delivery, Store, open_project_store
from support.delivery_helpers import DAY, KEY, built_copy, project, smtp_sink
from support.store_helpers import force_status

cli = CliRunner()
BEFORE = dt.datetime(2024, 12, 1, 12, 0, tzinfo=dt.UTC)  # the Sunday before the conference
DAY_TWO_NOON = dt.datetime(2024, 12, 4, 11, 0, tzinfo=dt.UTC)  # 12:00 CET on 4 December


class Clock:
    def __init__(self, now: dt.datetime = BEFORE) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return built_copy(tmp_path)


@pytest.fixture
def proj(root: Path) -> Project:
    return project(root)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(proj: Project, clock: Clock) -> Iterator[Store]:
    with open_project_store(proj, clock=clock) as s:
        yield s


def find(store: Store, channel: str, platform: str = "", date: dt.date = DAY) -> Delivery:
    return next(
        d
        for d in store.deliveries("asp23")
        if d.date == date and d.channel == channel and d.platform == platform
    )


def row_of(store: Store, proj: Project, delivery_id: int) -> queue.DeliveryStatus:
    return next(r for r in queue.listing(store, "asp23", project=proj) if r.id == delivery_id)


# -- item 4: [EVENT] DATE ---------------------------------------------------------------------


def test_approve_and_send_take_the_date_alone_in_a_one_event_project(root: Path) -> None:
    args = ["--project", str(root)]
    assert cli.invoke(app, ["schedule", "plan", *args]).exit_code == 0
    result = cli.invoke(app, ["approve", "2024-12-02", "--channel", "digest", "--by", "ana", *args])
    assert result.exit_code == 0, result.output
    assert result.stdout == "delivery 1 (2024-12-02 digest email): approved by ana, 3 file(s)\n"
    with smtp_sink() as (sink, port):
        result = cli.invoke(
            app,
            ["send", "2024-12-02", "--test", "me@example.org", *args],
            env={
                "ASPDIGEST_SMTP_URL": f"smtp://127.0.0.1:{port}",
                "ASPDIGEST_UNSUBSCRIBE_KEY": KEY,
            },
        )
        assert result.exit_code == 0, result.output
        assert result.stdout == "asp23 2024-12-02: test copy sent to me@example.org\n"
        assert len(sink.messages) == 1
    # The two-argument form still works; a bad date names DATE.
    result = cli.invoke(app, ["approve", "asp23", "2024-12-03", "--channel", "digest", *args])
    assert result.exit_code == 0, result.output
    result = cli.invoke(app, ["approve", "2024-12-32", *args])
    assert (result.exit_code, result.stderr) == (
        1,
        'DATE: expected a date like 2024-12-02, got "2024-12-32"\n',
    )
    result = cli.invoke(app, ["approve", "asp23", "2024-12-02", "extra", *args])
    assert (result.exit_code, result.stderr) == (
        1,
        "expected [EVENT] DATE, got 3 arguments: asp23 2024-12-02 extra\n",
    )


def test_every_command_takes_no_event_in_a_one_event_project(root: Path) -> None:
    args = ["--project", str(root)]
    commands = [
        ["check"],
        ["export", "--day", "2024-12-02"],
        ["schedule", "plan"],
        ["schedule", "list"],
        ["schedule", "ics"],
        ["schedule", "pause", "--by", "ana"],
        ["schedule", "resume", "--overdue", "skip"],
        ["status"],
        ["approve", "2024-12-03", "--channel", "thread", "--platform", "x"],
        ["build", "--day", "2024-12-02"],
    ]
    for command in commands:
        result = cli.invoke(app, [*command, *args])
        assert result.exit_code == 0, (command, result.output)


def _second_event(root: Path) -> None:
    """wps25: a copy of asp23 under another id and name, built (its out/ copied) and planned."""
    shutil.copytree(root / "content/asp23", root / "content/wps25")
    toml = root / "content/wps25/event.toml"
    text = toml.read_text().replace('id = "asp23"', 'id = "wps25"', 1)
    toml.write_text(text.replace("23rd Session of the Assembly", "Women Peace Summit", 1))
    schedule = (root / "schedules/asp23.toml").read_text()
    (root / "schedules/wps25.toml").write_text(
        schedule.replace('event = "asp23"', 'event = "wps25"')
    )


def test_with_several_events_the_listings_cover_all_and_others_name_the_ids(root: Path) -> None:
    args = ["--project", str(root)]
    assert cli.invoke(app, ["schedule", "plan", "asp23", *args]).exit_code == 0
    _second_event(root)
    assert cli.invoke(app, ["build", "wps25", "--day", "2024-12-02", *args]).exit_code == 0
    result = cli.invoke(app, ["schedule", "plan", "wps25", *args])
    assert result.exit_code == 0, result.output
    for command in (
        ["approve", "2024-12-02"],
        ["schedule", "plan"],
        ["export"],
        ["send", "2024-12-02"],
    ):
        result = cli.invoke(app, [*command, *args])
        assert (result.exit_code, result.stderr) == (
            1,
            "content: several events (asp23, wps25); name one\n",
        ), command
    listed = cli.invoke(app, ["schedule", "list", *args])
    assert listed.exit_code == 0, listed.output
    lines = listed.stdout.splitlines()
    assert lines[0] == "\t".join(("event", *ROW_HEADERS))
    assert {line.split("\t")[0] for line in lines[1:]} == {"asp23", "wps25"}
    status = cli.invoke(app, ["status", *args])
    assert status.exit_code == 0, status.output
    assert "asp23: runner not running" in status.stdout
    assert "wps25: runner not running" in status.stdout
    ics = cli.invoke(app, ["schedule", "ics", *args])
    cal = Calendar.from_ical(ics.stdout_bytes)
    summaries = {str(e["summary"]).split(":")[0] for e in cal.walk() if e.name == "VEVENT"}
    assert summaries == {
        "23rd Session of the Assembly of States Parties to the Rome Statute",
        "Women Peace Summit of States Parties to the Rome Statute",
    }


# -- item 5: the queue tells the truth --------------------------------------------------------


def test_status_words_say_what_will_happen(proj: Project, store: Store, clock: Clock) -> None:
    plan.plan(proj, "asp23", store)
    approve(proj, store, "asp23", DAY, channel="digest", by="ana")
    digest = find(store, "digest")
    thread = find(store, "thread", "x")
    now = clock()
    assert status_text(row_of(store, proj, digest.id), now) == (
        "scheduled for Tue 2024-12-03 07:30 CET (approved by ana)"
    )
    assert status_text(row_of(store, proj, thread.id), now) == (
        "planned for Tue 2024-12-03 12:00 CET, not approved"
    )
    clock.now = dt.datetime(2024, 12, 3, 6, 31, tzinfo=dt.UTC)
    force_status(store, digest.id, "claimed")
    force_status(store, digest.id, "sent", sent_at=clock.now)
    assert (
        status_text(row_of(store, proj, digest.id), clock()) == "sent at Tue 2024-12-03 07:31 CET"
    )
    queue.skip(proj, store, thread.id, by="bo")
    assert status_text(row_of(store, proj, thread.id), clock()) == "skipped"


def test_status_shows_the_past_under_missed_not_next(
    proj: Project, store: Store, clock: Clock
) -> None:
    plan.plan(proj, "asp23", store)
    approve(proj, store, "asp23", DAY, by="ana")
    approve(proj, store, "asp23", dt.date(2024, 12, 3), by="ana")
    clock.now = DAY_TWO_NOON + dt.timedelta(minutes=1)  # 4 Dec 12:01 CET
    rep = queue.report(store, "asp23", running=False, project=proj)
    assert rep.upcoming, "the 3 December quote posts (4 Dec 16:00) are still ahead"
    assert all(r.send_at_utc is not None and r.send_at_utc > clock.now for r in rep.upcoming)
    missed = {(r.date, r.channel) for r in rep.missed}
    assert (DAY, "digest") in missed and (dt.date(2024, 12, 3), "thread") in missed
    assert not {r.id for r in rep.missed} & {r.id for r in rep.upcoming}
    digest = next(r for r in rep.missed if r.date == DAY and r.channel == "digest")
    assert status_text(digest, clock()) == (
        "missed: due Tue 2024-12-03 07:30 CET (approved by ana), not sent"
    )


def test_an_approved_delivery_whose_files_changed_says_so(
    root: Path, proj: Project, store: Store, clock: Clock
) -> None:
    plan.plan(proj, "asp23", store)
    approve(proj, store, "asp23", DAY, channel="digest", by="ana")
    digest = find(store, "digest")
    assert not row_of(store, proj, digest.id).changed
    text = root / "out/asp23/2024-12-02/digest.txt"
    text.write_text(text.read_text() + "\nedited after approval\n")
    row = row_of(store, proj, digest.id)
    assert row.changed and status_text(row, clock()).startswith(CHANGED)
    rep = queue.report(store, "asp23", running=False, project=proj)
    assert digest.id in {r.id for r in rep.attention}
    result = cli.invoke(app, ["schedule", "list", "--status", "approved", "--project", str(root)])
    assert "changed since approval — approve again" in result.stdout


def test_skip_past_marks_only_past_deliveries_skipped(
    proj: Project, store: Store, clock: Clock
) -> None:
    clock.now = DAY_TWO_NOON
    plan.plan(proj, "asp23", store)
    skipped = plan.skip_past_deliveries(store, "asp23", by="ana")
    assert skipped and all(d.send_at is not None and d.send_at <= clock.now for d in skipped)
    after = {d.id: d for d in store.deliveries("asp23")}
    assert {d.id for d in after.values() if d.status == "skipped"} == {d.id for d in skipped}
    assert all(
        d.send_at is not None and d.send_at > clock.now
        for d in after.values()
        if d.status != "skipped"
    )
    # the 3 December digest (4 Dec 07:30) is past, its thread (4 Dec 12:00) is due now
    assert after[find(store, "digest", date=dt.date(2024, 12, 3)).id].status == "skipped"
    history = store.history(skipped[0].id)
    assert history[-1].note == "its time had passed when planned (--skip-past)"


def test_plan_lists_past_deliveries_and_offers_skip_past(root: Path) -> None:
    # The real clock is far past December 2024: every delivery is in the past.
    args = ["--project", str(root)]
    result = cli.invoke(app, ["schedule", "plan", *args])
    assert result.exit_code == 0, result.output
    assert "note: 50 deliveries are already past their time and not sent (ids 1, " in result.stderr
    assert "`aspdigest schedule plan asp23 --skip-past` marks them skipped" in result.stderr
    result = cli.invoke(app, ["schedule", "plan", "--skip-past", "--by", "ana", *args])
    assert result.exit_code == 0, result.output
    assert "  50 past deliveries skipped: " in result.stdout
    assert "already past" not in result.stderr
    status = cli.invoke(app, ["schedule", "list", "--status", "skipped", *args])
    assert len(status.stdout.splitlines()) == 51


def test_plan_approve_and_status_warn_when_the_digest_has_no_subscribers(root: Path) -> None:
    args = ["--project", str(root)]
    warning = f"warning: {NO_SUBSCRIBERS}\n"
    assert NO_SUBSCRIBERS == (
        "the digest has no subscribers yet: it would fail at send time; import them with "
        "`aspdigest subscribers import`"
    )
    for command in (["schedule", "plan"], ["approve", "2024-12-02"], ["status"]):
        result = cli.invoke(app, [*command, *args])
        assert result.exit_code == 0, result.output
        assert warning in result.stderr, command
    assert cli.invoke(app, ["subscribers", "import", "subscribers.csv", *args]).exit_code == 0
    for command in (["schedule", "plan"], ["approve", "2024-12-03"], ["status"]):
        result = cli.invoke(app, [*command, *args])
        assert warning not in result.stderr, command


def test_export_says_what_the_queue_will_do(proj: Project, store: Store, clock: Clock) -> None:
    plan.plan(proj, "asp23", store)
    approve(proj, store, "asp23", DAY, channel="thread", platform="x", by="ana")
    bluesky = find(store, "thread", "bluesky")
    queue.skip(proj, store, bluesky.id, by="bo")
    words = queue_words(proj, "asp23", clock=clock)
    result = export(proj, "asp23", "md", day="2024-12-02", queue=words)
    text = result.data.decode()
    assert "### X: thread, " in text
    assert "scheduled for Tue 2024-12-03 12:00 CET (approved by ana).\n" in text
    assert "### Bluesky: thread, " in text and "\nskipped.\n" in text
    assert "planned for Tue 2024-12-03 16:00 CET, not approved.\n" in text
    assert "\nsent " not in text
    rows = list(
        csv.DictReader(
            io.StringIO(
                export(proj, "asp23", "csv", day="2024-12-02", queue=words).data.decode(
                    "utf-8-sig"
                ),
                newline="",
            )
        )
    )
    by_platform = {(r["platform"], r["kind"]): r["status"] for r in rows}
    assert (
        by_platform[("x", "thread")] == "scheduled for Tue 2024-12-03 12:00 CET (approved by ana)"
    )
    assert by_platform[("bluesky", "thread")] == "skipped"
