"""The state store: deliveries, per-recipient progress, subscribers and suppressions.

Sits between schedule and deliver in the flow (… → build → schedule/outbox → deliver).
`open_store(url)` returns a `Store` over any SQLAlchemy URL (a SQLite file by default,
PostgreSQL for a team server), after bringing the schema up to date with the Alembic
migrations shipped in `aspdigest/migrations/`. Every method takes and returns plain
values or frozen dataclasses (`Delivery`, `Recipient`, `Subscriber`, `Suppression`).

Status changes are single conditional UPDATEs (`… WHERE status = 'approved'`) whose
row count says whether this caller won, so two processes racing for the same delivery
or recipient cannot both send it. Times are stored as UTC and returned timezone-aware.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, make_url

from aspdigest.config import Project
from aspdigest.errors import UserError
from aspdigest.store.schema import (
    DELIVERY_STATUSES,
    RECIPIENT_STATUSES,
    SUPPRESSION_REASONS,
    Delivery,
    ImportCounts,
    LogEntry,
    Queue,
    Recipient,
    Runner,
    SocialPost,
    Subscriber,
    Suppression,
    deliveries,
    delivery_log,
    metadata,
    queues,
    recipients,
    runners,
    social_media,
    social_posts,
    subscribers,
    suppressions,
)

__all__ = [
    "DELIVERY_STATUSES",
    "RECIPIENT_STATUSES",
    "SUPPRESSION_REASONS",
    "Delivery",
    "ImportCounts",
    "LogEntry",
    "Queue",
    "Recipient",
    "Runner",
    "SocialPost",
    "Store",
    "Subscriber",
    "Suppression",
    "metadata",
    "normalise_address",
    "open_project_store",
    "open_store",
    "resolve_url",
]

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
_MIGRATING = threading.Lock()
Clock = Callable[[], dt.datetime]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def normalise_address(address: str) -> str:
    # Compared case-insensitively everywhere: a person who unsubscribed as Ana@Example.org
    # must not get mail as ana@example.org.
    return address.strip().lower()


def resolve_url(url: str, root: Path | None = None) -> str:
    """A usable SQLAlchemy URL: relative SQLite paths are taken from the project root, and a
    bare postgresql:// means the psycopg 3 driver aspdigest ships with."""
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError:
        raise UserError(f"state.url: not a database URL: {_redact(url)}") from None
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        path = Path(parsed.database or "")
        if not path.is_absolute():
            path = (root or Path.cwd()) / path
        path.parent.mkdir(parents=True, exist_ok=True)
        parsed = parsed.set(database=str(path))
    return parsed.render_as_string(hide_password=False)


def _redact(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "(unparseable URL)"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the scheduler read while a send writes; busy_timeout waits for a lock
    # instead of failing; synchronous=NORMAL is durable under WAL except on power loss.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def open_store(
    url: str, *, root: Path | None = None, clock: Clock = utcnow, migrate: bool = True
) -> Store:
    """Connect to the store at `url`, upgrading its schema to the newest migration."""
    full = resolve_url(url, root)
    engine = sa.create_engine(full, future=True)
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    try:
        if migrate:
            upgrade(engine)
        else:
            with engine.connect():
                pass
    except sa.exc.OperationalError as exc:
        engine.dispose()
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise UserError(f"state store {_redact(full)}: cannot connect: {reason}") from None
    return Store(engine, clock)


def upgrade(engine: Engine) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # Alembic keeps its context in module globals: two threads migrating at once (a review
    # server approving while another request plans) would trip over each other.
    with _MIGRATING, engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def _delivery(row: sa.Row[Any]) -> Delivery:
    m = row._mapping
    return Delivery(**{c.name: m[c.name] for c in deliveries.columns})


def _recipient(row: sa.Row[Any]) -> Recipient:
    m = row._mapping
    return Recipient(**{c.name: m[c.name] for c in recipients.columns})


