"""Per-post progress of API publishers (Bluesky, Mastodon).

Revision ID: 0003
Revises: 0002

Written by hand to match `aspdigest/outbox_schema.py` as it was at 0003. Adds
`social_posts`: one row per post started, with the key it was sent under and, once the
server answered, its id, cid and URL, so an interrupted thread resumes after its last post.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "social_posts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("delivery_id", sa.Integer, nullable=False),
        sa.Column("grp", sa.Integer, nullable=False),
        sa.Column("idx", sa.Integer, nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("key", sa.String(100), nullable=False),
        sa.Column("remote_id", sa.String(300), nullable=True),
        sa.Column("cid", sa.String(120), nullable=True),
        sa.Column("url", sa.String(500), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("posted_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_social_posts"),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["deliveries.id"],
            ondelete="CASCADE",
            name="fk_social_posts_delivery_id_deliveries",
        ),
        sa.UniqueConstraint(
            "delivery_id", "grp", "idx", name="uq_social_posts_delivery_id_grp_idx"
        ),
        sa.CheckConstraint("status IN ('sending', 'posted')", name="ck_social_posts_status"),
    )


def downgrade() -> None:
    op.drop_table("social_posts")
