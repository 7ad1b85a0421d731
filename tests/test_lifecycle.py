"""store/lifecycle.py and Store.move on real SQLite files: the delivery's statuses, the allowed
moves between them, and each move written together with its log row or not at all."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from aspdigest.store import DELIVERY_STATUSES, Store, open_store
from aspdigest.store.lifecycle import (
    APPROVABLE,
    DONE,
    OPEN,
    TRANSITIONS,
    IllegalTransition,
    Status,
    ordered,
)
from aspdigest.store.lifecycle import check as check_move
from aspdigest.store.lifecycle import status as lifecycle_status
from support.store_helpers import force_status

T0 = dt.datetime(2024, 12, 2, 17, 0, tzinfo=dt.UTC)
S = Status
ALLOWED = [(frm, to) for frm, tos in TRANSITIONS.items() for to in sorted(tos)]
FORBIDDEN = [
    (frm, to) for frm, to in itertools.product(Status, Status) if to not in TRANSITIONS[frm]
]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with open_store(f"sqlite:///{tmp_path / 'state.sqlite'}", clock=lambda: T0) as s:
        yield s


def _delivery_in(store: Store, status: Status) -> int:
    d = store.ensure_delivery("asp23", dt.date(2024, 12, 2), "thread", "x", send_at=T0)
    force_status(store, d.id, status)
    return d.id


def _status(store: Store, delivery_id: int) -> str:
    d = store.delivery(delivery_id)
    assert d is not None
    return d.status


def test_the_table_is_the_designs_lifecycle() -> None:
    # DESIGN: planned → approved → claimed → sent | failed | unknown; also skipped and held.
    assert set(Status) == set(DELIVERY_STATUSES)
    assert set(TRANSITIONS) == set(Status)
    assert S.APPROVED in TRANSITIONS[S.PLANNED]
    assert S.CLAIMED in TRANSITIONS[S.APPROVED]
    assert TRANSITIONS[S.CLAIMED] == {S.SENT, S.FAILED, S.UNKNOWN}
    assert TRANSITIONS[S.SENT] == frozenset()  # history: never moved again
    assert [frm for frm, tos in TRANSITIONS.items() if S.CLAIMED in tos] == [S.APPROVED]
    assert [frm for frm, tos in TRANSITIONS.items() if S.SENT in tos] == [S.CLAIMED, S.UNKNOWN]
    assert {frm for frm, tos in TRANSITIONS.items() if S.SKIPPED in tos} == OPEN
    assert {frm for frm, tos in TRANSITIONS.items() if S.HELD in tos} == {S.APPROVED}
    # An unapproved delivery can never be sent without passing approval first.
    assert S.CLAIMED not in TRANSITIONS[S.PLANNED] | TRANSITIONS[S.HELD] | TRANSITIONS[S.FAILED]


def test_the_named_groups_keep_their_old_members_and_order() -> None:
    assert ordered(OPEN) == ("planned", "approved", "held", "failed")
    assert APPROVABLE == OPEN
    assert ordered(OPEN | {S.SKIPPED}) == ("planned", "approved", "held", "failed", "skipped")
    assert {"sent", "failed", "unknown", "skipped", "held"} == DONE
    assert Status.APPROVED == "approved" and f"{Status.HELD}" == "held"


@pytest.mark.parametrize(("frm", "to"), ALLOWED, ids=[f"{f}-{t}" for f, t in ALLOWED])
def test_every_allowed_move_changes_the_status_and_writes_one_log_row(
    store: Store, frm: Status, to: Status
) -> None:
    delivery_id = _delivery_in(store, frm)
    assert store.move(delivery_id, to, actor="ana", note="why", expect=frm, last_error="x")
    d = store.delivery(delivery_id)
    assert d is not None and (d.status, d.last_error) == (to, "x")
    log = store.history(delivery_id)
    assert [(e.status, e.previous, e.actor, e.note, e.at) for e in log] == [
        (to, frm, "ana", "why", T0)
    ]


@pytest.mark.parametrize(("frm", "to"), FORBIDDEN, ids=[f"{f}-{t}" for f, t in FORBIDDEN])
def test_a_forbidden_move_raises_and_changes_nothing(store: Store, frm: Status, to: Status) -> None:
    delivery_id = _delivery_in(store, frm)
    with pytest.raises(IllegalTransition, match=f"^a delivery cannot go from {frm} to {to}$"):
        store.move(delivery_id, to, actor="ana")  # from whatever it is now
    with pytest.raises(IllegalTransition):
        store.move(delivery_id, to, actor="ana", expect=frm)
    assert _status(store, delivery_id) == frm
    assert store.history(delivery_id) == []


def test_an_unknown_status_raises(store: Store) -> None:
    delivery_id = _delivery_in(store, S.PLANNED)
    with pytest.raises(IllegalTransition, match=r"^unknown delivery status 'done'$"):
        store.move(delivery_id, "done", actor="ana")
    with pytest.raises(ValueError, match=r"^update_delivery does not change a status; use move$"):
        store.update_delivery(delivery_id, expect="planned", status="sent")


def test_a_failed_log_insert_leaves_the_status_as_it_was(store: Store) -> None:
    delivery_id = _delivery_in(store, S.APPROVED)
    # delivery_log.actor is NOT NULL: the log insert fails after the UPDATE has run.
    with pytest.raises(sa.exc.IntegrityError):
        store.move(delivery_id, S.CLAIMED, actor=None, expect=S.APPROVED)  # type: ignore[arg-type]
    assert _status(store, delivery_id) == S.APPROVED
    assert store.history(delivery_id) == []
    # And a log insert that fails inside the database (a trigger) rolls the status back too.
    with store.engine.begin() as c:
        c.exec_driver_sql(
            "CREATE TRIGGER no_log BEFORE INSERT ON delivery_log "
            "BEGIN SELECT RAISE(ABORT, 'log refused'); END"
        )
    with pytest.raises(sa.exc.IntegrityError, match="log refused"):
        store.claim(delivery_id, actor="ana")
    assert _status(store, delivery_id) == S.APPROVED


def test_a_move_from_a_status_no_longer_there_loses_quietly(store: Store) -> None:
    delivery_id = _delivery_in(store, S.APPROVED)
    assert store.claim(delivery_id, actor="runner-a")
    assert not store.claim(delivery_id, actor="runner-b")  # the race's loser: False, no row
    assert not store.move(delivery_id, S.SKIPPED, actor="ana", expect=S.APPROVED)
    assert [(e.status, e.actor) for e in store.history(delivery_id)] == [("claimed", "runner-a")]
    assert not store.move(999, S.SKIPPED, actor="ana")


def test_a_new_delivery_logs_its_creation_with_the_insert(store: Store) -> None:
    day = dt.date(2024, 12, 2)
    d = store.ensure_delivery("asp23", day, "digest", send_at=T0, actor="plan", note="for 18:00")
    again = store.ensure_delivery("asp23", day, "digest", send_at=T0, actor="plan", note="x")
    assert again.id == d.id
    assert [(e.status, e.previous, e.actor, e.note) for e in store.history(d.id)] == [
        ("planned", None, "plan", "for 18:00")
    ]


def test_the_whole_table_and_groups_as_written() -> None:
    # Known answer: every move, so that a change to the table (not mutated by mutmut, which
    # only changes code inside functions) is a visible, deliberate change here too.
    assert {frm.value: sorted(tos) for frm, tos in TRANSITIONS.items()} == {
        "planned": ["approved", "planned", "skipped"],
        "approved": ["approved", "claimed", "held", "planned", "skipped"],
        "held": ["approved", "planned", "skipped"],
        "failed": ["approved", "planned", "skipped"],
        "skipped": ["approved", "planned"],
        "claimed": ["failed", "sent", "unknown"],
        "unknown": ["failed", "sent"],
        "sent": [],
    }
    assert [s.value for s in Status] == [
        "planned", "approved", "held", "failed", "skipped", "claimed", "sent", "unknown"
    ]  # fmt: skip
    assert ordered(["unknown", "planned", "sent", "planned"]) == ("planned", "sent", "unknown")
    assert ordered([]) == ()


def test_check_names_the_first_status_that_may_not_move() -> None:
    assert check_move(["planned", "held"], "approved") is S.APPROVED
    assert check_move([], "sent") is S.SENT
    with pytest.raises(IllegalTransition, match=r"^a delivery cannot go from sent to approved$"):
        check_move(["planned", "sent", "claimed"], "approved")
    with pytest.raises(IllegalTransition, match=r"^unknown delivery status 'gone'$"):
        check_move(["gone"], "approved")
    with pytest.raises(IllegalTransition, match=r"^unknown delivery status 'Sent'$"):
        check_move(["claimed"], "Sent")
    assert lifecycle_status("held") is S.HELD
