"""The state store's tables, as SQLAlchemy Core metadata.

Part of the schedule/outbox stage: `aspdigest.store` queries these tables and the Alembic
migrations in `aspdigest/migrations/` create them; a test checks the two agree. Kept
apart from the queries so the migration environment can import the metadata alone.
The frozen dataclasses at the end are the rows as `Store` returns them.

- deliveries: one row per (event, date, channel, platform); platform is "" for email.
  Status: planned → approved → claimed → sent | failed | unknown; also skipped and held.
- delivery_recipients: one row per address of an email delivery, the send's progress.
  Status: pending → sending → sent | failed | unknown; or suppressed.
- subscribers: the imported list; suppressions: addresses never to mail again.
- queues (0002): one row per event: its time zone and whether its queue is paused.
- delivery_log (0002): every status change of a delivery, who made it and why.
- runners (0002): the `aspdigest run` process serving the store (for `aspdigest status`).
- social_posts (0003): one row per post an API publisher (Bluesky, Mastodon) has started,
  keyed by (delivery, group, index). Status: sending (the request may or may not have
  reached the server; `key` is the idempotency key or record key it was sent under) →
  posted (with the server's id, cid and URL). What lets an interrupted thread resume.
- subscribers (0005) gain token_id (the random id in their tokens), status (pending →
  active, double opt-in), source and the consent times; bounces (0005): each DSN or
  complaint read by `aspdigest bounces ingest`, so soft bounces can be counted.
- social_media (0004): one row per image of a post that the server has taken (Mastodon's
  media id), recorded as each upload finishes, so a retry in another process attaches the
  same uploads instead of spending the server's upload budget again.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

DELIVERY_STATUSES = (
    "planned",
    "approved",
    "claimed",
    "sent",
    "failed",
    "unknown",
    "skipped",
    "held",
)
RECIPIENT_STATUSES = ("pending", "sending", "sent", "failed", "suppressed", "unknown")
SUPPRESSION_REASONS = ("unsubscribed", "bounced", "complained")
SUBSCRIBER_STATUSES = ("pending", "active")
BOUNCE_KINDS = ("hard", "soft", "complaint")
POST_STATUSES = ("sending", "posted")


class UTCDateTime(sa.types.TypeDecorator[dt.datetime]):
    """An aware UTC datetime on every backend (SQLite keeps no zone: store naive UTC)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("the state store takes timezone-aware datetimes only")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        assert isinstance(value, dt.datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("event", sa.String(100), nullable=False),
    sa.Column("date", sa.Date, nullable=False),
    sa.Column("channel", sa.String(20), nullable=False),
    sa.Column("platform", sa.String(20), nullable=False, server_default=""),
    sa.Column("send_at", UTCDateTime, nullable=True),
    sa.Column("status", sa.String(12), nullable=False, server_default="planned"),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("artifacts", sa.JSON, nullable=False),  # artifact path → sha256, as planned
    sa.Column("approved", sa.JSON, nullable=True),  # artifact path → sha256, as approved
    sa.Column("approved_by", sa.String(200), nullable=True),
    sa.Column("approved_at", UTCDateTime, nullable=True),
    sa.Column("claimed_at", UTCDateTime, nullable=True),
    sa.Column("sent_at", UTCDateTime, nullable=True),
    sa.Column("receipt", sa.JSON, nullable=True),  # what the channel reported (counts, URLs)
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    # 0002: the time the schedule file gave at the last plan (send_at may have been moved by
    # hand since), and what to do when the runner finds it overdue.
    sa.Column("schedule_at", UTCDateTime, nullable=True),
    sa.Column("grace_seconds", sa.Integer, nullable=True),
    sa.Column("missed", sa.String(8), nullable=True),
    sa.UniqueConstraint("event", "date", "channel", "platform"),
    sa.CheckConstraint(_in("status", DELIVERY_STATUSES), name="status"),
    sa.Index(None, "status", "send_at"),
)

