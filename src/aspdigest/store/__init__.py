"""The state store: deliveries, per-recipient and per-post progress, subscribers, suppressions.

Sits between schedule and deliver in the flow (… → build → schedule/outbox → deliver).
`open_store(url)` returns a `Store` over any SQLAlchemy URL (a SQLite file by default,
PostgreSQL for a team server), after bringing the schema up to date with the Alembic
migrations shipped in `aspdigest/migrations/`; `open_project_store(project)` opens the one
the project's settings name. Every method takes and returns plain values or frozen
dataclasses (`Delivery`, `Recipient`, `Subscriber`, `Suppression`, …), in its own short
transaction. Times are stored as UTC and returned timezone-aware.

`Store` is put together from one mixin per concern: `deliveries.py` (deliveries, queues,
the status log), `recipients.py` (an email's per-recipient progress), `audience.py`
(subscribers and suppressions), `ledger.py` (social posts), `heartbeat.py` (the runner's
heartbeat); `base.py` holds the connection, `schema.py` the tables and rows, and `lock.py`
the runner lock.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from aspdigest.config import Project
from aspdigest.errors import UserError
from aspdigest.store.audience import AudienceMixin
from aspdigest.store.base import (
    MIGRATIONS,
    Clock,
    _sqlite_pragmas,
    normalise_address,
    redact,
    resolve_url,
    upgrade,
    utcnow,
)
from aspdigest.store.deliveries import DeliveriesMixin
from aspdigest.store.heartbeat import HeartbeatMixin
from aspdigest.store.ledger import LedgerMixin
from aspdigest.store.recipients import RecipientsMixin
from aspdigest.store.schema import (
    DELIVERY_STATUSES,
    RECIPIENT_STATUSES,
    SUPPRESSION_REASONS,
    Delivery,
    ImportCounts,
    LogEntry,
    Queue,
    Recipient,
    RunnerHeartbeat,
    SocialPost,
    Subscriber,
    Suppression,
    metadata,
)

__all__ = [
    "DELIVERY_STATUSES",
    "MIGRATIONS",
    "RECIPIENT_STATUSES",
    "SUPPRESSION_REASONS",
    "Clock",
    "Delivery",
    "ImportCounts",
    "LogEntry",
    "Queue",
    "Recipient",
    "RunnerHeartbeat",
    "SocialPost",
    "Store",
    "Subscriber",
    "Suppression",
    "metadata",
    "normalise_address",
    "open_project_store",
    "open_store",
    "resolve_url",
    "upgrade",
    "utcnow",
]


class Store(DeliveriesMixin, RecipientsMixin, AudienceMixin, LedgerMixin, HeartbeatMixin):
    """The state store. Every method runs in its own short transaction."""


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
        raise UserError(f"state store {redact(full)}: cannot connect: {reason}") from None
    return Store(engine, clock)


def open_project_store(project: Project, *, clock: Clock = utcnow) -> Store:
    """The store named by the project's settings (state.url, or ASPDIGEST_STATE_URL)."""
    return open_store(project.settings.state.url, root=project.root, clock=clock)
