"""The state store on a real SQLite file and on the real PostgreSQL at 127.0.0.1:5432/test.

Every test runs on both; on PostgreSQL each test gets its own schema (dropped afterwards).
PostgreSQL being unreachable fails these tests rather than skipping them.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from aspdigest.config import load_project
from aspdigest.errors import UserError
from aspdigest.store import (
    Store,
    metadata,
    open_project_store,
    open_store,
    resolve_url,
)
from aspdigest.store.claims import Outcome
from support.delivery_helpers import postgres_schema
from support.store_helpers import (
    is_suppressed,
    mark_recipient_sending,
    mark_recipient_suppressed,
    next_pending,
)

DAY = dt.date(2024, 12, 2)
T0 = dt.datetime(2024, 12, 2, 17, 0, tzinfo=dt.UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state.sqlite'}"
        return
    with postgres_schema() as url:
        yield url


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    with open_store(store_url, clock=Clock()) as s:
        yield s


def test_migration_creates_exactly_the_tables_the_code_uses(store: Store) -> None:
    with store.engine.connect() as c:
        context = MigrationContext.configure(c, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []
        assert c.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == "0005"


def test_opening_again_keeps_the_data(store_url: str) -> None:
    with open_store(store_url) as first:
        first.ensure_delivery("asp23", DAY, "email")
    with open_store(store_url) as second:
        assert [d.channel for d in second.deliveries()] == ["email"]


def test_ensure_delivery_is_one_row_per_event_date_channel_platform(store: Store) -> None:
    a = store.ensure_delivery("asp23", DAY, "email", send_at=T0, artifacts={"x": "1"})
    b = store.ensure_delivery("asp23", DAY, "email")
    c = store.ensure_delivery("asp23", DAY, "social", "x")
    d = store.ensure_delivery("asp23", DAY, "social", "bluesky")
    assert a.id == b.id and len({a.id, c.id, d.id}) == 3
    assert (a.status, a.attempts, a.platform, a.send_at, dict(a.artifacts)) == (
        "planned",
        0,
        "",
        T0,
        {"x": "1"},
    )
    moved = store.ensure_delivery(
        "asp23", DAY, "email", send_at=T0 + dt.timedelta(hours=1), artifacts={"x": "2"}
    )
    assert moved.send_at == T0 + dt.timedelta(hours=1) and dict(moved.artifacts) == {"x": "2"}
    assert store.approve(a.id, {"x": "2"}, "ana")
    kept = store.ensure_delivery("asp23", DAY, "email", send_at=T0, artifacts={"x": "3"})
    assert kept.status == "approved" and dict(kept.artifacts) == {"x": "2"}
    assert dict(kept.approved or {}) == {"x": "2"} and kept.approved_by == "ana"
    assert [x.id for x in store.deliveries(status="approved")] == [a.id]


def test_claim_is_atomic_and_only_from_approved(store: Store) -> None:
    d = store.ensure_delivery("asp23", DAY, "email")
    assert not store.claim(d.id)  # planned
    assert store.approve(d.id, {}, "ana")
    assert store.claim(d.id)
    assert not store.claim(d.id)
    claimed = store.delivery(d.id)
    assert claimed is not None and (claimed.status, claimed.attempts) == ("claimed", 1)
    assert claimed.claimed_at == T0


def test_racing_claims_let_exactly_one_through(store: Store) -> None:
    d = store.ensure_delivery("asp23", DAY, "email")
    store.approve(d.id, {}, "ana")
    results: list[bool] = []
    start = threading.Barrier(8)

    def claim() -> None:
        start.wait()
        results.append(store.claim(d.id))

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 7 + [True]


def test_racing_planners_create_one_delivery(store: Store) -> None:
    ids: list[int] = []
    start = threading.Barrier(8)

    def plan() -> None:
        start.wait()
        ids.append(store.ensure_delivery("asp23", DAY, "email").id)

    threads = [threading.Thread(target=plan) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ids) == 8 and len(set(ids)) == 1
    assert len(store.deliveries()) == 1


def test_marks_only_move_a_claimed_delivery(store: Store) -> None:
    ids = [
        store.ensure_delivery("asp23", DAY, "social", p).id for p in ("x", "bluesky", "mastodon")
    ]
    assert not store.mark_sent(ids[0])
    for i in ids:
        store.approve(i, {}, "ana")
        store.claim(i)
    assert store.mark_sent(ids[0], {"url": "https://x.example/1"})
    assert store.mark_failed(ids[1], "401 bad token")
    assert store.mark_unknown(ids[2], "crashed while posting")
    assert not store.mark_failed(ids[0], "late")
    sent, failed, unknown = (store.delivery(i) for i in ids)
    assert sent is not None and sent.status == "sent" and sent.sent_at == T0
    assert dict(sent.receipt or {}) == {"url": "https://x.example/1"}
    assert failed is not None and (failed.status, failed.last_error) == ("failed", "401 bad token")
    assert unknown is not None and unknown.status == "unknown"
    with pytest.raises(ValueError, match="unknown delivery status"):
        store.move(ids[0], "done", actor="ana", expect="sent")


def test_recipients_progress_and_resume_states(store: Store) -> None:
    d = store.ensure_delivery("asp23", DAY, "email")
    added = store.add_recipients(
        d.id, [("B@Example.org", "Bee"), ("a@example.org", None), ("b@example.org", "dup")]
    )
    assert added == 2
    assert store.add_recipients(d.id, [("a@example.org", None), ("c@example.org", "Cee")]) == 1
    assert [r.address for r in store.recipients(d.id)] == [
        "b@example.org",
        "a@example.org",
        "c@example.org",
    ]
    first = next_pending(store, d.id)
    assert first is not None and (first.address, first.name) == ("b@example.org", "Bee")
    assert mark_recipient_sending(store, first.id)
    assert not mark_recipient_sending(store, first.id)  # a second sender loses
    second = next_pending(store, d.id)
    assert second is not None and second.address == "a@example.org"
    skipped = next_pending(store, d.id, skip={second.id})
    assert skipped is not None and skipped.address == "c@example.org"
    assert store.mark_recipient_sent(first.id)
    assert mark_recipient_sending(store, second.id)
    assert store.release_recipient(second.id, "451 try later")
    assert mark_recipient_sending(store, second.id)
    third = next_pending(store, d.id)
    assert third is not None and mark_recipient_sending(store, third.id)
    # A crash here leaves two rows `sending`; the next run turns them into `unknown`.
    assert store.mark_interrupted(d.id, "interrupted") == 2
    assert store.recipient_counts(d.id) == {
        "pending": 0,
        "sending": 0,
        "sent": 1,
        "failed": 0,
        "suppressed": 0,
        "unknown": 2,
    }
    rows = {r.address: r for r in store.recipients(d.id)}
    assert rows["a@example.org"].attempts == 2 and rows["b@example.org"].sent_at == T0
    assert not store.mark_recipient_sent(third.id)  # unknown is for a person to resolve
    assert next_pending(store, d.id) is None


def test_failed_and_suppressed_recipients(store: Store) -> None:
    d = store.ensure_delivery("asp23", DAY, "email")
    store.add_recipients(d.id, [("a@example.org", None), ("b@example.org", None)])
    a, b = store.recipients(d.id)
    assert mark_recipient_suppressed(store, a.id, "unsubscribed")
    mark_recipient_sending(store, b.id)
    assert store.mark_recipient_failed(b.id, "550 5.1.1 no such user")
    assert [(r.status, r.last_error) for r in store.recipients(d.id)] == [
        ("suppressed", "unsubscribed"),
        ("failed", "550 5.1.1 no such user"),
    ]


def test_claim_recipient_takes_each_pending_one_once(store: Store) -> None:
    d = store.ensure_delivery("asp23", DAY, "email")
    store.add_recipients(d.id, [(f"r{i}@example.org", None) for i in range(3)])
    store.suppress("R1@example.org", "unsubscribed")
    first = store.claim_recipient(d.id)
    assert first is not None and (first.address, first.status, first.attempts) == (
        "r0@example.org",
        "sending",
        1,
    )
    held = store.claim_recipient(d.id)  # on the suppression list: taken, never to be sent
    assert held is not None and (held.address, held.status, held.attempts, held.last_error) == (
        "r1@example.org",
        "suppressed",
        0,
        "on the suppression list",
    )
    assert store.claim_recipient(d.id, skip={first.id + 2}) is None
    last = store.claim_recipient(d.id)
    assert last is not None and last.address == "r2@example.org"
    assert store.claim_recipient(d.id) is None
    assert store.release_recipient(last.id, "421 try later")
    again = store.claim_recipient(d.id)
    assert again is not None and (again.id, again.attempts) == (last.id, 2)


def test_peek_then_claim_by_id_takes_a_recipient_only_at_the_last_moment(store: Store) -> None:
    d = store.ensure_delivery("asp23", DAY, "email")
    store.add_recipients(d.id, [(f"r{i}@example.org", None) for i in range(3)])
    store.suppress("r1@example.org", "unsubscribed")
    seen = store.peek_recipient(d.id)
    assert seen is not None and (seen.address, seen.status, seen.attempts) == (
        "r0@example.org",
        "pending",
        0,
    )
    assert store.recipient_counts(d.id)["pending"] == 3  # peeking takes nothing
    held = store.peek_recipient(d.id, skip={seen.id})  # suppressed: settled, not to be sent
    assert held is not None and (held.address, held.status) == ("r1@example.org", "suppressed")
    assert store.recipients(d.id, "suppressed")[0].last_error == "on the suppression list"
    taken = store.claim_recipient(d.id, recipient_id=seen.id)
    assert taken is not None and (taken.id, taken.status, taken.attempts) == (seen.id, "sending", 1)
    assert store.claim_recipient(d.id, recipient_id=seen.id) is None  # a second taker loses
    other = store.peek_recipient(d.id)
    assert other is not None and other.address == "r2@example.org"
    store.suppress("r2@example.org", "bounced")  # between the peek and the claim
    late = store.claim_recipient(d.id, recipient_id=other.id)
    assert late is not None and late.status == "suppressed"
    assert store.peek_recipient(d.id) is None


def test_a_workers_claim_returns_the_row_as_stored_on_every_path(store: Store) -> None:
    d = store.ensure_delivery("asp23", DAY, "email")
    store.add_recipients(d.id, [(f"r{i}@example.org", None) for i in range(6)])
    first, second, third, fourth, fifth, sixth = store.reserve_recipients(d.id)
    claims = store.claims()
    try:
        # As read: claimed in place, and what comes back is what the store now holds.
        taken = claims.settle_and_claim([], first)
        assert taken == store.recipients(d.id, "sending")[0]
        assert (taken.status, taken.attempts, taken.updated_at) == ("sending", 1, T0)
        # The previous one's outcome goes in with the next claim.
        later = T0 + dt.timedelta(seconds=1, microseconds=250)  # stored as SQLAlchemy stores it
        store.clock.now = later  # type: ignore[attr-defined]
        assert claims.settle_and_claim([Outcome(first.id, "sent")], first) is None  # not pending
        sent = store.recipients(d.id, "sent")[0]
        assert (sent.id, sent.sent_at, sent.updated_at, sent.last_error) == (
            first.id,
            later,
            later,
            None,
        )
        # Changed since it was read: the store's row wins, whether the attempts, the error
        # or both changed (a refusal counts an attempt; one before sending does not).
        changes = [
            (second, Outcome(second.id, "pending", "451 busy"), (2, "451 busy")),
            (fifth, Outcome(fifth.id, "pending", None), (2, None)),
            (sixth, Outcome(sixth.id, "pending", "452 later", attempted=False), (1, "452 later")),
        ]
        for read, change, expected in changes:
            claims.settle_and_claim([change])
            again = claims.settle_and_claim([], read)
            assert again is not None and (again.attempts, again.last_error) == expected
            assert again == next(r for r in store.recipients(d.id) if r.id == read.id)
        # Put on the suppression list after it was read: taken, never to be sent.
        store.suppress("r2@example.org", "unsubscribed")
        held = claims.settle_and_claim([], third)
        assert held is not None and (held.status, held.last_error, held.attempts) == (
            "suppressed",
            "on the suppression list",
            0,
        )
        # Taken by another sender first.
        assert store.claim_recipient(d.id, recipient_id=fourth.id) is not None
        assert claims.settle_and_claim([], fourth) is None
    finally:
        claims.close()
    assert store.recipient_counts(d.id) == {
        "pending": 0,
        "sending": 4,
        "sent": 1,
        "failed": 0,
        "unknown": 0,
        "suppressed": 1,
    }


def test_parallel_workers_claims_never_share_one(store: Store) -> None:
    d = store.ensure_delivery("asp23", DAY, "email")
    store.add_recipients(d.id, [(f"r{i:03d}@example.org", None) for i in range(120)])
    everyone = store.reserve_recipients(d.id, limit=200)
    taken: list[int] = []
    start = threading.Barrier(4)

    def worker() -> None:
        claims = store.claims()
        previous: list[Outcome] = []
        start.wait()
        try:
            for recipient in everyone:  # every worker tries every one
                claimed = claims.settle_and_claim(previous, recipient)
                previous = []
                if claimed is not None:
                    taken.append(claimed.id)
                    previous = [Outcome(claimed.id, "sent")]
            claims.settle_and_claim(previous)
        finally:
            claims.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(taken) == sorted(r.id for r in everyone)
    assert store.recipient_counts(d.id)["sent"] == 120


def test_parallel_recipient_claims_never_share_one(store: Store) -> None:
    d = store.ensure_delivery("asp23", DAY, "email")
    store.add_recipients(d.id, [(f"r{i:03d}@example.org", None) for i in range(200)])
    taken: list[int] = []
    start = threading.Barrier(6)

    def worker() -> None:
        start.wait()
        while (r := store.claim_recipient(d.id)) is not None:
            taken.append(r.id)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(taken) == len(set(taken)) == 200
    assert store.recipient_counts(d.id)["sending"] == 200


def test_deleting_a_delivery_removes_its_recipients(store: Store) -> None:
    d = store.ensure_delivery("asp23", DAY, "email")
    store.add_recipients(d.id, [("a@example.org", None)])
    with store.engine.begin() as c:
        c.execute(sa.text("DELETE FROM deliveries WHERE id = :id"), {"id": d.id})
    assert store.recipients(d.id) == []


def test_subscribers_import_updates_and_replaces(store: Store) -> None:
    counts = store.import_subscribers(
        [("Ana@example.org", "Ana", "en"), ("bo@example.org", None, None)]
    )
    assert counts.__dict__ == {"added": 2, "updated": 0, "unchanged": 0, "removed": 0}
    counts = store.import_subscribers(
        [
            ("ana@example.org", "Ana B", "fr"),
            ("bo@example.org", None, None),
            ("cy@example.org", "Cy", None),
        ]
    )
    assert counts.__dict__ == {"added": 1, "updated": 1, "unchanged": 1, "removed": 0}
    counts = store.import_subscribers([("cy@example.org", "Cy", None)], replace=True)
    assert counts.__dict__ == {"added": 0, "updated": 0, "unchanged": 1, "removed": 2}
    [cy] = store.subscribers()
    assert (cy.address, cy.name, cy.language, cy.imported_at) == ("cy@example.org", "Cy", None, T0)


def test_suppression_list_is_case_insensitive_and_kept_once(store: Store) -> None:
    assert not is_suppressed(store, "ana@example.org")
    assert store.suppress("Ana@Example.org", "bounced", "550 mailbox unavailable")
    assert not store.suppress("ana@example.org", "unsubscribed")
    assert is_suppressed(store, "ANA@example.org")
    [s] = store.suppressions()
    assert (s.address, s.reason, s.at, s.note) == (
        "ana@example.org",
        "bounced",
        T0,
        "550 mailbox unavailable",
    )
    with pytest.raises(ValueError, match="unknown suppression reason"):
        store.suppress("bo@example.org", "annoyed")


def test_times_are_utc_aware_and_naive_ones_are_refused(store: Store) -> None:
    amsterdam = dt.datetime(2024, 12, 2, 18, 30, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    d = store.ensure_delivery("asp23", DAY, "email", send_at=amsterdam)
    assert d.send_at == amsterdam and d.send_at is not None
    assert d.send_at.tzinfo == dt.UTC and d.send_at.hour == 17
    with pytest.raises(sa.exc.StatementError, match="timezone-aware"):
        store.ensure_delivery("asp23", DAY, "social", "x", send_at=dt.datetime(2024, 12, 2, 18))


def test_sqlite_store_uses_wal(tmp_path: Path) -> None:
    with open_store(f"sqlite:///{tmp_path / 's.sqlite'}") as s, s.engine.connect() as c:
        assert c.execute(sa.text("PRAGMA journal_mode")).scalar() == "wal"
        assert c.execute(sa.text("PRAGMA busy_timeout")).scalar() == 10000
        assert c.execute(sa.text("PRAGMA foreign_keys")).scalar() == 1


def test_urls_resolve_relative_to_the_project(tmp_path: Path) -> None:
    assert resolve_url("sqlite:///.aspdigest/state.sqlite", tmp_path) == (
        f"sqlite:///{tmp_path / '.aspdigest/state.sqlite'}"
    )
    assert (tmp_path / ".aspdigest").is_dir()
    assert resolve_url("postgresql://u:pw@db/x") == "postgresql+psycopg://u:pw@db/x"
    with pytest.raises(UserError) as err:
        resolve_url("not a url")
    assert str(err.value) == "state.url: not a database URL: (unparseable URL)"


def test_project_store_follows_settings_and_environment(tmp_path: Path) -> None:
    (tmp_path / "aspdigest.toml").write_text('[state]\nurl = "sqlite:///state/a.sqlite"\n')
    with open_project_store(load_project(tmp_path, environ={})) as s:
        s.suppress("a@example.org", "bounced")
    assert (tmp_path / "state/a.sqlite").exists()
    other = load_project(tmp_path, environ={"ASPDIGEST_STATE_URL": "sqlite:///b.sqlite"})
    with open_project_store(other) as s:
        assert not is_suppressed(s, "a@example.org")
    assert (tmp_path / "b.sqlite").exists()


def test_unreachable_database_is_one_clear_line_without_the_password() -> None:
    with pytest.raises(UserError) as err:
        open_store("postgresql://postgres:hunter2@127.0.0.1:1/test")
    text = str(err.value)
    assert text.startswith(
        "state store postgresql+psycopg://postgres:***@127.0.0.1:1/test: cannot connect: "
    )
    assert "hunter2" not in text and "\n" not in text
