"""A sending worker's writes: the outcome of each message and the claim of the next.

State store, beside `store.recipients` (the recipient list, read in batches; it uses
`settle` for its one-at-a-time methods), and used by `deliver.mailworkers`:
`Claims.settle_and_claim` records what the server said of the
previous message (an `Outcome`) and claims the next recipient (`pending` → `sending`)
right before the final dot of its message, on the worker's own connection; `settle`
writes one outcome for the store's one-at-a-time methods. These are the statements a
send runs for every recipient, so they are built once and, on SQLite, run through the
driver itself (`_Direct`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, Literal, NamedTuple, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql.compiler import SQLCompiler

from aspdigest.store.schema import Recipient, recipients, suppressions


def recipient_row(row: sa.Row[Any]) -> Recipient:
    m = row._mapping
    return Recipient(**{c.name: m[c.name] for c in recipients.columns})


class Outcome(NamedTuple):
    """What became of one message, for `settle_and_claim` to write: the recipient moves
    to `status` (from `sending`, or from `pending` when the server refused it before the
    final dot, which counts an attempt when `attempted`)."""

    recipient_id: int
    status: Literal["sent", "failed", "unknown", "pending"]
    error: str | None = None
    attempted: bool = True


# Built once: a send runs these thousands of times, and building a statement costs more
# than running it (SQLAlchemy then finds the compiled form in its cache).
HELD = sa.exists().where(suppressions.c.address == recipients.c.address)
_SENT = (
    recipients.update()
    .where((recipients.c.id == sa.bindparam("rid")) & (recipients.c.status == "sending"))
    .values(
        status=sa.literal_column("'sent'"),
        last_error=sa.null(),
        sent_at=sa.bindparam("now"),
        updated_at=sa.bindparam("now"),
    )
)
_FROM = {
    "unknown": ("sending",),
    "failed": ("sending", "pending"),
    "pending": ("sending", "pending"),
}
_SETTLE = {
    status: recipients.update()
    .where(
        (recipients.c.id == sa.bindparam("rid"))
        & sa.or_(*(recipients.c.status == s for s in _FROM[status]))
    )
    .values(
        status=status,
        last_error=sa.bindparam("error"),
        updated_at=sa.bindparam("now"),
        attempts=recipients.c.attempts
        + sa.case(((recipients.c.status == "pending") & (sa.bindparam("count") == 1), 1), else_=0),
    )
    for status in _FROM
}


_CLAIM = (
    recipients.update()
    .where((recipients.c.id == sa.bindparam("rid")) & (recipients.c.status == "pending"))
    .values(
        status=sa.case((HELD, "suppressed"), else_="sending"),
        last_error=sa.case((HELD, "on the suppression list"), else_=recipients.c.last_error),
        attempts=recipients.c.attempts + sa.case((HELD, 0), else_=1),
        updated_at=sa.bindparam("now"),
    )
    .returning(*recipients.columns)
)
# The claim when the row is as the sender read it and not held: a plain UPDATE, whose
# single step in SQLite takes the lock, writes and commits (see `Claims`).
_QUICK_CLAIM = (
    recipients.update()
    .where(
        (recipients.c.id == sa.bindparam("rid"))
        & (recipients.c.status == "pending")
        & (recipients.c.attempts == sa.bindparam("attempts"))
        & recipients.c.last_error.is_not_distinct_from(sa.bindparam("error"))
        & ~HELD
    )
    .values(
        status=sa.literal_column("'sending'"),
        attempts=recipients.c.attempts + 1,
        updated_at=sa.bindparam("now"),
    )
)


def settle(c: Connection, now: dt.datetime, outcome: Outcome) -> bool:
    """Write one outcome; False when the recipient was not in a status it may leave so."""
    rid, status, error, attempted = outcome
    if status == "sent":
        result = c.execute(_SENT, {"rid": rid, "now": now})
    else:
        result = c.execute(
            _SETTLE[status], {"rid": rid, "error": error, "now": now, "count": int(attempted)}
        )
    return bool(result.rowcount == 1)


class _Direct:
    """One of the two statements of every message (a `sent`, a claim) compiled once and
    run through the database driver itself, for SQLite: SQLAlchemy's work around each call
    (its statement cache, parameter processing, result wrapping) was ~60 of the ~75 µs
    each took. The SQL, the parameter order and the conversion of each value (the
    datetimes as stored) are SQLAlchemy's own, taken from the compiled statement."""

    def __init__(self, statement: sa.ClauseElement, dialect: sa.Dialect) -> None:
        compiled = cast(SQLCompiler, statement.compile(dialect=dialect))
        self.sql = compiled.string
        self.names = tuple(compiled.positiontup or ())
        self.fixed = dict(compiled.params)  # the values the statement binds itself
        self.convert = {
            name: convert
            for name in self.names
            if (convert := compiled.binds[name].type.bind_processor(dialect)) is not None
        }

    def rowcount(self, driver: Any, values: dict[str, Any]) -> int:
        merged = {**self.fixed, **values}
        convert = self.convert
        args = [convert[n](merged[n]) if n in convert else merged[n] for n in self.names]
        return int(driver.execute(self.sql, args).rowcount)


