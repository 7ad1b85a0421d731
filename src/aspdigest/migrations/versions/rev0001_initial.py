"""The first schema of the state store: deliveries, their recipients, subscribers, suppressions.

Revision ID: 0001
Revises: (none)

Written by hand to match `aspdigest/outbox_schema.py` as it was at 0001; a test compares
the migrated database with the metadata, so a later change to the tables needs a new
revision here rather than an edit to this one.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

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


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _time(name: str, nullable: bool) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("event", sa.String(100), nullable=False),
        sa.Column("date", sa.Date, nullable=False),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("platform", sa.String(20), nullable=False, server_default=""),
        _time("send_at", True),
        sa.Column("status", sa.String(12), nullable=False, server_default="planned"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("artifacts", sa.JSON, nullable=False),
        sa.Column("approved", sa.JSON, nullable=True),
        sa.Column("approved_by", sa.String(200), nullable=True),
        _time("approved_at", True),
        _time("claimed_at", True),
        _time("sent_at", True),
        sa.Column("receipt", sa.JSON, nullable=True),
        _time("created_at", False),
        _time("updated_at", False),
        sa.PrimaryKeyConstraint("id", name="pk_deliveries"),
        sa.UniqueConstraint(
            "event", "date", "channel", "platform", name="uq_deliveries_event_date_channel_platform"
        ),
        sa.CheckConstraint(_in("status", DELIVERY_STATUSES), name="ck_deliveries_status"),
    )
    op.create_index("ix_deliveries_status_send_at", "deliveries", ["status", "send_at"])
    op.create_table(
        "delivery_recipients",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("delivery_id", sa.Integer, nullable=False),
        sa.Column("address", sa.String(320), nullable=False),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("status", sa.String(12), nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text, nullable=True),
        _time("sent_at", True),
        _time("updated_at", False),
        sa.PrimaryKeyConstraint("id", name="pk_delivery_recipients"),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["deliveries.id"],
            ondelete="CASCADE",
            name="fk_delivery_recipients_delivery_id_deliveries",
        ),
        sa.UniqueConstraint(
            "delivery_id", "address", name="uq_delivery_recipients_delivery_id_address"
        ),
        sa.CheckConstraint(_in("status", RECIPIENT_STATUSES), name="ck_delivery_recipients_status"),
    )
    op.create_index(
        "ix_delivery_recipients_delivery_id_status",
        "delivery_recipients",
        ["delivery_id", "status"],
    )
    op.create_table(
        "subscribers",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("address", sa.String(320), nullable=False),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("language", sa.String(35), nullable=True),
        _time("imported_at", False),
        sa.PrimaryKeyConstraint("id", name="pk_subscribers"),
        sa.UniqueConstraint("address", name="uq_subscribers_address"),
    )
    op.create_table(
        "suppressions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("address", sa.String(320), nullable=False),
        sa.Column("reason", sa.String(12), nullable=False),
        _time("at", False),
        sa.Column("note", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_suppressions"),
        sa.UniqueConstraint("address", name="uq_suppressions_address"),
        sa.CheckConstraint(_in("reason", SUPPRESSION_REASONS), name="ck_suppressions_reason"),
    )


def downgrade() -> None:
    op.drop_table("suppressions")
    op.drop_table("subscribers")
    op.drop_index("ix_delivery_recipients_delivery_id_status", "delivery_recipients")
    op.drop_table("delivery_recipients")
    op.drop_index("ix_deliveries_status_send_at", "deliveries")
    op.drop_table("deliveries")