recipients = sa.Table(
    "delivery_recipients",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "delivery_id",
        sa.Integer,
        sa.ForeignKey("deliveries.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("address", sa.String(320), nullable=False),
    sa.Column("name", sa.String(200), nullable=True),
    sa.Column("status", sa.String(12), nullable=False, server_default="pending"),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("sent_at", UTCDateTime, nullable=True),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("delivery_id", "address"),
    sa.CheckConstraint(_in("status", RECIPIENT_STATUSES), name="status"),
    sa.Index(None, "delivery_id", "status"),
)

subscribers = sa.Table(
    "subscribers",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("address", sa.String(320), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=True),
    sa.Column("language", sa.String(35), nullable=True),
    sa.Column("imported_at", UTCDateTime, nullable=False),
    # 0005: the random id the unsubscribe and confirm tokens carry (never the address), the
    # double opt-in status, and the consent record (when asked, when confirmed, how).
    # A Python-side default, so every insert (bulk loads too) gets its own random id.
    sa.Column(
        "token_id",
        sa.String(32),
        nullable=False,
        unique=True,
        default=lambda: secrets.token_hex(16),
    ),
    sa.Column("status", sa.String(8), nullable=False, server_default="active"),
    sa.Column("source", sa.String(8), nullable=False, server_default="import"),
    sa.Column("subscribed_at", UTCDateTime, nullable=True),
    sa.Column("confirmed_at", UTCDateTime, nullable=True),
    sa.CheckConstraint(_in("status", SUBSCRIBER_STATUSES), name="status"),
)

bounces = sa.Table(
    "bounces",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("address", sa.String(320), nullable=False),
    sa.Column("kind", sa.String(10), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("note", sa.Text, nullable=True),
    sa.CheckConstraint(_in("kind", BOUNCE_KINDS), name="kind"),
    sa.Index(None, "address", "at"),
)

suppressions = sa.Table(
    "suppressions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("address", sa.String(320), nullable=False, unique=True),
    sa.Column("reason", sa.String(12), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("note", sa.Text, nullable=True),
    sa.CheckConstraint(_in("reason", SUPPRESSION_REASONS), name="reason"),
)

queues = sa.Table(
    "queues",
    metadata,
    sa.Column("event", sa.String(100), primary_key=True),
    sa.Column("timezone", sa.String(64), nullable=False),
    sa.Column("paused_at", UTCDateTime, nullable=True),
    sa.Column("paused_by", sa.String(200), nullable=True),
    sa.Column("planned_at", UTCDateTime, nullable=True),
)

delivery_log = sa.Table(
    "delivery_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "delivery_id",
        sa.Integer,
        sa.ForeignKey("deliveries.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("status", sa.String(12), nullable=False),
    sa.Column("previous", sa.String(12), nullable=True),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("note", sa.Text, nullable=True),
    sa.Index(None, "delivery_id"),
)

runners = sa.Table(
    "runners",
    metadata,
    sa.Column("name", sa.String(40), primary_key=True),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("host", sa.String(200), nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("seen_at", UTCDateTime, nullable=False),
    sa.Column("stopped_at", UTCDateTime, nullable=True),
)

social_posts = sa.Table(
    "social_posts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "delivery_id",
        sa.Integer,
        sa.ForeignKey("deliveries.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("grp", sa.Integer, nullable=False),
    sa.Column("idx", sa.Integer, nullable=False),
    sa.Column("status", sa.String(8), nullable=False),
    sa.Column("key", sa.String(100), nullable=False),
    sa.Column("remote_id", sa.String(300), nullable=True),
    sa.Column("cid", sa.String(120), nullable=True),
    sa.Column("url", sa.String(500), nullable=True),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("posted_at", UTCDateTime, nullable=True),
    sa.UniqueConstraint("delivery_id", "grp", "idx"),
    sa.CheckConstraint(_in("status", POST_STATUSES), name="status"),
)

social_media = sa.Table(
    "social_media",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "delivery_id",
        sa.Integer,
        sa.ForeignKey("deliveries.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("grp", sa.Integer, nullable=False),
    sa.Column("idx", sa.Integer, nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("media_id", sa.String(300), nullable=False),
    sa.Column("uploaded_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("delivery_id", "grp", "idx", "position"),
)


# -- rows as the store returns them ------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    id: int
    event: str
    date: dt.date
    channel: str
    platform: str
    send_at: dt.datetime | None
    status: str
    attempts: int
    last_error: str | None
    artifacts: Mapping[str, str]
    approved: Mapping[str, str] | None
    approved_by: str | None
    approved_at: dt.datetime | None
    claimed_at: dt.datetime | None
    sent_at: dt.datetime | None
    receipt: Mapping[str, Any] | None
    created_at: dt.datetime
    updated_at: dt.datetime
    schedule_at: dt.datetime | None = None
    grace_seconds: int | None = None
    missed: str | None = None


@dataclass(frozen=True)
class Recipient:
    id: int
    delivery_id: int
    address: str
    name: str | None
    status: str
    attempts: int
    last_error: str | None
    sent_at: dt.datetime | None
    updated_at: dt.datetime


@dataclass(frozen=True)
class Subscriber:
    address: str
    name: str | None
    language: str | None
    imported_at: dt.datetime
    token_id: str = ""
    status: str = "active"  # pending (sign-up not yet confirmed) | active
    source: str = "import"  # import | form
    subscribed_at: dt.datetime | None = None
    confirmed_at: dt.datetime | None = None


@dataclass(frozen=True)
class Suppression:
    address: str
    reason: str
    at: dt.datetime
    note: str | None


@dataclass(frozen=True)
class Queue:
    event: str
    timezone: str
    paused_at: dt.datetime | None
    paused_by: str | None
    planned_at: dt.datetime | None


@dataclass(frozen=True)
class LogEntry:
    delivery_id: int
    at: dt.datetime
    status: str
    previous: str | None
    actor: str
    note: str | None


@dataclass(frozen=True)
class RunnerHeartbeat:
    pid: int
    host: str
    started_at: dt.datetime
    seen_at: dt.datetime
    stopped_at: dt.datetime | None


@dataclass(frozen=True)
class SocialPost:
    """One post of a thread or quote post as an API publisher recorded it."""

    group: int  # 0 for a thread; the quote post's number (0-based) for quotes
    index: int  # 0-based position in its group
    status: str  # sending | posted
    key: str  # idempotency key (Mastodon) or record key (Bluesky) it was sent under
    remote_id: str | None  # Mastodon status id, Bluesky at:// URI
    cid: str | None  # Bluesky record cid (replies need it)
    url: str | None  # where a person sees it
    started_at: dt.datetime
    posted_at: dt.datetime | None


@dataclass(frozen=True)
class ImportCounts:
    added: int
    updated: int
    unchanged: int
    removed: int
