"""The subscriber service: opaque token ids, double opt-in status, consent times, bounces.

Revision ID: 0005
Revises: 0004

Written by hand to match `aspdigest/store/schema.py` as it was at 0005. Each subscriber
gets `token_id`, 16 random bytes in hex that its unsubscribe and confirm links carry instead
of the address (existing rows get a fresh one here), `status` (pending until a sign-up is
confirmed; every imported subscriber is active), `source` and the consent times
`subscribed_at`/`confirmed_at`. `bounces` records each bounce or complaint read from a DSN
or ARF report, so that soft bounces can be counted over a window.
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("subscribers") as batch:
        batch.add_column(sa.Column("token_id", sa.String(32), nullable=True))
        batch.add_column(sa.Column("status", sa.String(8), nullable=False, server_default="active"))
        batch.add_column(sa.Column("source", sa.String(8), nullable=False, server_default="import"))
        batch.add_column(sa.Column("subscribed_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True))
    table = sa.table("subscribers", sa.column("id", sa.Integer), sa.column("token_id", sa.String))
    connection = op.get_bind()
    for (row_id,) in connection.execute(sa.select(table.c.id)).all():
        connection.execute(
            table.update().where(table.c.id == row_id).values(token_id=secrets.token_hex(16))
        )
    with op.batch_alter_table("subscribers") as batch:
        batch.alter_column("token_id", existing_type=sa.String(32), nullable=False)
        batch.create_unique_constraint("uq_subscribers_token_id", ["token_id"])
        batch.create_check_constraint("ck_subscribers_status", "status IN ('pending', 'active')")
    op.create_table(
        "bounces",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("address", sa.String(320), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("note", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_bounces"),
        sa.CheckConstraint("kind IN ('hard', 'soft', 'complaint')", name="ck_bounces_kind"),
    )
    op.create_index("ix_bounces_address_at", "bounces", ["address", "at"])


def downgrade() -> None:
    op.drop_index("ix_bounces_address_at", "bounces")
    op.drop_table("bounces")
    with op.batch_alter_table("subscribers") as batch:
        batch.drop_constraint("ck_subscribers_status", type_="check")
        batch.drop_constraint("uq_subscribers_token_id", type_="unique")
        for column in ("confirmed_at", "subscribed_at", "source", "status", "token_id"):
            batch.drop_column(column)
