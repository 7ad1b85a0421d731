"""Uploads of API publishers (Mastodon), recorded per post as each finishes.

Revision ID: 0004
Revises: 0003

Written by hand to match `aspdigest/outbox_schema.py` as it was at 0004. Adds
`social_media`: one row per image of a post the server has taken (its media id), so a post
retried in another process (after a kill, a rate limit, a refused post) attaches the
uploads that already finished instead of uploading them again against the server's
upload budget (Mastodon: 30 per 30 minutes per account).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "social_media",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("delivery_id", sa.Integer, nullable=False),
        sa.Column("grp", sa.Integer, nullable=False),
        sa.Column("idx", sa.Integer, nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("media_id", sa.String(300), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_social_media"),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["deliveries.id"],
            ondelete="CASCADE",
            name="fk_social_media_delivery_id_deliveries",
        ),
        sa.UniqueConstraint(
            "delivery_id",
            "grp",
            "idx",
            "position",
            name="uq_social_media_delivery_id_grp_idx_position",
        ),
    )


def downgrade() -> None:
    op.drop_table("social_media")