class Store:
    """The state store. Every method runs in its own short transaction."""

    def __init__(self, engine: Engine, clock: Clock = utcnow) -> None:
        self.engine = engine
        self.clock = clock

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        with self.engine.begin() as connection:
            yield connection

    # -- deliveries ------------------------------------------------------------------------

    def ensure_delivery(
        self,
        event: str,
        date: dt.date,
        channel: str,
        platform: str = "",
        *,
        send_at: dt.datetime | None = None,
        artifacts: Mapping[str, str] | None = None,
    ) -> Delivery:
        """The delivery for (event, date, channel, platform), created as `planned` if new.
        A delivery still `planned` takes the given send time and artifact hashes; one
        already approved or further along keeps what was approved."""
        now = self.clock()
        key = (
            (deliveries.c.event == event)
            & (deliveries.c.date == date)
            & (deliveries.c.channel == channel)
            & (deliveries.c.platform == platform)
        )
        with self._tx() as c:
            existing = c.execute(sa.select(deliveries.c.id, deliveries.c.status).where(key)).first()
            if existing is None:
                try:
                    with c.begin_nested():
                        c.execute(
                            deliveries.insert().values(
                                event=event,
                                date=date,
                                channel=channel,
                                platform=platform,
                                send_at=send_at,
                                status="planned",
                                attempts=0,
                                artifacts=dict(artifacts or {}),
                                created_at=now,
                                updated_at=now,
                            )
                        )
                except sa.exc.IntegrityError:
                    pass  # another process created it first; fall through and read it
            elif existing.status == "planned" and (send_at is not None or artifacts is not None):
                values: dict[str, Any] = {"updated_at": now}
                if send_at is not None:
                    values["send_at"] = send_at
                if artifacts is not None:
                    values["artifacts"] = dict(artifacts)
                c.execute(
                    deliveries.update()
                    .where((deliveries.c.id == existing.id) & (deliveries.c.status == "planned"))
                    .values(**values)
                )
            row = c.execute(sa.select(deliveries).where(key)).one()
        return _delivery(row)

    def delivery(self, delivery_id: int) -> Delivery | None:
        with self._tx() as c:
            row = c.execute(sa.select(deliveries).where(deliveries.c.id == delivery_id)).first()
        return _delivery(row) if row is not None else None

    def deliveries(self, event: str | None = None, status: str | None = None) -> list[Delivery]:
        query = sa.select(deliveries).order_by(
            deliveries.c.date, deliveries.c.channel, deliveries.c.platform, deliveries.c.id
        )
        if event is not None:
            query = query.where(deliveries.c.event == event)
        if status is not None:
            query = query.where(deliveries.c.status == status)
        with self._tx() as c:
            return [_delivery(r) for r in c.execute(query)]

    def transition(
        self, delivery_id: int, to: str, *, allowed_from: Iterable[str], **values: Any
    ) -> bool:
        """Move a delivery to `to` only if it is in one of `allowed_from`; True if it moved."""
        if to not in DELIVERY_STATUSES:
            raise ValueError(f"unknown delivery status {to!r}")
        with self._tx() as c:
            result = c.execute(
                deliveries.update()
                .where(
                    (deliveries.c.id == delivery_id) & deliveries.c.status.in_(list(allowed_from))
                )
                .values(status=to, updated_at=self.clock(), **values)
            )
        return result.rowcount == 1

    def approve(self, delivery_id: int, sha256s: Mapping[str, str], by: str) -> bool:
        return self.transition(
            delivery_id,
            "approved",
            allowed_from=("planned", "held", "failed"),
            approved=dict(sha256s),
            approved_by=by,
            approved_at=self.clock(),
        )

    def claim(self, delivery_id: int) -> bool:
        """Atomically take an approved delivery for sending; False if someone else did."""
        return self.transition(
            delivery_id,
            "claimed",
            allowed_from=("approved",),
            attempts=deliveries.c.attempts + 1,
            claimed_at=self.clock(),
            last_error=None,
        )

    def mark_sent(self, delivery_id: int, receipt: Mapping[str, Any] | None = None) -> bool:
        return self.transition(
            delivery_id,
            "sent",
            allowed_from=("claimed",),
            sent_at=self.clock(),
            receipt=dict(receipt or {}),
        )

    def mark_failed(
        self, delivery_id: int, error: str, receipt: Mapping[str, Any] | None = None
    ) -> bool:
        return self.transition(
            delivery_id,
            "failed",
            allowed_from=("claimed",),
            last_error=error,
            receipt=dict(receipt or {}),
        )

    def mark_unknown(
        self, delivery_id: int, error: str, receipt: Mapping[str, Any] | None = None
    ) -> bool:
        return self.transition(
            delivery_id,
            "unknown",
            allowed_from=("claimed",),
            last_error=error,
            receipt=dict(receipt or {}),
        )

    # -- per-recipient progress --------------------------------------------------------------

    def add_recipients(self, delivery_id: int, people: Iterable[tuple[str, str | None]]) -> int:
        """Add (address, name) pairs not yet on the delivery, in order; returns how many."""
        now = self.clock()
        with self._tx() as c:
            have = set(
                c.execute(
                    sa.select(recipients.c.address).where(recipients.c.delivery_id == delivery_id)
                ).scalars()
            )
            rows = []
            for address, name in people:
                key = normalise_address(address)
                if key in have:
                    continue
                have.add(key)
                rows.append(
                    {
                        "delivery_id": delivery_id,
                        "address": key,
                        "name": name,
                        "status": "pending",
                        "attempts": 0,
                        "updated_at": now,
                    }
                )
            if rows:
                c.execute(recipients.insert(), rows)
        return len(rows)

    def recipients(self, delivery_id: int, status: str | None = None) -> list[Recipient]:
        query = sa.select(recipients).where(recipients.c.delivery_id == delivery_id)
        if status is not None:
            query = query.where(recipients.c.status == status)
        with self._tx() as c:
            return [_recipient(r) for r in c.execute(query.order_by(recipients.c.id))]

    def recipient_counts(self, delivery_id: int) -> dict[str, int]:
        query = (
            sa.select(recipients.c.status, sa.func.count())
            .where(recipients.c.delivery_id == delivery_id)
            .group_by(recipients.c.status)
        )
        with self._tx() as c:
            counts = {str(status): int(n) for status, n in c.execute(query)}
        return {s: counts.get(s, 0) for s in RECIPIENT_STATUSES}

    def next_pending(self, delivery_id: int, skip: Collection[int] = ()) -> Recipient | None:
        """The first recipient still to send, leaving out the ids in `skip`."""
        query = sa.select(recipients).where(
            (recipients.c.delivery_id == delivery_id) & (recipients.c.status == "pending")
        )
        if skip:
            query = query.where(recipients.c.id.not_in(list(skip)))
        with self._tx() as c:
            row = c.execute(query.order_by(recipients.c.id).limit(1)).first()
        return _recipient(row) if row is not None else None

    def peek_recipient(self, delivery_id: int, skip: Collection[int] = ()) -> Recipient | None:
        """A `pending` recipient (leaving out `skip`) to prepare a message for, without taking
        it: `claim_recipient(recipient_id=…)` takes it at the last moment. One whose address
        is on the suppression list is settled here and comes back `suppressed`, not to be
        sent. No ORDER BY, for the reason given in claim_recipient."""
        held = sa.exists().where(suppressions.c.address == recipients.c.address)
        query = sa.select(recipients, held.label("held")).where(
            (recipients.c.delivery_id == delivery_id) & (recipients.c.status == "pending")
        )
        if skip:
            query = query.where(recipients.c.id.not_in(list(skip)))
        with self._tx() as c:
            row = c.execute(query.limit(1)).first()
            if row is None:
                return None
            found = Recipient(**{col.name: row._mapping[col.name] for col in recipients.columns})
            if not row.held:
                return found
            now = self.clock()
            done = c.execute(
                recipients.update()
                .where((recipients.c.id == found.id) & (recipients.c.status == "pending"))
                .values(status="suppressed", last_error="on the suppression list", updated_at=now)
            ).rowcount
        if not done:  # taken meanwhile by someone else: not ours to settle
            return self.peek_recipient(delivery_id, {*skip, found.id})
        return replace(found, status="suppressed", last_error="on the suppression list")

    def claim_recipient(
        self, delivery_id: int, skip: Collection[int] = (), *, recipient_id: int | None = None
    ) -> Recipient | None:
        """Atomically move the first `pending` recipient (leaving out `skip`; or the one with
        `recipient_id`) to `sending` and return it, or None when none is left (or that one is
        no longer pending); one whose address is on the suppression list comes back
        `suppressed` instead, not to be sent. One statement: on PostgreSQL the row is picked
        with FOR UPDATE SKIP LOCKED, so parallel senders (threads or runners) each get their
        own; SQLite runs writers one at a time, so the same statement is enough."""
        suppressed = sa.exists().where(suppressions.c.address == recipients.c.address)
        pick = sa.select(recipients.c.id).where(
            (recipients.c.delivery_id == delivery_id) & (recipients.c.status == "pending")
        )
        if recipient_id is not None:
            pick = pick.where(recipients.c.id == recipient_id)
        if skip:
            pick = pick.where(recipients.c.id.not_in(list(skip)))
        # No ORDER BY: with it PostgreSQL sorts every pending row on each claim (8 ms at
        # 50,000 recipients instead of 1.5); the (delivery_id, status) index hands them out
        # in the order they were added anyway, and the order is no part of the contract.
        pick = pick.limit(1).with_for_update(skip_locked=True)
        with self._tx() as c:
            row = c.execute(
                recipients.update()
                .where(
                    (recipients.c.id == pick.scalar_subquery()) & (recipients.c.status == "pending")
                )
                .values(
                    status=sa.case((suppressed, "suppressed"), else_="sending"),
                    last_error=sa.case(
                        (suppressed, "on the suppression list"), else_=recipients.c.last_error
                    ),
                    attempts=recipients.c.attempts + sa.case((suppressed, 0), else_=1),
                    updated_at=self.clock(),
                )
                .returning(*recipients.columns)
            ).first()
        return _recipient(row) if row is not None else None

    def _recipient_to(
        self, recipient_id: int, to: str, allowed_from: Sequence[str], **values: Any
    ) -> bool:
        with self._tx() as c:
            result = c.execute(
                recipients.update()
                .where(
                    (recipients.c.id == recipient_id) & recipients.c.status.in_(list(allowed_from))
                )
                .values(status=to, updated_at=self.clock(), **values)
            )
        return result.rowcount == 1

    def mark_recipient_sending(self, recipient_id: int) -> bool:
        """Record that this recipient's message is about to go to the server; only from
        `pending`, so two senders never both hand over the same message."""
        return self._recipient_to(
            recipient_id, "sending", ("pending",), attempts=recipients.c.attempts + 1
        )

    def mark_recipient_sent(self, recipient_id: int) -> bool:
        return self._recipient_to(
            recipient_id, "sent", ("sending",), sent_at=self.clock(), last_error=None
        )

    def mark_recipient_failed(self, recipient_id: int, error: str) -> bool:
        return self._recipient_to(recipient_id, "failed", ("sending", "pending"), last_error=error)

    def mark_recipient_unknown(self, recipient_id: int, error: str) -> bool:
        return self._recipient_to(recipient_id, "unknown", ("sending",), last_error=error)

    def mark_recipient_suppressed(self, recipient_id: int, reason: str) -> bool:
        return self._recipient_to(recipient_id, "suppressed", ("pending",), last_error=reason)

    def release_recipient(self, recipient_id: int, error: str) -> bool:
        """Back to `pending`: the server certainly did not take the message (it failed
        before the end of DATA), so sending it again cannot make a second copy."""
        return self._recipient_to(recipient_id, "pending", ("sending",), last_error=error)

    def mark_interrupted(self, delivery_id: int, error: str) -> int:
        """Every recipient left `sending` by an earlier run becomes `unknown`: the server may
        or may not have taken their message, and a person decides, not a resend."""
        with self._tx() as c:
            result = c.execute(
                recipients.update()
                .where(
                    (recipients.c.delivery_id == delivery_id) & (recipients.c.status == "sending")
                )
                .values(status="unknown", last_error=error, updated_at=self.clock())
            )
        return int(result.rowcount)

    # -- subscribers and suppressions ----------------------------------------------------------

    def import_subscribers(
        self, people: Iterable[tuple[str, str | None, str | None]], *, replace: bool = False
    ) -> ImportCounts:
        """Add or update (address, name, language); with `replace`, also remove the
        subscribers not listed. Suppressions are untouched either way."""
        now = self.clock()
        added = updated = unchanged = removed = 0
        with self._tx() as c:
            current = {r.address: (r.name, r.language) for r in c.execute(sa.select(subscribers))}
            seen: set[str] = set()
            for address, name, language in people:
                key = normalise_address(address)
                seen.add(key)
                if key not in current:
                    c.execute(
                        subscribers.insert().values(
                            address=key, name=name, language=language, imported_at=now
                        )
                    )
                    current[key] = (name, language)
                    added += 1
                elif current[key] != (name, language):
                    c.execute(
                        subscribers.update()
                        .where(subscribers.c.address == key)
                        .values(name=name, language=language, imported_at=now)
                    )
                    updated += 1
                else:
                    unchanged += 1
            if replace:
                gone = [a for a in current if a not in seen]
                if gone:
                    c.execute(subscribers.delete().where(subscribers.c.address.in_(gone)))
                removed = len(gone)
        return ImportCounts(added, updated, unchanged, removed)

    def subscribers(self) -> list[Subscriber]:
        with self._tx() as c:
            rows = c.execute(sa.select(subscribers).order_by(subscribers.c.id))
            return [Subscriber(r.address, r.name, r.language, r.imported_at) for r in rows]

    def suppress(self, address: str, reason: str, note: str | None = None) -> bool:
        """Put an address on the suppression list; False if it was already there."""
        if reason not in SUPPRESSION_REASONS:
            raise ValueError(f"unknown suppression reason {reason!r}")
        key = normalise_address(address)
        with self._tx() as c:
            if c.execute(sa.select(suppressions.c.id).where(suppressions.c.address == key)).first():
                return False
            try:
                with c.begin_nested():
                    c.execute(
                        suppressions.insert().values(
                            address=key, reason=reason, at=self.clock(), note=note
                        )
                    )
            except sa.exc.IntegrityError:
                return False
        return True

    def is_suppressed(self, address: str) -> bool:
        key = normalise_address(address)
        with self._tx() as c:
            found = c.execute(sa.select(suppressions.c.id).where(suppressions.c.address == key))
            return found.first() is not None

    def suppressions(self) -> list[Suppression]:
        with self._tx() as c:
            rows = c.execute(
                sa.select(suppressions).order_by(suppressions.c.at, suppressions.c.address)
            )
            return [Suppression(r.address, r.reason, r.at, r.note) for r in rows]

    # -- queues, the status log and the runner (0002) ----------------------------------------

    def resolve_recipients(self, delivery_id: int, to: str, note: str) -> int:
        """Every `unknown` recipient of a delivery becomes `to` (a person checked the server)."""
        with self._tx() as c:
            return int(
                c.execute(
                    recipients.update()
                    .where(
                        (recipients.c.delivery_id == delivery_id)
                        & (recipients.c.status == "unknown")
                    )
                    .values(status=to, last_error=note, updated_at=self.clock())
                ).rowcount
            )

    def resolve_recipient_addresses(
        self, delivery_id: int, addresses: Sequence[str], to: str, *, actor: str, note: str
    ) -> str | None:
        """A person decided these `unknown` recipients (by address): each becomes `to` (`sent`
        or `pending`) with `note`, and each decision goes to the delivery's log. When none is
        left in doubt, an `unknown` delivery follows: `sent` when nobody is left pending, else
        `failed` (then `retry` sends to those only). One transaction; nothing is written if
        any of them is no longer `unknown` (LookupError). Returns the delivery's new status
        when it moved, else None."""
        now = self.clock()
        with self._tx() as c:
            d = c.execute(sa.select(deliveries).where(deliveries.c.id == delivery_id)).one()
            for address in addresses:
                done = c.execute(
                    recipients.update()
                    .where(
                        (recipients.c.delivery_id == delivery_id)
                        & (recipients.c.address == address)
                        & (recipients.c.status == "unknown")
                    )
                    .values(status=to, last_error=note, updated_at=now)
                ).rowcount
                if done != 1:
                    raise LookupError(address)  # rolls the whole decision back
                c.execute(
                    delivery_log.insert().values(
                        delivery_id=delivery_id,
                        at=now,
                        status=d.status,
                        previous=d.status,
                        actor=actor,
                        note=f"{address}: {note}",
                    )
                )
            left: dict[str, int] = dict(
                c.execute(
                    sa.select(recipients.c.status, sa.func.count())
                    .where(recipients.c.delivery_id == delivery_id)
                    .group_by(recipients.c.status)
                ).all()
            )
            if d.status != "unknown" or left.get("unknown", 0):
                return None
            pending = int(left.get("pending", 0))
            values: dict[str, Any]
            if pending:
                status, log_note = "failed", f"recipients in doubt resolved; {pending} left"
                values = {
                    "last_error": f"{pending} recipient(s) resolved as not sent; "
                    f"`aspdigest schedule retry {delivery_id}` sends to them"
                }
            else:
                status, log_note = "sent", "recipients in doubt resolved; none left"
                values = {"last_error": None, "sent_at": now}
            moved = c.execute(
                deliveries.update()
                .where((deliveries.c.id == delivery_id) & (deliveries.c.status == "unknown"))
                .values(status=status, updated_at=now, **values)
            ).rowcount
            if moved != 1:
                raise LookupError(delivery_id)
            c.execute(
                delivery_log.insert().values(
                    delivery_id=delivery_id,
                    at=now,
                    status=status,
                    previous="unknown",
                    actor=actor,
                    note=log_note,
                )
            )
        return status

    def set_queue(self, event: str, **values: Any) -> None:
        with self._tx() as c:
            if (
                c.execute(queues.update().where(queues.c.event == event).values(**values)).rowcount
                == 0
            ):
                c.execute(queues.insert().values(event=event, **values))

    def queue(self, event: str) -> Queue | None:
        with self._tx() as c:
            row = c.execute(sa.select(queues).where(queues.c.event == event)).first()
        return Queue(**row._mapping) if row is not None else None

    def log(
        self,
        delivery_id: int,
        status: str,
        previous: str | None,
        actor: str,
        note: str | None = None,
    ) -> None:
        with self._tx() as c:
            c.execute(
                delivery_log.insert().values(
                    delivery_id=delivery_id,
                    at=self.clock(),
                    status=status,
                    previous=previous,
                    actor=actor,
                    note=note,
                )
            )

    def history(self, delivery_id: int) -> list[LogEntry]:
        query = sa.select(delivery_log).where(delivery_log.c.delivery_id == delivery_id)
        with self._tx() as c:
            rows = c.execute(query.order_by(delivery_log.c.id))
            return [LogEntry(**{k: v for k, v in r._mapping.items() if k != "id"}) for r in rows]

    def runner_seen(
        self, pid: int, host: str, *, started: bool = False, stopped: bool = False
    ) -> None:
        """Record the runner's heartbeat (and its start or clean stop) for `status`."""
        now = self.clock()
        values: dict[str, Any] = {"pid": pid, "host": host, "seen_at": now}
        if started:
            values.update(started_at=now, stopped_at=None)
        if stopped:
            values["stopped_at"] = now
        with self._tx() as c:
            if (
                c.execute(
                    runners.update().where(runners.c.name == "runner").values(**values)
                ).rowcount
                == 0
            ):
                c.execute(runners.insert().values(name="runner", **{"started_at": now, **values}))

    def runner(self) -> Runner | None:
        with self._tx() as c:
            row = c.execute(sa.select(runners).where(runners.c.name == "runner")).first()
        return (
            None
            if row is None
            else Runner(row.pid, row.host, row.started_at, row.seen_at, row.stopped_at)
        )

    # -- per-post progress of API publishers (0003) --------------------------------------------

    def social_posts(self, delivery_id: int) -> dict[tuple[int, int], SocialPost]:
        """Every post started for a delivery, by (group, index)."""
        query = sa.select(social_posts).where(social_posts.c.delivery_id == delivery_id)
        with self._tx() as c:
            return {
                (r.grp, r.idx): SocialPost(
                    r.grp,
                    r.idx,
                    r.status,
                    r.key,
                    r.remote_id,
                    r.cid,
                    r.url,
                    r.started_at,
                    r.posted_at,
                )
                for r in c.execute(query)
            }

    def post_sending(self, delivery_id: int, group: int, index: int, key: str) -> None:
        """Record, before the request goes out, the key a post is about to be sent under."""
        with self._tx() as c:
            c.execute(
                social_posts.insert().values(
                    delivery_id=delivery_id,
                    grp=group,
                    idx=index,
                    status="sending",
                    key=key,
                    started_at=self.clock(),
                )
            )

    def post_posted(
        self,
        delivery_id: int,
        group: int,
        index: int,
        *,
        remote_id: str,
        cid: str | None = None,
        url: str | None = None,
    ) -> None:
        with self._tx() as c:
            c.execute(
                social_posts.update()
                .where(
                    (social_posts.c.delivery_id == delivery_id)
                    & (social_posts.c.grp == group)
                    & (social_posts.c.idx == index)
                )
                .values(
                    status="posted", remote_id=remote_id, cid=cid, url=url, posted_at=self.clock()
                )
            )

    def posted_counts(self, event: str) -> dict[int, int]:
        """How many posts each of the event's deliveries has up (one query for `status`)."""
        query = (
            sa.select(social_posts.c.delivery_id, sa.func.count())
            .join(deliveries, deliveries.c.id == social_posts.c.delivery_id)
            .where((deliveries.c.event == event) & (social_posts.c.status == "posted"))
            .group_by(social_posts.c.delivery_id)
        )
        with self._tx() as c:
            return {int(row[0]): int(row[1]) for row in c.execute(query)}

    def post_media(self, delivery_id: int, group: int, index: int) -> list[str]:
        """The media ids uploaded so far for one post (0004), in the post's image order."""
        query = (
            sa.select(social_media.c.media_id)
            .where(
                (social_media.c.delivery_id == delivery_id)
                & (social_media.c.grp == group)
                & (social_media.c.idx == index)
            )
            .order_by(social_media.c.position)
        )
        with self._tx() as c:
            return [str(r[0]) for r in c.execute(query)]

    def post_media_uploaded(
        self, delivery_id: int, group: int, index: int, position: int, media_id: str
    ) -> None:
        """Record one finished upload (replacing an earlier one for the same image)."""
        where = (
            (social_media.c.delivery_id == delivery_id)
            & (social_media.c.grp == group)
            & (social_media.c.idx == index)
            & (social_media.c.position == position)
        )
        with self._tx() as c:
            c.execute(social_media.delete().where(where))
            c.execute(
                social_media.insert().values(
                    delivery_id=delivery_id,
                    grp=group,
                    idx=index,
                    position=position,
                    media_id=media_id,
                    uploaded_at=self.clock(),
                )
            )

    def forget_post_media(self, delivery_id: int, group: int, index: int) -> int:
        """Drop a post's recorded uploads (the server refused them or no longer has them)."""
        with self._tx() as c:
            return int(
                c.execute(
                    social_media.delete().where(
                        (social_media.c.delivery_id == delivery_id)
                        & (social_media.c.grp == group)
                        & (social_media.c.idx == index)
                    )
                ).rowcount
            )

    def forget_sending(self, delivery_id: int) -> int:
        """A person decided the posts in doubt did not go out: the next try sends them anew."""
        with self._tx() as c:
            return int(
                c.execute(
                    social_posts.delete().where(
                        (social_posts.c.delivery_id == delivery_id)
                        & (social_posts.c.status == "sending")
                    )
                ).rowcount
            )


def open_project_store(project: Project, *, clock: Clock = utcnow) -> Store:
    """The store named by the project's settings (state.url, or ASPDIGEST_STATE_URL)."""
    return open_store(project.settings.state.url, root=project.root, clock=clock)