def _settle_and_claim(
    c: Connection,
    now: dt.datetime,
    outcomes: Sequence[Outcome],
    claim: Recipient | None,
    direct: tuple[Any, _Direct, _Direct] | None = None,
) -> Recipient | None:
    """(`direct`: the driver's connection, `_SENT` and `_QUICK_CLAIM` compiled for it.)"""
    for outcome in outcomes:
        if direct is not None and outcome.status == "sent":
            direct[1].rowcount(direct[0], {"rid": outcome.recipient_id, "now": now})
        else:
            settle(c, now, outcome)
    if claim is None:
        return None
    values = {"rid": claim.id, "attempts": claim.attempts, "error": claim.last_error, "now": now}
    quick = (
        direct[2].rowcount(direct[0], values)
        if direct is not None
        else c.execute(_QUICK_CLAIM, values).rowcount
    )
    if quick:
        # The row was as read (pending, same attempts and error) and is not held: it now
        # reads exactly as this, so no RETURNING (see `Claims`).
        return replace(
            claim, status="sending", attempts=claim.attempts + 1, updated_at=now.astimezone(dt.UTC)
        )
    row = c.execute(_CLAIM, {"rid": claim.id, "now": now}).first()
    return recipient_row(row) if row is not None else None


class Claims:
    """One sending worker's own connection to the store, held for the whole send, for
    `settle_and_claim`: the previous message's outcome and the claim of the next one,
    right before its final dot.

    On PostgreSQL that is one transaction (one commit a message; rows are locked one by
    one). SQLite locks the whole database for a writing transaction, and a Python client
    holds that lock from its first statement to its commit, across every wait for the GIL
    in between: with several sending threads and helper processes, the others then sleep
    in SQLite's busy handler (a millisecond and more) behind a thread that is waiting to
    be scheduled. So on SQLite each statement commits on its own (autocommit): the
    outcome, then the claim, each taking and releasing the lock inside one call into
    SQLite. A kill between the two leaves the previous recipient `sent` and the next one
    `pending`, as a kill before the claim always did."""

    def __init__(self, engine: sa.Engine, clock: Callable[[], dt.datetime]) -> None:
        self.connection = engine.connect()
        self.clock = clock
        self.each = engine.dialect.name == "sqlite"  # each statement its own transaction
        self.direct: tuple[Any, _Direct, _Direct] | None = None
        if self.each:
            self.connection = self.connection.execution_options(isolation_level="AUTOCOMMIT")
            driver = self.connection.connection.driver_connection
            dialect = engine.dialect
            self.direct = (driver, _Direct(_SENT, dialect), _Direct(_QUICK_CLAIM, dialect))

    def settle_and_claim(
        self, outcomes: Sequence[Outcome], claim: Recipient | None = None
    ) -> Recipient | None:
        """Write `outcomes`, then claim `claim` as read by `reserve_recipients` (`pending`
        → `sending`, one more attempt). Returns the claimed recipient as the store now has
        it, `suppressed` if its address was put on the suppression list meanwhile (then
        not to be sent), or None when it is no longer pending (another sender took it) or
        nothing was to be claimed."""
        if self.each:
            return _settle_and_claim(self.connection, self.clock(), outcomes, claim, self.direct)
        with self.connection.begin():
            return _settle_and_claim(self.connection, self.clock(), outcomes, claim)

    def close(self) -> None:
        self.connection.close()
