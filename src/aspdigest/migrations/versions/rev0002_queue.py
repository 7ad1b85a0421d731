"""The delivery queue: schedule time and missed-time policy per delivery, queues, log, runners.

Revision ID: 0002
Revises: 0001

Written by hand to match `aspdigest/outbox_schema.py` as it was at 0002. Adds to
`deliveries` the time the schedule gave (`schedule_at`, kept apart from `send_at`, which a
person may move) and what the runner does with it when overdue (`grace_seconds`, `missed`);
adds `queues` (time zone and pause per event), `delivery_log` (every status change) and
`runners` (the running `aspdigest run`, for `aspdigest status`).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def _time(name: str, nullable: bool) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(_time("schedule_at", True))
        batch.add_column(sa.Column("grace_seconds", sa.Integer, nullable=True))
        batch.add_column(sa.Column("missed", sa.String(8), nullable=True))
    op.create_table(
        "queues",
        sa.Column("event", sa.String(100), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        _time("paused_at", True),
        sa.Column("paused_by", sa.String(200), nullable=True),
        _time("planned_at", True),
        sa.PrimaryKeyConstraint("event", name="pk_queues"),
    )
    op.create_table(
        "delivery_log",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("delivery_id", sa.Integer, nullable=False),
        _time("at", False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("previous", sa.String(12), nullable=True),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("note", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_delivery_log"),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["deliveries.id"],
            ondelete="CASCADE",
            name="fk_delivery_log_delivery_id_deliveries",
        ),
    )
    op.create_index("ix_delivery_log_delivery_id", "delivery_log", ["delivery_id"])
    op.create_table(
        "runners",
        sa.Column("name", sa.String(40), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("host", sa.String(200), nullable=False),
        _time("started_at", False),
        _time("seen_at", False),
        _time("stopped_at", True),
        sa.PrimaryKeyConstraint("name", name="pk_runners"),
    )


def downgrade() -> None:
    op.drop_table("runners")
    op.drop_index("ix_delivery_log_delivery_id", "delivery_log")
    op.drop_table("delivery_log")
    op.drop_table("queues")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("missed")
        batch.drop_column("grace_seconds")
        batch.drop_column("schedule_at")
